//! The table of config keys this reader knows, what each meant to Xen, and how it is handled here.
//!
//! Every key of xm's `create.py` that can appear in an HVM config is listed, so that a real file never fails
//! with "unknown key" for a key Xen accepted. Keys fall into three groups ([`Handling`]):
//! keys resolved into [`super::Config`] (the device model's business), keys that only tuned the Xen
//! hypervisor or toolstack and mean nothing on KVM (accepted, and reported as a notice when set, so nothing
//! is ignored silently), and keys that only apply to paravirtualized guests.

/// How a key is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handling {
    /// Resolved into a typed field of the config.
    Typed,
    /// A Xen hypervisor or toolstack setting with no KVM equivalent; the text says why.
    XenOnly(&'static str),
    /// A setting for PV guests (or a PV kernel's own command line) only.
    PvOnly(&'static str),
}

/// One known key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    pub name: &'static str,
    /// What the key meant for Xen (shown by `describe` and in messages).
    pub meaning: &'static str,
    pub handling: Handling,
}

const fn typed(name: &'static str, meaning: &'static str) -> Key {
    Key {
        name,
        meaning,
        handling: Handling::Typed,
    }
}

const fn xen(name: &'static str, meaning: &'static str, why: &'static str) -> Key {
    Key {
        name,
        meaning,
        handling: Handling::XenOnly(why),
    }
}

const fn pv(name: &'static str, meaning: &'static str, why: &'static str) -> Key {
    Key {
        name,
        meaning,
        handling: Handling::PvOnly(why),
    }
}

const SCHED: &str =
    "Xen's credit scheduler setting; vCPUs here are host threads scheduled by Linux";

