//! The `cpuid` key: CPU features hidden from (or forced on for) the guest, on top of what KVM supports.
//!
//! Xen read two forms, and so does this:
//!
//! * **libxl's string form** (`cpuid = "host,cx16=0,xsave=0,avx512f=0"`): an optional base policy (only
//!   `host`, the host's features as the hypervisor offers them, exists here) and `feature=value` items, where
//!   `0` hides the feature, `1` forces it on and `x`, `k` or `s` leave it as the host has it.
//! * **xend's list form** (`cpuid = ['0x1:ecx=xxxxx0xxxxxxxxxxxxxxxxxxxxxxxxxx', '0x7,0:ebx=...']`): a leaf
//!   (and optional subleaf) and, per register, 32 characters from bit 31 down to bit 0: `0` clears the bit,
//!   `1` sets it, and `x`, `k` or `s` keep the host's bit.
//!
//! The result is a list of per-register masks applied to every vCPU's CPUID (firmware and direct boots
//! alike) after KVM's supported set and the per-vCPU topology fields. Dependent features are not cleared
//! along (hiding `xsave` leaves `avx` set in CPUID): the Linux kernel drops features whose prerequisite is
//! missing itself, and `devmodel check` shows exactly what the guest will see.

mod names;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use serde::Serialize;

pub use names::{lookup, Flag, FLAGS};

/// A CPUID output register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Reg {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

impl Reg {
    fn parse(s: &str) -> Option<Reg> {
        match s.trim().to_ascii_lowercase().as_str() {
            "eax" => Some(Reg::Eax),
            "ebx" => Some(Reg::Ebx),
            "ecx" => Some(Reg::Ecx),
            "edx" => Some(Reg::Edx),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Reg::Eax => "eax",
            Reg::Ebx => "ebx",
            Reg::Ecx => "ecx",
            Reg::Edx => "edx",
        }
    }
}

/// Bits forced off and on in one register of one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuidMask {
    /// The leaf (EAX input).
    pub leaf: u32,
    /// The subleaf (ECX input); `None` for leaves without one.
    pub subleaf: Option<u32>,
    /// The register.
    pub reg: Reg,
    /// Bits cleared.
    pub clear: u32,
    /// Bits set.
    pub set: u32,
}

/// The whole `cpuid` key, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CpuidPolicy {
    /// The strings as written.
    pub written: Vec<String>,
    /// The masks, one per (leaf, subleaf, register), in the order first named.
    pub masks: Vec<CpuidMask>,
}

/// Why a `cpuid` value was refused: what was found and what was expected (the config reader adds the place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("found {found}, expected {expected}")]
pub struct CpuidError {
    /// What was wrong.
    pub found: String,
    /// What would be valid.
    pub expected: String,
}

fn err(found: String, expected: impl Into<String>) -> CpuidError {
    CpuidError {
        found,
        expected: expected.into(),
    }
}

/// One leaf's registers as the vCPU will see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// Leaf.
    pub function: u32,
    /// Subleaf.
    pub index: u32,
    /// EAX, EBX, ECX, EDX.
    pub regs: [u32; 4],
}

impl CpuidPolicy {
    /// Parses the key's strings: each is either xend's `leaf[,subleaf]:reg=bits,...` or libxl's
    /// `host,feature=value,...`.
    pub fn parse(strings: &[String]) -> Result<CpuidPolicy, CpuidError> {
        let mut policy = CpuidPolicy {
            written: strings.to_vec(),
            masks: Vec::new(),
        };
        for s in strings.iter().filter(|s| !s.trim().is_empty()) {
            if s.contains(':') {
                policy.parse_xend(s)?;
            } else {
                policy.parse_libxl(s)?;
            }
        }
        Ok(policy)
    }

