//! Boot order: Xen's `boot` letters, and how SeaBIOS is told about them.
//!
//! # The letters
//!
//! A Xen HVM config says `boot = "dc"`: each letter names a kind of device, in order of preference — `a`
//! floppy, `c` hard disk, `d` CD-ROM, `n` network. As in qemu-dm (QEMU's `set_boot_dev`), a letter may appear
//! once, any other character is an error, and at most three letters fit the PC's CMOS. The default (`cd` in
//! xl, `c` in xm) is the config reader's business.
//!
//! # Two channels to SeaBIOS
//!
//! * **CMOS** 0x3D (bits 3:0 first device, 7:4 second) and 0x38 (bits 7:4 third device; bit 0 set means "do not
//!   check the floppy boot signature"), with 1 = floppy, 2 = hard disk, 3 = CD-ROM, 4 = network. SeaBIOS gives
//!   these device *types* priorities 101–103. Bit 0 of 0x38 stays clear as in QEMU (whose `fd-bootchk` is on by
//!   default), so a floppy without the 0x55AA signature is not booted.
//! * **fw_cfg `bootorder`**: newline-separated device paths, line *n* getting priority *n*, which beats the CMOS
//!   priorities. SeaBIOS compares each path against the path it builds for a device it found:
//!   - IDE: `/pci@i0cf8/*@1,1/drive@<channel>/disk@<unit>` (PIIX3 IDE is 00:01.1; CD-ROMs are `disk@` too), so
//!     slot hda..hdd is channel `slot / 2`, unit `slot % 2`;
//!   - floppy: `/pci@i0cf8/isa@1/fdc@03f0/floppy@<n>` (the ISA bridge at 00:01.0);
//!   - network: the NIC's PCI path, which the machine supplies.
//!
//!   A letter whose kind has no device contributes no line. The text ends with a newline and carries no NUL;
//!   SeaBIOS sees the empty remainder after the last newline as a line that matches nothing.
//!
//! The CMOS bytes alone already order the *kinds*; the file pins exact drives and NICs (which disk of several,
//! which NIC's ROM) and is what QEMU gives SeaBIOS, so both channels are filled and agree.

use std::fmt;
use std::str::FromStr;

/// A kind of boot device, as a `boot` letter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum BootDevice {
    /// `a`: the floppy drive(s).
    Floppy,
    /// `c`: the IDE hard disk(s).
    Disk,
    /// `d`: the IDE CD-ROM drive(s).
    Cdrom,
    /// `n`: network boot through the NICs' option ROMs.
    Network,
}

impl BootDevice {
    /// The device for a `boot` letter.
    pub fn from_letter(letter: char) -> Option<Self> {
        match letter {
            'a' => Some(BootDevice::Floppy),
            'c' => Some(BootDevice::Disk),
            'd' => Some(BootDevice::Cdrom),
            'n' => Some(BootDevice::Network),
            _ => None,
        }
    }

    /// The `boot` letter.
    pub fn letter(self) -> char {
        match self {
            BootDevice::Floppy => 'a',
            BootDevice::Disk => 'c',
            BootDevice::Cdrom => 'd',
            BootDevice::Network => 'n',
        }
    }

    /// The 4-bit code in CMOS 0x3D/0x38.
    pub fn cmos_code(self) -> u8 {
        match self {
            BootDevice::Floppy => 1,
            BootDevice::Disk => 2,
            BootDevice::Cdrom => 3,
            BootDevice::Network => 4,
        }
    }
}

/// Most letters the CMOS registers hold.
pub const MAX_BOOT_DEVICES: usize = 3;
/// Longest NIC path accepted in the bootorder file (SeaBIOS builds its own paths in 256-byte buffers).
pub const MAX_DEVICE_PATH: usize = 200;

/// Why a `boot` value or a device path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootError {
    /// `boot = ""`.
    #[error(
        "boot order is empty (expected letters from a (floppy), c (disk), d (CD-ROM), n (network))"
    )]
    Empty,
    /// A character that names no device.
    #[error("boot order '{order}': unknown device '{letter}' (expected a (floppy), c (disk), d (CD-ROM) or n (network))")]
    UnknownLetter {
        /// The whole value.
        order: String,
        /// The offending character.
        letter: char,
    },
    /// A letter given twice.
    #[error("boot order '{order}': device '{letter}' is listed twice")]
    Duplicate {
        /// The whole value.
        order: String,
        /// The repeated letter.
        letter: char,
    },
    /// More than three letters.
    #[error("boot order '{0}': at most {MAX_BOOT_DEVICES} boot devices fit a PC's CMOS")]
    TooMany(String),
    /// A NIC path that is empty, too long, or contains a control character.
    #[error("invalid boot device path {0:?}")]
    BadDevicePath(String),
}

/// An ordered list of distinct boot device kinds, parsed from Xen's `boot` letters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootOrder(Vec<BootDevice>);

