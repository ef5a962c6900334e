//! Loader tests with small kernels built here: an ELF with a PVH note and a bzImage with a 2.15 setup
//! header. Everything the kernel would read is read back from guest memory and compared with values the
//! tests compute on their own.

use devices::memory::{test_memory, Bytes, GuestAddress, GuestMemory};

use super::*;
use crate::e820::E820Type;
use crate::layout::MIB;

const MEM_MIB: u64 = 64;

fn layout() -> MemoryLayout {
    MemoryLayout::new(MEM_MIB).unwrap()
}

fn memory() -> GuestMemory {
    test_memory((MEM_MIB * MIB) as usize)
}

fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&(name.len() as u32).to_le_bytes());
    n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    n.extend_from_slice(&kind.to_le_bytes());
    n.extend_from_slice(name);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n.extend_from_slice(desc);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n
}

/// A 64-bit x86 ELF: each segment is (physical address, file bytes, size in memory); `notes` becomes a
/// PT_NOTE segment.
fn elf(segments: &[(u64, Vec<u8>, u64)], notes: Option<Vec<u8>>) -> Vec<u8> {
    let phnum = segments.len() + usize::from(notes.is_some());
    let mut data_off = 64 + 56 * phnum;
    let mut phdrs = Vec::new();
    let mut data = Vec::new();
    let mut ph = |kind: u32, paddr: u64, bytes: &[u8], memsz: u64| {
        let mut p = Vec::new();
        p.extend_from_slice(&kind.to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes()); // flags RWX
        p.extend_from_slice(&(data_off as u64).to_le_bytes());
        p.extend_from_slice(&(paddr | 0xffff_ffff_8000_0000).to_le_bytes()); // vaddr
        p.extend_from_slice(&paddr.to_le_bytes());
        p.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        p.extend_from_slice(&memsz.to_le_bytes());
        p.extend_from_slice(&0x1000u64.to_le_bytes());
        phdrs.extend_from_slice(&p);
        data.extend_from_slice(bytes);
        data_off += bytes.len();
    };
    for (paddr, bytes, memsz) in segments {
        ph(1, *paddr, bytes, *memsz);
    }
    if let Some(n) = &notes {
        ph(4, 0, n, n.len() as u64);
    }
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    e.resize(16, 0);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&0x100_0000u64.to_le_bytes()); // e_entry (startup_64)
    e.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&64u16.to_le_bytes());
    e.extend_from_slice(&56u16.to_le_bytes());
    e.extend_from_slice(&(phnum as u16).to_le_bytes());
    e.extend_from_slice(&[64, 0, 0, 0, 0, 0]);
    assert_eq!(e.len(), 64);
    e.extend_from_slice(&phdrs);
    e.extend_from_slice(&data);
    e
}

const PVH_ENTRY: u32 = 0x100_0040;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A PVH kernel: text at 16 MiB (8 KiB), data at 18 MiB (4 KiB in the file, 12 KiB in memory).
fn pvh_kernel() -> Vec<u8> {
    let mut notes = note(b"GNU\0", 3, &[1, 2, 3, 4]);
    notes.extend(note(b"Xen\0", 5, b"linux\0"));
    notes.extend(note(
        b"Xen\0",
        image::XEN_ELFNOTE_PHYS32_ENTRY,
        &u64::from(PVH_ENTRY).to_le_bytes(),
    ));
    elf(
        &[
            (0x100_0000, pattern(8192, 1), 8192),
            (0x120_0000, pattern(4096, 2), 12288),
        ],
        Some(notes),
    )
}

