//! Recognising and checking a kernel image before anything is loaded.
//!
//! Two formats start without firmware:
//!
//! * an ELF `vmlinux` (64-bit, x86-64) carrying a `XEN_ELFNOTE_PHYS32_ENTRY` note: the PVH entry point,
//!   entered in 32-bit protected mode with paging off and `%ebx` pointing at an `hvm_start_info`;
//! * a `bzImage` whose setup header (boot protocol 2.12 or later) sets `XLF_KERNEL_64`: its 64-bit entry,
//!   0x200 bytes into the protected-mode part, is entered in long mode with `%rsi` pointing at the zero page.
//!
//! The checks here read only headers, so every way a file can be wrong gets its own message and no load
//! starts on a file that cannot work. `linux-loader` then does the loading; these checks guarantee that what
//! it is given is well formed and fits the guest's RAM. Own parsing of the ELF program headers and notes is
//! needed for that (the crate only reports a failed read when a segment lies outside RAM, and finds the
//! PVH note only while loading).

use super::{DirectBootError, LOW_MEMORY_END};

/// ELF program header type of a loadable segment.
const PT_LOAD: u32 = 1;
/// ELF program header type of a note segment.
const PT_NOTE: u32 = 4;
/// The Xen note type whose descriptor is the 32-bit physical PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Size of an ELF64 file header.
const EHDR_LEN: usize = 64;
/// Size of an ELF64 program header.
const PHDR_LEN: usize = 56;
/// Offset of the bzImage setup header in the file.
pub const SETUP_HEADER_OFFSET: usize = 0x1f1;
/// `HdrS`, the setup header's magic at 0x202.
pub const SETUP_MAGIC: u32 = 0x5372_6448;
/// First boot protocol with `xloadflags` (and `pref_address`, `init_size`).
pub const MIN_BOOT_PROTOCOL: u16 = 0x020c;
/// `xloadflags` bit: the kernel has the 64-bit entry point at 0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `loadflags` bit: the protected-mode part is loaded at 1 MiB.
pub const LOADED_HIGH: u8 = 1 << 0;
/// Where `linux-loader` puts a bzImage's protected-mode part (its `code32_start`).
pub const BZIMAGE_LOAD_ADDR: u64 = 0x10_0000;
/// Offset of the 64-bit entry point in the protected-mode part.
pub const BZIMAGE_ENTRY64_OFFSET: u64 = 0x200;
/// The x86 kernel's `COMMAND_LINE_SIZE`, including the NUL: the PVH path copies at most this much.
pub const PVH_CMDLINE_MAX: usize = 2048;

/// What kind of kernel a file holds, with what the loader needs from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An ELF vmlinux with a PVH entry note.
    Pvh {
        /// The 32-bit physical entry point from the note.
        entry: u32,
        /// Lowest guest address a loadable segment occupies.
        start: u64,
        /// First guest address above every loadable segment (including its zero-filled tail).
        end: u64,
    },
    /// A bzImage entered through the 64-bit boot protocol.
    BzImage {
        /// Boot protocol version (0x020c = 2.12).
        protocol: u16,
        /// Bytes of the protected-mode part (the file after the real-mode setup sectors).
        payload_len: u64,
        /// Where the kernel decompresses itself (`pref_address`).
        pref_address: u64,
        /// Bytes the kernel needs from `pref_address` while it decompresses and starts (`init_size`).
        init_size: u64,
        /// Highest address the initrd may reach (`initrd_addr_max`).
        initrd_addr_max: u64,
        /// Longest command line it accepts, without the NUL (`cmdline_size`).
        cmdline_size: u64,
    },
}

impl KernelFormat {
    /// First guest address above everything the kernel occupies until it has taken over memory
    /// management: the initrd and the boot data must stay clear of it.
    pub fn occupied_end(&self) -> u64 {
        match *self {
            KernelFormat::Pvh { end, .. } => end,
            KernelFormat::BzImage {
                payload_len,
                pref_address,
                init_size,
                ..
            } => (BZIMAGE_LOAD_ADDR + payload_len).max(pref_address.saturating_add(init_size)),
        }
    }

    /// The longest command line (without its NUL) this kernel takes.
    pub fn cmdline_max(&self) -> usize {
        match *self {
            KernelFormat::Pvh { .. } => PVH_CMDLINE_MAX - 1,
            KernelFormat::BzImage { cmdline_size, .. } => {
                usize::try_from(cmdline_size).unwrap_or(usize::MAX)
            }
        }
    }