    /// Whether the key asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    fn mask(&mut self, leaf: u32, subleaf: Option<u32>, reg: Reg) -> &mut CpuidMask {
        let i = match self
            .masks
            .iter()
            .position(|m| (m.leaf, m.subleaf, m.reg) == (leaf, subleaf, reg))
        {
            Some(i) => i,
            None => {
                self.masks.push(CpuidMask {
                    leaf,
                    subleaf,
                    reg,
                    clear: 0,
                    set: 0,
                });
                self.masks.len() - 1
            }
        };
        &mut self.masks[i]
    }

    fn force(&mut self, leaf: u32, subleaf: Option<u32>, reg: Reg, bit: u8, on: bool) {
        let m = self.mask(leaf, subleaf, reg);
        let b = 1u32 << bit;
        if on {
            m.set |= b;
            m.clear &= !b;
        } else {
            m.clear |= b;
            m.set &= !b;
        }
    }

    fn parse_libxl(&mut self, s: &str) -> Result<(), CpuidError> {
        for (i, item) in s.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let Some((name, value)) = item.split_once('=') else {
                if i == 0 && item == "host" {
                    continue;
                }
                return Err(err(
                    format!("'{item}'"),
                    "'host' first, then feature=0 or feature=1 items (libxl form), or \
                     'leaf:reg=bits' (xend form)",
                ));
            };
            let (name, value) = (name.trim(), value.trim());
            let flag = match names::lookup(name) {
                Some(f) => f,
                None if names::FIELDS.contains(&names::canonical(name).as_str()) => {
                    return Err(err(
                        format!("the multi-bit field '{name}'"),
                        "single-bit feature flags only (such as cx16=0)",
                    ))
                }
                None => return Err(err(
                    format!("the unknown CPU feature '{name}'"),
                    "a libxl feature name such as sse3, cx16, xsave, avx, avx2, avx512f, lm, nx, \
                         syscall, rdtscp or pdpe1gb",
                )),
            };
            let &(_, leaf, subleaf, reg, bit) = flag;
            match value {
                "0" => self.force(leaf, subleaf, reg, bit, false),
                "1" => self.force(leaf, subleaf, reg, bit, true),
                "x" | "k" | "s" => {}
                _ => {
                    return Err(err(
                        format!("'{name}={value}'"),
                        "a value of 0 (hide), 1 (force on), x, k or s (keep the host's)",
                    ))
                }
            }
        }
        Ok(())
    }

    fn parse_xend(&mut self, s: &str) -> Result<(), CpuidError> {
        let (head, regs) = s.split_once(':').unwrap_or((s, ""));
        let number = |t: &str| -> Option<u32> {
            let t = t.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => t.parse().ok(),
            }
        };
        let bad_leaf = || {
            err(
                format!("'{head}' before ':'"),
                "a leaf number such as 0x1 or 0x80000001, optionally with a subleaf (0x7,0)",
            )
        };
        let (leaf, subleaf) = match head.split_once(',') {
            Some((l, sub)) => (
                number(l).ok_or_else(bad_leaf)?,
                Some(number(sub).ok_or_else(bad_leaf)?),
            ),
            None => (number(head).ok_or_else(bad_leaf)?, None),
        };
        // Leaves with subleaves have them in the mask's key, so that '0x7:ebx=...' means subleaf 0 as libxl
        // took it.
        let subleaf = subleaf.or(match leaf {
            4 | 7 | 0xb | 0xd | 0xf | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1d | 0x1f => Some(0),
            _ => None,
        });
        if regs.trim().is_empty() {
            return Err(err(
                format!("'{s}' with no register after ':'"),
                "reg=bits items such as ecx=xxxx0xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            ));
        }
        for item in regs.split(',') {
            let (reg, bits) = item.split_once('=').unwrap_or((item, ""));
            let reg = Reg::parse(reg).ok_or_else(|| {
                err(
                    format!("the register '{}'", reg.trim()),
                    "eax, ebx, ecx or edx",
                )
            })?;
            let bits = bits.trim();
            if bits.len() != 32
                || !bits
                    .chars()
                    .all(|c| matches!(c, '0' | '1' | 'x' | 'k' | 's'))
            {
                return Err(err(
                    format!("'{bits}' for {}", reg.name()),
                    "32 characters, bit 31 first: 0 (clear), 1 (set), x, k or s (keep the host's)",
                ));
            }
            for (i, c) in bits.chars().enumerate() {
                let bit = 31 - i as u8;
                match c {
                    '0' => self.force(leaf, subleaf, reg, bit, false),
                    '1' => self.force(leaf, subleaf, reg, bit, true),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Applies the masks to one CPUID entry of KVM's table (`function`, `index`, EAX..EDX).
    pub fn apply(&self, function: u32, index: u32, regs: &mut [u32; 4]) {
        for m in &self.masks {
            if m.leaf != function || m.subleaf.is_some_and(|s| s != index) {
                continue;
            }
            let r = &mut regs[m.reg as usize];
            *r = (*r & !m.clear) | m.set;
        }
    }

    /// The features of leaf 1, 7 and 0x80000001 the guest sees, given the host's `supported` table, with
    /// what the policy changed; or, without a host table, the policy's own changes.
    pub fn report(&self, supported: Option<&[Leaf]>) -> String {
        let mut out = String::new();
        let Some(table) = supported else {
            let _ = writeln!(
                out,
                "cpuid:      /dev/kvm is not available here, so the host's feature set is unknown; the \
                 policy on top of it:"
            );
            let _ = writeln!(out, "{}", self.changes());
            return out;
        };
        let groups: [(&str, u32, Option<u32>, Reg); 7] = [
            ("leaf 0x1 ecx", 1, None, Reg::Ecx),
            ("leaf 0x1 edx", 1, None, Reg::Edx),
            ("leaf 0x7 ebx", 7, Some(0), Reg::Ebx),
            ("leaf 0x7 ecx", 7, Some(0), Reg::Ecx),
            ("leaf 0x7 edx", 7, Some(0), Reg::Edx),
            ("leaf 0x80000001 ecx", 0x8000_0001, None, Reg::Ecx),
            ("leaf 0x80000001 edx", 0x8000_0001, None, Reg::Edx),
        ];
        let _ = writeln!(
            out,
            "cpuid:      the guest's features (host set from KVM, {})",
            {
                if self.is_empty() {
                    "no cpuid key".to_string()
                } else {
                    self.changes()
                }
            }
        );
        for (title, leaf, subleaf, reg) in groups {
            let entry = table
                .iter()
                .find(|l| l.function == leaf && subleaf.is_none_or(|s| s == l.index));
            let host = entry.map_or(0, |l| l.regs[reg as usize]);
            let mut regs = entry.map_or([0; 4], |l| l.regs);
            self.apply(leaf, subleaf.unwrap_or(0), &mut regs);
            let guest = regs[reg as usize];
            let named: Vec<&str> = FLAGS
                .iter()
                .filter(|f| f.1 == leaf && f.2 == subleaf && f.3 == reg && guest & (1 << f.4) != 0)
                .map(|f| f.0)
                .collect();
            let _ = write!(out, "  {title:<20} {guest:#010x} {}", named.join(" "));
            let hidden = host & !guest;
            if hidden != 0 {
                let _ = write!(out, "  (hidden: {})", bit_names(leaf, subleaf, reg, hidden));
            }
            let forced = guest & !host;
            if forced != 0 {
                let _ = write!(
                    out,
                    "  (forced on: {})",
                    bit_names(leaf, subleaf, reg, forced)
                );
            }
            out.push('\n');
        }
        out
    }

    /// "hides cx16, xsave; forces on nothing" in feature names (bit numbers where a bit has no name).
    pub fn changes(&self) -> String {
        if self.is_empty() {
            return "no changes".into();
        }
        let list = |pick: fn(&CpuidMask) -> u32| -> String {
            let v: Vec<String> = self
                .masks
                .iter()
                .filter(|m| pick(m) != 0)
                .map(|m| bit_names(m.leaf, m.subleaf, m.reg, pick(m)))
                .collect();
            if v.is_empty() {
                "nothing".into()
            } else {
                v.join(", ")
            }
        };
        format!("hides {}; forces on {}", list(|m| m.clear), list(|m| m.set))
    }
}

/// The names of `bits` in one register, `leaf.reg[n]` for bits without a name.
fn bit_names(leaf: u32, subleaf: Option<u32>, reg: Reg, bits: u32) -> String {
    (0..32u8)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| {
            FLAGS
                .iter()
                .find(|f| f.1 == leaf && f.2 == subleaf && f.3 == reg && f.4 == b)
                .map_or_else(
                    || format!("{leaf:#x}.{}[{b}]", reg.name()),
                    |f| f.0.to_string(),
                )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
