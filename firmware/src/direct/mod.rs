//! Direct kernel boot: what the firmware would have done before a boot loader started Linux, done by the
//! device model instead, for a config whose `kernel` is a Linux kernel rather than hvmloader.
//!
//! [`DirectKernel::new`] recognises and checks the kernel and initrd against the memory size (see
//! [`image`]); [`DirectKernel::load`] writes into guest RAM, at power-on and at every reset:
//!
//! | guest address | what |
//! |---|---|
//! | 0x500 | GDT ([`cpu`]) |
//! | 0x6000 | PVH `hvm_start_info`, its module list at 0x6040 and memory map at 0x6100 |
//! | 0x7000 | the zero page (`boot_params`) of the 64-bit boot protocol |
//! | 0x9000–0xEFFF | long-mode identity map of the low 4 GiB (64-bit protocol) |
//! | 0x20000 | the command line |
//! | 0xF0000 | the MP table ([`mptable`]) |
//! | 1 MiB and up | the kernel: ELF segments at their physical addresses, or a bzImage's protected-mode part |
//! | top of RAM below 4 GiB (or `initrd_addr_max`) | the initrd, page aligned |
//!
//! The e820 map is [`crate::e820::direct_boot_table`]: the firmware's map with the BIOS areas (EBDA, VGA
//! hole, option ROMs, BIOS) below 1 MiB reserved, as a BIOS would leave them.
//!
//! **No ACPI tables.** The kernel learns its CPUs, IOAPIC and PCI interrupt routing from the MP table, which
//! both `acpi=0`-style and ACPI kernels accept. Building ACPI here would mean AML for the PCI host bridge
//! (`_CRS`, `_PRT`), the PIIX4 power-management block and sleep states that must track the machine's
//! wiring; without it the guest has no ACPI power button and powers off by halting. SeaBIOS builds full
//! ACPI on a firmware boot.

pub mod cpu;
pub mod image;
pub mod mptable;
#[cfg(test)]
mod tests;

use std::io::{Cursor, Read};
use std::path::Path;

use devices::memory::{Bytes, GuestAddress, GuestMemory};
use linux_loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bzimage::BzImage;
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::KernelLoader;
use linux_loader::start_info::{hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info};

pub use cpu::{BootEntry, EntryMode, Segment};
pub use image::KernelFormat;

use crate::e820::{direct_boot_table, E820Entry};
use crate::layout::MemoryLayout;

pub use crate::e820::LOW_MEMORY_END;
/// Guest address of the PVH `hvm_start_info`.
pub const START_INFO_ADDR: u64 = 0x6000;
/// Guest address of the PVH module list (the initrd).
pub const MODLIST_ADDR: u64 = 0x6040;
/// Guest address of the PVH memory map.
pub const MEMMAP_ADDR: u64 = 0x6100;
/// Guest address of the zero page.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Guest address of the command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Longest command line accepted whatever the kernel says (it must stay below the EBDA).
pub const CMDLINE_LIMIT: usize = 32 * 1024 - 1;
/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// `type_of_loader` for a boot loader without an assigned id.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Page size used for initrd alignment.
const PAGE: u64 = 4096;

/// Why a direct boot cannot go ahead: the config key at fault, what was found and what would work (the
/// config reader turns it into its one-line `file:line: key: found ..., expected ...` message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: found {found}, expected {expected}")]
pub struct DirectBootError {
    /// `kernel`, `ramdisk` or `extra`.
    pub key: &'static str,
    /// What is wrong.
    pub found: String,
    /// What would work.
    pub expected: String,
}

/// A kernel (with initrd and command line) checked against a memory layout and ready to load, as often as
/// the guest resets.
#[derive(Debug, Clone)]
pub struct DirectKernel {
    kernel: Vec<u8>,
    format: KernelFormat,
    initrd: Option<Vec<u8>>,
    initrd_addr: u64,
    cmdline: String,
    layout: MemoryLayout,
    vcpus: u8,
}

