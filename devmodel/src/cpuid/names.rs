//! CPUID feature flag names, as libxl's `cpuid` string form spells them (`tools/libs/light/libxl_cpuid.c`),
//! with the Linux `/proc/cpuinfo` spellings people also write as aliases.

use super::Reg;

/// One feature bit: (name, leaf, subleaf, register, bit).
pub type Flag = (&'static str, u32, Option<u32>, Reg, u8);

use Reg::{Eax, Ebx, Ecx, Edx};

/// Every single-bit feature the `cpuid` key can name.
pub const FLAGS: &[Flag] = &[
    // Leaf 1 ECX.
    ("sse3", 1, None, Ecx, 0),
    ("pclmulqdq", 1, None, Ecx, 1),
    ("dtes64", 1, None, Ecx, 2),
    ("monitor", 1, None, Ecx, 3),
    ("dscpl", 1, None, Ecx, 4),
    ("vmx", 1, None, Ecx, 5),
    ("smx", 1, None, Ecx, 6),
    ("est", 1, None, Ecx, 7),
    ("tm2", 1, None, Ecx, 8),
    ("ssse3", 1, None, Ecx, 9),
    ("cntxid", 1, None, Ecx, 10),
    ("fma", 1, None, Ecx, 12),
    ("cmpxchg16", 1, None, Ecx, 13),
    ("xtpr", 1, None, Ecx, 14),
    ("pdcm", 1, None, Ecx, 15),
    ("pcid", 1, None, Ecx, 17),
    ("dca", 1, None, Ecx, 18),
    ("sse4_1", 1, None, Ecx, 19),
    ("sse4_2", 1, None, Ecx, 20),
    ("x2apic", 1, None, Ecx, 21),
    ("movbe", 1, None, Ecx, 22),
    ("popcnt", 1, None, Ecx, 23),
    ("tsc_deadline", 1, None, Ecx, 24),
    ("aes", 1, None, Ecx, 25),
    ("xsave", 1, None, Ecx, 26),
    ("osxsave", 1, None, Ecx, 27),
    ("avx", 1, None, Ecx, 28),
    ("f16c", 1, None, Ecx, 29),
    ("rdrand", 1, None, Ecx, 30),
    ("hypervisor", 1, None, Ecx, 31),
    // Leaf 1 EDX.
    ("fpu", 1, None, Edx, 0),
    ("vme", 1, None, Edx, 1),
    ("de", 1, None, Edx, 2),
    ("pse", 1, None, Edx, 3),
    ("tsc", 1, None, Edx, 4),
    ("msr", 1, None, Edx, 5),
    ("pae", 1, None, Edx, 6),
    ("mce", 1, None, Edx, 7),
    ("cmpxchg8", 1, None, Edx, 8),
    ("apic", 1, None, Edx, 9),
    ("sysenter", 1, None, Edx, 11),
    ("mtrr", 1, None, Edx, 12),
    ("pge", 1, None, Edx, 13),
    ("mca", 1, None, Edx, 14),
    ("cmov", 1, None, Edx, 15),
    ("pat", 1, None, Edx, 16),
    ("pse36", 1, None, Edx, 17),
    ("psn", 1, None, Edx, 18),
    ("clfsh", 1, None, Edx, 19),
    ("ds", 1, None, Edx, 21),
    ("acpi", 1, None, Edx, 22),
    ("mmx", 1, None, Edx, 23),
    ("fxsr", 1, None, Edx, 24),
    ("sse", 1, None, Edx, 25),
    ("sse2", 1, None, Edx, 26),
    ("ss", 1, None, Edx, 27),
    ("htt", 1, None, Edx, 28),
    ("tm", 1, None, Edx, 29),
    ("ia64", 1, None, Edx, 30),
    ("pbe", 1, None, Edx, 31),
    // Leaf 7 subleaf 0 EBX.
    ("fsgsbase", 7, Some(0), Ebx, 0),
    ("tsc_adjust", 7, Some(0), Ebx, 1),
    ("sgx", 7, Some(0), Ebx, 2),
    ("bmi1", 7, Some(0), Ebx, 3),
    ("hle", 7, Some(0), Ebx, 4),
    ("avx2", 7, Some(0), Ebx, 5),
    ("fdp_excp_only", 7, Some(0), Ebx, 6),
    ("smep", 7, Some(0), Ebx, 7),
    ("bmi2", 7, Some(0), Ebx, 8),
    ("erms", 7, Some(0), Ebx, 9),
    ("invpcid", 7, Some(0), Ebx, 10),
    ("rtm", 7, Some(0), Ebx, 11),
    ("cmt", 7, Some(0), Ebx, 12),
    ("no_fpu_sel", 7, Some(0), Ebx, 13),
    ("mpx", 7, Some(0), Ebx, 14),
    ("rdt_a", 7, Some(0), Ebx, 15),
    ("avx512f", 7, Some(0), Ebx, 16),
    ("avx512dq", 7, Some(0), Ebx, 17),
    ("rdseed", 7, Some(0), Ebx, 18),
    ("adx", 7, Some(0), Ebx, 19),
    ("smap", 7, Some(0), Ebx, 20),
    ("avx512_ifma", 7, Some(0), Ebx, 21),
    ("clflushopt", 7, Some(0), Ebx, 23),
    ("clwb", 7, Some(0), Ebx, 24),
    ("proc_trace", 7, Some(0), Ebx, 25),
    ("avx512pf", 7, Some(0), Ebx, 26),
    ("avx512er", 7, Some(0), Ebx, 27),
    ("avx512cd", 7, Some(0), Ebx, 28),
    ("sha", 7, Some(0), Ebx, 29),
    ("avx512bw", 7, Some(0), Ebx, 30),
    ("avx512vl", 7, Some(0), Ebx, 31),
    // Leaf 7 subleaf 0 ECX.
    ("prefetchwt1", 7, Some(0), Ecx, 0),
    ("avx512_vbmi", 7, Some(0), Ecx, 1),
    ("umip", 7, Some(0), Ecx, 2),
    ("pku", 7, Some(0), Ecx, 3),
    ("ospke", 7, Some(0), Ecx, 4),
    ("waitpkg", 7, Some(0), Ecx, 5),
    ("avx512_vbmi2", 7, Some(0), Ecx, 6),
    ("cet_ss", 7, Some(0), Ecx, 7),
    ("gfni", 7, Some(0), Ecx, 8),
    ("vaes", 7, Some(0), Ecx, 9),
    ("vpclmulqdq", 7, Some(0), Ecx, 10),
    ("avx512_vnni", 7, Some(0), Ecx, 11),
    ("avx512_bitalg", 7, Some(0), Ecx, 12),
    ("avx512_vpopcntdq", 7, Some(0), Ecx, 14),
    ("la57", 7, Some(0), Ecx, 16),
    ("rdpid", 7, Some(0), Ecx, 22),
    ("cldemote", 7, Some(0), Ecx, 25),
    ("movdiri", 7, Some(0), Ecx, 27),
    ("movdir64b", 7, Some(0), Ecx, 28),
    ("enqcmd", 7, Some(0), Ecx, 29),
    ("sgx_lc", 7, Some(0), Ecx, 30),
    ("pks", 7, Some(0), Ecx, 31),
    // Leaf 7 subleaf 0 EDX.
    ("avx512_4vnniw", 7, Some(0), Edx, 2),
    ("avx512_4fmaps", 7, Some(0), Edx, 3),
    ("fsrm", 7, Some(0), Edx, 4),
    ("avx512_vp2intersect", 7, Some(0), Edx, 8),
    ("srbds_ctrl", 7, Some(0), Edx, 9),
    ("md_clear", 7, Some(0), Edx, 10),
    ("serialize", 7, Some(0), Edx, 14),
    ("tsxldtrk", 7, Some(0), Edx, 16),
    ("cet_ibt", 7, Some(0), Edx, 20),
    ("avx512_fp16", 7, Some(0), Edx, 23),
    ("ibrsb", 7, Some(0), Edx, 26),
    ("stibp", 7, Some(0), Edx, 27),
    ("l1d_flush", 7, Some(0), Edx, 28),
    ("arch_caps", 7, Some(0), Edx, 29),
    ("core_caps", 7, Some(0), Edx, 30),
    ("ssbd", 7, Some(0), Edx, 31),
    // Leaf 0xD subleaf 1 EAX: XSAVE extensions.
    ("xsaveopt", 0xd, Some(1), Eax, 0),
    ("xsavec", 0xd, Some(1), Eax, 1),
    ("xgetbv1", 0xd, Some(1), Eax, 2),
    ("xsaves", 0xd, Some(1), Eax, 3),
    // Leaf 0x80000001 ECX.
    ("lahfsahf", 0x8000_0001, None, Ecx, 0),
    ("cmplegacy", 0x8000_0001, None, Ecx, 1),
    ("svm", 0x8000_0001, None, Ecx, 2),
    ("extapic", 0x8000_0001, None, Ecx, 3),
    ("altmovcr8", 0x8000_0001, None, Ecx, 4),
    ("abm", 0x8000_0001, None, Ecx, 5),
    ("sse4a", 0x8000_0001, None, Ecx, 6),
    ("misalignsse", 0x8000_0001, None, Ecx, 7),
    ("3dnowprefetch", 0x8000_0001, None, Ecx, 8),
    ("osvw", 0x8000_0001, None, Ecx, 9),
    ("ibs", 0x8000_0001, None, Ecx, 10),
    ("xop", 0x8000_0001, None, Ecx, 11),
    ("skinit", 0x8000_0001, None, Ecx, 12),
    ("wdt", 0x8000_0001, None, Ecx, 13),
    ("lwp", 0x8000_0001, None, Ecx, 15),
    ("fma4", 0x8000_0001, None, Ecx, 16),
    ("tce", 0x8000_0001, None, Ecx, 17),
    ("nodeid", 0x8000_0001, None, Ecx, 19),
    ("tbm", 0x8000_0001, None, Ecx, 21),
    ("topoext", 0x8000_0001, None, Ecx, 22),
    ("perfctr_core", 0x8000_0001, None, Ecx, 23),
    ("perfctr_nb", 0x8000_0001, None, Ecx, 24),
    // Leaf 0x80000001 EDX.
    ("syscall", 0x8000_0001, None, Edx, 11),
    ("nx", 0x8000_0001, None, Edx, 20),
    ("mmxext", 0x8000_0001, None, Edx, 22),
    ("ffxsr", 0x8000_0001, None, Edx, 25),
    ("page1gb", 0x8000_0001, None, Edx, 26),
    ("rdtscp", 0x8000_0001, None, Edx, 27),
    ("lm", 0x8000_0001, None, Edx, 29),
    ("3dnowext", 0x8000_0001, None, Edx, 30),
    ("3dnow", 0x8000_0001, None, Edx, 31),
];

/// Other spellings: (alias, name in [`FLAGS`]).
pub const ALIASES: &[(&str, &str)] = &[
    ("cx16", "cmpxchg16"),
    ("cx8", "cmpxchg8"),
    ("sep", "sysenter"),
    ("pdpe1gb", "page1gb"),
    ("lzcnt", "abm"),
    ("pni", "sse3"),
    ("pclmul", "pclmulqdq"),
    ("tsc_deadline_timer", "tsc_deadline"),
    ("lahf_lm", "lahfsahf"),
    ("cr8legacy", "altmovcr8"),
    ("pqm", "cmt"),
    ("nodeid_msr", "nodeid"),
    ("ht", "htt"),
    ("nx_lm", "nx"),
];

/// Multi-bit fields libxl's string form also knows; they are refused with a clear message.
pub const FIELDS: &[&str] = &[
    "family",
    "model",
    "stepping",
    "brandid",
    "clflush",
    "proccount",
    "localapicid",
    "nc",
    "apicidsize",
    "procpkg",
];

/// The canonical spelling of `name`: lower case, `-` and `.` read as `_`, aliases resolved.
pub fn canonical(name: &str) -> String {
    let n: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == n)
        .map_or(n, |(_, real)| (*real).to_string())
}

/// The flag called `name` (any accepted spelling).
pub fn lookup(name: &str) -> Option<&'static Flag> {
    let n = canonical(name);
    FLAGS.iter().find(|f| f.0 == n)
}