/// Every key, in no particular order.
pub(crate) const KEYS: &[Key] = &[
    typed("name", "domain name (required)"),
    typed("uuid", "domain UUID"),
    typed("description", "free-text description of the domain"),
    typed(
        "builder",
        "'hvm' for a fully virtualized guest; the xm default 'linux' is a PV guest",
    ),
    typed(
        "kernel",
        "hvmloader (firmware boot) or a kernel image (direct boot)",
    ),
    typed("loader", "HVM firmware path (xm 3.3+); hvmloader"),
    typed("ramdisk", "initial ramdisk for a direct kernel boot"),
    typed(
        "root",
        "root= on the kernel command line (direct kernel boot)",
    ),
    typed(
        "extra",
        "extra kernel command-line arguments (direct kernel boot)",
    ),
    typed(
        "cmdline",
        "the whole kernel command line (xl; replaces root and extra)",
    ),
    typed("device_model", "path of the device-model binary qemu-dm"),
    typed("memory", "guest RAM in MiB (default 128)"),
    typed(
        "maxmem",
        "maximum RAM in MiB for ballooning (default: memory)",
    ),
    typed("vcpus", "number of virtual CPUs (default 1)"),
    typed(
        "vcpu_avail",
        "bitmask of vCPUs online at boot (default: all)",
    ),
    typed("cpus", "host CPUs the vCPUs may run on (affinity)"),
    typed("cpu", "host CPU for vCPU 0"),
    typed("cpuid", "CPUID leaf overrides"),
    typed(
        "boot",
        "boot order letters: a floppy, c disk, d CD-ROM, n network (xm default 'c')",
    ),
    typed("disk", "block devices: 'type:path,hdX[:cdrom],mode'"),
    typed(
        "vif",
        "network interfaces: 'type=ioemu, mac=.., bridge=.., model=..'",
    ),
    typed("nics", "deprecated NIC count; pads vif with default NICs"),
    typed("vnc", "VNC server for the graphical console (xm default 0)"),
    typed(
        "vncdisplay",
        "VNC display number, TCP port 5900+N (default 0)",
    ),
    typed("vnclisten", "VNC listen address (default 127.0.0.1)"),
    typed(
        "vncunused",
        "on a busy port, try the next display (default 1)",
    ),
    typed("vncpasswd", "VNC password; empty means no authentication"),
    typed("vncconsole", "start a VNC viewer automatically (default 0)"),
    typed("vncviewer", "deprecated: start a VNC viewer automatically"),
    typed("sdl", "SDL window on the host's X display (default 0)"),
    typed("opengl", "OpenGL for the SDL window (default 1)"),
    typed(
        "fullscreen",
        "SDL window starts full screen (default 0); xmexample.hvm's 'full-screen', which xend could not read",
    ),
    typed("display", "X display for SDL"),
    typed("xauthority", "X authority file for SDL"),
    typed(
        "nographic",
        "no graphical console; serial defaults to stdio (default 0)",
    ),
    typed(
        "stdvga",
        "Bochs VBE standard VGA instead of Cirrus (default 0)",
    ),
    typed("videoram", "video RAM in MiB (default 4)"),
    typed("keymap", "VNC keyboard layout (default en-us)"),
    typed("serial", "serial port back-ends, COM1 first"),
    typed("parallel", "parallel port back-end"),
    typed("monitor", "qemu monitor (default 0)"),
    typed("monitor_path", "qemu monitor back-end"),
    typed("usb", "PIIX3 UHCI USB controller (default 0)"),
    typed(
        "usbdevice",
        "USB device: tablet, mouse, keyboard, host:.., disk:..",
    ),
    typed(
        "soundhw",
        "sound cards: sb16, es1370, ac97, all (comma list)",
    ),
    typed(
        "localtime",
        "RTC keeps local time instead of UTC (default 0)",
    ),
    typed("rtc_timeoffset", "RTC offset in seconds (default 0)"),
    typed("acpi", "ACPI tables and PIIX4 power management (default 1)"),
    typed("apic", "local and I/O APIC (default 1)"),
    typed("pae", "PAE in CPUID (default 1)"),
    typed("hap", "hardware-assisted paging (default 1)"),
    typed("viridian", "Hyper-V enlightenments (default 0)"),
    typed("hpet", "HPET timer (default 0)"),
    typed(
        "xen_platform_pci",
        "Xen platform PCI device for PV drivers (default 1)",
    ),
    typed("isa", "ISA-only PC without PCI (default 0)"),
    typed("fda", "floppy image for drive A"),
    typed("fdb", "floppy image for drive B"),
    typed("gfx_passthru", "pass the host graphics card through"),
    typed("pci", "host PCI devices to pass through"),
    typed(
        "on_poweroff",
        "action when the guest powers off (default destroy)",
    ),
    typed(
        "on_reboot",
        "action when the guest reboots (default restart)",
    ),
    typed(
        "on_crash",
        "action when the guest crashes (default restart)",
    ),
    xen(
        "shadow_memory",
        "shadow page-table pool in MiB",
        "KVM sizes its own shadow/EPT structures",
    ),
    xen(
        "timer_mode",
        "Xen's virtual platform timer mode",
        "KVM's in-kernel PIT and LAPIC timer keep their own policy",
    ),
    xen(
        "vpt_align",
        "align Xen's periodic virtual timers",
        "a Xen hypervisor timer setting",
    ),
    xen(
        "tsc_mode",
        "Xen TSC emulation mode",
        "KVM passes the TSC through with its own offsetting",
    ),
    xen("cpu_cap", "CPU cap in percent", SCHED),
    xen("cpu_weight", "CPU weight", SCHED),
    xen(
        "cpuid_check",
        "CPUID checks before migration",
        "there is no Xen migration here",
    ),
    xen(
        "guest_os_type",
        "guest OS type hint for Xen",
        "unused by Xen's HVM code as well",
    ),
    xen("on_xend_start", "xend start action", "there is no xend"),
    xen("on_xend_stop", "xend stop action", "there is no xend"),
    xen(
        "s3_integrity",
        "tboot memory integrity over S3",
        "a Xen/tboot feature",
    ),
    xen(
        "oos",
        "out-of-sync shadow page tables",
        "a Xen shadow-paging setting",
    ),
    xen(
        "superpages",
        "build the domain with superpages",
        "the host kernel decides huge-page use",
    ),
    xen(
        "nomigrate",
        "forbid migration",
        "there is no Xen migration here",
    ),
    xen(
        "target",
        "domain this stub domain serves",
        "a Xen stub-domain setting",
    ),
    xen(
        "pci_msitranslate",
        "MSI-INTx translation for passthrough",
        "a Xen passthrough setting",
    ),
    xen(
        "pci_power_mgmt",
        "power management for passthrough",
        "a Xen passthrough setting",
    ),
    xen(
        "machine_address_size",
        "maximum machine address size",
        "a Xen PV memory setting",
    ),
    xen(
        "suppress_spurious_page_faults",
        "suppress spurious page faults",
        "a Xen hypervisor workaround",
    ),
    xen(
        "access_control",
        "XSM security label",
        "a Xen security-module setting",
    ),
    xen(
        "blkif",
        "make the domain a block back-end",
        "a Xen driver-domain setting",
    ),
    xen(
        "netif",
        "make the domain a network back-end",
        "a Xen driver-domain setting",
    ),
    xen(
        "tpmif",
        "make the domain a TPM back-end",
        "a Xen driver-domain setting",
    ),
    xen("vhpt", "IA64 VHPT size", "an IA64 setting"),
    xen("features", "PV kernel features", "a Xen PV setting"),
    xen(
        "restart",
        "deprecated restart policy",
        "use on_poweroff, on_reboot and on_crash",
    ),
    pv(
        "bootloader",
        "PV boot loader such as pygrub",
        "an HVM guest boots through its firmware or kernel=",
    ),
    pv(
        "bootargs",
        "PV boot loader arguments",
        "an HVM guest boots through its firmware or kernel=",
    ),
    pv(
        "bootentry",
        "PV boot loader entry",
        "an HVM guest boots through its firmware or kernel=",
    ),
    pv(
        "ip",
        "kernel IP auto-configuration address",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "netmask",
        "kernel IP auto-configuration netmask",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "gateway",
        "kernel IP auto-configuration gateway",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "hostname",
        "kernel IP auto-configuration host name",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "interface",
        "kernel IP auto-configuration interface",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "dhcp",
        "kernel IP auto-configuration by DHCP",
        "a PV kernel's ip= argument; put it in extra for a direct boot",
    ),
    pv(
        "nfs_server",
        "NFS root server",
        "a PV kernel's nfsroot= argument; put it in extra for a direct boot",
    ),
    pv(
        "nfs_root",
        "NFS root path",
        "a PV kernel's nfsroot= argument; put it in extra for a direct boot",
    ),
    pv(
        "vfb",
        "PV framebuffer",
        "HVM guests use the emulated VGA (vnc/sdl keys)",
    ),
    pv("vscsi", "PV SCSI devices", "a PV driver"),
    pv("vusb", "PV USB controllers", "a PV driver"),
    pv("vtpm", "PV TPM", "a PV driver"),
    pv("vif2", "netchannel2 interfaces", "a PV driver"),
    pv(
        "ioports",
        "host I/O port ranges for a PV driver domain",
        "a PV passthrough setting",
    ),
    pv(
        "irq",
        "host IRQs for a PV driver domain",
        "a PV passthrough setting",
    ),
];

/// The entry for `name`, if it is a known key.
pub(crate) fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The candidate closest to `name`, when close enough to be a likely typo (or a `-`/`_` mix-up).
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if name.len() > 64 {
        return None;
    }
    let normal = name.to_ascii_lowercase().replace('-', "_");
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .filter(|c| *c != name && c.len() <= 64 && c.len().abs_diff(normal.len()) <= limit)
        .map(|c| (distance(&normal, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The known key closest to `name`.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    closest(name, KEYS.iter().map(|k| k.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(suggest("memroy"), Some("memory"));
        assert_eq!(suggest("vnclisen"), Some("vnclisten"));
        assert_eq!(suggest("on-reboot"), Some("on_reboot"));
        assert_eq!(suggest("usbdevices"), Some("usbdevice"));
        assert_eq!(suggest("completely_different"), None);
    }

    #[test]
    fn names_are_unique() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(KEYS[i + 1..].iter().all(|o| o.name != k.name), "{}", k.name);
        }
    }
}
