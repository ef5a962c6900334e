//! Benchmark (not a test): the GRUB storage probe side by side on devmodel and Debian's QEMU.
//!
//! Both boot the same GRUB ISO from an IDE CD with boot='dc' and the same raw disk: GRUB reads and CRC-32s a
//! 1 MiB payload through the BIOS, switches to its native ATA/ATAPI driver, reads it again, writes the disk both
//! ways and powers off. Wall time from process start to exit, median of N runs, interleaved:
//!
//! `cargo run --release -p integration-tests --example grub_probe -- [RUNS]`
//! (set `DEVMODEL_BIN` to the devmodel binary to measure; default `target/release/devmodel`).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::images::{self, GrubHash};
use common::TempDir;

fn time_run(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{cmd:?} failed: {status}");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let bin = std::env::var("DEVMODEL_BIN").unwrap_or_else(|_| {
        common::workspace()
            .join("target/release/devmodel")
            .display()
            .to_string()
    });
    let scenario = images::cd_and_disk(GrubHash::Crc32, 1 << 20);
    let (mut ours, mut qemu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let dir = TempDir::new("probe");
        let disk = images::writable_copy(&scenario.disk, dir.path());
        let cfg = dir.path().join("probe.hvm");
        std::fs::write(
            &cfg,
            format!(
                "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='probe'\nmemory=128\n\
                 serial='file:{}'\nacpi=1\nboot='dc'\n\
                 disk=['file:{},hda,w','file:{},hdc:cdrom,r']\n",
                dir.path().join("com1").display(),
                disk.display(),
                scenario.iso.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(&bin);
        cmd.arg("run")
            .arg(&cfg)
            .arg("--debugcon")
            .arg(dir.path().join("fw.log"))
            .env("DEVMODEL_RUN_DIR", dir.path().join("run"));
        ours.push(time_run(cmd));
        scenario
            .check(&std::fs::read(dir.path().join("com1")).unwrap(), &disk)
            .unwrap();

        let disk = images::writable_copy(&scenario.disk, dir.path());
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-M",
            "pc",
            "-enable-kvm",
            "-m",
            "128",
            "-nodefaults",
            "-display",
            "none",
        ])
        // COM1 to a file on both sides: GRUB's output is part of the probe.
        .arg("-serial")
        .arg(format!("file:{}", dir.path().join("qemu-com1").display()))
        .args(["-boot", "dc", "-no-reboot"])
        .arg("-drive")
        .arg(format!("file={},if=ide,index=0,format=raw", disk.display()))
        .arg("-drive")
        .arg(format!(
            "file={},if=ide,index=2,media=cdrom,format=raw",
            scenario.iso.display()
        ));
        qemu.push(time_run(cmd));
    }
    let (o, q) = (median(ours), median(qemu));
    println!("| GRUB storage probe (median of {runs}) | devmodel | QEMU | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| start to power-off | {:.1} s | {:.1} s | {:.2} | <= 1.0 |",
        o.as_secs_f64(),
        q.as_secs_f64(),
        o.as_secs_f64() / q.as_secs_f64()
    );
}
