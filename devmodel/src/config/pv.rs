//! Refusing PV guest configs with what to change.
//!
//! A config without `builder='hvm'` describes a paravirtualized domain: Xen built it directly from a
//! Xen-aware kernel, with no firmware and no device model. Running it here means turning it into an HVM
//! guest, which changes how it boots and how it names its disks; the explanation lists each change for
//! the keys this particular file has.

use super::eval::Value;
use super::Script;

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Str(s)) => vec![s.clone()],
        Some(Value::List(items) | Value::Tuple(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The explanation for a PV config; `builder` is the builder it named, if any.
pub(crate) fn explanation(script: &Script, builder: Option<&str>) -> String {
    let mut out = Vec::new();
    out.push(match builder {
        Some(b) => format!("builder='{b}' builds a PV domain: Xen starts a Xen-aware kernel directly, with no firmware and no device model."),
        None => "There is no builder='hvm': xm's default builder 'linux' builds a PV domain, which Xen starts directly from a Xen-aware kernel, with no firmware and no device model.".to_string(),
    });
    out.push("To run it as an HVM guest under this device model:".to_string());
    out.push("  - add builder = 'hvm'".to_string());
    let kernel = text(script.value("kernel"));
    out.push(format!(
        "  - set kernel = '/usr/lib/xen/boot/hvmloader' to boot through the firmware from the disks (the disk image must then hold a whole disk: partition table and boot loader){}",
        match &kernel {
            Some(k) => format!(", or keep kernel = '{k}' for a direct kernel boot if it is an ordinary (not PV-only) kernel"),
            None => String::new(),
        }
    ));
    let disks = strings(script.value("disk"));
    if !disks.is_empty() {
        let mut used: Vec<char> = Vec::new();
        let mut lines = Vec::new();
        for d in &disks {
            let target = d.split(',').nth(1).map(str::trim).unwrap_or("");
            let bare = target.strip_prefix("ioemu:").unwrap_or(target);
            let bare = bare.split(':').next().unwrap_or(bare);
            let letter = ["xvd", "hd", "sd"]
                .iter()
                .find_map(|p| bare.strip_prefix(p))
                .and_then(|r| r.chars().next())
                .filter(|c| ('a'..='d').contains(c) && !used.contains(c))
                .or_else(|| ('a'..='d').find(|c| !used.contains(c)));
            let Some(letter) = letter else { break };
            used.push(letter);
            let want = format!("hd{letter}");
            if bare != want {
                lines.push(format!("'{bare}' -> '{want}'"));
            }
        }
        if !lines.is_empty() {
            out.push(format!(
                "  - name the disks as emulated IDE drives hda-hdd ({}); a PV partition such as hda1 becomes a whole disk",
                lines.join(", ")
            ));
        }
    }
    let cmdline_keys: Vec<&str> = ["root", "extra", "ramdisk"]
        .into_iter()
        .filter(|k| text(script.value(k)).is_some())
        .collect();
    if !cmdline_keys.is_empty() {
        out.push(format!(
            "  - {} only apply to a direct kernel boot; a firmware boot takes them from the boot loader on the disk",
            cmdline_keys.join(", ")
        ));
    }
    if script.value("bootloader").is_some() {
        out.push("  - remove bootloader (pygrub reads a PV guest's disk; an HVM guest's firmware runs its own boot loader)".to_string());
    }
    if script.value("vif").is_some() || script.value("nics").is_some() {
        out.push("  - write each vif entry with type=ioemu (an emulated rtl8139 unless model= names another NIC); nics= is deprecated".to_string());
    }
    out.push("  - the guest OS must have drivers for emulated PC hardware (IDE, the NIC model); a Xen PV-only kernel (-xen, -xenU builds) cannot boot on it".to_string());
    out.join("\n")
}