impl FromStr for BootOrder {
    type Err = BootError;

    fn from_str(order: &str) -> Result<Self, Self::Err> {
        if order.is_empty() {
            return Err(BootError::Empty);
        }
        let mut devices = Vec::new();
        for letter in order.chars() {
            let device =
                BootDevice::from_letter(letter).ok_or_else(|| BootError::UnknownLetter {
                    order: order.to_string(),
                    letter,
                })?;
            if devices.contains(&device) {
                return Err(BootError::Duplicate {
                    order: order.to_string(),
                    letter,
                });
            }
            devices.push(device);
        }
        if devices.len() > MAX_BOOT_DEVICES {
            return Err(BootError::TooMany(order.to_string()));
        }
        Ok(BootOrder(devices))
    }
}

impl fmt::Display for BootOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|d| write!(f, "{}", d.letter()))
    }
}

/// What an IDE slot (hda, hdb, hdc, hdd = primary master/slave, secondary master/slave) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdeSlot {
    /// Nothing.
    #[default]
    Empty,
    /// A hard disk of `sectors` 512-byte sectors (the size decides the BIOS geometry translation).
    Disk {
        /// Capacity in 512-byte sectors.
        sectors: u64,
    },
    /// An ATAPI CD-ROM drive (with or without a medium).
    Cdrom,
}

/// The bootable devices the machine has, as the bootorder file names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootDevices {
    /// IDE slots hda..hdd.
    pub ide: [IdeSlot; 4],
    /// Number of floppy drives (0 to 2; more are ignored).
    pub floppies: u8,
    /// Firmware paths of the NICs in boot preference order, e.g. `/pci@i0cf8/ethernet@3`.
    pub nics: Vec<String>,
}

/// The SeaBIOS path of IDE `slot` (0 = hda .. 3 = hdd) on the PIIX3 IDE function 00:01.1.
pub fn ide_path(slot: usize) -> String {
    format!("/pci@i0cf8/ide@1,1/drive@{}/disk@{}", slot / 2, slot % 2)
}

/// The SeaBIOS path of floppy drive `unit` behind the PIIX3 ISA bridge 00:01.0.
pub fn floppy_path(unit: u8) -> String {
    format!("/pci@i0cf8/isa@1/fdc@03f0/floppy@{unit}")
}

impl BootOrder {
    /// The device kinds in order of preference.
    pub fn devices(&self) -> &[BootDevice] {
        &self.0
    }

    /// CMOS (index, value) pairs: 0x3D = first | second << 4, 0x38 = third << 4 (floppy signature check on).
    pub fn cmos_bytes(&self) -> [(u8, u8); 2] {
        let code = |i: usize| self.0.get(i).map_or(0, |d| d.cmos_code());
        [(0x3D, code(0) | (code(1) << 4)), (0x38, code(2) << 4)]
    }

