//! Parsers for the small string-valued keys: `boot`, `usbdevice`, `soundhw`, `on_*`, `keymap`, `uuid`.
//!
//! Each returns [`Bad`] (what was found, what was expected) so the caller can add the key and its origin.

use std::path::PathBuf;

use super::model::{Action, SoundCard, UsbDevice};
use firmware::boot::{BootError, BootOrder};

/// A value that does not parse: what was found and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub found: String,
    pub expected: String,
}

pub(crate) fn bad(found: impl Into<String>, expected: impl Into<String>) -> Bad {
    Bad {
        found: found.into(),
        expected: expected.into(),
    }
}

/// `boot`: letters a (floppy), c (disk), d (CD-ROM), n (network), each at most once, at most three (the CMOS
/// boot-order registers hold three, and qemu-dm refused more). The firmware crate owns the type and its rules.
pub(crate) fn boot_order(s: &str) -> Result<BootOrder, Bad> {
    const EXPECTED: &str =
        "up to three distinct boot letters a (floppy), c (hard disk), d (CD-ROM) or n (network), such as 'dc'";
    s.parse::<BootOrder>().map_err(|e| match e {
        BootError::Empty => bad("an empty boot order", EXPECTED),
        BootError::UnknownLetter { letter, .. } => {
            bad(format!("'{s}' with the letter '{letter}'"), EXPECTED)
        }
        BootError::Duplicate { letter, .. } => bad(
            format!("'{s}' with the letter '{letter}' twice"),
            "each boot letter at most once",
        ),
        other => bad(format!("'{s}' ({other})"), EXPECTED),
    })
}

fn hex16(s: &str) -> Option<u16> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

/// One `usbdevice` value.
pub(crate) fn usb_device(s: &str) -> Result<UsbDevice, Bad> {
    const EXPECTED: &str =
        "tablet, mouse, keyboard, host:BUS.ADDR, host:VENDOR:PRODUCT or disk:PATH";
    match s.trim() {
        "tablet" => return Ok(UsbDevice::Tablet),
        "mouse" => return Ok(UsbDevice::Mouse),
        "keyboard" => return Ok(UsbDevice::Keyboard),
        _ => {}
    }
    if let Some(path) = s.trim().strip_prefix("disk:") {
        if path.is_empty() {
            return Err(bad("'disk:' without a path", EXPECTED));
        }
        return Ok(UsbDevice::Disk(PathBuf::from(path)));
    }
    if let Some(host) = s.trim().strip_prefix("host:") {
        if let Some((bus, addr)) = host.split_once('.') {
            if let (Ok(bus), Ok(addr)) = (bus.parse::<u16>(), addr.parse::<u16>()) {
                return Ok(UsbDevice::HostBusAddr { bus, addr });
            }
        } else if let Some((v, p)) = host.split_once(':') {
            if let (Some(vendor), Some(product)) = (hex16(v), hex16(p)) {
                return Ok(UsbDevice::HostId { vendor, product });
            }
        }
        return Err(bad(
            format!("'{s}'"),
            "host:BUS.ADDR (decimal) or host:VENDOR:PRODUCT (hex)",
        ));
    }
    Err(bad(format!("'{s}'"), EXPECTED))
}

/// `soundhw`: a comma list of cards or `all`.
pub(crate) fn sound_cards(s: &str) -> Result<Vec<SoundCard>, Bad> {
    let mut cards = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let found: Vec<SoundCard> = if item == "all" {
            SoundCard::ALL_KEYWORD.to_vec()
        } else if let Some((card, _)) = SoundCard::ALL.iter().find(|(_, n)| *n == item) {
            vec![*card]
        } else {
            let names: Vec<&str> = SoundCard::ALL.iter().map(|(_, n)| *n).collect();
            return Err(bad(
                format!("the unknown sound card '{item}'"),
                format!("a comma list of {} or all", names.join(", ")),
            ));
        };
        for c in found {
            if !cards.contains(&c) {
                cards.push(c);
            }
        }
    }
    Ok(cards)
}

