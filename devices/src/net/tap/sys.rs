//! The Linux interfaces a tap back-end uses: `/dev/net/tun` with `TUNSETIFF`, and the interface ioctls
//! (`SIOCGIFFLAGS`/`SIOCSIFFLAGS`, `SIOCGIFINDEX`, `SIOCBRADDIF`) on an `AF_INET` datagram socket.
//!
//! # Why not a crate
//!
//! The tap crates on crates.io were weighed and none fits well enough to carry: `tun` (0.8) does layer 2 and
//! has a synchronous API, but is WTFPL-licensed and brings `nix`, `bytes`, `ipnet`, the Windows `wintun`
//! bindings and a `serde_json` build step for what is one `TUNSETIFF` ioctl here; `tun-tap` (0.1.4) is
//! passively maintained, builds a C shim with `cc` and defaults to tokio-core 0.1; `tun-rs` (2.x) is a large
//! cross-platform VPN library (route management, `libloading`, `getifaddrs`, ...). None of them attaches an
//! interface to a bridge, so the `ifreq` code below would be needed anyway. The rust-vmm VMMs (Firecracker,
//! Cloud Hypervisor, crosvm) keep their tap code in-tree for the same reasons. The ioctl calls go through
//! `vmm-sys-util`'s helpers; the request numbers come from `libc` except `SIOCBRADDIF`, which `libc` does not
//! define for Linux.
//!
//! # Namespaces
//!
//! A tap device lives in the network namespace of the thread that opened `/dev/net/tun`, and an `AF_INET`
//! socket acts on the namespace it was created in. [`InterfaceControl`] therefore creates its socket once,
//! beside the tap, so that later calls from any thread (the event loop, a vCPU, a test) reach the same
//! namespace.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use vmm_sys_util::ioctl::{ioctl_with_mut_ref, ioctl_with_ref};

/// `SIOCBRADDIF` from `<linux/sockios.h>`: add the interface whose index is in `ifr_ifindex` to the bridge
/// named in `ifr_name`.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// The longest interface name Linux takes (`IFNAMSIZ` less the terminating NUL).
pub const MAX_IFNAME: usize = libc::IFNAMSIZ - 1;

/// Whether `name` is a name Linux accepts for an interface: 1 to 15 bytes, printable, no '/', ':' or space.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// An `ifreq` naming `name` with every other field zero. The caller has checked the name with
/// [`valid_ifname`]; a longer name is cut so that the terminating NUL always survives.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data (a name array and a union of integers, addresses and a pointer), for
    // which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(MAX_IFNAME)) {
        *dst = src as libc::c_char;
    }
    req
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Opens `/dev/net/tun`, non-blocking and close-on-exec.
pub fn open_tun() -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
}

/// Makes an open `/dev/net/tun` the tap interface `name` (created if absent; an existing persistent tap of
/// that name is attached to). Frames carry no packet-information header (`IFF_NO_PI`) and no virtio-net
/// header.
pub fn make_tap(tun: &File, name: &str) -> io::Result<()> {
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which `req` is; `tun` is an open /dev/net/tun.
    check(unsafe { ioctl_with_mut_ref(tun, libc::TUNSETIFF, &mut req) })
}

/// An `AF_INET` datagram socket for interface ioctls, bound to the network namespace it was created in.
#[derive(Debug)]
pub struct InterfaceControl {
    socket: OwnedFd,
}

impl InterfaceControl {
    /// A control socket in the calling thread's network namespace.
    pub fn new() -> io::Result<InterfaceControl> {
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(InterfaceControl { socket })
    }

    /// The interface's flags (`IFF_UP`, `IFF_RUNNING`, ...).
    pub fn flags(&self, name: &str) -> io::Result<libc::c_int> {
        let mut req = ifreq(name);
        // SAFETY: SIOCGIFFLAGS fills `ifr_flags` of the `ifreq` it is given; `req` is one.
        check(unsafe { ioctl_with_mut_ref(&self.socket, libc::SIOCGIFFLAGS, &mut req) })?;
        // SAFETY: SIOCGIFFLAGS has just written the `ifru_flags` member of the union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        // The kernel's flags are an unsigned short in this field.
        Ok(libc::c_int::from(flags as u16))
    }

    /// Sets or clears `IFF_UP`, leaving the other flags as they are.
    pub fn set_up(&self, name: &str, up: bool) -> io::Result<()> {
        let flags = self.flags(name)?;
        let new = if up {
            flags | libc::IFF_UP
        } else {
            flags & !libc::IFF_UP
        };
        if new == flags {
            return Ok(());
        }
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_flags = new as u16 as libc::c_short;
        // SAFETY: SIOCSIFFLAGS reads the `ifreq` it is given; `req` is one with the name and flags set.
        check(unsafe { ioctl_with_ref(&self.socket, libc::SIOCSIFFLAGS, &req) })
    }

    /// The interface index of `name`; `ENODEV` when there is no such interface.
    pub fn index(&self, name: &str) -> io::Result<libc::c_int> {
        let mut req = ifreq(name);
        // SAFETY: SIOCGIFINDEX fills `ifr_ifindex` of the `ifreq` it is given; `req` is one.
        check(unsafe { ioctl_with_mut_ref(&self.socket, libc::SIOCGIFINDEX, &mut req) })?;
        // SAFETY: SIOCGIFINDEX has just written the `ifru_ifindex` member of the union.
        Ok(unsafe { req.ifr_ifru.ifru_ifindex })
    }

    /// Adds the interface `port` to the bridge `bridge` (what `ip link set PORT master BRIDGE` and `brctl addif`
    /// do). `ENODEV` when either is missing; `EOPNOTSUPP` or `EINVAL` when `bridge` is not a bridge.
    ///
    /// The bridge ioctl rather than rtnetlink's `IFLA_MASTER` or running `ip`: one call on the socket we
    /// already hold, no netlink message building or parsing, and no dependence on `ip` being installed.
    pub fn add_to_bridge(&self, bridge: &str, port: &str) -> io::Result<()> {
        let index = self.index(port)?;
        let mut req = ifreq(bridge);
        req.ifr_ifru.ifru_ifindex = index;
        // SAFETY: SIOCBRADDIF reads the `ifreq` it is given (bridge name and port index); `req` is one.
        check(unsafe { ioctl_with_ref(&self.socket, SIOCBRADDIF, &req) })
    }
}
