//! The Intel MultiProcessor Specification 1.4 table a directly booted kernel finds its CPUs, its IOAPIC and
//! its interrupt routing in (SeaBIOS builds the same table on a firmware boot).
//!
//! Linux looks for the 16-byte floating pointer structure (`_MP_`) in the BIOS area 0xF0000–0xFFFFF, among
//! other places; it points at the configuration table (`PCMP`) that follows it here. The table lists:
//!
//! * one processor entry per vCPU, APIC id = vCPU index (what the vCPUs' CPUID reports), vCPU 0 the BSP;
//! * the PCI bus 0 and the ISA bus;
//! * KVM's in-kernel IOAPIC (version 0x11, 24 pins) at 0xFEC00000, with id = the number of vCPUs, as SeaBIOS
//!   gives it (IOAPIC ids share the APIC id space in the MP specification);
//! * ISA IRQs 0–15 on the IOAPIC pins of the same number, except IRQ 0 on pin 2 (the PC's timer override),
//!   the cascade IRQ 2, and IRQs 10 and 11, which belong to PCI;
//! * every PCI slot's INTA#–INTD# through the PIIX3 links to IRQs 10, 10, 11, 11 (the routing the direct
//!   boot programs into PIRQRC A–D, as SeaBIOS does), level-triggered and active high: KVM's IOAPIC takes
//!   the line level as given, so PCI lines are modelled active high (as QEMU's tables declare them);
//! * LINT0 of every local APIC as ExtINT (the 8259 in virtual-wire mode) and LINT1 as NMI.
//!
//! Every slot is listed whether or not a function sits there: the kernel uses only the entries its devices
//! match, and the table then covers devices other wiring adds without knowing about them.

/// Where the floating pointer structure goes (start of the BIOS area the kernel scans).
pub const MP_FLOATING_ADDR: u64 = 0xF_0000;
/// Where the configuration table goes, right after the floating pointer.
pub const MP_CONFIG_ADDR: u64 = MP_FLOATING_ADDR + 16;
/// The IOAPIC's MMIO base.
pub const IOAPIC_ADDR: u32 = 0xFEC0_0000;
/// The local APICs' MMIO base.
pub const LAPIC_ADDR: u32 = 0xFEE0_0000;
/// Version register of KVM's IOAPIC.
const IOAPIC_VERSION: u8 = 0x11;
/// Version register of KVM's local APIC.
const LAPIC_VERSION: u8 = 0x14;
/// The ISA IRQs the PIIX3 links are routed to, link A to D.
pub const PIRQ_IRQS: [u8; 4] = [10, 10, 11, 11];
/// Bus ids in the table.
const PCI_BUS: u8 = 0;
const ISA_BUS: u8 = 1;

/// Entry types.
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
/// Interrupt types.
const INT_VECTORED: u8 = 0;
const INT_NMI: u8 = 1;
const INT_EXTINT: u8 = 3;
/// Interrupt flags: polarity active high (bits 1:0 = 01), trigger level (bits 3:2 = 11).
pub const FLAGS_LEVEL_HIGH: u16 = 0b1101;
/// Interrupt flags: conforming to the bus (ISA: edge, active high).
pub const FLAGS_CONFORMING: u16 = 0;

/// The PIIX3 link (0 = A) that pin `pin` (1 = INTA#) of `slot` drives: (slot + pin - 2) mod 4.
pub fn pirq_link(slot: u8, pin: u8) -> usize {
    (usize::from(slot) + usize::from(pin) + 2) & 3
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

fn io_interrupt(flags: u16, bus: u8, bus_irq: u8, ioapic: u8, pin: u8) -> [u8; 8] {
    let f = flags.to_le_bytes();
    [
        ENTRY_IO_INTERRUPT,
        INT_VECTORED,
        f[0],
        f[1],
        bus,
        bus_irq,
        ioapic,
        pin,
    ]
}

/// The floating pointer followed by the configuration table for `vcpus` processors, to be written at
/// [`MP_FLOATING_ADDR`].
pub fn build(vcpus: u8) -> Vec<u8> {
    let ioapic_id = vcpus;
    let mut entries: Vec<u8> = Vec::new();
    let mut count: u16 = 0;
    for id in 0..vcpus {
        let flags = if id == 0 { 0b11 } else { 0b01 }; // enabled, BSP
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id, LAPIC_VERSION, flags]);
        entries.extend_from_slice(&0x600u32.to_le_bytes()); // family 6 signature
        entries.extend_from_slice(&0x201u32.to_le_bytes()); // FPU | APIC feature flags
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    for (id, name) in [(PCI_BUS, b"PCI   "), (ISA_BUS, b"ISA   ")] {
        entries.extend_from_slice(&[ENTRY_BUS, id]);
        entries.extend_from_slice(name);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&IOAPIC_ADDR.to_le_bytes());
    count += 1;
    for irq in 0u8..16 {
        if irq == 2 || PIRQ_IRQS.contains(&irq) {
            continue;
        }
        let pin = if irq == 0 { 2 } else { irq };
        entries.extend_from_slice(&io_interrupt(
            FLAGS_CONFORMING,
            ISA_BUS,
            irq,
            ioapic_id,
            pin,
        ));
        count += 1;
    }
    for slot in 0u8..32 {
        for pin in 1u8..=4 {
            let irq = PIRQ_IRQS[pirq_link(slot, pin)];
            entries.extend_from_slice(&io_interrupt(
                FLAGS_LEVEL_HIGH,
                PCI_BUS,
                (slot << 2) | (pin - 1),
                ioapic_id,
                irq,
            ));
            count += 1;
        }
    }
    for (kind, lint) in [(INT_EXTINT, 0u8), (INT_NMI, 1)] {
        entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, kind, 0, 0, ISA_BUS, 0, 0xff, lint]);
        count += 1;
    }

    let mut config = Vec::with_capacity(44 + entries.len());
    config.extend_from_slice(b"PCMP");
    config.extend_from_slice(&((44 + entries.len()) as u16).to_le_bytes());
    config.push(4); // specification revision 1.4
    config.push(0); // checksum, below
    config.extend_from_slice(b"DEVMODEL");
    config.extend_from_slice(b"HVM PC      ");
    config.extend_from_slice(&0u32.to_le_bytes()); // no OEM table
    config.extend_from_slice(&0u16.to_le_bytes());
    config.extend_from_slice(&count.to_le_bytes());
    config.extend_from_slice(&LAPIC_ADDR.to_le_bytes());
    config.extend_from_slice(&0u16.to_le_bytes()); // no extended table
    config.push(0);
    config.push(0);
    config.extend_from_slice(&entries);
    config[7] = checksum(&config);

    let mut floating = Vec::with_capacity(16 + config.len());
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&(MP_CONFIG_ADDR as u32).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(4); // specification revision 1.4
    floating.push(0); // checksum, below
    floating.extend_from_slice(&[0; 5]); // config table present; no IMCR: virtual-wire mode
    floating[10] = checksum(&floating);
    floating.extend_from_slice(&config);
    floating
}
