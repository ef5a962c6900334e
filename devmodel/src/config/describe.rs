//! The human-readable rendering of a resolved config for `devmodel check`: the machine as it will be built,
//! defaults included, so that a user sees what each omitted key came to.

use std::fmt::Write;

use super::model::*;

fn yes(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

impl Config {
    /// The resolved machine: boot, memory, vCPUs, platform, drives, NICs, display, serial ports, USB, sound,
    /// lifecycle actions and the notices, one item per line.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_to(&mut s);
        s
    }

    fn write_to(&self, s: &mut String) -> std::fmt::Result {
        writeln!(s, "guest:      {}", self.name)?;
        if let Some(u) = &self.uuid {
            writeln!(s, "uuid:       {u}")?;
        }
        if let Some(d) = &self.description {
            writeln!(s, "about:      {d}")?;
        }
        match &self.boot {
            Boot::Firmware { loader } => writeln!(
                s,
                "boot:       firmware (SeaBIOS in place of {})",
                loader.display()
            )?,
            Boot::Kernel {
                path,
                ramdisk,
                cmdline,
            } => {
                write!(s, "boot:       kernel {}", path.display())?;
                if let Some(r) = ramdisk {
                    write!(s, ", ramdisk {}", r.display())?;
                }
                writeln!(s, ", command line '{cmdline}'")?;
            }
        }
        let order: Vec<String> = self
            .boot_order
            .devices()
            .iter()
            .map(|d| {
                let what = match d {
                    BootDevice::Floppy => "floppy",
                    BootDevice::Disk => "hard disk",
                    BootDevice::Cdrom => "CD-ROM",
                    BootDevice::Network => "network",
                };
                format!("{what} ({})", d.letter())
            })
            .collect();
        writeln!(s, "boot order: {}", order.join(", "))?;
        write!(s, "memory:     {} MiB", self.memory_mib)?;
        if self.maxmem_mib != self.memory_mib {
            write!(s, " (maxmem {} MiB)", self.maxmem_mib)?;
        }
        writeln!(s)?;
        write!(s, "vcpus:      {}", self.vcpus)?;
        if let Some(m) = self.vcpu_avail {
            write!(s, " (online at boot: mask {m:#x})")?;
        }
        if let Some(c) = &self.cpus {
            write!(s, ", host CPUs {c}")?;
        }
        writeln!(s)?;
        let p = &self.platform;
        writeln!(
            s,
            "platform:   i440FX/PIIX3; ACPI {}, APIC {}, PAE {}, HPET {}, viridian {}, Xen platform device {}",
            yes(p.acpi),
            yes(p.apic),
            yes(p.pae),
            yes(p.hpet),
            yes(p.viridian),
            yes(false),
        )?;
        if self.disks.is_empty() {
            writeln!(s, "ide:        no drives")?;
        }
        for d in &self.disks {
            let media = match d.media {
                Media::Disk => "disk ",
                Media::Cdrom => "cdrom",
            };
            let image = match &d.path {
                Some(p) => format!("{:?} {}", d.backend, p.display()).to_lowercase(),
                None => "empty".to_string(),
            };
            let mode = match d.mode {
                DiskMode::ReadOnly => "read-only",
                DiskMode::ReadWrite => "read-write",
                DiskMode::ReadWriteShared => "read-write (shared)",
            };
            writeln!(
                s,
                "ide {}:    {media} {image}, {mode}, {} (written '{}')",
                d.slot.name(),
                format!("{:?}", d.format).to_lowercase(),
                d.target
            )?;
        }
        if self.nics.is_empty() {
            writeln!(s, "nics:       none")?;
        }
        for (i, n) in self.nics.iter().enumerate() {
            write!(
                s,
                "nic {i}:      {} mac {}{} bridge {}",
                n.model.name(),
                n.mac,
                if n.mac_generated { " (random)" } else { "" },
                n.bridge
            )?;
            if let Some(v) = &n.vifname {
                write!(s, " tap {v}")?;
            }
            if let Some(sc) = &n.script {
                write!(s, " script {}", sc.display())?;
            }
            writeln!(s)?;
        }
        let d = &self.display;
        let vga = match d.vga {
            Vga::Cirrus => "Cirrus CLGD5446",
            Vga::Std => "standard VGA (Bochs VBE)",
        };
        writeln!(s, "vga:        {vga}, {} MiB", d.videoram_mib)?;
        match &d.vnc {
            Some(v) => writeln!(
                s,
                "vnc:        {}:{}{}, {}{}, keymap {}",
                v.listen,
                match v.display {
                    Some(d) => format!("{d} (port {})", 5900 + u32::from(d)),
                    None => "<domain id> (port 5900 + domain id)".to_string(),
                },
                if v.find_unused {
                    " or the next free one"
                } else {
                    ""
                },
                if v.password.is_some() {
                    "password"
                } else {
                    "no password"
                },
                if v.viewer { ", start a viewer" } else { "" },
                d.keymap
            )?,
            None => writeln!(s, "vnc:        off")?,
        }
        if let Some(sdl) = &d.sdl {
            writeln!(
                s,
                "sdl:        on, OpenGL {}{}",
                yes(sdl.opengl),
                if sdl.full_screen { ", full screen" } else { "" }
            )?;
        }
        if d.nographic {
            writeln!(s, "console:    no graphical console (nographic)")?;
        }
        if self.serial.is_empty() {
            writeln!(s, "serial:     none")?;
        }
        for (i, c) in self.serial.iter().enumerate() {
            let note = if self.origins.contains_key("serial") {
                ""
            } else {
                " (default; qemu-dm used a console inside the display)"
            };
            writeln!(s, "serial:     COM{} {c}{note}", i + 1)?;
        }
        match &self.parallel {
            Some(c) => writeln!(s, "parallel:   LPT1 {c}")?,
            None => writeln!(s, "parallel:   none")?,
        }
        if let Some(m) = &self.monitor {
            writeln!(s, "monitor:    {m}")?;
        }
        if self.usb.controller {
            let devs: Vec<String> = self
                .usb
                .devices
                .iter()
                .map(|d| format!("{d:?}").to_lowercase())
                .collect();
            writeln!(
                s,
                "usb:        UHCI controller; devices: {}",
                if devs.is_empty() {
                    "none".to_string()
                } else {
                    devs.join(", ")
                }
            )?;
        } else {
            writeln!(s, "usb:        off")?;
        }
        let cards: Vec<&str> = self.sound.iter().map(|c| c.name()).collect();
        writeln!(
            s,
            "sound:      {}",
            if cards.is_empty() {
                "none".to_string()
            } else {
                cards.join(", ")
            }
        )?;
        for (name, f) in [("fda", &self.fda), ("fdb", &self.fdb)] {
            if let Some(p) = f {
                writeln!(s, "floppy {name}: {}", p.display())?;
            }
        }
        writeln!(
            s,
            "rtc:        {}, offset {} s",
            if self.rtc.localtime {
                "local time"
            } else {
                "UTC"
            },
            self.rtc.offset_seconds
        )?;
        writeln!(
            s,
            "actions:    poweroff {}, reboot {}, crash {}",
            self.on_poweroff.name(),
            self.on_reboot.name(),
            self.on_crash.name()
        )?;
        if let Some(dm) = &self.device_model {
            writeln!(
                s,
                "dm path:    {} (not used: this program is the device model)",
                dm.display()
            )?;
        }
        if !self.unsupported.is_empty() {
            writeln!(s, "notices:")?;
            for n in &self.unsupported {
                writeln!(s, "  {n}")?;
            }
        }
        Ok(())
    }
}
