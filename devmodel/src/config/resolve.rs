//! Turning evaluated keys into a [`Config`]: defaults, types, device strings and cross-key rules.
//!
//! Order of checks: PV configs are refused first (they contain many PV-only keys), then unknown keys, then
//! each key in turn, then the host checks of [`super::validate`], and last the list of what this build cannot
//! honour ([`super::notices`]). The first error stops the load: one message, naming one key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use devices::chardev::CharSpec;

use super::disk::{self, Target};
use super::fields::Fields;
use super::keys::{self, Handling};
use super::model::*;
use super::options;
use super::validate::{self, HostFacts};
use super::vif;
use super::{notices, pv, ConfigError, Origin, Script};

/// Default firmware path when neither `kernel` nor `loader` is given.
const HVMLOADER: &str = "/usr/lib/xen/boot/hvmloader";
/// qemu-dm's serial ports.
const MAX_SERIAL: usize = 4;
/// qemu back-ends that exist but have no [`CharSpec`] form here.
const QEMU_ONLY_SERIAL: &[&str] = &["vc", "udp", "telnet", "pipe", "mon", "braille", "msmouse"];

pub(crate) fn resolve(
    path: &Path,
    script: &Script,
    host: &HostFacts,
) -> Result<Config, ConfigError> {
    let f = Fields { path, script };
    let builder = f.text("builder")?;
    match builder.as_deref() {
        Some("hvm") => {}
        None | Some("linux") => {
            return Err(ConfigError::NotHvm {
                path: path.to_path_buf(),
                explanation: pv::explanation(script, builder.as_deref()),
            })
        }
        Some(other) => {
            return Err(f.invalid(
                "builder",
                format!("'{other}'"),
                "'hvm' ('linux' is a PV guest, which needs no device model)",
            ))
        }
    }
    unknown_keys(script)?;

    let mut notes: Vec<Notice> = Vec::new();
    let mut note = |key: &str, kind: NoticeKind, message: String| {
        notes.push(Notice {
            at: f.at(key),
            key: key.to_string(),
            kind,
            message,
        })
    };
    for name in script.state.vars.keys() {
        if let (Some(k), true) = (keys::lookup(name), f.given(name)) {
            match k.handling {
                Handling::Typed => {}
                Handling::XenOnly(why) => {
                    note(name, NoticeKind::NoEffect, format!("{}: {why}", k.meaning))
                }
                Handling::PvOnly(why) => {
                    note(name, NoticeKind::NoEffect, format!("{}: {why}", k.meaning))
                }
            }
        }
    }

    let name = f.text("name")?.ok_or_else(|| ConfigError::Missing {
        path: path.to_path_buf(),
        key: "name".to_string(),
        expected: "a domain name such as name = 'myguest'".to_string(),
    })?;
    if name.chars().any(|c| c.is_control() || c == '/') || name.chars().count() > 128 {
        return Err(f.invalid(
            "name",
            format!("'{}'", name.escape_debug()),
            "a name of at most 128 characters without '/' or control characters",
        ));
    }
    let uuid = f
        .text("uuid")?
        .map(|u| options::uuid(&u).map_err(|b| f.bad("uuid", b)))
        .transpose()?;

    let boot = boot_method(&f, &mut note)?;

    let memory_mib = f.int_in("memory", 0, i64::MAX, "MiB")?.unwrap_or(128) as u64;
    let maxmem_mib = f
        .int_in("maxmem", 0, i64::MAX, "MiB")?
        .map_or(memory_mib, |m| m as u64);
    let vcpus = f
        .int_in("vcpus", 0, i64::from(u32::MAX), "a vCPU count")?
        .unwrap_or(1) as u32;
    let vcpu_avail = f
        .int_in("vcpu_avail", 0, i64::MAX, "a bit mask")?
        .map(|m| m as u64);
    let cpus = match f.value("cpus") {
        None => None,
        Some(super::eval::Value::Int(i)) => Some(i.to_string()),
        Some(super::eval::Value::Str(s)) if s.is_empty() => None,
        Some(super::eval::Value::Str(s)) => Some(s.clone()),
        Some(super::eval::Value::List(items)) => Some(
            items
                .iter()
                .map(|i| match i {
                    super::eval::Value::Str(s) => s.clone(),
                    other => other.show(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        Some(v) => {
            return Err(f.invalid(
                "cpus",
                format!("{} {}", v.type_name(), v.show()),
                "a CPU list such as '0-3,^1'",
            ))
        }
    };
    let cpu = f
        .int_in("cpu", -1, 4095, "a host CPU number")?
        .filter(|c| *c >= 0);
    let cpuid = crate::cpuid::CpuidPolicy::parse(&f.strings("cpuid")?.unwrap_or_default())
        .map_err(|e| f.invalid("cpuid", e.found, e.expected))?;
    let boot_order = options::boot_order(&f.text("boot")?.unwrap_or_else(|| "c".to_string()))
        .map_err(|b| f.bad("boot", b))?;

    let disks = disks(&f, &mut note)?;
    let nics = nics(&f, &mut note)?;
    let display = display(&f, &mut note)?;
    let serial = serial(&f, display.nographic, &mut note)?;
    let parallel = match f.text("parallel")? {
        None => None,
        Some(p) if p == "none" => None,
        Some(p) => Some(char_spec(&f, "parallel", &p, &mut note)?),
    };
    let monitor = if f.flag_or("monitor", false)? {
        Some(f.text("monitor_path")?.unwrap_or_else(|| "vc".to_string()))
    } else {
        None
    };
    let mut usb = Usb {
        controller: f.flag_or("usb", false)?,
        devices: Vec::new(),
    };
    for d in f.strings("usbdevice")?.unwrap_or_default() {
        if d.is_empty() {
            continue;
        }
        usb.devices
            .push(options::usb_device(&d).map_err(|b| f.bad("usbdevice", b))?);
        usb.controller = true;
    }
    let sound = options::sound_cards(&f.text("soundhw")?.unwrap_or_default())
        .map_err(|b| f.bad("soundhw", b))?;
    let rtc = Rtc {
        localtime: f.flag_or("localtime", false)?,
        offset_seconds: f
            .int_in("rtc_timeoffset", -(1 << 40), 1 << 40, "seconds")?
            .unwrap_or(0),
    };
    let platform = Platform {
        acpi: f.flag_or("acpi", true)?,
        apic: f.flag_or("apic", true)?,
        pae: f.flag_or("pae", true)?,
        hap: f.flag_or("hap", true)?,
        viridian: f.flag_or("viridian", false)?,
        hpet: f.flag_or("hpet", false)?,
        xen_platform_pci: f.flag_or("xen_platform_pci", true)?,
        isa: f.flag_or("isa", false)?,
    };
    let action = |key: &str, default: Action| -> Result<Action, ConfigError> {
        match f.text(key)? {
            None => Ok(default),
            Some(a) => options::action(&a, key == "on_crash").map_err(|b| f.bad(key, b)),
        }
    };
    let on_poweroff = action("on_poweroff", Action::Destroy)?;
    let on_reboot = action("on_reboot", Action::Restart)?;
    let on_crash = action("on_crash", Action::Restart)?;

    let mut origins = BTreeMap::new();
    for name in script
        .state
        .vars
        .keys()
        .filter(|n| keys::lookup(n).is_some())
    {
        if let Some(o) = script.origins.get(name) {
            origins.insert(name.clone(), o.clone());
        }
    }
    let mut cfg = Config {
        name,
        uuid,
        description: f.string("description")?,
        boot,
        device_model: f.text("device_model")?.map(PathBuf::from),
        memory_mib,
        maxmem_mib,
        vcpus,
        vcpu_avail,
        cpus,
        cpu,
        cpuid,
        boot_order,
        disks,
        nics,
        display,
        serial,
        parallel,
        monitor,
        usb,
        sound,
        fda: f.text("fda")?.map(PathBuf::from),
        fdb: f.text("fdb")?.map(PathBuf::from),
        rtc,
        platform,
        pci_passthrough: f
            .strings("pci")?
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect(),
        gfx_passthru: f.flag_or("gfx_passthru", false)?,
        on_poweroff,
        on_reboot,
        on_crash,
        unsupported: Vec::new(),
        origins,
    };
    validate::check(&cfg, path, host)?;
    let mut all = notes;
    all.extend(notices::collect(&cfg, &notices::BUILT, path));
    cfg.unsupported = all;
    Ok(cfg)
}

/// The first name (by line) that is not a key and that nothing read.
fn unknown_keys(script: &Script) -> Result<(), ConfigError> {
    let unknown = script
        .state
        .vars
        .iter()
        .filter(|(name, _)| {
            keys::lookup(name).is_none()
                && !script.state.used.contains(*name)
                && !name.starts_with('_')
        })
        .min_by_key(|(_, b)| b.line);
    match unknown {
        None => Ok(()),
        Some((name, _)) => Err(ConfigError::UnknownKey {
            at: script
                .origins
                .get(name)
                .cloned()
                .unwrap_or(Origin::CommandLine { arg: name.clone() }),
            key: name.clone(),
            suggestion: keys::suggest(name).map(str::to_string),
        }),
    }
}

type Note<'a> = dyn FnMut(&str, NoticeKind, String) + 'a;

fn boot_method(f: &Fields<'_>, note: &mut Note<'_>) -> Result<Boot, ConfigError> {
    let kernel = f.text("kernel")?;
    let loader = f.text("loader")?;
    let is_hvmloader = |p: &str| Path::new(p).file_name().is_some_and(|n| n == "hvmloader");
    let firmware = match (&kernel, &loader) {
        (Some(k), _) if is_hvmloader(k) => Some(k.clone()),
        (Some(_), _) => None,
        (None, Some(l)) => Some(l.clone()),
        (None, None) => Some(HVMLOADER.to_string()),
    };
    let root = f.text("root")?;
    let extra = f.text("extra")?;
    let ramdisk = f.text("ramdisk")?;
    let whole = f.text("cmdline")?;
    if let Some(loader) = firmware {
        for key in ["root", "extra", "ramdisk", "cmdline"] {
            if f.text(key)?.is_some() {
                note(
                    key,
                    NoticeKind::NoEffect,
                    "used only for a direct kernel boot; the firmware boots from the disks"
                        .to_string(),
                );
            }
        }
        return Ok(Boot::Firmware {
            loader: PathBuf::from(loader),
        });
    }
    if f.given("boot") {
        note(
            "boot",
            NoticeKind::NoEffect,
            "a direct kernel boot starts the kernel, not a boot device".to_string(),
        );
    }
    // xl: `cmdline` is the whole command line, and root/extra are then ignored with a warning.
    if let Some(whole) = whole {
        for key in ["root", "extra"] {
            if f.given(key) {
                note(
                    key,
                    NoticeKind::NoEffect,
                    "ignored in favour of cmdline, as xl does".to_string(),
                );
            }
        }
        return Ok(Boot::Kernel {
            path: PathBuf::from(kernel.unwrap_or_default()),
            ramdisk: ramdisk.map(PathBuf::from),
            cmdline: whole.trim().to_string(),
        });
    }
    let mut cmdline = Vec::new();
    if let Some(r) = root {
        cmdline.push(format!(
            "root={}",
            r.strip_prefix("root=").unwrap_or(&r).trim()
        ));
    }
    if let Some(e) = extra {
        cmdline.push(e.trim().to_string());
    }
    Ok(Boot::Kernel {
        path: PathBuf::from(kernel.unwrap_or_default()),
        ramdisk: ramdisk.map(PathBuf::from),
        cmdline: cmdline.join(" ").trim().to_string(),
    })
}

fn disks(f: &Fields<'_>, note: &mut Note<'_>) -> Result<Vec<Disk>, ConfigError> {
    let mut parsed = Vec::new();
    for spec in f.strings("disk")?.unwrap_or_default() {
        let p = disk::parse(&spec).map_err(|b| f.bad("disk", b))?;
        for (kind, msg) in &p.notes {
            note("disk", *kind, msg.clone());
        }
        parsed.push(p);
    }
    let any_hd = parsed.iter().any(|p| p.target == Target::Ide);
    let mut out: Vec<Disk> = Vec::new();
    for p in parsed {
        match p.target {
            Target::Scsi => {
                note(
                    "disk",
                    NoticeKind::NotAvailable,
                    format!(
                        "'{}': SCSI disks (sdX) are not emulated; name it hda-hdd",
                        p.disk.target
                    ),
                );
                continue;
            }
            Target::Xvd if any_hd => {
                note("disk", NoticeKind::NotAvailable, format!("'{}': with hd* disks present, xvd disks were PV-only; PV block devices are not available", p.disk.target));
                continue;
            }
            _ => {}
        }
        if let Some(other) = out.iter().find(|d| d.slot == p.disk.slot) {
            return Err(f.invalid(
                "disk",
                format!(
                    "two disks in the {} slot ('{}' and '{}')",
                    p.disk.slot.name(),
                    other.target,
                    p.disk.target
                ),
                "at most one disk per IDE slot hda, hdb, hdc, hdd",
            ));
        }
        out.push(p.disk);
    }
    Ok(out)
}

fn nics(f: &Fields<'_>, note: &mut Note<'_>) -> Result<Vec<Nic>, ConfigError> {
    let mut specs = f.strings("vif")?.unwrap_or_default();
    if let Some(n) = f.int_in("nics", -1, 32, "a NIC count")? {
        let n = usize::try_from(n).unwrap_or(0);
        while specs.len() < n {
            specs.push(String::new());
        }
        note(
            "nics",
            NoticeKind::NoEffect,
            "deprecated; write an empty vif entry '' per extra NIC instead".to_string(),
        );
    }
    if specs.len() > 32 {
        return Err(f.invalid(
            "vif",
            format!("{} entries", specs.len()),
            "at most 32 NICs (the PCI bus has 32 slots)",
        ));
    }
    let mut out: Vec<Nic> = Vec::new();
    for spec in specs {
        let p = vif::parse(&spec, vif::random_mac).map_err(|b| f.bad("vif", b))?;
        for (kind, msg) in p.notes {
            note("vif", kind, msg);
        }
        if !p.nic.emulated {
            note("vif", NoticeKind::NotAvailable, format!("'{spec}': a PV-only interface (type=netfront); PV network devices are not available, no NIC is created"));
            continue;
        }
        if let Some(other) = out.iter().find(|n| n.mac == p.nic.mac) {
            return Err(f.invalid(
                "vif",
                format!("two NICs with the MAC address {}", other.mac),
                "a different MAC address for each NIC",
            ));
        }
        out.push(p.nic);
    }
    Ok(out)
}

fn display(f: &Fields<'_>, note: &mut Note<'_>) -> Result<Display, ConfigError> {
    // Type-check every display key even when its console is off, so a bad value never waits for vnc=1.
    for key in [
        "vncunused",
        "vncconsole",
        "vncviewer",
        "opengl",
        "fullscreen",
    ] {
        f.flag(key)?;
    }
    for key in ["vncpasswd", "display", "xauthority", "monitor_path"] {
        f.string(key)?;
    }
    let nographic = f.flag_or("nographic", false)?;
    let vga = if f.flag_or("stdvga", false)? {
        Vga::Std
    } else {
        Vga::Cirrus
    };
    let videoram = f.int_in("videoram", 1, 256, "MiB")?;
    let videoram_mib = match (vga, videoram) {
        (Vga::Cirrus, Some(v)) if v != 4 => {
            note(
                "videoram",
                NoticeKind::NoEffect,
                format!("{v} MiB: the Cirrus VGA has a fixed 4 MiB (set stdvga=1 for more)"),
            );
            4
        }
        (_, Some(v)) => v as u32,
        (_, None) => 4,
    };
    let keymap = match f.text("keymap")? {
        Some(k) => options::keymap(&k).map_err(|b| f.bad("keymap", b))?,
        None => "en-us".to_string(),
    };
    let mut vnc = None;
    if f.flag_or("vnc", false)? {
        let mut listen = f
            .text("vnclisten")?
            .unwrap_or_else(|| "127.0.0.1".to_string());
        let mut display = f.int_in("vncdisplay", 0, 65535 - 5900, "a display number")?;
        // xl also accepted vnclisten = "ADDR:DISPLAY".
        if let Some((addr, d)) = listen.rsplit_once(':') {
            if !addr.contains(':') {
                let d: i64 = d.parse().map_err(|_| {
                    f.invalid(
                        "vnclisten",
                        format!("'{listen}'"),
                        "an address, or ADDRESS:DISPLAY",
                    )
                })?;
                if display.is_none() {
                    display = Some(d);
                }
                listen = addr.to_string();
            }
        }
        let valid = listen.parse::<std::net::IpAddr>().is_ok()
            || (!listen.is_empty()
                && listen.len() <= 253
                && listen
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !valid {
            return Err(f.invalid(
                "vnclisten",
                format!("'{listen}'"),
                "an IP address or host name such as 127.0.0.1 or 0.0.0.0",
            ));
        }
        let display = display.and_then(|d| u16::try_from(d.clamp(0, 65535 - 5900)).ok());
        let password = f.string("vncpasswd")?.filter(|p| !p.is_empty());
        if password.as_ref().is_some_and(|p| p.len() > 8) {
            note(
                "vncpasswd",
                NoticeKind::NoEffect,
                "VNC authentication uses only the first 8 characters of the password".to_string(),
            );
        }
        vnc = Some(Vnc {
            listen,
            display,
            find_unused: f.flag_or("vncunused", true)?,
            password: password.map(Password),
            viewer: f.flag_or("vncconsole", false)? || f.flag_or("vncviewer", false)?,
        });
    }
    let mut sdl = None;
    if f.flag_or("sdl", false)? {
        sdl = Some(Sdl {
            opengl: f.flag_or("opengl", true)?,
            x_display: f.text("display")?,
            xauthority: f.text("xauthority")?,
            full_screen: f.flag_or("fullscreen", false)?,
        });
    }
    if nographic && (vnc.is_some() || sdl.is_some()) {
        note(
            "nographic",
            NoticeKind::NoEffect,
            "nographic=1 turns vnc and sdl off, as xend did".to_string(),
        );
        vnc = None;
        sdl = None;
    }
    Ok(Display {
        vga,
        videoram_mib,
        vnc,
        sdl,
        nographic,
        keymap,
    })
}

fn char_spec(
    f: &Fields<'_>,
    key: &str,
    s: &str,
    note: &mut Note<'_>,
) -> Result<CharSpec, ConfigError> {
    let kind = s.split(':').next().unwrap_or(s);
    if QEMU_ONLY_SERIAL.contains(&kind) || s.starts_with("/dev/") {
        note(
            key,
            NoticeKind::NotAvailable,
            format!("the back-end '{s}' is not available; its bytes go nowhere (null)"),
        );
        return Ok(CharSpec::Null);
    }
    CharSpec::from_str(s).map_err(|e| f.invalid(key, format!("'{s}'"), e.to_string()))
}

fn serial(
    f: &Fields<'_>,
    nographic: bool,
    note: &mut Note<'_>,
) -> Result<Vec<CharSpec>, ConfigError> {
    let default = vec![if nographic {
        CharSpec::Stdio
    } else {
        CharSpec::Null
    }];
    let specs = match f.value("serial") {
        None => return Ok(default),
        Some(super::eval::Value::Str(s)) if s.is_empty() => return Ok(default),
        Some(_) => f.strings("serial")?.unwrap_or_default(),
    };
    if specs.len() > MAX_SERIAL {
        return Err(f.invalid(
            "serial",
            format!("{} serial ports", specs.len()),
            "at most 4 (COM1-COM4)",
        ));
    }
    specs
        .iter()
        .map(|s| char_spec(f, "serial", s, note))
        .collect()
}
