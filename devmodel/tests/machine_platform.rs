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
