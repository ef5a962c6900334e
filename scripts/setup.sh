#!/usr/bin/env bash
# Installs what the device model and its tests need on Debian 12, then builds everything.
# Usage: scripts/setup.sh        (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  seabios            # the BIOS (bios-256k.bin) and VGA BIOS images the built-in hvmloader loads
  ipxe-qemu          # the NICs' network boot ROMs (pxe-rtl8139.rom, pxe-ne2k_pci.rom)
  qemu-system-x86    # the reference device model for the benchmarks
  grub-pc-bin grub-common xorriso mtools   # test guests: GRUB ISOs made with grub-mkrescue
  e2fsprogs fdisk    # test disk images with known content
  qemu-utils         # qemu-img/qemu-io: qcow2 test images
  iproute2 dnsmasq-base   # network tests: bridges in private namespaces, a real DHCP server (run only there)
  iputils-ping util-linux # ...the namespace's kernel pinging a NIC model; unshare/nsenter for the KVM network tests
  python3 python3-pip hyperfine
  gvncviewer         # gvnccapture: a real VNC client takes the display tests' screenshots
  xz-utils zstd gzip dpkg tar  # direct-boot test: Debian's kernel .deb unpacked and its bzImage payload decompressed
  libsdl2-dev pkg-config   # the SDL window (cargo feature `sdl`) links the system libSDL2 found by pkg-config
  xvfb xdotool imagemagick # its tests: a private X server, a window finder and typist, screenshots (`import`),
  openbox x11-utils        # a window manager for full screen, xprop
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
# The direct-boot test downloads Debian's kernel package (apt-get download linux-image-<version>-amd64, which
# linux-image-amd64 names) into target/test-images itself; that needs the package lists.
if ((${#missing[@]})) || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
  $sudo_cmd apt-get update -qq
fi
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# vncdotool (PyPI): a real VNC client that types into the display tests' guests.
if ! command -v vncdotool >/dev/null 2>&1; then
  python3 -m pip install --quiet vncdotool || python3 -m pip install --quiet --break-system-packages vncdotool
fi

cargo build --workspace --all-targets
cargo build --release -p devmodel
echo "setup done: target/release/devmodel"