    /// The fw_cfg `bootorder` text for `devices`: one line per existing device, kinds in boot order and
    /// devices of a kind in slot order. Empty if no device of any listed kind exists.
    pub fn bootorder_file(&self, devices: &BootDevices) -> Result<String, BootError> {
        let mut out = String::new();
        let mut line = |path: &str| {
            out.push_str(path);
            out.push('\n');
        };
        for device in &self.0 {
            match device {
                BootDevice::Floppy => {
                    (0..devices.floppies.min(2)).for_each(|u| line(&floppy_path(u)))
                }
                BootDevice::Disk | BootDevice::Cdrom => {
                    for (slot, kind) in devices.ide.iter().enumerate() {
                        let wanted = match kind {
                            IdeSlot::Disk { .. } => *device == BootDevice::Disk,
                            IdeSlot::Cdrom => *device == BootDevice::Cdrom,
                            IdeSlot::Empty => false,
                        };
                        if wanted {
                            line(&ide_path(slot));
                        }
                    }
                }
                BootDevice::Network => {
                    for nic in &devices.nics {
                        let valid = !nic.is_empty()
                            && nic.len() <= MAX_DEVICE_PATH
                            && !nic.chars().any(char::is_control);
                        if !valid {
                            return Err(BootError::BadDevicePath(nic.clone()));
                        }
                        line(nic);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(s: &str) -> BootOrder {
        s.parse().unwrap()
    }

    fn hda_disk_hdc_cd() -> BootDevices {
        BootDevices {
            ide: [
                IdeSlot::Disk { sectors: 1 << 20 },
                IdeSlot::Empty,
                IdeSlot::Cdrom,
                IdeSlot::Empty,
            ],
            ..Default::default()
        }
    }

    #[test]
    fn letters_parse_in_order() {
        use BootDevice::*;
        assert_eq!(order("dc").devices(), [Cdrom, Disk]);
        assert_eq!(order("c").devices(), [Disk]);
        assert_eq!(order("cd").devices(), [Disk, Cdrom]);
        assert_eq!(order("n").devices(), [Network]);
        assert_eq!(order("adc").devices(), [Floppy, Cdrom, Disk]);
        assert_eq!(order("adc").to_string(), "adc");
    }

    #[test]
    fn bad_orders_are_refused_with_the_offending_letter() {
        assert_eq!("".parse::<BootOrder>(), Err(BootError::Empty));
        assert_eq!(
            "dx".parse::<BootOrder>(),
            Err(BootError::UnknownLetter {
                order: "dx".into(),
                letter: 'x'
            })
        );
        assert_eq!(
            "C".parse::<BootOrder>(),
            Err(BootError::UnknownLetter {
                order: "C".into(),
                letter: 'C'
            })
        );
        assert_eq!(
            "cdc".parse::<BootOrder>(),
            Err(BootError::Duplicate {
                order: "cdc".into(),
                letter: 'c'
            })
        );
        assert_eq!(
            "adcn".parse::<BootOrder>(),
            Err(BootError::TooMany("adcn".into()))
        );
        let msg = "d c".parse::<BootOrder>().unwrap_err().to_string();
        assert!(msg.contains("unknown device ' '"), "{msg}");
    }

    #[test]
    fn cmos_codes_match_qemu() {
        assert_eq!(order("dc").cmos_bytes(), [(0x3D, 0x23), (0x38, 0x00)]);
        assert_eq!(order("c").cmos_bytes(), [(0x3D, 0x02), (0x38, 0x00)]);
        assert_eq!(order("cd").cmos_bytes(), [(0x3D, 0x32), (0x38, 0x00)]);
        assert_eq!(order("n").cmos_bytes(), [(0x3D, 0x04), (0x38, 0x00)]);
        assert_eq!(order("adc").cmos_bytes(), [(0x3D, 0x31), (0x38, 0x20)]);
    }

    #[test]
    fn bootorder_for_dc_names_the_cd_then_the_disk() {
        assert_eq!(
            order("dc").bootorder_file(&hda_disk_hdc_cd()).unwrap(),
            "/pci@i0cf8/ide@1,1/drive@1/disk@0\n/pci@i0cf8/ide@1,1/drive@0/disk@0\n"
        );
        assert_eq!(
            order("cd").bootorder_file(&hda_disk_hdc_cd()).unwrap(),
            "/pci@i0cf8/ide@1,1/drive@0/disk@0\n/pci@i0cf8/ide@1,1/drive@1/disk@0\n"
        );
    }

    #[test]
    fn every_slot_maps_to_its_channel_and_unit() {
        let devices = BootDevices {
            ide: [
                IdeSlot::Cdrom,
                IdeSlot::Disk { sectors: 8 },
                IdeSlot::Disk { sectors: 8 },
                IdeSlot::Cdrom,
            ],
            ..Default::default()
        };
        assert_eq!(
            order("cd").bootorder_file(&devices).unwrap(),
            "/pci@i0cf8/ide@1,1/drive@0/disk@1\n/pci@i0cf8/ide@1,1/drive@1/disk@0\n\
             /pci@i0cf8/ide@1,1/drive@0/disk@0\n/pci@i0cf8/ide@1,1/drive@1/disk@1\n"
        );
    }

    #[test]
    fn missing_kinds_contribute_nothing() {
        // No floppy, no NIC: 'a' and 'n' add no lines.
        assert_eq!(
            order("adc").bootorder_file(&hda_disk_hdc_cd()).unwrap(),
            "/pci@i0cf8/ide@1,1/drive@1/disk@0\n/pci@i0cf8/ide@1,1/drive@0/disk@0\n"
        );
        assert_eq!(order("n").bootorder_file(&hda_disk_hdc_cd()).unwrap(), "");
        assert_eq!(
            order("d").bootorder_file(&BootDevices::default()).unwrap(),
            ""
        );
    }

    #[test]
    fn floppies_and_nics_are_named() {
        let devices = BootDevices {
            floppies: 7,
            nics: vec![
                "/pci@i0cf8/ethernet@3".into(),
                "/pci@i0cf8/ethernet@4".into(),
            ],
            ..hda_disk_hdc_cd()
        };
        assert_eq!(
            order("na").bootorder_file(&devices).unwrap(),
            "/pci@i0cf8/ethernet@3\n/pci@i0cf8/ethernet@4\n\
             /pci@i0cf8/isa@1/fdc@03f0/floppy@0\n/pci@i0cf8/isa@1/fdc@03f0/floppy@1\n"
        );
    }

    #[test]
    fn nic_paths_cannot_inject_lines() {
        for bad in [
            "",
            "/pci@i0cf8/ethernet@3\nHALT",
            &"x".repeat(MAX_DEVICE_PATH + 1),
        ] {
            let devices = BootDevices {
                nics: vec![bad.to_string()],
                ..Default::default()
            };
            assert_eq!(
                order("n").bootorder_file(&devices),
                Err(BootError::BadDevicePath(bad.to_string()))
            );
        }
    }
}
