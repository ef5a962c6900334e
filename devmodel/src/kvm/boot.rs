//! The boot vCPU's register state for a direct kernel boot, from the [`BootEntry`] the firmware crate
//! computed: segments from its GDT, the control registers of the entry mode, and what a BIOS would have set
//! up before handing over (local APIC LINT0/LINT1 in virtual-wire mode, MTRRs on with write-back default,
//! fast strings). Application processors keep KVM's power-on state: they wait for INIT/SIPI, which the
//! kernel sends through its local APIC.

use firmware::direct::{BootEntry, EntryMode, Segment};
use kvm_bindings::{kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs};

/// CR0: protection enable.
const CR0_PE: u64 = 1 << 0;
/// CR0: extension type (always 1 on modern CPUs).
const CR0_ET: u64 = 1 << 4;
/// CR0: paging.
const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension (required for long mode).
const CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enable and active.
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// RFLAGS bit 1 is always set; IF clear.
const RFLAGS_RESERVED: u64 = 1 << 1;

/// `IA32_MISC_ENABLE` and its fast-strings bit.
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;
/// `IA32_MTRR_DEF_TYPE`: MTRRs enabled (bit 11), default type write-back (6).
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MTRR_ENABLE_WRITE_BACK: u64 = (1 << 11) | 6;

/// Local APIC LVT registers and the delivery-mode field.
const APIC_LVT_LINT0: usize = 0x350;
const APIC_LVT_LINT1: usize = 0x360;
const APIC_DELIVERY_MODE: u32 = 0x700;
const APIC_MODE_EXTINT: u32 = 0x7 << 8;
const APIC_MODE_NMI: u32 = 0x4 << 8;

fn segment(s: &Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.kind,
        present: u8::from(s.present),
        dpl: s.dpl,
        db: u8::from(s.db),
        s: u8::from(s.s),
        l: u8::from(s.l),
        g: u8::from(s.g),
        avl: u8::from(s.avl),
        unusable: 0,
        padding: 0,
    }
}

/// The special registers for `entry`, starting from the vCPU's power-on state (which keeps LDT, IDT and
/// the APIC base as KVM set them).
pub(super) fn entry_sregs(power_on: &kvm_sregs, entry: &BootEntry) -> kvm_sregs {
    let mut s = *power_on;
    s.cs = segment(&entry.code);
    let data = segment(&entry.data);
    (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
    s.tr = segment(&entry.tss);
    s.gdt.base = entry.gdt_base;
    s.gdt.limit = entry.gdt_limit;
    s.idt.base = 0;
    s.idt.limit = 0;
    match entry.mode {
        EntryMode::Protected32 => {
            s.cr0 = CR0_PE | CR0_ET;
            s.cr3 = 0;
            s.cr4 = 0;
            s.efer = 0;
        }
        EntryMode::Long64 => {
            s.cr0 = CR0_PE | CR0_ET | CR0_PG;
            s.cr3 = entry.cr3;
            s.cr4 = CR4_PAE;
            s.efer = EFER_LME | EFER_LMA;
        }
    }
    s
}

/// The general registers for `entry`: the entry point, the boot-information pointer, interrupts off.
pub(super) fn entry_regs(entry: &BootEntry) -> kvm_regs {
    kvm_regs {
        rip: entry.rip,
        rbx: entry.rbx,
        rsi: entry.rsi,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

fn lapic_reg(lapic: &kvm_lapic_state, offset: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = lapic.regs[offset + i] as u8;
    }
    u32::from_le_bytes(b)
}

fn set_lapic_reg(lapic: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (i, byte) in value.to_le_bytes().iter().enumerate() {
        lapic.regs[offset + i] = *byte as _;
    }
}

/// LINT0 as ExtINT (the 8259 reaches the CPU through it) and LINT1 as NMI, as a BIOS leaves the boot CPU's
/// local APIC (virtual-wire mode, which the MP table announces).
pub(super) fn entry_lapic(power_on: &kvm_lapic_state) -> kvm_lapic_state {
    let mut l = *power_on;
    for (offset, mode) in [
        (APIC_LVT_LINT0, APIC_MODE_EXTINT),
        (APIC_LVT_LINT1, APIC_MODE_NMI),
    ] {
        let v = lapic_reg(&l, offset);
        set_lapic_reg(&mut l, offset, (v & !APIC_DELIVERY_MODE) | mode);
    }
    l
}

/// The MSRs a BIOS sets before booting: MTRRs enabled with write-back as the default type (SeaBIOS does the
/// same), and fast string operations.
pub(super) fn entry_msrs() -> Vec<kvm_msr_entry> {
    [
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITE_BACK),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvh_entry_is_flat_32_bit_protected_mode_without_paging() {
        let e = BootEntry::new(EntryMode::Protected32, 0x100_0040, 0x6000);
        let s = entry_sregs(&kvm_sregs::default(), &e);
        assert_eq!((s.cr0, s.cr3, s.cr4, s.efer), (0x11, 0, 0, 0));
        assert_eq!(
            (s.cs.selector, s.cs.db, s.cs.l, s.cs.limit),
            (0x10, 1, 0, 0xffff_ffff)
        );
        assert_eq!((s.ss.selector, s.ss.type_, s.ss.present), (0x18, 3, 1));
        assert_eq!(
            (s.tr.selector, s.tr.type_, s.tr.s, s.tr.limit),
            (0x20, 0xb, 0, 0x67)
        );
        assert_eq!((s.gdt.base, s.gdt.limit), (0x500, 39));
        let r = entry_regs(&e);
        assert_eq!((r.rip, r.rbx, r.rsi, r.rflags), (0x100_0040, 0x6000, 0, 2));
    }

    #[test]
    fn linux64_entry_is_long_mode_with_the_identity_map() {
        let e = BootEntry::new(EntryMode::Long64, 0x10_0200, 0x7000);
        let s = entry_sregs(&kvm_sregs::default(), &e);
        assert_eq!(s.cr0, 0x8000_0011);
        assert_eq!((s.cr3, s.cr4, s.efer), (0x9000, 0x20, 0x500));
        assert_eq!((s.cs.l, s.cs.db), (1, 0));
        let r = entry_regs(&e);
        assert_eq!((r.rip, r.rsi, r.rbx), (0x10_0200, 0x7000, 0));
    }

    #[test]
    fn lint0_becomes_extint_and_lint1_nmi_keeping_the_other_bits() {
        let mut l = kvm_lapic_state::default();
        set_lapic_reg(&mut l, APIC_LVT_LINT0, 0x0001_0000);
        set_lapic_reg(&mut l, APIC_LVT_LINT1, 0x0001_0000);
        let l = entry_lapic(&l);
        assert_eq!(lapic_reg(&l, APIC_LVT_LINT0), 0x0001_0700);
        assert_eq!(lapic_reg(&l, APIC_LVT_LINT1), 0x0001_0400);
    }
}