    /// A short name for messages: "a PVH ELF vmlinux" or "a bzImage (boot protocol 2.15)".
    pub fn describe(&self) -> String {
        match self {
            KernelFormat::Pvh { entry, .. } => format!("an ELF vmlinux with PVH entry {entry:#x}"),
            KernelFormat::BzImage { protocol, .. } => format!(
                "a bzImage (boot protocol {}.{:02}, 64-bit entry)",
                protocol >> 8,
                protocol & 0xff
            ),
        }
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

const EXPECTED_KERNEL: &str =
    "a Linux bzImage (64-bit boot protocol 2.12+) or an ELF vmlinux with a PVH entry note";

fn bad(found: impl Into<String>, expected: impl Into<String>) -> DirectBootError {
    DirectBootError {
        key: "kernel",
        found: found.into(),
        expected: expected.into(),
    }
}

/// Recognises `image` and checks that it fits RAM below `ram_end` (the end of RAM below 4 GiB).
pub fn inspect(image: &[u8], ram_end: u64) -> Result<KernelFormat, DirectBootError> {
    if image.starts_with(b"\x7fELF") {
        return inspect_elf(image, ram_end);
    }
    if u32_at(image, 0x202) == Some(SETUP_MAGIC) {
        return inspect_bzimage(image, ram_end);
    }
    Err(bad(
        format!(
            "a file of {} bytes that is neither an ELF file nor a bzImage",
            image.len()
        ),
        EXPECTED_KERNEL,
    ))
}

fn too_big(what: &str, end: u64, ram_end: u64) -> DirectBootError {
    bad(
        format!(
            "{what} needing guest memory up to {:#x} ({} MiB), more than the {} MiB of RAM below 4 GiB",
            end,
            end.div_ceil(1 << 20),
            ram_end >> 20
        ),
        "a larger memory setting or a smaller kernel",
    )
}

fn inspect_elf(image: &[u8], ram_end: u64) -> Result<KernelFormat, DirectBootError> {
    let malformed = |what: &str| bad(format!("a malformed ELF file ({what})"), EXPECTED_KERNEL);
    if image.len() < EHDR_LEN {
        return Err(malformed("shorter than its header"));
    }
    if image[4] != 2 {
        return Err(bad(
            "a 32-bit ELF file",
            "a 64-bit x86 vmlinux (ELFCLASS64) with a PVH entry note",
        ));
    }
    if image[5] != 1 {
        return Err(malformed("not little-endian"));
    }
    let machine = u16_at(image, 18).unwrap_or(0);
    if machine != 62 {
        return Err(bad(
            format!("an ELF file for machine type {machine}"),
            "an x86-64 vmlinux (EM_X86_64)",
        ));
    }
    let phoff = u64_at(image, 32).unwrap_or(u64::MAX);
    let phentsize = usize::from(u16_at(image, 54).unwrap_or(0));
    let phnum = usize::from(u16_at(image, 56).unwrap_or(0));
    if phoff < EHDR_LEN as u64 {
        return Err(malformed("program headers overlap the file header"));
    }
    if phentsize != PHDR_LEN {
        return Err(malformed("program header size is not 56"));
    }
    let table_end = usize::try_from(phoff)
        .ok()
        .and_then(|o| o.checked_add(phnum * PHDR_LEN))
        .filter(|&e| e <= image.len())
        .ok_or_else(|| malformed("program headers beyond the end of the file"))?;
    let table = &image[table_end - phnum * PHDR_LEN..table_end];

    let mut start = u64::MAX;
    let mut end = 0u64;
    let mut entry = None;
    for ph in table.chunks_exact(PHDR_LEN) {
        let p_type = u32_at(ph, 0).unwrap_or(0);
        let offset = u64_at(ph, 8).unwrap_or(0);
        let paddr = u64_at(ph, 24).unwrap_or(0);
        let filesz = u64_at(ph, 32).unwrap_or(0);
        let memsz = u64_at(ph, 40).unwrap_or(0);
        let in_file = offset
            .checked_add(filesz)
            .is_some_and(|e| e <= image.len() as u64);
        match p_type {
            PT_LOAD => {
                if !in_file {
                    return Err(malformed("a segment beyond the end of the file"));
                }
                if filesz > memsz {
                    return Err(malformed("a segment larger in the file than in memory"));
                }
                let seg_end = paddr
                    .checked_add(memsz)
                    .ok_or_else(|| malformed("a segment address overflows"))?;
                if paddr < LOW_MEMORY_END {
                    return Err(bad(
                        format!("a segment at {paddr:#x}, below 1 MiB"),
                        "a kernel linked to load at or above 1 MiB",
                    ));
                }
                if seg_end > ram_end {
                    return Err(too_big("an ELF kernel", seg_end, ram_end));
                }
                start = start.min(paddr);
                end = end.max(seg_end);
            }
            PT_NOTE if in_file => {
                let (o, n) = (offset as usize, filesz as usize);
                if let Some(e) = pvh_note(&image[o..o + n]) {
                    entry = Some(e);
                }
            }
            PT_NOTE => return Err(malformed("a note segment beyond the end of the file")),
            _ => {}
        }
    }
    if end == 0 {
        return Err(malformed("no loadable segment"));
    }
    let entry = entry.ok_or_else(|| {
        bad(
            "an ELF kernel without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
            "a vmlinux built with CONFIG_PVH=y, or its bzImage",
        )
    })?;
    if !(start..end).contains(&u64::from(entry)) {
        return Err(malformed(
            "the PVH entry point lies outside the loaded segments",
        ));
    }
    Ok(KernelFormat::Pvh { entry, start, end })
}

/// The PVH entry of a note segment, if it has one: a note named "Xen" of type 18 whose descriptor (4 or 8
/// bytes, little-endian) is a 32-bit address.
pub fn pvh_note(mut notes: &[u8]) -> Option<u32> {
    let pad4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0)? as usize;
        let descsz = u32_at(notes, 4)? as usize;
        let kind = u32_at(notes, 8)?;
        let name_end = 12usize.checked_add(pad4(namesz)?)?;
        let desc_end = name_end.checked_add(pad4(descsz)?)?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && notes.get(12..12 + namesz) == Some(b"Xen\0") {
            let desc = &notes[name_end..name_end + descsz];
            return match descsz {
                4 => u32_at(desc, 0),
                8 => u64_at(desc, 0).and_then(|v| u32::try_from(v).ok()),
                _ => None,
            };
        }
        notes = &notes[desc_end..];
    }
    None
}

