//! Machine tests without vCPUs: the production wiring driven through ports and clock steps, as firmware and
//! guest drivers drive it.

#![allow(clippy::unwrap_used)]

use devices::system::SystemRequest;
use devmodel::harness::TestMachine;
use devmodel::machine::MachineOptions;

fn machine(extra: &str) -> TestMachine {
    let text = format!(
        "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='t'\nmemory=256\nvcpus=2\n\
         nographic=1\nserial='pty'\n{extra}\n"
    );
    TestMachine::from_config(&text, &MachineOptions::default()).unwrap()
}

fn cmos(m: &TestMachine, index: u8) -> u8 {
    m.outb(0x70, index);
    m.inb(0x71)
}

#[test]
fn cmos_carries_memory_cpus_and_boot_order() {
    let m = machine("boot='dc'");
    assert_eq!(cmos(&m, 0x3d), 0x23, "CD first, then disk");
    assert_eq!(cmos(&m, 0x5f), 1, "CPU count - 1");
    let above_16m = u16::from(cmos(&m, 0x34)) | (u16::from(cmos(&m, 0x35)) << 8);
    assert_eq!(above_16m, (256 - 16) * 16, "64 KiB units above 16 MiB");
}

#[test]
fn fw_cfg_answers_as_seabios_probes_it() {
    let m = machine("");
    m.outw(0x510, 0x0000);
    let sig: Vec<u8> = (0..4).map(|_| m.inb(0x511)).collect();
    assert_eq!(sig, b"QEMU");
    m.outw(0x510, 0x0005); // NB_CPUS
    assert_eq!(u16::from(m.inb(0x511)) | (u16::from(m.inb(0x511)) << 8), 2);
    m.outw(0x510, 0x000e); // BOOT_MENU: off, so no 2.5 s prompt
    assert_eq!(m.inb(0x511), 0);
}

