#!/usr/bin/env python3
"""VNC server cost, devmodel against Debian's QEMU, on the same guest screens.

Both device models boot the same GRUB ISOs (built here with grub-mkrescue) with the standard VGA, one after the
other. A small RFB 3.8 client written here (security None, 32-bpp true colour) measures, per encoding
(Raw, Hextile, ZRLE, Tight):
  * full update: GRUB in a 1024x768x32 VBE mode (gfxterm) full of text; on a new connection, wall time from
    the first non-incremental FramebufferUpdateRequest for the whole screen to the end of the update, and its
    bytes;
  * one-line change: GRUB in VGA text mode waiting in `read`; with an incremental request outstanding, the client
    types one character; wall time from the key event to the first update, and the bytes of that update. The
    time includes the guest's own work to echo the character.
Before measuring, the script checks that both servers show the same pixels (Raw) and prints the share of
identical pixels. It prints medians and ratios (devmodel / QEMU) as Markdown, ready for BENCHMARKS.md. A
benchmark, not a test.

Usage: bench/vnc_vs_qemu.py [--runs N] [--devmodel PATH]
"""
import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib  # noqa: F401  (ZRLE/Tight payloads are only measured, not inflated)

GRUB_CFG = """serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
insmod at_keyboard
insmod vbe
insmod gfxterm
set gfxmode=1024x768x32
terminal_output gfxterm
terminal_input at_keyboard
set color_normal=light-gray/black
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45; do
  echo "line $i: the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ"
done
terminal_output --append serial
echo BENCH-READY
while true; do read x; echo "typed: $x"; done
"""
# The one-line change is measured in VGA text mode (80x25, 720x400 on the wire): there, echoing a typed character
# changes one character cell at once, whereas gfxterm repaints at the guest's (here emulated) speed over seconds.
TEXT_CFG = """serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
insmod at_keyboard
terminal_output console
terminal_input at_keyboard
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  echo "line $i: the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJKLMNOP"
done
terminal_output --append serial
echo BENCH-READY
while true; do read x; echo "typed: $x"; done
"""
MODULES = "normal serial terminal echo sleep test at_keyboard vbe gfxterm read"
ENCODINGS = {"Raw": 0, "Hextile": 5, "ZRLE": 16, "Tight": 7}
PSEUDO_DESKTOP_SIZE = -223
W, H = 1024, 768


