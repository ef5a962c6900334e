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
