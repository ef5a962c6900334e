#!/usr/bin/env python3
"""NIC throughput of the device model: frames/s, MB/s and CPU time per frame for each NIC model.

Builds `devices/examples/nic_throughput` in release mode, runs it and prints its results as the Markdown
table of BENCHMARKS.md ("NIC throughput"). The example drives the RTL8139 (as 8139too), the PCI NE2000 (as
ne2k-pci) and the ISA NE2000 (as ne.c) through their registers on the no-vCPU PCI test bed, transmit and
receive, 64- and 1514-byte frames, first with a back-end that only counts frames (the device model alone),
then through the real tap back-end in a private network namespace with a packet socket as the peer
(needs root, /dev/net/tun and `ip`; --no-tap skips those cases). See the example's documentation for
exactly what each figure includes. This is a benchmark, not a test: nothing fails when a number moves.

Usage: bench/nic_throughput.py [--runs N] [--frames N] [--tap-frames N] [--no-tap] [--only TEXT]
"""
import argparse
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = ["cargo", "build", "--release", "-p", "devices", "--features", "test-util", "--example", "nic_throughput"]
BINARY = os.path.join(ROOT, "target", "release", "examples", "nic_throughput")
TARGET_FPS = 1_000_000  # issue 6: harness RTL8139 receive, 64-byte frames


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per case; the best is reported")
    ap.add_argument("--frames", type=int, default=1_000_000, help="frames per harness run")
    ap.add_argument("--tap-frames", type=int, default=100_000, help="frames per tap run")
    ap.add_argument("--no-tap", action="store_true", help="skip the tap cases")
    ap.add_argument("--only", help="run only the cases whose name contains this text")
    args = ap.parse_args()

    subprocess.run(BUILD, cwd=ROOT, check=True)
    argv = [BINARY, "--runs", str(args.runs), "--frames", str(args.frames), "--tap-frames", str(args.tap_frames)]
    if args.no_tap:
        argv.append("--no-tap")
    if args.only:
        argv += ["--only", args.only]
    # Progress goes to stderr (shown as it comes); results come as RESULT lines on stdout.
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] != "RESULT" or len(parts) != 12:
            continue
        model, path, direction, length, frames, burst, runs, fps, mbps, cpu_ns, peer_ns = parts[1:]
        rows.append({
            "model": model, "path": path, "dir": direction, "len": int(length), "frames": int(frames),
            "burst": int(burst), "runs": int(runs), "fps": float(fps), "mbps": float(mbps),
            "cpu_ns": float(cpu_ns), "peer_ns": float(peer_ns),
        })
    if proc.returncode != 0:
        sys.exit(f"nic_throughput failed ({proc.returncode})")

    print()
    print(f"Command: `python3 bench/nic_throughput.py --runs {args.runs} --frames {args.frames} "
          f"--tap-frames {args.tap_frames}{' --no-tap' if args.no_tap else ''}`")
    print(f"Machine: {os.cpu_count()} CPUs, {cpu_model()}, Linux {platform.release()}")
    print()
    print("| NIC (driver) | path | direction | frame | frames/s | MB/s | device CPU per frame | peer CPU per frame |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        burst = f", {r['burst']} per interrupt" if r["dir"] == "rx" else ""
        peer = f"{r['peer_ns'] / 1000:.2f} µs" if r["path"] == "tap" else ""
        print(f"| {r['model']} | {r['path']} | {r['dir']}{burst} | {r['len']} B | {r['fps']:,.0f} | "
              f"{r['mbps']:,.1f} | {r['cpu_ns'] / 1000:.2f} µs | {peer} |")
    target = [r for r in rows if r["model"].startswith("RTL8139") and r["path"] == "harness"
              and r["dir"] == "rx" and r["len"] == 64]
    if target:
        fps = target[0]["fps"]
        verdict = "met" if fps >= TARGET_FPS else "NOT met"
        print()
        print(f"Target (harness RTL8139 receive, 64-byte frames, >= 1 Mframes/s): {fps / 1e6:.2f} Mframes/s, {verdict}.")


if __name__ == "__main__":
    main()
