//! The `etc/e820` fw_cfg file: the memory map SeaBIOS starts from.
//!
//! SeaBIOS reads it early (`qemu_early_e820`), takes its RAM entries as the RAM size below and above 4 GiB,
//! and copies RAM and reserved entries into the map it later hands to the OS through INT 15h E820h. Given this
//! file it ignores the CMOS memory registers, so this is the only way to describe RAM above 4 GiB to it.
//!
//! The table is what QEMU gives: RAM from 0 to the top of low RAM *whole*, the 16 KiB KVM identity-map and TSS
//! pages reserved, and RAM from 4 GiB. SeaBIOS itself carves out what it owns (the EBDA at 0x9FC00, the BIOS
//! area 0xF0000–0xFFFFF, its high zone at the top of low RAM and the flash alias below 4 GiB), so those
//! reservations must not be duplicated here.
//!
//! Each entry is packed little-endian `{u64 address; u64 length; u32 type}`, 20 bytes, with no count in front.

use std::fmt::Write as _;

use crate::layout::{MemoryLayout, FOUR_GIB, KVM_IDENTITY_MAP_ADDR, KVM_RESERVED_LEN};

/// Bytes per entry in the fw_cfg file.
pub const ENTRY_LEN: usize = 20;

/// The type of an e820 range (SeaBIOS accepts only these two from fw_cfg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E820Type {
    /// Usable RAM.
    Ram = 1,
    /// Reserved: the OS must not use it.
    Reserved = 2,
}

impl E820Type {
    fn name(self) -> &'static str {
        match self {
            E820Type::Ram => "RAM",
            E820Type::Reserved => "reserved",
        }
    }
}

/// One range of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// Guest-physical start.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the range is.
    pub kind: E820Type,
}

/// The map for `layout`, sorted by address.
pub fn e820_table(layout: &MemoryLayout) -> Vec<E820Entry> {
    let mut table = vec![
        E820Entry {
            addr: 0,
            len: layout.below_4g,
            kind: E820Type::Ram,
        },
        E820Entry {
            addr: KVM_IDENTITY_MAP_ADDR,
            len: KVM_RESERVED_LEN,
            kind: E820Type::Reserved,
        },
    ];
    if layout.above_4g > 0 {
        table.push(E820Entry {
            addr: FOUR_GIB,
            len: layout.above_4g,
            kind: E820Type::Ram,
        });
    }
    table
}

/// Start of the EBDA a BIOS reserves at the top of conventional memory.
pub const EBDA_START: u64 = 0x9_FC00;
/// End of the first MiB (EBDA, VGA window, option ROMs and BIOS below it).
pub const LOW_MEMORY_END: u64 = 0x10_0000;

/// The map a directly booted kernel gets: what SeaBIOS would hand on for `layout`, that is [`e820_table`]
/// with the EBDA, the VGA window, the option-ROM area and the BIOS (0x9FC00-0xFFFFF) reserved. The MP table
/// lives in that reserved range.
pub fn direct_boot_table(layout: &MemoryLayout) -> Vec<E820Entry> {
    let mut table = vec![
        E820Entry {
            addr: 0,
            len: EBDA_START,
            kind: E820Type::Ram,
        },
        E820Entry {
            addr: EBDA_START,
            len: LOW_MEMORY_END - EBDA_START,
            kind: E820Type::Reserved,
        },
    ];
    if layout.below_4g > LOW_MEMORY_END {
        table.push(E820Entry {
            addr: LOW_MEMORY_END,
            len: layout.below_4g - LOW_MEMORY_END,
            kind: E820Type::Ram,
        });
    }
    table.extend(e820_table(layout).into_iter().skip(1));
    table
}

/// The `etc/e820` file contents.
pub fn to_bytes(table: &[E820Entry]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(table.len() * ENTRY_LEN);
    for entry in table {
        bytes.extend_from_slice(&entry.addr.to_le_bytes());
        bytes.extend_from_slice(&entry.len.to_le_bytes());
        bytes.extend_from_slice(&(entry.kind as u32).to_le_bytes());
    }
    bytes
}

/// A human-readable rendering, one range per line: `0x0000000000000000-0x0000000007ffffff RAM (128 MiB)`.
pub fn render(table: &[E820Entry]) -> String {
    let mut out = String::new();
    for entry in table {
        let last = entry.addr.saturating_add(entry.len.saturating_sub(1));
        let size = if entry.len % (1 << 20) == 0 {
            format!("{} MiB", entry.len >> 20)
        } else {
            format!("{} KiB", entry.len >> 10)
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:#018x}-{:#018x} {} ({})",
            entry.addr,
            last,
            entry.kind.name(),
            size
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MIB;

    #[test]
    fn small_guest_has_low_ram_and_the_kvm_reservation() {
        let table = e820_table(&MemoryLayout::new(128).unwrap());
        assert_eq!(
            table,
            [
                E820Entry {
                    addr: 0,
                    len: 128 * MIB,
                    kind: E820Type::Ram
                },
                E820Entry {
                    addr: 0xFEFF_C000,
                    len: 0x4000,
                    kind: E820Type::Reserved
                },
            ]
        );
        let bytes = to_bytes(&table);
        assert_eq!(bytes.len(), 40);
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0]);
        expected.extend_from_slice(&[1, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0xC0, 0xFF, 0xFE, 0, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0x40, 0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&[2, 0, 0, 0]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn big_guest_gets_ram_above_4g() {
        let table = e820_table(&MemoryLayout::new(8192).unwrap());
        assert_eq!(table.len(), 3);
        assert_eq!(
            table[0],
            E820Entry {
                addr: 0,
                len: 0xE000_0000,
                kind: E820Type::Ram
            }
        );
        assert_eq!(
            table[2],
            E820Entry {
                addr: 1 << 32,
                len: 8192 * MIB - 0xE000_0000,
                kind: E820Type::Ram
            }
        );
        let bytes = to_bytes(&table);
        assert_eq!(&bytes[40..48], &[0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&bytes[48..56], &(0x1_2000_0000u64).to_le_bytes());
        assert_eq!(&bytes[56..60], &[1, 0, 0, 0]);
    }

    #[test]
    fn direct_boot_map_reserves_the_bios_areas_below_1m() {
        let text = render(&direct_boot_table(&MemoryLayout::new(4096).unwrap()));
        assert_eq!(
            text,
            "0x0000000000000000-0x000000000009fbff RAM (639 KiB)\n\
             0x000000000009fc00-0x00000000000fffff reserved (385 KiB)\n\
             0x0000000000100000-0x00000000dfffffff RAM (3583 MiB)\n\
             0x00000000feffc000-0x00000000feffffff reserved (16 KiB)\n\
             0x0000000100000000-0x000000011fffffff RAM (512 MiB)\n"
        );
        let small = direct_boot_table(&MemoryLayout::new(128).unwrap());
        assert_eq!(small.len(), 4);
        assert_eq!(small[2].addr + small[2].len, 128 * MIB);
    }

    #[test]
    fn rendering_is_one_line_per_range() {
        let text = render(&e820_table(&MemoryLayout::new(4096).unwrap()));
        assert_eq!(
            text,
            "0x0000000000000000-0x00000000dfffffff RAM (3584 MiB)\n\
             0x00000000feffc000-0x00000000feffffff reserved (16 KiB)\n\
             0x0000000100000000-0x000000011fffffff RAM (512 MiB)\n"
        );
    }
}