/// Reads at most `limit` bytes of `path`; a longer file is refused rather than read.
fn read_limited(path: &Path, key: &'static str, limit: u64) -> Result<Vec<u8>, DirectBootError> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| DirectBootError {
        key,
        found: format!("'{shown}', which cannot be opened ({e})"),
        expected: "a readable file".into(),
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DirectBootError {
            key,
            found: format!("'{shown}', which cannot be read ({e})"),
            expected: "a readable file".into(),
        })?;
    if bytes.len() as u64 > limit {
        return Err(DirectBootError {
            key,
            found: format!("'{shown}', larger than the guest's RAM below 4 GiB"),
            expected: "a file that fits in the guest's memory".into(),
        });
    }
    Ok(bytes)
}

impl DirectKernel {
    /// Reads `kernel` and `initrd` from the host and checks them (see [`DirectKernel::new`]).
    pub fn open(
        kernel: &Path,
        initrd: Option<&Path>,
        cmdline: &str,
        layout: MemoryLayout,
        vcpus: u32,
    ) -> Result<DirectKernel, DirectBootError> {
        let kernel_bytes = read_limited(kernel, "kernel", layout.below_4g)?;
        let initrd_bytes = initrd
            .map(|p| read_limited(p, "ramdisk", layout.below_4g))
            .transpose()?;
        Self::new(kernel_bytes, initrd_bytes, cmdline, layout, vcpus)
    }

    /// Recognises the kernel, checks that it, the initrd and the command line fit, and places the initrd.
    pub fn new(
        kernel: Vec<u8>,
        initrd: Option<Vec<u8>>,
        cmdline: &str,
        layout: MemoryLayout,
        vcpus: u32,
    ) -> Result<DirectKernel, DirectBootError> {
        let format = image::inspect(&kernel, layout.below_4g)?;
        let max = format.cmdline_max().min(CMDLINE_LIMIT);
        if cmdline.len() > max {
            return Err(DirectBootError {
                key: "extra",
                found: format!("a kernel command line of {} bytes", cmdline.len()),
                expected: format!("at most {max} bytes, what this kernel accepts"),
            });
        }
        if let Some(c) = cmdline.chars().find(|c| !matches!(c, ' '..='~')) {
            return Err(DirectBootError {
                key: "extra",
                found: format!("the character {c:?} in the kernel command line"),
                expected: "printable ASCII characters".into(),
            });
        }
        let initrd_addr = match &initrd {
            None => 0,
            Some(bytes) => place_initrd(&format, bytes.len() as u64, &layout)?,
        };
        Ok(DirectKernel {
            kernel,
            format,
            initrd,
            initrd_addr,
            cmdline: cmdline.to_string(),
            layout,
            vcpus: u8::try_from(vcpus.clamp(1, 255)).unwrap_or(255),
        })
    }

    /// What the kernel is.
    pub fn format(&self) -> KernelFormat {
        self.format
    }

    /// Guest address and length of the initrd, if there is one.
    pub fn initrd_range(&self) -> Option<(u64, u64)> {
        self.initrd
            .as_ref()
            .map(|b| (self.initrd_addr, b.len() as u64))
    }

    /// The e820 map the kernel is given.
    pub fn e820(&self) -> Vec<E820Entry> {
        direct_boot_table(&self.layout)
    }