#[test]
fn unclaimed_ports_float_and_bad_widths_are_refused() {
    let m = machine("");
    assert_eq!(m.inb(0x80), 0xff);
    assert_eq!(m.inl(0x1234), 0xffff_ffff);
    // The keyboard controller takes byte accesses only: a word read is refused, not passed on.
    assert_eq!(m.inw(0x64), 0xffff);
    assert!(
        m.platform
            .pio
            .stats()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[test]
fn rtc_periodic_interrupt_reaches_irq8_until_acknowledged() {
    let m = machine("");
    m.outb(0x70, 0x0a);
    m.outb(0x71, 0x26); // 1024 Hz
    m.outb(0x70, 0x0b);
    let b = m.inb(0x71);
    m.outb(0x70, 0x0b);
    m.outb(0x71, b | 0x40); // PIE
    m.step(2_000_000);
    assert!(m.irq(8));
    m.outb(0x70, 0x0c);
    assert_ne!(m.inb(0x71) & 0xc0, 0, "IRQF and PF set");
    assert!(!m.irq(8), "reading C lowers IRQ 8");
    m.step(1_000_000);
    assert!(m.irq(8));
}

#[test]
fn com1_transmits_and_interrupts_on_irq4() {
    let m = machine("");
    m.outb(0x3fc, 0x08); // MCR.OUT2: the PC's IRQ gate
    m.outb(0x3f9, 0x02); // IER: THR empty
    assert!(m.irq(4));
    m.outb(0x3f8, b'A');
    m.step(1_000_000);
    assert_eq!(m.serial_text(0), "A");
}

#[test]
fn acpi_power_button_raises_sci_and_s5_requests_poweroff() {
    let m = machine("acpi=1");
    // What SeaBIOS does: PM I/O base at 0xB000, enabled, SCI on IRQ 9; then the OS enables ACPI.
    m.pci_write32(1, 3, 0x40, 0xb001);
    m.pci_write8(1, 3, 0x80, 0x01);
    m.outb(0xb2, 0xf1);
    assert_eq!(m.inw(0xb004) & 1, 1, "SCI_EN after the ACPI enable command");
    m.outw(0xb002, 0x0100); // PWRBTN_EN
    m.platform.pm.as_ref().unwrap().press_power_button();
    assert!(m.irq(9), "the power button raises the SCI");
    m.outw(0xb000, 0x0100); // acknowledge PWRBTN_STS
    assert!(!m.irq(9));
    m.outw(0xb004, 0x2001); // SLP_EN with SLP_TYP 0 (S5)
    assert_eq!(m.requests(), vec![SystemRequest::PowerOff]);
}

#[test]
fn acpi_off_means_no_pm_function() {
    let m = machine("acpi=0");
    assert!(m.platform.pm.is_none());
    assert_eq!(m.pci_read32(1, 3, 0) & 0xffff, 0xffff, "00:01.3 absent");
}

#[test]
fn reset_requests_and_a_platform_reset_restore_the_bios_copy() {
    let m = machine("");
    m.outb(0xcf9, 0x06);
    assert_eq!(m.requests(), vec![SystemRequest::Reset]);
    // The guest scribbles over its shadowed BIOS; a platform reset copies the image down again.
    use devices::memory::{Bytes, GuestAddress};
    m.platform
        .mem
        .write_slice(&[0u8; 16], GuestAddress(0xffff0))
        .unwrap();
    m.platform.reset();
    let mut vector = [0u8; 16];
    m.platform
        .mem
        .read_slice(&mut vector, GuestAddress(0xffff0))
        .unwrap();
    let image = m.platform.bios.bytes();
    assert_eq!(&vector[..], &image[image.len() - 16..]);
    assert_eq!(vector[0], 0xea, "the reset vector's far jump");
}

#[test]
fn pci_interrupt_links_follow_piix3_routing() {
    let m = machine("");
    assert_eq!(m.pci_read32(1, 0, 0), 0x7000_8086);
    // SeaBIOS routes PIRQA..D to 10, 10, 11, 11.
    for (link, irq) in [(0u8, 10u8), (1, 10), (2, 11), (3, 11)] {
        m.pci_write8(1, 0, 0x60 + link, irq);
    }
    assert_eq!(m.pci_read32(1, 0, 0x60), 0x0b0b_0a0a);
}

/// Reads sector `lba` of the primary master through the ATA PIO protocol, as SeaBIOS does.
fn read_sector(m: &TestMachine, lba: u32) -> Vec<u8> {
    m.outb(0x3f6, 0x02); // nIEN: polled
    m.outb(0x1f6, 0xe0 | ((lba >> 24) as u8 & 0x0f));
    m.outb(0x1f2, 1);
    m.outb(0x1f3, lba as u8);
    m.outb(0x1f4, (lba >> 8) as u8);
    m.outb(0x1f5, (lba >> 16) as u8);
    m.outb(0x1f7, 0x20); // READ SECTORS
    let status = m.inb(0x1f7);
    assert_eq!(
        status & 0x89,
        0x08,
        "DRQ without BSY or ERR, status {status:#x}"
    );
    let mut sector = vec![0u8; 512];
    m.ins(0x1f0, 2, &mut sector);
    sector
}

fn qemu_img(args: &[&str]) {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img (Debian package qemu-utils)");
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn qcow2_disks_read_through_ide_and_raw_prefixes_refuse_qcow2_files() {
    let dir = std::env::temp_dir().join(format!("devmodel-qcow2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("src.img");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[512..1024].fill(0xa5);
    std::fs::write(&raw, &bytes).unwrap();
    let qcow2 = dir.join("disk.qcow2");
    qemu_img(&[
        "convert",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        qcow2.to_str().unwrap(),
    ]);

    let m = machine(&format!("disk = ['tap:qcow2:{},hda,w']", qcow2.display()));
    assert_eq!(read_sector(&m, 1), vec![0xa5; 512]);
    assert_eq!(read_sector(&m, 2), vec![0; 512]);
    drop(m);

    // A qcow2 file named as raw would expose its metadata to the guest and be destroyed by its writes.
    let text = format!(
        "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='t'\nmemory=256\n\
         disk=['file:{},hda,w']\n",
        qcow2.display()
    );
    let err = TestMachine::from_config(&text, &MachineOptions::default())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("disk hda"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reads the fw_cfg file `name` as SeaBIOS does: the directory at selector 0x19 (a big-endian count, then
/// 64-byte entries: size, selector, reserved, name), then the file's own selector.
fn fw_cfg_file(m: &TestMachine, name: &str) -> Option<Vec<u8>> {
    let read = |n: usize| -> Vec<u8> { (0..n).map(|_| m.inb(0x511)).collect() };
    m.outw(0x510, 0x0019);
    let count = u32::from_be_bytes(read(4).try_into().unwrap());
    let mut found = None;
    for _ in 0..count {
        let entry = read(64);
        let size = u32::from_be_bytes(entry[..4].try_into().unwrap()) as usize;
        let select = u16::from_be_bytes(entry[4..6].try_into().unwrap());
        let file = &entry[8..];
        let end = file.iter().position(|&b| b == 0).unwrap_or(file.len());
        if &file[..end] == name.as_bytes() {
            found = Some((select, size));
        }
    }
    let (select, size) = found?;
    m.outw(0x510, select);
    Some(read(size))
}

const TWO_PCI_NICS_AND_AN_ISA_ONE: &str = "vif = [ 'type=ioemu, mac=00:16:3e:00:00:21, model=rtl8139', \
     'type=ioemu, mac=00:16:3e:00:00:22, model=ne2k_pci', 'model=ne2k_isa, mac=00:16:3e:00:00:23' ]";

#[test]
fn network_boot_lists_the_pci_nics_in_vif_order() {
    let m = machine(&format!("boot='nc'\n{TWO_PCI_NICS_AND_AN_ISA_ONE}"));
    let order = String::from_utf8(fw_cfg_file(&m, "bootorder").unwrap()).unwrap();
    // The ISA card has no boot ROM and no PCI path: only the PCI NICs, then the disks (none here).
    assert_eq!(order, "/pci@i0cf8/ethernet@4\n/pci@i0cf8/ethernet@5\n");
    assert_eq!(cmos(&m, 0x3d), 0x24, "network first, then disk");
    let roms: Vec<bool> = m.platform.nics.iter().map(|n| n.boot_rom).collect();
    assert_eq!(roms, [true, true, false]);
    // Without n, the NICs stay out of the boot order.
    let m = machine(&format!("boot='c'\n{TWO_PCI_NICS_AND_AN_ISA_ONE}"));
    let order = String::from_utf8(fw_cfg_file(&m, "bootorder").unwrap_or_default()).unwrap();
    assert!(!order.contains("ethernet"), "{order:?}");
}

#[test]
fn nic_placement_follows_qemu_dm() {
    use devmodel::machine::NicLocation;
    let m = machine(&format!(
        "{TWO_PCI_NICS_AND_AN_ISA_ONE}\nvif += [ 'model=ne2k_isa', 'model=ne2k_isa,iobase=0x280,irq=5' ]"
    ));
    let places: Vec<String> = m
        .platform
        .nics
        .iter()
        .map(|n| match n.location {
            NicLocation::Pci(a) => format!("pci {:02x}", a.device()),
            NicLocation::Isa { base, irq } => format!("isa {base:#x}/{irq}"),
        })
        .collect();
    assert_eq!(
        places,
        [
            "pci 04",
            "pci 05",
            "isa 0x300/9",
            "isa 0x320/10",
            "isa 0x280/5"
        ]
    );
    // Each ISA card answers at its base: its PROM (through a remote read) holds its MAC; here just the
    // reset port, which reads back and leaves ISR.RST set, proves the decode.
    for base in [0x300u16, 0x320, 0x280] {
        let _ = m.inb(base + 0x1f);
        assert_eq!(m.inb(base + 0x07) & 0x80, 0x80, "ISR.RST at {base:#x}");
    }
}

#[test]
fn nic_wiring_mistakes_are_clear_errors() {
    let build = |extra: &str| {
        let text = format!(
            "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='t'\nmemory=64\n\
             nographic=1\nserial='pty'\n{extra}\n"
        );
        TestMachine::from_config(&text, &MachineOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // 0x3e0-0x3ff holds COM1 and COM3.
    let e = build("vif = [ 'model=ne2k_isa,iobase=0x3e0' ]");
    assert!(
        e.contains("0x3e0") && e.contains("choose another iobase="),
        "{e}"
    );
    // Seven ISA cards: the sixth usual pair is the last.
    let e = build(&format!("vif = [ {} ]", ["'model=ne2k_isa'"; 7].join(", ")));
    assert!(e.contains("NIC 6") && e.contains("iobase= and irq="), "{e}");
    // 29 PCI NICs: slots 4 to 31 hold 28.
    let e = build(&format!("vif = [ {} ]", ["''"; 29].join(", ")));
    assert!(
        e.contains("NIC 28") && e.contains("no PCI slot left"),
        "{e}"
    );
}

#[test]
fn models_this_build_lacks_are_left_out_not_fatal() {
    let m = machine("vif = [ 'model=e1000', 'model=rtl8139' ]");
    assert_eq!(m.platform.nics.len(), 1);
    assert_eq!(m.nets.len(), 1);
    assert_eq!(
        m.platform.nics[0].location,
        devmodel::machine::NicLocation::Pci(devices::pci::PciAddress::new(0, 4, 0).unwrap())
    );
}
