//! `vif` entries: comma-separated `key=value` pairs, as xm's `create.py` accepted them.
//!
//! Keys: `type` (`ioemu`, or `netfront`/`vif` for a PV-only interface), `mac`, `bridge` (default `xenbr0`),
//! `model` (default `rtl8139`), `vifname`, `ip`, `script`, and the Xen-only `backend`, `rate`, `accel`,
//! `policy`, `label`. For `model=ne2k_isa` two keys of our own set the card's jumpers, as QEMU's
//! `-device ne2k_isa,iobase=,irq=` does: `iobase` (0x200 to 0x3E0 in steps of 0x20) and `irq` (3, 4, 5, 7,
//! 9, 10 or 11); without them the n-th ISA card gets the n-th of the usual pairs (0x300/9, 0x320/10, ...). An empty entry `''` is a NIC with every default. Without `mac`, xend drew a random
//! address `00:16:3e:XX:XX:XX` (Xen's OUI, the fourth byte below 0x80); we do the same, once per load.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

use super::keys::closest;
use super::model::{MacAddr, Nic, NicModel, NoticeKind};
use super::options::{bad, Bad};

/// A parsed vif entry with its notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedNic {
    pub nic: Nic,
    pub notes: Vec<(NoticeKind, String)>,
}

const VIF_KEYS: &[&str] = &[
    "type", "mac", "bridge", "model", "vifname", "ip", "script", "backend", "rate", "accel",
    "policy", "label", "iobase", "irq",
];

/// ISA IRQs an NE2000 may be jumpered to (the 8-bit/16-bit slot lines not taken by the timer, keyboard,
/// cascade, RTC, mouse, FPU and IDE).
pub(crate) const ISA_NIC_IRQS: [u8; 7] = [3, 4, 5, 7, 9, 10, 11];

fn parse_iobase(v: &str) -> Result<u16, Bad> {
    const EXPECTED: &str = "a port from 0x200 to 0x3e0 in steps of 0x20, such as iobase=0x300";
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => v.parse::<u16>(),
    }
    .map_err(|_| bad(format!("iobase={v}"), EXPECTED))?;
    if !(0x200..=0x3e0).contains(&n) || n % 0x20 != 0 {
        return Err(bad(format!("iobase={v}"), EXPECTED));
    }
    Ok(n)
}

fn parse_isa_irq(v: &str) -> Result<u8, Bad> {
    v.parse::<u8>()
        .ok()
        .filter(|n| ISA_NIC_IRQS.contains(n))
        .ok_or_else(|| {
            bad(
                format!("irq={v}"),
                "one of the ISA IRQs 3, 4, 5, 7, 9, 10, 11",
            )
        })
}

/// A random MAC in Xen's range `00:16:3e:00:00:00`–`00:16:3e:7f:ff:ff`.
pub(crate) fn random_mac() -> MacAddr {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    let r = h.finish().to_le_bytes();
    MacAddr([0x00, 0x16, 0x3e, r[0] & 0x7f, r[1], r[2]])
}

fn parse_mac(s: &str) -> Result<MacAddr, Bad> {
    const EXPECTED: &str = "six hex bytes such as 00:16:3e:12:34:56";
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(bad(format!("the MAC address '{s}'"), EXPECTED));
    }
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.is_empty() || part.len() > 2 {
            return Err(bad(format!("the MAC address '{s}'"), EXPECTED));
        }
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| bad(format!("the MAC address '{s}'"), EXPECTED))?;
    }
    if mac[0] & 1 != 0 {
        return Err(bad(
            format!("the multicast MAC address '{s}'"),
            "a unicast address (the first byte even)",
        ));
    }
    if mac == [0; 6] {
        return Err(bad(
            "the MAC address 00:00:00:00:00:00",
            "a real unicast address",
        ));
    }
    Ok(MacAddr(mac))
}

fn interface_name(what: &str, s: &str) -> Result<String, Bad> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b',');
    if ok {
        Ok(s.to_string())
    } else {
        Err(bad(
            format!("the {what} '{s}'"),
            format!("a {what} of 1 to 15 characters without '/', ':' or spaces"),
        ))
    }
}