    /// Writes the kernel, initrd, command line, boot information and MP table into `mem` and returns how
    /// the boot CPU enters the kernel. Called at power-on and at every reset: everything it relies on is
    /// written again, so a previous run's leftovers do not matter.
    pub fn load(&self, mem: &GuestMemory) -> Result<BootEntry, DirectBootError> {
        let write = |bytes: &[u8], addr: u64, what: &str| {
            mem.write_slice(bytes, GuestAddress(addr))
                .map_err(|e| DirectBootError {
                    key: "kernel",
                    found: format!("{what} not fitting guest memory at {addr:#x} ({e})"),
                    expected: "a larger memory setting".into(),
                })
        };
        // The boot data area (GDT up to the end of the page tables) and the command line start clean.
        write(&vec![0u8; 0xF000 - 0x500], 0x500, "the boot data")?;
        write(
            &vec![0u8; CMDLINE_LIMIT + 1],
            CMDLINE_ADDR,
            "the command line",
        )?;
        write(
            &vec![0u8; (LOW_MEMORY_END - mptable::MP_FLOATING_ADDR) as usize],
            mptable::MP_FLOATING_ADDR,
            "the BIOS area",
        )?;

        let entry = match self.format {
            KernelFormat::Pvh { .. } => self.load_pvh(mem)?,
            KernelFormat::BzImage { .. } => self.load_bzimage(mem)?,
        };
        let gdt: Vec<u8> = BootEntry::gdt(entry.mode)
            .iter()
            .flat_map(|d| d.to_le_bytes())
            .collect();
        write(&gdt, cpu::GDT_ADDR, "the GDT")?;
        if entry.mode == EntryMode::Long64 {
            for (addr, page) in cpu::identity_page_tables() {
                write(&page, addr, "the page tables")?;
            }
        }
        let mut cmdline = Cmdline::new(self.cmdline.len() + 1).map_err(loader_error)?;
        if !self.cmdline.is_empty() {
            cmdline.insert_str(&self.cmdline).map_err(loader_error)?;
        }
        linux_loader::loader::load_cmdline(mem, GuestAddress(CMDLINE_ADDR), &cmdline)
            .map_err(loader_error)?;
        if let Some(initrd) = &self.initrd {
            write(initrd, self.initrd_addr, "the initrd")?;
        }
        write(
            &mptable::build(self.vcpus),
            mptable::MP_FLOATING_ADDR,
            "the MP table",
        )?;
        Ok(entry)
    }

    fn load_pvh(&self, mem: &GuestMemory) -> Result<BootEntry, DirectBootError> {
        let loaded = Elf::load(
            mem,
            None,
            &mut Cursor::new(&self.kernel[..]),
            // No lower bound on `e_entry`: a PVH boot does not use it (image::inspect bounded the segments).
            None,
        )
        .map_err(loader_error)?;
        let entry = match loaded.pvh_boot_cap {
            PvhBootCapability::PvhEntryPresent(addr) => addr.0,
            _ => {
                return Err(DirectBootError {
                    key: "kernel",
                    found: "an ELF kernel in which the loader found no PVH entry note".into(),
                    expected: "a vmlinux built with CONFIG_PVH=y".into(),
                })
            }
        };
        self.zero_elf_bss(mem)?;

        let table = self.e820();
        let memmap: Vec<hvm_memmap_table_entry> = table
            .iter()
            .map(|e| hvm_memmap_table_entry {
                addr: e.addr,
                size: e.len,
                type_: e.kind as u32,
                reserved: 0,
            })
            .collect();
        let mut info = hvm_start_info {
            magic: START_INFO_MAGIC,
            version: 1,
            cmdline_paddr: CMDLINE_ADDR,
            memmap_paddr: MEMMAP_ADDR,
            memmap_entries: memmap.len() as u32,
            ..Default::default()
        };
        let store = |r: Result<(), vm_memory::GuestMemoryError>| {
            r.map_err(|e| DirectBootError {
                key: "kernel",
                found: format!("boot information not fitting low memory ({e})"),
                expected: "at least 1 MiB of RAM".into(),
            })
        };
        for (i, m) in memmap.iter().enumerate() {
            let at = MEMMAP_ADDR + (i * std::mem::size_of::<hvm_memmap_table_entry>()) as u64;
            store(mem.write_obj(*m, GuestAddress(at)))?;
        }
        if let Some((addr, len)) = self.initrd_range() {
            info.nr_modules = 1;
            info.modlist_paddr = MODLIST_ADDR;
            let module = hvm_modlist_entry {
                paddr: addr,
                size: len,
                ..Default::default()
            };
            store(mem.write_obj(module, GuestAddress(MODLIST_ADDR)))?;
        }
        store(mem.write_obj(info, GuestAddress(START_INFO_ADDR)))?;
        Ok(BootEntry::new(
            EntryMode::Protected32,
            entry,
            START_INFO_ADDR,
        ))
    }