fn inspect_bzimage(image: &[u8], ram_end: u64) -> Result<KernelFormat, DirectBootError> {
    let truncated = || {
        bad(
            "a truncated bzImage (its setup header is cut off)",
            EXPECTED_KERNEL,
        )
    };
    let protocol = u16_at(image, 0x206).ok_or_else(truncated)?;
    if protocol < MIN_BOOT_PROTOCOL {
        return Err(bad(
            format!(
                "a bzImage with boot protocol {}.{:02}",
                protocol >> 8,
                protocol & 0xff
            ),
            "boot protocol 2.12 or later (Linux 3.8+), whose 64-bit entry point starts without firmware",
        ));
    }
    let loadflags = *image.get(0x211).ok_or_else(truncated)?;
    let xloadflags = u16_at(image, 0x236).ok_or_else(truncated)?;
    if loadflags & LOADED_HIGH == 0 || xloadflags & XLF_KERNEL_64 == 0 {
        return Err(bad(
            "a bzImage without a 64-bit entry point (a 32-bit kernel, or XLF_KERNEL_64 unset)",
            "a 64-bit x86 kernel",
        ));
    }
    let setup_sects = match image[SETUP_HEADER_OFFSET] {
        0 => 4,
        n => u64::from(n),
    };
    let setup_len = (setup_sects + 1) * 512;
    let payload_len = (image.len() as u64)
        .checked_sub(setup_len)
        .filter(|&n| n > 0)
        .ok_or_else(|| bad("a bzImage shorter than its setup sectors", EXPECTED_KERNEL))?;
    let initrd_addr_max = u64::from(u32_at(image, 0x22c).ok_or_else(truncated)?);
    let cmdline_size = u64::from(u32_at(image, 0x238).ok_or_else(truncated)?);
    let pref_address = u64_at(image, 0x258).ok_or_else(truncated)?;
    let init_size = u64::from(u32_at(image, 0x260).ok_or_else(truncated)?);
    let format = KernelFormat::BzImage {
        protocol,
        payload_len,
        pref_address,
        init_size,
        initrd_addr_max,
        cmdline_size,
    };
    let end = format.occupied_end();
    if end > ram_end || pref_address.checked_add(init_size).is_none() {
        return Err(too_big("a bzImage that decompresses itself", end, ram_end));
    }
    Ok(format)
}
