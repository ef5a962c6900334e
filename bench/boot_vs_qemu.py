#!/usr/bin/env python3
"""Start-to-first-boot-attempt time and device-model memory, devmodel against Debian's QEMU.

Both run the same SeaBIOS image (/usr/share/seabios/bios-256k.bin) on the same empty machine: i440FX/PIIX3,
128 MiB, one vCPU, no disks, no NIC, the standard VGA (16 MiB, SeaVGABIOS runs) with no display client, SeaBIOS debug output on port 0x402 written to a file.
For each run the script measures, from process start:
  * the wall time until SeaBIOS's debug output shows its first boot attempt ("Booting from" or
    "No bootable device"),
  * the process's peak RSS (VmHWM) at that moment, and the RSS of the guest-RAM mapping, so that the
    device model's own memory is peak RSS less the guest memory the guest touched.
It prints medians and ratios as Markdown, ready for BENCHMARKS.md. This is a benchmark, not a test.

Usage: bench/boot_vs_qemu.py [--runs N] [--devmodel PATH]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

MARKERS = (b"Booting from", b"No bootable device")
FIRST_OUTPUT = b"SeaBIOS (version"
MEM_MIB = 128


def guest_ram_rss_kib(pid, size_kib):
    """RSS of the mapping(s) exactly the size of guest RAM (the guest memory the guest touched)."""
    total, current_size = 0, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "Size:":
                current_size = int(parts[1])
            elif len(parts) >= 2 and parts[0] == "Rss:" and current_size == size_kib:
                total += int(parts[1])
    return total


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_once(argv, log_path, timeout=60.0):
    if os.path.exists(log_path):
        os.unlink(log_path)
    start = time.monotonic()
    first = None
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                raise RuntimeError(f"no boot attempt within {timeout}s: {' '.join(argv)}")
            try:
                with open(log_path, "rb") as f:
                    data = f.read()
                if first is None and FIRST_OUTPUT in data:
                    first = elapsed
                if any(m in data for m in MARKERS):
                    peak = peak_rss_kib(proc.pid)
                    guest = guest_ram_rss_kib(proc.pid, MEM_MIB * 1024)
                    return elapsed, peak, guest, first if first is not None else elapsed
            except FileNotFoundError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"exited with {proc.returncode}: {' '.join(argv)}")
            time.sleep(0.002)
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--devmodel", default="target/release/devmodel")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="devmodel-bench-")
    cfg = os.path.join(tmp, "bench.hvm")
    with open(cfg, "w") as f:
        f.write(
            "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='bench'\n"
            f"memory={MEM_MIB}\nvcpus=1\nboot='c'\nserial='null'\nvnc=0\nacpi=1\nstdvga=1\nvideoram=16\n"
        )
    ours_log = os.path.join(tmp, "ours.log")
    qemu_log = os.path.join(tmp, "qemu.log")
    ours = [args.devmodel, "run", cfg, "--debugcon", ours_log]
    qemu = [
        "qemu-system-x86_64", "-M", "pc", "-enable-kvm", "-m", str(MEM_MIB), "-smp", "1",
        "-bios", "/usr/share/seabios/bios-256k.bin", "-nodefaults", "-display", "none", "-vga", "std",
        "-boot", "c", "-serial", "null", "-chardev", f"file,id=dbg,path={qemu_log}",
        "-device", "isa-debugcon,iobase=0x402,chardev=dbg",
    ]
    results = {"devmodel": [], "qemu": []}
    for _ in range(args.runs):
        # Interleaved, so that machine-wide drift affects both alike.
        results["devmodel"].append(run_once(ours, ours_log))
        results["qemu"].append(run_once(qemu, qemu_log))

    def med(name, i):
        return statistics.median(r[i] for r in results[name])

    def own(name):
        return statistics.median(r[1] - r[2] for r in results[name])

    t_ours, t_qemu = med("devmodel", 0), med("qemu", 0)
    rss_ours, rss_qemu = med("devmodel", 1), med("qemu", 1)
    own_ours, own_qemu = own("devmodel"), own("qemu")
    print(f"| metric (median of {args.runs}) | devmodel | QEMU | ratio | target |")
    print("|---|---|---|---|---|")
    f_ours, f_qemu = med("devmodel", 3), med("qemu", 3)
    print(f"| start to SeaBIOS's first output (device-model start-up) | {f_ours*1000:.0f} ms | {f_qemu*1000:.0f} ms | {f_ours/f_qemu:.2f} | |")
    print(f"| start to first boot attempt | {t_ours*1000:.0f} ms | {t_qemu*1000:.0f} ms | {t_ours/t_qemu:.2f} | <= 0.5 |")
    print(f"| peak RSS | {rss_ours/1024:.1f} MiB | {rss_qemu/1024:.1f} MiB | {rss_ours/rss_qemu:.2f} | |")
    print(f"| peak RSS less touched guest RAM | {own_ours/1024:.1f} MiB | {own_qemu/1024:.1f} MiB | {own_ours/own_qemu:.2f} | <= 0.25 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