def build_iso(workdir, name, cfg):
    root = os.path.join(workdir, name)
    os.makedirs(os.path.join(root, "boot", "grub"))
    with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as f:
        f.write(cfg)
    iso = os.path.join(workdir, f"{name}.iso")
    subprocess.run(["grub-mkrescue", "-d", "/usr/lib/grub/i386-pc", "--locales=", "--fonts=", "--themes=",
                    f"--install-modules={MODULES}", "-o", iso, root],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return iso


class Rfb:
    """A minimal RFB 3.8 client that counts bytes and parses update lengths without decoding pixels."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.count = 0
        self.keep_raw = False
        self.raw = None
        self.area = 0  # pixels covered by the rectangles received so far
        ver = self.read(12)
        assert ver.startswith(b"RFB "), ver
        self.s.sendall(b"RFB 003.008\n")
        n = self.read(1)[0]
        types = self.read(n)
        assert 1 in types, f"security None not offered: {list(types)}"
        self.s.sendall(b"\x01")
        assert self.read(4) == b"\0\0\0\0"
        self.s.sendall(b"\x01")  # shared
        init = self.read(24)
        self.width, self.height = struct.unpack(">HH", init[:4])
        self.read(struct.unpack(">I", init[20:24])[0])
        # 32 bpp, depth 24, little-endian, true colour, RGB at 16/8/0.
        self.s.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))

    def read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        self.count += n
        return bytes(buf)

    def set_encodings(self, encs):
        self.s.sendall(struct.pack(">BxH", 2, len(encs)) + b"".join(struct.pack(">i", e) for e in encs))

    def request(self, incremental):
        self.s.sendall(struct.pack(">BBHHHH", 3, 1 if incremental else 0, 0, 0, self.width, self.height))

    def key(self, keysym, down):
        self.s.sendall(struct.pack(">BBxxI", 4, 1 if down else 0, keysym))

    def compact_len(self):
        n, shift = 0, 0
        for _ in range(3):
            b = self.read(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return n

    def rect(self, x, y, w, h, enc):
        if enc == 0:
            data = self.read(w * h * 4)
            if self.keep_raw:
                if self.raw is None:
                    self.raw = bytearray(self.width * self.height * 4)
                for row in range(h):
                    at = ((y + row) * self.width + x) * 4
                    self.raw[at:at + w * 4] = data[row * w * 4:(row + 1) * w * 4]
        elif enc == 5:
            for ty in range(y, y + h, 16):
                for tx in range(x, x + w, 16):
                    tw, th = min(16, x + w - tx), min(16, y + h - ty)
                    sub = self.read(1)[0]
                    if sub & 1:
                        self.read(tw * th * 4)
                        continue
                    if sub & 2:
                        self.read(4)
                    if sub & 4:
                        self.read(4)
                    if sub & 8:
                        count = self.read(1)[0]
                        self.read(count * (6 if sub & 16 else 2))
        elif enc == 16:
            self.read(struct.unpack(">I", self.read(4))[0])
        elif enc == 7:
            control = self.read(1)[0]
            kind = control >> 4
            if kind == 8:
                self.read(3)
            elif kind == 9:
                self.read(self.compact_len())
            else:
                filt = self.read(1)[0] if control & 0x40 else 0
                if filt == 1:
                    colours = self.read(1)[0] + 1
                    self.read(colours * 3)
                    size = ((w + 7) // 8) * h if colours == 2 else w * h
                else:
                    size = w * h * 3
                if size < 12:
                    self.read(size)
                else:
                    self.read(self.compact_len())
        elif enc in (PSEUDO_DESKTOP_SIZE,):
            self.width, self.height = w, h
        else:
            raise ValueError(f"unexpected encoding {enc}")

    def update(self):
        """Reads one server message; returns the number of rectangles if it was a FramebufferUpdate."""
        kind = self.read(1)[0]
        if kind == 0:
            self.read(1)
            (n,) = struct.unpack(">H", self.read(2))
            for _ in range(n):
                x, y, w, h, enc = struct.unpack(">HHHHi", self.read(12))
                self.rect(x, y, w, h, enc)
                if enc >= 0:
                    self.area += w * h
            return n
        if kind == 1:  # colour map entries
            self.read(1)
            _, n = struct.unpack(">HH", self.read(4))
            self.read(n * 6)
        elif kind == 2:  # bell
            pass
        elif kind == 3:  # server cut text
            self.read(3)
            self.read(struct.unpack(">I", self.read(4))[0])
        else:
            raise ValueError(f"unexpected server message {kind}")
        return None

    def close(self):
        self.s.close()


def full_update(port, enc):
    """The first full-screen update a client gets after connecting: what a viewer waits for when it opens.
    (A second non-incremental request on the same connection is not measured: QEMU answers it with far fewer
    bytes than the first, so it would compare different work.)"""
    c = Rfb(port)
    c.set_encodings([enc, PSEUDO_DESKTOP_SIZE])
    before = c.count
    start = time.monotonic()
    c.request(False)
    # A server may split a full update over several FramebufferUpdate messages (QEMU does): read until the
    # rectangles cover the whole screen.
    while c.area < c.width * c.height:
        c.update()
    elapsed = time.monotonic() - start
    size = c.count - before
    c.close()
    return elapsed, size


def screen_pixels(port):
    """The whole screen as Raw 32-bpp pixel bytes (for checking both servers show the same picture)."""
    c = Rfb(port)
    c.keep_raw = True
    c.set_encodings([0])
    c.request(False)
    while c.area < c.width * c.height:
        c.update()
    c.close()
    return c.width, c.height, c.raw


def write_ppm(path, width, height, raw):
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (width, height))
        f.write(bytes(b for i in range(0, len(raw), 4) for b in (raw[i + 2], raw[i + 1], raw[i])))


def one_line_change(port, enc, keysym):
    c = Rfb(port)
    c.set_encodings([enc, PSEUDO_DESKTOP_SIZE])
    c.request(False)
    while c.area < c.width * c.height:
        c.update()
    c.request(True)
    before = c.count
    start = time.monotonic()
    c.key(keysym, True)
    c.key(keysym, False)
    while c.update() is None:
        pass
    latency = time.monotonic() - start
    # The bytes of that first update: the echoed character (a blinking cursor would add periodic updates that
    # say nothing about the change).
    size = c.count - before
    c.close()
    return latency, size


def wait_serial(path, marker, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if marker in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{marker!r} not on {path} within {timeout}s")


def start_qemu(iso, port, serial):
    display = port - 5900
    return subprocess.Popen(["qemu-system-x86_64", "-M", "pc", "-enable-kvm", "-m", "128", "-vga", "std",
                             "-cdrom", iso, "-boot", "d", "-display", "none", "-vnc", f"127.0.0.1:{display}",
                             "-serial", f"file:{serial}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_devmodel(binary, iso, port, serial, workdir):
    cfg = os.path.join(workdir, "bench.hvm")
    with open(cfg, "w") as f:
        f.write(f"builder='hvm'\nname='vncbench'\nmemory=128\nvcpus=1\nstdvga=1\n"
                f"disk=['file:{iso},hdc:cdrom,r']\nboot='d'\nserial='file:{serial}'\n"
                f"vnc=1\nvnclisten='127.0.0.1'\nvncdisplay={port - 5900}\nvncunused=0\n")
    env = dict(os.environ, DEVMODEL_RUN_DIR=os.path.join(workdir, "run"),
               DEVMODEL_LOG_DIR=os.path.join(workdir, "log"))
    return subprocess.Popen([binary, "run", cfg], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_full(name, proc, port, serial, runs):
    """Full updates of the 1024x768 gfxterm screen, per encoding."""
    try:
        wait_serial(serial, b"BENCH-READY", 600)
        time.sleep(2)
        results = {"screen": screen_pixels(port)}
        for enc_name, enc in ENCODINGS.items():
            full = [full_update(port, enc) for _ in range(runs)]
            results[enc_name] = {
                "full_ms": statistics.median(t for t, _ in full) * 1000,
                "full_bytes": statistics.median(b for _, b in full),
            }
            print(f"{name} {enc_name}: {results[enc_name]}", file=sys.stderr)
        return results
    finally:
        proc.kill()
        proc.wait()


def measure_line(name, proc, port, serial, runs):
    """One typed character echoed on the 80x25 text screen, per encoding."""
    try:
        wait_serial(serial, b"BENCH-READY", 600)
        time.sleep(2)
        results = {"text_screen": screen_pixels(port)}
        for enc_name, enc in ENCODINGS.items():
            line = [one_line_change(port, enc, ord("a")) for _ in range(runs)]
            results[enc_name] = {
                "line_ms": statistics.median(t for t, _ in line) * 1000,
                "line_bytes": statistics.median(b for _, b in line),
            }
            print(f"{name} {enc_name}: {results[enc_name]}", file=sys.stderr)
        results["text_screen_after_typing"] = screen_pixels(port)
        return results
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dump", help="write both screens as PPM files into this directory")
    ap.add_argument("--devmodel", default=os.path.join(os.path.dirname(__file__), "..", "target", "release",
                                                       "devmodel"))
    args = ap.parse_args()
    if not shutil.which("qemu-system-x86_64"):
        sys.exit("qemu-system-x86_64 missing: apt-get install qemu-system-x86")
    with tempfile.TemporaryDirectory(prefix="vncbench-") as workdir:
        gfx, text = build_iso(workdir, "gfx", GRUB_CFG), build_iso(workdir, "text", TEXT_CFG)
        qs, ds = os.path.join(workdir, "qemu-com1"), os.path.join(workdir, "devmodel-com1")
        qemu = measure_full("qemu", start_qemu(gfx, 5977, qs), 5977, qs, args.runs)
        ours = measure_full("devmodel", start_devmodel(args.devmodel, gfx, 5978, ds, workdir), 5978, ds,
                            args.runs)
        for path in (qs, ds):
            os.unlink(path)
        for side, proc, port, serial in (("qemu", start_qemu(text, 5977, qs), 5977, qs),
                                         ("devmodel", start_devmodel(args.devmodel, text, 5978, ds, workdir),
                                          5978, ds)):
            lines = measure_line(side, proc, port, serial, args.runs)
            target = qemu if side == "qemu" else ours
            for key, value in lines.items():
                if key in ENCODINGS:
                    target[key].update(value)
                else:
                    target[key] = value
    for key in ("screen", "text_screen", "text_screen_after_typing"):
        (qw, qh, qraw), (ow, oh, oraw) = qemu.pop(key), ours.pop(key)
        if args.dump:
            write_ppm(os.path.join(args.dump, f"qemu-{key}.ppm"), qw, qh, qraw)
            write_ppm(os.path.join(args.dump, f"devmodel-{key}.ppm"), ow, oh, oraw)
        same = sum(1 for i in range(0, min(len(qraw), len(oraw)), 4) if qraw[i:i + 3] == oraw[i:i + 3])
        print(f"{key}: QEMU {qw}x{qh}, devmodel {ow}x{oh}; {100.0 * same / (qw * qh):.1f}% of pixels identical")
    print()
    print(f"| encoding | full update bytes devmodel / QEMU | full update ms devmodel / QEMU | "
          f"one-line change bytes devmodel / QEMU | one-line change ms devmodel / QEMU |")
    print("|---|---|---|---|---|")
    for enc in ENCODINGS:
        o, q = ours[enc], qemu[enc]
        print(f"| {enc} | {o['full_bytes']:.0f} / {q['full_bytes']:.0f} = {o['full_bytes'] / q['full_bytes']:.2f} | "
              f"{o['full_ms']:.1f} / {q['full_ms']:.1f} = {o['full_ms'] / q['full_ms']:.2f} | "
              f"{o['line_bytes']:.0f} / {q['line_bytes']:.0f} = {o['line_bytes'] / max(q['line_bytes'], 1):.2f} | "
              f"{o['line_ms']:.1f} / {q['line_ms']:.1f} = {o['line_ms'] / q['line_ms']:.2f} |")


if __name__ == "__main__":
    main()