    /// Zero-fills each loadable segment's tail beyond its file contents (`.bss`): `linux-loader` copies only
    /// the file part, and after a reset the RAM there holds the previous run's data.
    fn zero_elf_bss(&self, mem: &GuestMemory) -> Result<(), DirectBootError> {
        let image = &self.kernel;
        let rd = |off: usize, n: usize| -> u64 {
            image.get(off..off + n).map_or(0, |b| {
                b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x))
            })
        };
        let phoff = rd(32, 8) as usize;
        let phnum = rd(56, 2) as usize;
        for i in 0..phnum {
            let ph = phoff + i * 56;
            if rd(ph, 4) != 1 {
                continue;
            }
            let (paddr, filesz, memsz) = (rd(ph + 24, 8), rd(ph + 32, 8), rd(ph + 40, 8));
            // `image::inspect` checked that the segment lies in RAM and filesz <= memsz.
            let mut at = paddr + filesz;
            let end = paddr + memsz;
            let zeros = vec![0u8; 1 << 20];
            while at < end {
                let n = (end - at).min(zeros.len() as u64) as usize;
                mem.write_slice(&zeros[..n], GuestAddress(at))
                    .map_err(|e| DirectBootError {
                        key: "kernel",
                        found: format!("a segment beyond guest memory ({e})"),
                        expected: "a larger memory setting".into(),
                    })?;
                at += n as u64;
            }
        }
        Ok(())
    }

    fn load_bzimage(&self, mem: &GuestMemory) -> Result<BootEntry, DirectBootError> {
        let loaded = BzImage::load(
            mem,
            None,
            &mut Cursor::new(&self.kernel[..]),
            Some(GuestAddress(LOW_MEMORY_END)),
        )
        .map_err(loader_error)?;
        let hdr = loaded.setup_header.ok_or_else(|| DirectBootError {
            key: "kernel",
            found: "a bzImage whose setup header the loader did not return".into(),
            expected: "a Linux bzImage".into(),
        })?;
        let mut params = boot_params {
            hdr,
            ..Default::default()
        };
        params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
        params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
        params.ext_cmd_line_ptr = 0;
        if let Some((addr, len)) = self.initrd_range() {
            params.hdr.ramdisk_image = addr as u32;
            params.hdr.ramdisk_size = len as u32;
            params.ext_ramdisk_image = (addr >> 32) as u32;
            params.ext_ramdisk_size = (len >> 32) as u32;
        }
        let table = self.e820();
        for (slot, e) in params.e820_table.iter_mut().zip(&table) {
            *slot = boot_e820_entry {
                addr: e.addr,
                size: e.len,
                r#type: e.kind as u32,
            };
        }
        params.e820_entries = table.len().min(params.e820_table.len()) as u8;
        mem.write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
            .map_err(|e| DirectBootError {
                key: "kernel",
                found: format!("the zero page not fitting low memory ({e})"),
                expected: "at least 1 MiB of RAM".into(),
            })?;
        Ok(BootEntry::new(
            EntryMode::Long64,
            loaded.kernel_load.0 + image::BZIMAGE_ENTRY64_OFFSET,
            ZERO_PAGE_ADDR,
        ))
    }
}

fn loader_error(e: impl std::fmt::Display) -> DirectBootError {
    DirectBootError {
        key: "kernel",
        found: format!("an image the loader refused ({e})"),
        expected: "a Linux bzImage or a PVH ELF vmlinux".into(),
    }
}

/// Where an initrd of `len` bytes goes: as high as possible below 4 GiB (and below the kernel's
/// `initrd_addr_max`), page aligned, above everything the kernel occupies while it starts.
pub fn place_initrd(
    format: &KernelFormat,
    len: u64,
    layout: &MemoryLayout,
) -> Result<u64, DirectBootError> {
    let mut top = layout.below_4g;
    if let KernelFormat::BzImage {
        initrd_addr_max, ..
    } = format
    {
        top = top.min(initrd_addr_max.saturating_add(1));
    }
    let top = top & !(PAGE - 1);
    let lowest = format.occupied_end().div_ceil(PAGE) * PAGE;
    top.checked_sub(len)
        .map(|a| a & !(PAGE - 1))
        .filter(|&a| a >= lowest)
        .ok_or_else(|| DirectBootError {
            key: "ramdisk",
            found: format!(
                "an initrd of {} KiB, which does not fit between the kernel (up to {:#x}) and {:#x}",
                len.div_ceil(1024),
                lowest,
                top
            ),
            expected: "a larger memory setting or a smaller initrd".into(),
        })
}
