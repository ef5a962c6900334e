//! Direct kernel boot through the production wiring, without vCPUs: a small PVH kernel built here is loaded by
//! `Platform::build`, the PCI links are routed as the MP table says, and a platform reset loads everything
//! again (where a firmware boot would copy the BIOS down).

#![allow(clippy::unwrap_used)]

use devices::memory::{Bytes, GuestAddress};
use devmodel::harness::TestMachine;
use devmodel::machine::MachineOptions;
use firmware::direct::EntryMode;

const ENTRY: u32 = 0x100_0010;

/// A 64-bit ELF: 64 bytes of code at 16 MiB (4 KiB in memory) and a PT_NOTE with the PVH entry.
fn pvh_kernel() -> Vec<u8> {
    let code: Vec<u8> = (0..64u8).collect();
    let mut note = Vec::new();
    for v in [4u32, 4, 18] {
        note.extend_from_slice(&v.to_le_bytes());
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&ENTRY.to_le_bytes());
    let data_off = 64 + 2 * 56;
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    e.resize(16, 0);
    e.extend_from_slice(&2u16.to_le_bytes());
    e.extend_from_slice(&62u16.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&0x100_0000u64.to_le_bytes());
    e.extend_from_slice(&64u64.to_le_bytes());
    e.extend_from_slice(&[0; 12]);
    e.extend_from_slice(&[64, 0, 56, 0, 2, 0, 64, 0, 0, 0, 0, 0]);
    let ph = |kind: u32, off: usize, paddr: u64, filesz: usize, memsz: usize| {
        let mut p = Vec::new();
        p.extend_from_slice(&kind.to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        for v in [off as u64, paddr, paddr, filesz as u64, memsz as u64, 16] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p
    };
    e.extend(ph(1, data_off, 0x100_0000, code.len(), 4096));
    e.extend(ph(4, data_off + code.len(), 0, note.len(), note.len()));
    e.extend_from_slice(&code);
    e.extend_from_slice(&note);
    e
}

fn read(m: &TestMachine, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    m.platform
        .mem
        .read_slice(&mut v, GuestAddress(addr))
        .unwrap();
    v
}

#[test]
fn the_kernel_is_loaded_with_pci_links_routed_and_reloaded_at_reset() {
    let dir = std::env::temp_dir().join(format!("machine-direct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("vmlinux");
    std::fs::write(&kernel, pvh_kernel()).unwrap();
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, [0x42u8; 3000]).unwrap();
    let text = format!(
        "builder='hvm'\nname='t'\nmemory=64\nvcpus=2\nkernel='{}'\nramdisk='{}'\nroot='/dev/hda1 ro'\n\
         extra='console=ttyS0'\nserial='pty'\ndisk=[]\n",
        kernel.display(),
        initrd.display()
    );
    let m = TestMachine::from_config(&text, &MachineOptions::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let entry = m
        .platform
        .boot_entry
        .expect("a direct boot has an entry state");
    assert_eq!(entry.mode, EntryMode::Protected32);
    assert_eq!(entry.rip, u64::from(ENTRY));
    assert_eq!(read(&m, 0x100_0000, 64), (0..64u8).collect::<Vec<_>>());
    let initrd_at = (64u64 << 20) - 4096;
    assert_eq!(read(&m, initrd_at, 3000), vec![0x42; 3000]);
    assert_eq!(read(&m, 0x2_0000, 32), b"root=/dev/hda1 ro console=ttyS0\0");
    assert_eq!(&read(&m, 0xF_0000, 4)[..], b"_MP_");
    // PIRQA..D routed to 10, 10, 11, 11 through the PIIX3, as the MP table's PCI entries say.
    assert_eq!(m.pci_read32(1, 0, 0x60), 0x0b0b_0a0a);
    // No BIOS copy below 1 MiB: the reset vector area holds no far jump.
    assert_ne!(read(&m, 0xF_FFF0, 1)[0], 0xea);

    // The guest scribbles over its kernel, command line and MP table and unroutes a link; a platform reset
    // puts everything back.
    for addr in [0x100_0000u64, 0x2_0000, 0xF_0000, initrd_at] {
        m.platform
            .mem
            .write_slice(&[0xee; 64], GuestAddress(addr))
            .unwrap();
    }
    m.pci_write8(1, 0, 0x60, 0x80);
    m.platform.reset();
    assert_eq!(read(&m, 0x100_0000, 64), (0..64u8).collect::<Vec<_>>());
    assert_eq!(read(&m, initrd_at, 64), vec![0x42; 64]);
    assert_eq!(read(&m, 0x2_0000, 32), b"root=/dev/hda1 ro console=ttyS0\0");
    assert_eq!(&read(&m, 0xF_0000, 4)[..], b"_MP_");
    assert_eq!(m.pci_read32(1, 0, 0x60), 0x0b0b_0a0a);
}

#[test]
fn a_firmware_boot_has_no_entry_state() {
    let m = TestMachine::from_config(
        "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='t'\nserial='pty'\n",
        &MachineOptions::default(),
    )
    .unwrap();
    assert!(m.platform.boot_entry.is_none());
    assert_eq!(read(&m, 0xF_FFF0, 1)[0], 0xea, "the BIOS's reset vector");
}
