use super::*;

fn parse(items: &[&str]) -> Result<CpuidPolicy, CpuidError> {
    CpuidPolicy::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// A host table in KVM's shape: leaf 1 with SSE3, CX16, XSAVE, AVX and the usual EDX bits; leaf 7.0 with
/// AVX2, BMI1/2, AVX512F; leaf 0xD.1 with XSAVEOPT; 0x80000001 with LAHF, SYSCALL, NX, PDPE1GB, RDTSCP, LM.
fn host() -> Vec<Leaf> {
    vec![
        Leaf {
            function: 1,
            index: 0,
            regs: [
                0x000806ec,
                0x0001_0800,
                (1 << 0) | (1 << 13) | (1 << 26) | (1 << 28),
                0x178b_fbff,
            ],
        },
        Leaf {
            function: 7,
            index: 0,
            regs: [0, (1 << 3) | (1 << 5) | (1 << 8) | (1 << 16), 0, 0],
        },
        Leaf {
            function: 7,
            index: 1,
            regs: [0xffff_ffff; 4],
        },
        Leaf {
            function: 0xd,
            index: 1,
            regs: [1, 0, 0, 0],
        },
        Leaf {
            function: 0x8000_0001,
            index: 0,
            regs: [
                0,
                0,
                1,
                (1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29),
            ],
        },
    ]
}

fn applied(policy: &CpuidPolicy) -> Vec<Leaf> {
    host()
        .into_iter()
        .map(|mut l| {
            policy.apply(l.function, l.index, &mut l.regs);
            l
        })
        .collect()
}

#[test]
fn libxl_string_form_hides_named_features() {
    let p = parse(&["host,cx16=0,xsave=0,avx512f=0,pdpe1gb=0,xsaveopt=0"]).unwrap();
    let out = applied(&p);
    assert_eq!(
        out[0].regs[2],
        1 | (1 << 28),
        "cx16 and xsave gone, sse3 and avx kept"
    );
    assert_eq!(out[0].regs[3], 0x178b_fbff, "edx untouched");
    assert_eq!(
        out[1].regs[1],
        (1 << 3) | (1 << 5) | (1 << 8),
        "avx512f gone"
    );
    assert_eq!(
        out[2].regs, [0xffff_ffff; 4],
        "leaf 7 subleaf 1 is another leaf"
    );
    assert_eq!(
        out[3].regs[0], 0,
        "xsaveopt is leaf 0xD subleaf 1 eax bit 0"
    );
    assert_eq!(
        out[4].regs[3],
        (1 << 11) | (1 << 20) | (1 << 27) | (1 << 29)
    );
}

#[test]
fn values_one_and_keep_and_spellings() {
    let p =
        parse(&["host, cmpxchg16=1, sse4.2=1, SSE4-1=1, lm=x, nx=k, rdtscp=s, lahf_lm=0"]).unwrap();
    let out = applied(&p);
    assert_eq!(
        out[0].regs[2] & ((1 << 13) | (1 << 19) | (1 << 20)),
        (1 << 13) | (1 << 19) | (1 << 20)
    );
    assert_eq!(out[4].regs[2], 0, "lahf_lm is libxl's lahfsahf");
    assert_eq!(
        out[4].regs[3],
        host()[4].regs[3],
        "x, k and s keep the host's bits"
    );
    // The last word on a bit wins.
    let p = parse(&["host,avx=0,avx=1"]).unwrap();
    assert_eq!(applied(&p)[0].regs[2] & (1 << 28), 1 << 28);
}

#[test]
fn xend_list_form_sets_and_clears_bits() {
    // Bit 31 first: clear bit 26 (xsave) and bit 13 (cx16), set bit 31 (hypervisor).
    let mut ecx = ['x'; 32];
    ecx[31 - 26] = '0';
    ecx[31 - 13] = '0';
    ecx[0] = '1';
    let ecx: String = ecx.iter().collect();
    let seven = format!("0x7,0:ebx={}0{}", "x".repeat(15), "x".repeat(16));
    let p = parse(&[
        &format!("0x1:ecx={ecx}"),
        &seven,
        "0x80000001:edx=xx0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ])
    .unwrap();
    let out = applied(&p);
    assert_eq!(out[0].regs[2], 1 | (1 << 28) | (1 << 31));
    assert_eq!(
        out[1].regs[1],
        (1 << 3) | (1 << 5) | (1 << 8),
        "bit 16 (avx512f) cleared"
    );
    assert_eq!(out[4].regs[3] & (1 << 29), 0, "lm cleared");
    // '0x7:ebx=' without a subleaf means subleaf 0, as libxl read it.
    let p = parse(&[&format!("0x7:ebx={}0{}", "x".repeat(15), "x".repeat(16))]).unwrap();
    assert_eq!(p.masks[0].subleaf, Some(0));
    assert_eq!(applied(&p)[2].regs, [0xffff_ffff; 4]);
}

#[test]
fn bad_values_are_refused_with_what_was_expected() {
    let e = parse(&["host,frobnicate=0"]).unwrap_err();
    assert_eq!(e.found, "the unknown CPU feature 'frobnicate'");
    let e = parse(&["host,family=6"]).unwrap_err();
    assert!(e.found.contains("multi-bit field"), "{e}");
    let e = parse(&["host,cx16=2"]).unwrap_err();
    assert!(e.expected.contains("0 (hide)"), "{e}");
    let e = parse(&["intel,cx16=0"]).unwrap_err();
    assert_eq!(e.found, "'intel'");
    let e = parse(&["0x1:ecx=0101"]).unwrap_err();
    assert!(e.expected.contains("32 characters"), "{e}");
    let e = parse(&["0x1:exx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]).unwrap_err();
    assert_eq!(e.expected, "eax, ebx, ecx or edx");
    let e = parse(&["leaf1:ecx=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]).unwrap_err();
    assert!(e.found.contains("'leaf1'"), "{e}");
    assert!(parse(&["0x1:"]).is_err());
    assert!(parse(&["0x1,zz:eax=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]).is_err());
    assert!(parse(&[""]).unwrap().is_empty());
    assert!(parse(&["host"]).unwrap().is_empty());
}

#[test]
fn every_name_is_unique_and_in_range() {
    for (i, a) in FLAGS.iter().enumerate() {
        assert!(a.4 < 32);
        assert_eq!(names::canonical(a.0), a.0, "{} is written canonically", a.0);
        for b in &FLAGS[i + 1..] {
            assert_ne!(a.0, b.0);
            assert!(
                (a.1, a.2, a.3, a.4) != (b.1, b.2, b.3, b.4),
                "{} and {} share a bit",
                a.0,
                b.0
            );
        }
    }
    for (alias, real) in names::ALIASES {
        assert!(lookup(real).is_some(), "{alias} -> {real}");
        assert!(
            FLAGS.iter().all(|f| f.0 != *alias),
            "{alias} is not also a name"
        );
    }
}

#[test]
fn report_lists_the_guest_features_and_what_was_hidden() {
    let p = parse(&["host,cx16=0,xsave=0,hypervisor=1"]).unwrap();
    let text = p.report(Some(&host()));
    let leaf1 = text.lines().find(|l| l.contains("leaf 0x1 ecx")).unwrap();
    assert!(leaf1.contains(" sse3 avx hypervisor"), "{leaf1}");
    assert!(leaf1.contains("(hidden: cmpxchg16, xsave)"), "{leaf1}");
    assert!(leaf1.contains("(forced on: hypervisor)"), "{leaf1}");
    let ext = text
        .lines()
        .find(|l| l.contains("leaf 0x80000001 edx"))
        .unwrap();
    assert!(ext.contains("syscall nx page1gb rdtscp lm"), "{ext}");
    assert!(!ext.contains("hidden"), "{ext}");
    assert_eq!(text.lines().count(), 8);

    let without = p.report(None);
    assert!(without.contains("/dev/kvm is not available"), "{without}");
    assert!(
        without.contains("hides cmpxchg16, xsave; forces on hypervisor"),
        "{without}"
    );
}