/// A bzImage: one setup sector after the boot sector, protocol 2.15, 64-bit entry, then `payload`.
fn bzimage(protocol: u16, xloadflags: u16, payload: &[u8], init_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1; // setup_sects
    b[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
    b[0x211] = image::LOADED_HIGH;
    b[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
    b[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    b[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes()); // kernel_alignment
    b[0x234] = 1; // relocatable
    b[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
    b[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes()); // cmdline_size
    b[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes()); // pref_address
    b[0x260..0x264].copy_from_slice(&init_size.to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn read_u32(mem: &GuestMemory, addr: u64) -> u32 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}
fn read_u64(mem: &GuestMemory, addr: u64) -> u64 {
    mem.read_obj(GuestAddress(addr)).unwrap()
}
fn read_bytes(mem: &GuestMemory, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

const CMDLINE: &str = "root=/dev/hda1 ro console=ttyS0 earlyprintk=serial";

#[test]
fn pvh_kernel_segments_start_info_cmdline_and_initrd() {
    let initrd = pattern(10_000, 7);
    let k = DirectKernel::new(pvh_kernel(), Some(initrd.clone()), CMDLINE, layout(), 2).unwrap();
    assert_eq!(
        k.format(),
        KernelFormat::Pvh {
            entry: PVH_ENTRY,
            start: 0x100_0000,
            end: 0x120_3000
        }
    );
    let mem = memory();
    // RAM as a previous run left it: the .bss tail must come back as zeros.
    mem.write_slice(&[0xAA; 8192], GuestAddress(0x120_1000))
        .unwrap();
    let entry = k.load(&mem).unwrap();

    // Segments at their physical addresses; the memory-only tail zeroed.
    assert_eq!(read_bytes(&mem, 0x100_0000, 8192), pattern(8192, 1));
    assert_eq!(read_bytes(&mem, 0x120_0000, 4096), pattern(4096, 2));
    assert_eq!(read_bytes(&mem, 0x120_1000, 8192), vec![0; 8192]);

    // hvm_start_info at 0x6000 (field offsets of Xen's public/arch-x86/hvm/start_info.h).
    let si = START_INFO_ADDR;
    assert_eq!(read_u32(&mem, si), 0x336e_c578);
    assert_eq!(
        read_u32(&mem, si + 4),
        1,
        "version 1 carries the memory map"
    );
    assert_eq!(read_u32(&mem, si + 12), 1, "one module: the initrd");
    assert_eq!(read_u64(&mem, si + 16), MODLIST_ADDR);
    assert_eq!(read_u64(&mem, si + 24), CMDLINE_ADDR);
    assert_eq!(
        read_u64(&mem, si + 32),
        0,
        "no RSDP: the kernel uses the MP table"
    );
    assert_eq!(read_u64(&mem, si + 40), MEMMAP_ADDR);
    let entries = read_u32(&mem, si + 48) as u64;

    // The memory map: RAM below the EBDA, the BIOS areas reserved, RAM from 1 MiB to the end, KVM's pages.
    let expected: Vec<(u64, u64, u32)> = vec![
        (0, 0x9_FC00, 1),
        (0x9_FC00, 0x6_0400, 2),
        (0x10_0000, MEM_MIB * MIB - 0x10_0000, 1),
        (0xFEFF_C000, 0x4000, 2),
    ];
    assert_eq!(entries, expected.len() as u64);
    for (i, (addr, size, kind)) in expected.iter().enumerate() {
        let at = MEMMAP_ADDR + 24 * i as u64;
        assert_eq!(
            (
                read_u64(&mem, at),
                read_u64(&mem, at + 8),
                read_u32(&mem, at + 16)
            ),
            (*addr, *size, *kind),
            "memmap entry {i}"
        );
    }

    // The initrd at the top of RAM, page aligned, and the module entry naming it.
    let initrd_addr = (MEM_MIB * MIB - 10_000) & !0xfff;
    assert_eq!(k.initrd_range(), Some((initrd_addr, 10_000)));
    assert_eq!(read_u64(&mem, MODLIST_ADDR), initrd_addr);
    assert_eq!(read_u64(&mem, MODLIST_ADDR + 8), 10_000);
    assert_eq!(read_bytes(&mem, initrd_addr, 10_000), initrd);

    // The command line, NUL-terminated.
    let mut line = CMDLINE.as_bytes().to_vec();
    line.push(0);
    assert_eq!(read_bytes(&mem, CMDLINE_ADDR, line.len()), line);

    // 32-bit protected mode at the note's entry, %ebx = start_info, flat segments from the GDT at 0x500.
    assert_eq!(entry.mode, EntryMode::Protected32);
    assert_eq!(entry.rip, u64::from(PVH_ENTRY));
    assert_eq!((entry.rbx, entry.rsi, entry.cr3), (START_INFO_ADDR, 0, 0));
    assert_eq!(read_u64(&mem, cpu::GDT_ADDR + 0x10), 0x00cf_9b00_0000_ffff);
    assert_eq!(read_u64(&mem, cpu::GDT_ADDR + 0x18), 0x00cf_9300_0000_ffff);
    assert_eq!(
        (
            entry.code.base,
            entry.code.limit,
            entry.code.db,
            entry.code.l
        ),
        (0, 0xffff_ffff, true, false)
    );
    assert_eq!(
        (entry.code.kind, entry.code.s, entry.code.present),
        (0xb, true, true)
    );
    assert_eq!((entry.data.kind, entry.data.limit), (0x3, 0xffff_ffff));
    assert_eq!(
        (entry.tss.kind, entry.tss.limit, entry.tss.s),
        (0xb, 0x67, false)
    );
}

#[test]
fn a_reset_reload_restores_everything_the_kernel_reads() {
    let k = DirectKernel::new(pvh_kernel(), Some(vec![5; 3000]), "x=1", layout(), 1).unwrap();
    let mem = memory();
    let first = k.load(&mem).unwrap();
    let (initrd_addr, initrd_len) = k.initrd_range().unwrap();
    let regions = [
        (0x500, 0xEB00),                    // GDT, boot information and page tables
        (0x2_0000, 0x8000),                 // the command line
        (0xF_0000, 0x1_0000),               // the MP table's BIOS area
        (0x100_0000, 0x2000),               // the kernel's text segment
        (0x120_0000, 0x3000),               // its data segment with the .bss
        (initrd_addr, initrd_len as usize), // the initrd
    ];
    let snapshot = |mem: &GuestMemory| -> Vec<Vec<u8>> {
        regions
            .iter()
            .map(|&(addr, len)| read_bytes(mem, addr, len))
            .collect()
    };
    let clean = snapshot(&mem);
    // The guest scribbles over all of it.
    for &(addr, len) in &regions {
        mem.write_slice(&vec![0x5a; len], GuestAddress(addr))
            .unwrap();
    }
    assert_eq!(k.load(&mem).unwrap(), first);
    for (i, (after, before)) in snapshot(&mem).iter().zip(&clean).enumerate() {
        let first_diff = after.iter().zip(before).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "region {i} ({:#x}) differs", regions[i].0);
    }
}

#[test]
fn bzimage_zero_page_page_tables_and_64bit_entry() {
    let payload = pattern(20_000, 9);
    let image = bzimage(0x020f, image::XLF_KERNEL_64, &payload, 0x40_0000);
    let initrd = pattern(5000, 3);
    let k = DirectKernel::new(image, Some(initrd.clone()), CMDLINE, layout(), 1).unwrap();
    assert!(matches!(
        k.format(),
        KernelFormat::BzImage {
            protocol: 0x020f,
            payload_len: 20_000,
            ..
        }
    ));
    let mem = memory();
    let entry = k.load(&mem).unwrap();

    // The protected-mode part at 1 MiB; the 64-bit entry 0x200 into it.
    assert_eq!(read_bytes(&mem, 0x10_0000, payload.len()), payload);
    assert_eq!(entry.mode, EntryMode::Long64);
    assert_eq!(entry.rip, 0x10_0200);
    assert_eq!((entry.rsi, entry.rbx), (ZERO_PAGE_ADDR, 0));
    assert!(entry.code.l && !entry.code.db, "a 64-bit code segment");
    assert_eq!(entry.code.selector, 0x10, "__BOOT_CS");
    assert_eq!(entry.data.selector, 0x18, "__BOOT_DS");

    // Zero page: the setup header copied from the image with the loader's fields filled in
    // (offsets from Documentation/arch/x86/zero-page.rst and boot.rst).
    let zp = ZERO_PAGE_ADDR;
    assert_eq!(read_bytes(&mem, zp + 0x202, 4), b"HdrS");
    assert_eq!(read_bytes(&mem, zp + 0x210, 1), [0xff], "type_of_loader");
    assert_eq!(read_u32(&mem, zp + 0x214), 0x10_0000, "code32_start");
    assert_eq!(read_u32(&mem, zp + 0x228), CMDLINE_ADDR as u32);
    let initrd_addr = (MEM_MIB * MIB - 5000) & !0xfff;
    assert_eq!(
        read_u32(&mem, zp + 0x218),
        initrd_addr as u32,
        "ramdisk_image"
    );
    assert_eq!(read_u32(&mem, zp + 0x21c), 5000, "ramdisk_size");
    assert_eq!(read_bytes(&mem, initrd_addr, 5000), initrd);
    let table = crate::e820::direct_boot_table(&layout());
    assert_eq!(read_bytes(&mem, zp + 0x1e8, 1), [table.len() as u8]);
    for (i, e) in table.iter().enumerate() {
        let at = zp + 0x2d0 + 20 * i as u64;
        assert_eq!(read_u64(&mem, at), e.addr);
        assert_eq!(read_u64(&mem, at + 8), e.len);
        assert_eq!(
            read_u32(&mem, at + 16),
            if e.kind == E820Type::Ram { 1 } else { 2 }
        );
    }

    // Identity map of 4 GiB: PML4 -> PDPT -> 4 page directories of 2 MiB pages.
    assert_eq!(entry.cr3, 0x9000);
    assert_eq!(read_u64(&mem, 0x9000), 0xA003);
    for gib in 0..4u64 {
        assert_eq!(
            read_u64(&mem, 0xA000 + 8 * gib),
            (0xB000 + 0x1000 * gib) | 3
        );
    }
    assert_eq!(read_u64(&mem, 0xB000), 0x83);
    assert_eq!(read_u64(&mem, 0xB008), 0x20_0083);
    assert_eq!(read_u64(&mem, 0xE000 + 8 * 511), 0xFFE0_0083);
    assert_eq!(read_u64(&mem, cpu::GDT_ADDR + 0x10), 0x00af_9b00_0000_ffff);
}

#[test]
fn initrd_below_initrd_addr_max_and_above_the_decompression_area() {
    let mut image = bzimage(0x020f, 1, &[1; 4096], 0x10_0000);
    image[0x22c..0x230].copy_from_slice(&0x1FF_FFFFu32.to_le_bytes()); // initrd below 32 MiB
    let k = DirectKernel::new(image.clone(), Some(vec![1; 8192]), "", layout(), 1).unwrap();
    assert_eq!(k.initrd_range(), Some((0x200_0000 - 8192, 8192)));
    // The kernel decompresses into 16 MiB .. 17 MiB: an initrd that would have to go below that is refused.
    let e = DirectKernel::new(image, Some(vec![1; 15 * MIB as usize + 1]), "", layout(), 1)
        .unwrap_err();
    assert_eq!(e.key, "ramdisk");
    assert!(e.found.contains("does not fit"), "{e}");
}

#[test]
fn mp_table_lists_cpus_ioapic_and_interrupt_routing() {
    let k = DirectKernel::new(pvh_kernel(), None, "", layout(), 3).unwrap();
    let mem = memory();
    k.load(&mem).unwrap();
    let fp = read_bytes(&mem, 0xF_0000, 16);
    assert_eq!(&fp[..4], b"_MP_");
    assert_eq!(fp.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
    let cfg_addr = u64::from(u32::from_le_bytes(fp[4..8].try_into().unwrap()));
    let header = read_bytes(&mem, cfg_addr, 44);
    assert_eq!(&header[..4], b"PCMP");
    let len = u16::from_le_bytes([header[4], header[5]]) as usize;
    let table = read_bytes(&mem, cfg_addr, len);
    assert_eq!(table.iter().fold(0u8, |a, &b| a.wrapping_add(b)), 0);
    assert_eq!(
        u32::from_le_bytes(table[36..40].try_into().unwrap()),
        0xFEE0_0000
    );
    let count = u16::from_le_bytes([table[34], table[35]]) as usize;

    let mut at = 44;
    let mut cpus = Vec::new();
    let mut ioapic = None;
    let mut routes = Vec::new();
    for _ in 0..count {
        let e = &table[at..];
        match e[0] {
            0 => {
                cpus.push((e[1], e[3]));
                at += 20;
            }
            2 => {
                ioapic = Some((e[1], u32::from_le_bytes(e[4..8].try_into().unwrap())));
                at += 8;
            }
            3 => {
                routes.push((e[4], e[5], e[7], u16::from_le_bytes([e[2], e[3]])));
                at += 8;
            }
            _ => at += 8,
        }
    }
    assert_eq!(at, len);
    assert_eq!(
        cpus,
        [(0, 3), (1, 1), (2, 1)],
        "APIC ids, enabled, vCPU 0 the BSP"
    );
    assert_eq!(ioapic, Some((3, 0xFEC0_0000)));
    // ISA (bus 1): IRQ 0 on pin 2, IRQ 4 (COM1) on pin 4, IRQ 14 on 14; none for the PCI IRQs 10 and 11.
    assert!(routes.contains(&(1, 0, 2, 0)));
    assert!(routes.contains(&(1, 4, 4, 0)));
    assert!(routes.contains(&(1, 14, 14, 0)));
    assert!(!routes.iter().any(|r| r.0 == 1 && (r.1 == 10 || r.1 == 11)));
    // PCI (bus 0): slot 3 INTA# drives link C -> IRQ 11; slot 2 INTA# link B -> IRQ 10; level, active high.
    assert!(routes.contains(&(0, 3 << 2, 11, 0b1101)));
    assert!(routes.contains(&(0, 2 << 2, 10, 0b1101)));
    assert!(routes.contains(&(0, (4 << 2) | 1, 10, 0b1101)));
    assert_eq!(routes.iter().filter(|r| r.0 == 0).count(), 128);
}

fn refused(kernel: Vec<u8>, initrd: Option<Vec<u8>>, cmdline: &str) -> DirectBootError {
    DirectKernel::new(kernel, initrd, cmdline, layout(), 1).unwrap_err()
}

#[test]
fn bad_kernels_are_refused_with_what_is_wrong() {
    let e = refused(b"#!/bin/sh\necho not a kernel\n".to_vec(), None, "");
    assert_eq!(e.key, "kernel");
    assert!(e.found.contains("neither an ELF file nor a bzImage"), "{e}");

    let no_note = elf(
        &[(0x100_0000, vec![1; 64], 64)],
        Some(note(b"GNU\0", 3, &[0; 4])),
    );
    let e = refused(no_note, None, "");
    assert!(e.found.contains("without a PVH entry note"), "{e}");
    let e = refused(elf(&[(0x100_0000, vec![1; 64], 64)], None), None, "");
    assert!(e.found.contains("without a PVH entry note"), "{e}");

    let mut elf32 = pvh_kernel();
    elf32[4] = 1;
    assert!(refused(elf32, None, "").found.contains("32-bit ELF"));

    // A segment reaching past the 64 MiB of RAM.
    let mut notes = note(b"Xen\0", 18, &0x100_0000u32.to_le_bytes());
    notes.truncate(notes.len());
    let big = elf(&[(0x100_0000, vec![1; 64], 63 * MIB)], Some(notes.clone()));
    let e = refused(big, None, "");
    assert!(e.found.contains("more than the 64 MiB"), "{e}");
    assert!(e.expected.contains("larger memory"), "{e}");
    let low = elf(&[(0x8000, vec![1; 64], 64)], Some(notes));
    assert!(refused(low, None, "").found.contains("below 1 MiB"));

    let mut truncated = pvh_kernel();
    truncated.truncate(200);
    assert!(refused(truncated, None, "").found.contains("malformed ELF"));

    let old = bzimage(0x0206, 0, &[0; 512], 0x1000);
    assert!(refused(old, None, "").found.contains("boot protocol 2.06"));
    let no64 = bzimage(0x020f, 0, &[0; 512], 0x1000);
    assert!(refused(no64, None, "")
        .found
        .contains("without a 64-bit entry"));
    let huge = bzimage(0x020f, 1, &[0; 512], 0x400_0000);
    assert!(refused(huge, None, "")
        .found
        .contains("more than the 64 MiB"));
    let mut cut = bzimage(0x020f, 1, &[], 0x1000);
    cut.truncate(0x300);
    assert!(refused(cut, None, "")
        .found
        .contains("shorter than its setup sectors"));
}

#[test]
fn bad_initrds_and_command_lines_are_refused() {
    let e = refused(pvh_kernel(), Some(vec![0; 50 * MIB as usize]), "");
    assert_eq!(e.key, "ramdisk");
    assert!(e.expected.contains("smaller initrd"), "{e}");
    let e = refused(pvh_kernel(), None, &"a".repeat(2048));
    assert_eq!(e.key, "extra");
    assert!(e.expected.contains("at most 2047 bytes"), "{e}");
    assert!(DirectKernel::new(pvh_kernel(), None, &"a".repeat(2047), layout(), 1).is_ok());
    let e = refused(pvh_kernel(), None, "root=/dev/hda1 é");
    assert!(e.expected.contains("printable ASCII"), "{e}");
}

#[test]
fn files_are_read_with_their_size_bounded() {
    let dir = std::env::temp_dir().join(format!("direct-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("vmlinux");
    std::fs::write(&kernel, pvh_kernel()).unwrap();
    let initrd = dir.join("initrd");
    std::fs::write(&initrd, vec![3; 100]).unwrap();
    let k = DirectKernel::open(&kernel, Some(&initrd), "", layout(), 1).unwrap();
    assert_eq!(k.initrd_range().map(|r| r.1), Some(100));
    let e = DirectKernel::open(&dir.join("missing"), None, "", layout(), 1).unwrap_err();
    assert_eq!(e.key, "kernel");
    assert!(e.found.contains("cannot be opened"), "{e}");
    let big = dir.join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MEM_MIB * MIB + 1)
        .unwrap();
    let e = DirectKernel::open(&kernel, Some(&big), "", layout(), 1).unwrap_err();
    assert_eq!(e.key, "ramdisk");
    assert!(e.found.contains("larger than the guest's RAM"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pvh_notes_are_found_among_others_and_bounded() {
    let mut notes = note(b"Linux\0", 1, &[9; 7]);
    notes.extend(note(b"Xen\0", 18, &0x123_4567u32.to_le_bytes()));
    assert_eq!(image::pvh_note(&notes), Some(0x123_4567));
    assert_eq!(
        image::pvh_note(&note(b"Xen\0", 18, &0x1_0000_0000u64.to_le_bytes())),
        None,
        "an entry above 4 GiB is no 32-bit entry"
    );
    // A note claiming more bytes than the segment holds ends the search.
    let mut bad = note(b"Xen\0", 18, &[0; 4]);
    bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(image::pvh_note(&bad), None);
    assert_eq!(image::pvh_note(&[0; 11]), None);
}

#[test]
fn segment_descriptors_decode_as_the_cpu_loads_them() {
    let s = Segment::from_descriptor(0x10, 0x00af_9b00_0000_ffff);
    assert_eq!(
        s,
        Segment {
            selector: 0x10,
            base: 0,
            limit: 0xffff_ffff,
            kind: 0xb,
            present: true,
            dpl: 0,
            db: false,
            s: true,
            l: true,
            g: true,
            avl: false
        }
    );
    let t = Segment::from_descriptor(0x20, 0x1200_8b34_5678_0067);
    assert_eq!(
        (t.base, t.limit, t.g, t.s),
        (0x1234_5678, 0x67, false, false)
    );
}