/// `on_poweroff`, `on_reboot`, `on_crash`; the coredump actions only for `on_crash`, as xm had them.
pub(crate) fn action(s: &str, crash: bool) -> Result<Action, Bad> {
    let allowed: Vec<&str> = Action::ALL
        .iter()
        .filter(|(a, _)| crash || !matches!(a, Action::CoredumpDestroy | Action::CoredumpRestart))
        .map(|(_, n)| *n)
        .collect();
    Action::ALL
        .iter()
        .find(|(_, n)| *n == s && allowed.contains(n))
        .map(|(a, _)| *a)
        .ok_or_else(|| bad(format!("'{s}'"), format!("one of {}", allowed.join(", "))))
}

/// The keymaps qemu-dm shipped (`share/xen/qemu/keymaps`).
pub(crate) const KEYMAPS: &[&str] = &[
    "ar", "da", "de", "de-ch", "en-gb", "en-us", "es", "et", "fi", "fo", "fr", "fr-be", "fr-ca",
    "fr-ch", "hr", "hu", "is", "it", "ja", "lt", "lv", "mk", "nl", "nl-be", "no", "pl", "pt",
    "pt-br", "ru", "sl", "sv", "th", "tr",
];

/// `keymap`.
pub(crate) fn keymap(s: &str) -> Result<String, Bad> {
    if KEYMAPS.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(bad(
            format!("the unknown layout '{s}'"),
            format!("one of {}", KEYMAPS.join(" ")),
        ))
    }
}

/// `uuid`: 8-4-4-4-12 hex digits, returned lower-case.
pub(crate) fn uuid(s: &str) -> Result<String, Bad> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(bad(
            format!("'{s}'"),
            "a UUID such as 5d2c1b3e-8f3a-4c2d-9b1e-0a1b2c3d4e5f",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmware::boot::BootDevice;

    #[test]
    fn boot_letters() {
        assert_eq!(
            boot_order("dc").unwrap().devices(),
            &[BootDevice::Cdrom, BootDevice::Disk]
        );
        assert_eq!(boot_order("adc").unwrap().devices().len(), 3);
        assert!(boot_order("adcn").unwrap_err().found.contains("adcn"));
        assert!(boot_order("x").unwrap_err().found.contains("'x'"));
        assert!(boot_order("cc").unwrap_err().found.contains("twice"));
        assert!(boot_order("").is_err());
    }

    #[test]
    fn usb_devices() {
        assert_eq!(usb_device("tablet").unwrap(), UsbDevice::Tablet);
        assert_eq!(
            usb_device("host:2.5").unwrap(),
            UsbDevice::HostBusAddr { bus: 2, addr: 5 }
        );
        assert_eq!(
            usb_device("host:046d:c52b").unwrap(),
            UsbDevice::HostId {
                vendor: 0x046d,
                product: 0xc52b
            }
        );
        assert_eq!(
            usb_device("disk:/x.img").unwrap(),
            UsbDevice::Disk("/x.img".into())
        );
        assert!(usb_device("joystick").is_err());
        assert!(usb_device("host:zz:1").is_err());
    }

    #[test]
    fn sound() {
        assert_eq!(sound_cards("all").unwrap(), SoundCard::ALL_KEYWORD.to_vec());
        assert_eq!(
            sound_cards("es1370, sb16,sb16").unwrap(),
            vec![SoundCard::Es1370, SoundCard::Sb16]
        );
        let e = sound_cards("sb16,hda").unwrap_err();
        assert!(e.found.contains("'hda'") && e.expected.contains("es1370"));
    }

    #[test]
    fn actions_keymaps_uuids() {
        assert_eq!(
            action("rename-restart", false).unwrap(),
            Action::RenameRestart
        );
        assert!(action("coredump-restart", false).is_err());
        assert_eq!(
            action("coredump-restart", true).unwrap(),
            Action::CoredumpRestart
        );
        assert!(keymap("de-ch").is_ok() && keymap("dvorak").is_err());
        assert!(uuid("5D2C1B3E-8F3A-4C2D-9B1E-0A1B2C3D4E5F")
            .unwrap()
            .starts_with("5d2c"));
        assert!(uuid("5d2c1b3e8f3a4c2d9b1e0a1b2c3d4e5f").is_err());
    }
}