/// Parses one `vif` entry; `mac` is the address to use when the entry has none.
pub(crate) fn parse(spec: &str, mac: impl FnOnce() -> MacAddr) -> Result<ParsedNic, Bad> {
    let mut seen: Vec<&str> = Vec::new();
    let mut nic = Nic {
        model: NicModel::Rtl8139,
        mac: MacAddr([0; 6]),
        mac_generated: true,
        bridge: "xenbr0".to_string(),
        vifname: None,
        ip: None,
        script: None,
        emulated: true,
        isa_base: None,
        isa_irq: None,
    };
    let mut given_mac = None;
    let mut notes = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| {
                bad(
                    format!("'{item}' in '{spec}'"),
                    "key=value items such as mac=00:16:3e:00:00:01",
                )
            })?;
        if !VIF_KEYS.contains(&k) {
            let hint = closest(k, VIF_KEYS.iter().copied())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(bad(
                format!("the unknown vif option '{k}'{hint}"),
                format!("one of {}", VIF_KEYS.join(", ")),
            ));
        }
        if seen.contains(&k) {
            return Err(bad(
                format!("'{k}=' twice in '{spec}'"),
                "each vif option at most once",
            ));
        }
        seen.push(k);
        match k {
            "type" => match v {
                "ioemu" => nic.emulated = true,
                "netfront" | "vif" => nic.emulated = false,
                other => {
                    return Err(bad(
                        format!("type={other}"),
                        "type=ioemu (emulated NIC) or type=netfront (PV only)",
                    ))
                }
            },
            "mac" => given_mac = Some(parse_mac(v)?),
            "bridge" => nic.bridge = interface_name("bridge name", v)?,
            "vifname" => nic.vifname = Some(interface_name("interface name", v)?),
            "model" => {
                nic.model = NicModel::ALL
                    .iter()
                    .find(|(_, n)| *n == v)
                    .map(|(m, _)| *m)
                    .ok_or_else(|| {
                        let names: Vec<&str> = NicModel::ALL.iter().map(|(_, n)| *n).collect();
                        bad(
                            format!("the unknown NIC model '{v}'"),
                            format!("one of {}", names.join(", ")),
                        )
                    })?
            }
            "ip" => nic.ip = Some(v.to_string()),
            "script" => {
                if v.is_empty() {
                    return Err(bad("an empty script=", "the path of a host network script"));
                }
                nic.script = Some(PathBuf::from(v));
            }
            "iobase" => nic.isa_base = Some(parse_iobase(v)?),
            "irq" => nic.isa_irq = Some(parse_isa_irq(v)?),
            "rate" => notes.push((
                NoticeKind::NotAvailable,
                format!("rate={v}: bandwidth limiting is not available"),
            )),
            other => notes.push((
                NoticeKind::NoEffect,
                format!("{other}={v} is a Xen back-end setting"),
            )),
        }
    }
    if (nic.isa_base.is_some() || nic.isa_irq.is_some()) && nic.model != NicModel::Ne2kIsa {
        return Err(bad(
            format!("iobase=/irq= for model={}", nic.model.name()),
            "iobase= and irq= only with model=ne2k_isa (PCI cards get their ports and IRQ from the firmware)",
        ));
    }
    match given_mac {
        Some(m) => {
            nic.mac = m;
            nic.mac_generated = false;
        }
        None => nic.mac = mac(),
    }
    Ok(ParsedNic { nic, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> MacAddr {
        MacAddr([0, 0x16, 0x3e, 1, 2, 3])
    }

    #[test]
    fn documented_entry_and_defaults() {
        let n = parse(
            "type=ioemu, mac=00:16:3e:00:00:11, bridge=xenbr0, model=rtl8139",
            fixed,
        )
        .unwrap()
        .nic;
        assert_eq!(n.mac.to_string(), "00:16:3e:00:00:11");
        assert!(!n.mac_generated && n.emulated);
        assert_eq!(n.model, NicModel::Rtl8139);
        let n = parse("", fixed).unwrap().nic;
        assert_eq!(
            (n.model, n.bridge.as_str(), n.mac, n.mac_generated),
            (NicModel::Rtl8139, "xenbr0", fixed(), true)
        );
        let n = parse(
            "model=ne2k_pci,vifname=guest0,bridge=br1,ip=10.0.0.2,script=vif-bridge",
            fixed,
        )
        .unwrap()
        .nic;
        assert_eq!(
            (n.model, n.vifname.as_deref(), n.bridge.as_str()),
            (NicModel::Ne2kPci, Some("guest0"), "br1")
        );
        assert!(!parse("type=netfront", fixed).unwrap().nic.emulated);
        assert_eq!(
            parse("rate=10Mb/s", fixed).unwrap().notes[0].0,
            NoticeKind::NotAvailable
        );
    }

    #[test]
    fn isa_jumpers() {
        let n = parse("model=ne2k_isa,iobase=0x340,irq=5", fixed)
            .unwrap()
            .nic;
        assert_eq!((n.isa_base, n.isa_irq), (Some(0x340), Some(5)));
        let n = parse("model=ne2k_isa,iobase=768", fixed).unwrap().nic;
        assert_eq!((n.isa_base, n.isa_irq), (Some(0x300), None));
        let n = parse("model=ne2k_isa", fixed).unwrap().nic;
        assert_eq!((n.isa_base, n.isa_irq), (None, None));
    }

    #[test]
    fn random_macs_are_in_xens_range() {
        for _ in 0..64 {
            let m = random_mac().0;
            assert_eq!(&m[..3], &[0x00, 0x16, 0x3e]);
            assert!(m[3] < 0x80);
        }
        assert_ne!(random_mac(), random_mac());
    }

    #[test]
    fn bad_entries() {
        for (spec, found) in [
            ("model=virtio", "'virtio'"),
            ("mac=01:16:3e:00:00:01", "multicast"),
            ("mac=00:16:3e:00:00", "MAC address"),
            ("mac=00:16:3e:00:00:zz", "MAC address"),
            ("bridge=averyveryverylongbridge", "bridge name"),
            ("brige=xenbr0", "did you mean 'bridge'"),
            ("mac", "'mac'"),
            ("type=foo", "type=foo"),
            ("mac=00:16:3e:00:00:01,mac=00:16:3e:00:00:02", "twice"),
            ("model=ne2k_isa,iobase=0x310", "iobase=0x310"),
            ("model=ne2k_isa,iobase=0x400", "iobase=0x400"),
            ("model=ne2k_isa,iobase=0x1f0", "iobase=0x1f0"),
            ("model=ne2k_isa,iobase=zz", "iobase=zz"),
            ("model=ne2k_isa,irq=14", "irq=14"),
            ("model=ne2k_isa,irq=", "irq="),
            ("model=rtl8139,irq=9", "model=rtl8139"),
            ("iobase=0x300", "model=rtl8139"),
        ] {
            let e = parse(spec, fixed).unwrap_err();
            assert!(e.found.contains(found), "{spec}: {e:?}");
        }
    }
}
