//! The KVM layer on its own: a tiny real-mode program in a read-only ROM at the reset vector does port I/O,
//! including `rep outsb`/`rep insb` (string I/O with count > 1, handled in one exit), and tells the test it is done.
//!
//! Needs `/dev/kvm`; fails loudly without it unless `DEVMODEL_SKIP_KVM=1` is set.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devices::bus::{Bus, BusDevice};
use devices::memory::{test_memory, Bytes, GuestAddress};
use devices::system::RecordingSystem;
use devmodel::kvm::{install_kick_handler, KvmVm, VcpuControl};

fn kvm_available() -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var("DEVMODEL_SKIP_KVM").as_deref() == Ok("1") {
        eprintln!("/dev/kvm missing; skipped because DEVMODEL_SKIP_KVM=1");
        return false;
    }
    panic!(
        "/dev/kvm is missing: KVM tests need it (set DEVMODEL_SKIP_KVM=1 to skip them explicitly)"
    );
}

#[derive(Default)]
struct Recorder {
    written: Mutex<Vec<u8>>,
    next_in: Mutex<u8>,
}

impl BusDevice for Recorder {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        let mut n = self.next_in.lock().unwrap();
        for b in data.iter_mut() {
            *b = 0xa0 + *n;
            *n += 1;
        }
    }
    fn write(&self, _offset: u64, data: &[u8]) {
        self.written.lock().unwrap().extend_from_slice(data);
    }
}

struct Done(Arc<VcpuControl>, Arc<Mutex<bool>>);
impl BusDevice for Done {
    fn read(&self, _: u64, _: &mut [u8]) {}
    fn write(&self, _: u64, _: &[u8]) {
        *self.1.lock().unwrap() = true;
        self.0.exit();
    }
}

#[test]
fn real_mode_rom_runs_port_io_and_string_io() {
    if !kvm_available() {
        return;
    }
    install_kick_handler().unwrap();
    let vm = KvmVm::new().unwrap();
    let mem = test_memory(1 << 20);
    mem.write_slice(b"HELLO", GuestAddress(0x500)).unwrap();
    vm.map_ram(&mem).unwrap();

    // 64 KiB ROM at 0xFFFF0000: code at offset 0, a near jump to it at the reset vector (offset 0xFFF0).
    let mut rom = vec![0xf4u8; 0x10000];
    let code: &[u8] = &[
        0xba, 0x02, 0x04, // mov dx, 0x402
        0xb0, b'K', //       mov al, 'K'
        0xee, //             out dx, al
        0xbe, 0x00, 0x05, // mov si, 0x500
        0xb9, 0x05, 0x00, // mov cx, 5
        0xf3, 0x6e, //       rep outsb
        0xbf, 0x00, 0x06, // mov di, 0x600
        0xb9, 0x04, 0x00, // mov cx, 4
        0xf3, 0x6c, //       rep insb
        0xba, 0x03, 0x04, // mov dx, 0x403
        0xee, //             out dx, al
        0xeb, 0xfe, //       jmp $
    ];
    rom[..code.len()].copy_from_slice(code);
    rom[0xfff0..0xfff3].copy_from_slice(&[0xe9, 0x0d, 0x00]); // jmp 0x0000
    vm.map_rom(0xffff_0000, &rom).unwrap();

    let pio = Arc::new(Bus::new("pio"));
    let mmio = Arc::new(Bus::new("mmio"));
    let recorder = Arc::new(Recorder::default());
    pio.insert(0x402, 1, 1, recorder.clone()).unwrap();
    let control = Arc::new(VcpuControl::new(1));
    let done = Arc::new(Mutex::new(false));
    pio.insert(0x403, 1, 1, Arc::new(Done(control.clone(), done.clone())))
        .unwrap();

    let vcpu = vm
        .create_vcpus(1, &Default::default())
        .unwrap()
        .pop()
        .unwrap();
    let system = Arc::new(RecordingSystem::new());
    let (p, m, c, s) = (pio.clone(), mmio.clone(), control.clone(), system.clone());
    let thread = std::thread::spawn(move || vcpu.run(p, m, c, s));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !*done.lock().unwrap() {
        assert!(Instant::now() < deadline, "guest never reached port 0x403");
        std::thread::sleep(Duration::from_millis(5));
    }
    thread.join().unwrap();
    assert_eq!(recorder.written.lock().unwrap().as_slice(), b"KHELLO");
    let mut buf = [0u8; 4];
    mem.read_slice(&mut buf, GuestAddress(0x600)).unwrap();
    assert_eq!(buf, [0xa0, 0xa1, 0xa2, 0xa3]);
    assert!(system.take().is_empty(), "no crash or reset expected");
}

