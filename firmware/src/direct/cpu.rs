//! The processor state a directly booted kernel is entered with, as plain data: which mode, the entry
//! point, the pointer register, and the GDT and page tables this module writes into guest memory. The KVM
//! side turns a [`BootEntry`] into register values.
//!
//! * **PVH** (Xen's `arch/x86/hvm/start_info` ABI): 32-bit protected mode, paging off; CS a flat 32-bit
//!   code segment, DS/ES/SS flat data, TR a 32-bit busy TSS; `%ebx` = the `hvm_start_info` address.
//! * **Linux 64-bit boot protocol**: long mode with an identity map of the low 4 GiB (2 MiB pages), CS a
//!   64-bit code segment at `__BOOT_CS` (0x10), DS/ES/SS at `__BOOT_DS` (0x18); `%rsi` = the zero page.
//!
//! In both the GDT sits at [`GDT_ADDR`]: null, null, code (0x10), data (0x18), TSS (0x20).

/// Guest address of the GDT.
pub const GDT_ADDR: u64 = 0x500;
/// Guest address of the long-mode PML4; the PDPT and four page directories follow it page by page.
pub const PML4_ADDR: u64 = 0x9000;
/// Code segment selector (`__BOOT_CS`).
pub const CODE_SELECTOR: u16 = 0x10;
/// Data segment selector (`__BOOT_DS`).
pub const DATA_SELECTOR: u16 = 0x18;
/// Task register selector.
pub const TSS_SELECTOR: u16 = 0x20;

/// Descriptors (Intel SDM vol. 3, 3.4.5): flat 4 GiB limit with 4 KiB granularity unless noted.
const CODE64: u64 = 0x00af_9b00_0000_ffff; // L=1, D=0, execute/read, accessed
const CODE32: u64 = 0x00cf_9b00_0000_ffff; // D=1, execute/read, accessed
const DATA: u64 = 0x00cf_9300_0000_ffff; // D/B=1, read/write, accessed
const TSS: u64 = 0x0000_8b00_0000_0067; // byte granular, limit 0x67, 32-bit busy TSS

/// How the boot CPU enters the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// 32-bit protected mode, paging off (PVH).
    Protected32,
    /// 64-bit long mode with paging (the Linux 64-bit boot protocol).
    Long64,
}

/// A segment register's visible selector and hidden descriptor fields, as the CPU holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Base address.
    pub base: u64,
    /// Limit in bytes (granularity already applied).
    pub limit: u32,
    /// Type field (4 bits).
    pub kind: u8,
    /// Present.
    pub present: bool,
    /// Privilege level.
    pub dpl: u8,
    /// Default operation size (32-bit).
    pub db: bool,
    /// Code/data (true) or system segment.
    pub s: bool,
    /// 64-bit code segment.
    pub l: bool,
    /// 4 KiB granularity.
    pub g: bool,
    /// Available for software.
    pub avl: bool,
}

impl Segment {
    /// Decodes a GDT descriptor as the CPU does when `selector` is loaded.
    pub fn from_descriptor(selector: u16, d: u64) -> Segment {
        let base = ((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24);
        let raw_limit = ((d & 0xffff) | (((d >> 48) & 0xf) << 16)) as u32;
        let g = (d >> 55) & 1 == 1;
        Segment {
            selector,
            base,
            limit: if g {
                (raw_limit << 12) | 0xfff
            } else {
                raw_limit
            },
            kind: ((d >> 40) & 0xf) as u8,
            s: (d >> 44) & 1 == 1,
            dpl: ((d >> 45) & 3) as u8,
            present: (d >> 47) & 1 == 1,
            avl: (d >> 52) & 1 == 1,
            l: (d >> 53) & 1 == 1,
            db: (d >> 54) & 1 == 1,
            g,
        }
    }
}

/// Everything the boot CPU needs to start the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEntry {
    /// The mode.
    pub mode: EntryMode,
    /// Entry point (guest-physical, which is also the linear address here).
    pub rip: u64,
    /// `%rbx`: the `hvm_start_info` address for PVH, 0 otherwise.
    pub rbx: u64,
    /// `%rsi`: the zero page for the 64-bit protocol, 0 otherwise.
    pub rsi: u64,
    /// GDT base and limit.
    pub gdt_base: u64,
    /// GDT limit (bytes - 1).
    pub gdt_limit: u16,
    /// CS.
    pub code: Segment,
    /// DS, ES, FS, GS, SS.
    pub data: Segment,
    /// TR.
    pub tss: Segment,
    /// CR3 (long mode: the PML4), 0 with paging off.
    pub cr3: u64,
}

impl BootEntry {
    /// The GDT contents for `mode`.
    pub fn gdt(mode: EntryMode) -> [u64; 5] {
        let code = match mode {
            EntryMode::Protected32 => CODE32,
            EntryMode::Long64 => CODE64,
        };
        [0, 0, code, DATA, TSS]
    }

    /// The entry state for `mode` at `rip`; `pointer` is the start-info or zero-page address.
    pub fn new(mode: EntryMode, rip: u64, pointer: u64) -> BootEntry {
        let gdt = Self::gdt(mode);
        let at = |sel: u16| gdt[usize::from(sel >> 3)];
        let (rbx, rsi, cr3) = match mode {
            EntryMode::Protected32 => (pointer, 0, 0),
            EntryMode::Long64 => (0, pointer, PML4_ADDR),
        };
        BootEntry {
            mode,
            rip,
            rbx,
            rsi,
            gdt_base: GDT_ADDR,
            gdt_limit: (gdt.len() * 8 - 1) as u16,
            code: Segment::from_descriptor(CODE_SELECTOR, at(CODE_SELECTOR)),
            data: Segment::from_descriptor(DATA_SELECTOR, at(DATA_SELECTOR)),
            tss: Segment::from_descriptor(TSS_SELECTOR, at(TSS_SELECTOR)),
            cr3,
        }
    }
}

/// The long-mode identity map of the low 4 GiB with 2 MiB pages, as (guest address, page) pairs: the PML4 at
/// [`PML4_ADDR`], the PDPT after it, then four page directories.
pub fn identity_page_tables() -> Vec<(u64, Vec<u8>)> {
    const PRESENT_RW: u64 = 0b11;
    const PAGE_SIZE_2M: u64 = 1 << 7;
    let pdpt = PML4_ADDR + 0x1000;
    let mut pages = Vec::new();
    let mut pml4 = vec![0u8; 4096];
    pml4[..8].copy_from_slice(&(pdpt | PRESENT_RW).to_le_bytes());
    pages.push((PML4_ADDR, pml4));
    let mut pdpt_page = vec![0u8; 4096];
    for gib in 0..4u64 {
        let pd = pdpt + 0x1000 * (1 + gib);
        let i = gib as usize * 8;
        pdpt_page[i..i + 8].copy_from_slice(&(pd | PRESENT_RW).to_le_bytes());
        let mut pd_page = vec![0u8; 4096];
        for j in 0..512u64 {
            let addr = ((gib << 9) | j) << 21;
            let k = j as usize * 8;
            pd_page[k..k + 8].copy_from_slice(&(addr | PRESENT_RW | PAGE_SIZE_2M).to_le_bytes());
        }
        pages.push((pd, pd_page));
    }
    pages.insert(1, (pdpt, pdpt_page));
    pages
}