/// Runs `code` (real mode, from the reset vector's near jump) on one vCPU of `vm` until it writes port
/// 0x403; `rom` is 64 KiB at 0xFFFF0000.
fn run_until_done(vm: &KvmVm, code: &[u8]) {
    let mut rom = vec![0xf4u8; 0x10000];
    rom[..code.len()].copy_from_slice(code);
    rom[0xfff0..0xfff3].copy_from_slice(&[0xe9, 0x0d, 0x00]); // jmp 0x0000
    vm.map_rom(0xffff_0000, &rom).unwrap();
    let pio = Arc::new(Bus::new("pio"));
    let mmio = Arc::new(Bus::new("mmio"));
    let control = Arc::new(VcpuControl::new(1));
    let done = Arc::new(Mutex::new(false));
    pio.insert(0x403, 1, 1, Arc::new(Done(control.clone(), done.clone())))
        .unwrap();
    let vcpu = vm
        .create_vcpus(1, &Default::default())
        .unwrap()
        .pop()
        .unwrap();
    let system = Arc::new(RecordingSystem::new());
    let (p, m, c, s) = (pio, mmio, control, system.clone());
    let thread = std::thread::spawn(move || vcpu.run(p, m, c, s));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !*done.lock().unwrap() {
        assert!(Instant::now() < deadline, "guest never reached port 0x403");
        std::thread::sleep(Duration::from_millis(5));
    }
    thread.join().unwrap();
    assert!(system.take().is_empty(), "no crash or reset expected");
}

/// A RAM-backed BAR as the VGA's framebuffer becomes on KVM: a dirty-logged memory slot at 0x80000 (just
/// above 512 KiB of RAM, so that real-mode code reaches it), which a guest program writes in two pages.
#[test]
fn a_dirty_logged_bar_slot_reports_exactly_the_pages_the_guest_wrote() {
    use devices::pci::{BarMemory, DirtySource, GuestMemoryMapper, HostMemory};
    use devmodel::kvm::KvmBarMapper;
    use vm_memory::VolatileMemory;

    if !kvm_available() {
        return;
    }
    install_kick_handler().unwrap();
    let vm = Arc::new(KvmVm::new().unwrap());
    vm.map_ram(&test_memory(0x8_0000)).unwrap();
    let mapper = KvmBarMapper::new(vm.clone());
    let vram = Arc::new(HostMemory::new(0x1_0000).unwrap());
    let bar = BarMemory::new(vram.clone(), true);
    // Over guest RAM KVM refuses the slot (the PCI root then keeps the BAR trapped).
    assert!(mapper.map(0, &bar).is_err());
    mapper.map(0x8_0000, &bar).unwrap();
    assert_eq!(mapper.mappings().len(), 1);
    assert!(
        mapper.take_dirty_pages(&vram).is_empty(),
        "nothing written yet"
    );

    let code: &[u8] = &[
        0xb8, 0x00, 0x80, //             mov ax, 0x8000
        0x8e, 0xd8, //                   mov ds, ax
        0xc6, 0x06, 0x00, 0x10, 0x11, // mov byte [0x1000], 0x11   (page 1)
        0xc7, 0x06, 0xfe, 0x3f, 0x22, 0x33, // mov word [0x3ffe], 0x3322 (page 3)
        0xc6, 0x06, 0x01, 0x10, 0x44, // mov byte [0x1001], 0x44   (page 1 again)
        0xba, 0x03, 0x04, //             mov dx, 0x403
        0xee, //                         out dx, al
        0xeb, 0xfe, //                   jmp $
    ];
    run_until_done(&vm, code);

    // The guest's stores landed in the host memory itself, without exits.
    let mut b = [0u8; 2];
    vram.get_slice(0x1000, 2).unwrap().copy_to(&mut b[..]);
    assert_eq!(b, [0x11, 0x44]);
    vram.get_slice(0x3ffe, 2).unwrap().copy_to(&mut b[..]);
    assert_eq!(b, [0x22, 0x33]);
    // Exactly pages 1 and 3, as (offset, length) runs; then nothing: fetching cleared the log.
    let mut runs = Vec::new();
    mapper.take_dirty(&vram, &mut |o, l| runs.push((o, l)));
    assert_eq!(runs, vec![(0x1000, 0x1000), (0x3000, 0x1000)]);
    assert!(mapper.take_dirty_pages(&vram).is_empty());
    // Host-side stores (the device's own) are not in KVM's log: the device tracks those itself.
    vram.get_slice(0x5000, 1).unwrap().copy_from(&[1u8][..]);
    assert!(mapper.take_dirty_pages(&vram).is_empty());

    // Unmapping loses KVM's log, so the whole memory is reported once; the slot number is reused.
    let slot = mapper.mappings()[0].2;
    mapper.unmap(0x8_0000, &bar);
    assert!(mapper.mappings().is_empty());
    let mut runs = Vec::new();
    mapper.take_dirty(&vram, &mut |o, l| runs.push((o, l)));
    assert_eq!(runs, vec![(0, 0x1_0000)]);
    assert!(mapper.take_dirty_pages(&vram).is_empty());
    mapper.map(0x9_0000, &bar).unwrap();
    assert_eq!(mapper.mappings(), vec![(0x9_0000, 0x1_0000, slot)]);
}
