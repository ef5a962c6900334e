//! Checks against the host: memory, vCPU count and the files a config names.
//!
//! The host is injected as [`HostFacts`] so that every check can be tested without the machine's real
//! memory, CPUs or files. [`HostFacts::probe`] reads the real ones.
//!
//! **vCPU limit.** Xen allowed more vCPUs than host CPUs (overcommit), so the limit is not the CPU count but
//! what the hypervisor and firmware can address: KVM's `KVM_CAP_MAX_VCPUS`, capped at 255 because the
//! guest's xAPIC IDs (and SeaBIOS's MP/ACPI tables) stop at 254. Without `/dev/kvm` the cap alone applies.
//!
//! **Memory.** At least [`MIN_MEMORY_MIB`] (the firmware needs RAM above the first MiB) and at most the
//! host's `MemTotal`: a guest larger than the host cannot be backed.
//!
//! **Files.** Disk, floppy, kernel and ramdisk paths must exist, and a writable disk needs write access as
//! `access(2, W_OK)` reports it (a read-only file or file system fails, whoever owns it).

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use firmware::direct::{DirectBootError, DirectKernel};
use firmware::layout::MemoryLayout;

use super::model::{Boot, Config, UsbDevice};
use super::{ConfigError, Origin};

/// Smallest guest RAM accepted, in MiB.
pub const MIN_MEMORY_MIB: u64 = 2;
/// Highest vCPU count whatever the host says (xAPIC IDs end at 254).
pub const VCPU_CAP: u32 = 255;

/// What a path is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Nothing there (or not reachable).
    Missing,
    /// A directory.
    Directory,
    /// Present, but `access(W_OK)` fails.
    ReadOnly,
    /// Present and writable.
    Writable,
}

/// Answers what a path is; injected so tests need no real files.
pub trait FileProbe: Send + Sync {
    /// The state of `path`.
    fn probe(&self, path: &Path) -> FileState;

    /// Reads a direct-boot kernel and initrd and checks them, with the command line, against the guest's
    /// memory (see [`firmware::direct::DirectKernel`]). Probes without real files accept everything.
    fn check_kernel(
        &self,
        _kernel: &Path,
        _ramdisk: Option<&Path>,
        _cmdline: &str,
        _memory_mib: u64,
        _vcpus: u32,
    ) -> Result<(), DirectBootError> {
        Ok(())
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFiles;

impl FileProbe for HostFiles {
    fn probe(&self, path: &Path) -> FileState {
        let Ok(meta) = std::fs::metadata(path) else {
            return FileState::Missing;
        };
        if meta.is_dir() {
            return FileState::Directory;
        }
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return FileState::Missing;
        };
        // SAFETY: `c` is a valid NUL-terminated string that lives across the call; access() only reads it.
        let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK) };
        if rc == 0 {
            FileState::Writable
        } else {
            FileState::ReadOnly
        }
    }

    fn check_kernel(
        &self,
        kernel: &Path,
        ramdisk: Option<&Path>,
        cmdline: &str,
        memory_mib: u64,
        vcpus: u32,
    ) -> Result<(), DirectBootError> {
        // A memory size the layout refuses is reported by the machine; there is nothing to check against.
        let Ok(layout) = MemoryLayout::new(memory_mib) else {
            return Ok(());
        };
        DirectKernel::open(kernel, ramdisk, cmdline, layout, vcpus).map(|_| ())
    }
}

/// Facts about the host that bound a config.
pub struct HostFacts {
    /// Host RAM (`MemTotal`) in MiB.
    pub memory_mib: u64,
    /// Most vCPUs a guest may have.
    pub max_vcpus: u32,
    /// File checks.
    pub files: Box<dyn FileProbe>,
}

impl fmt::Debug for HostFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostFacts")
            .field("memory_mib", &self.memory_mib)
            .field("max_vcpus", &self.max_vcpus)
            .finish_non_exhaustive()
    }
}

impl HostFacts {
    /// Reads the real host: `/proc/meminfo`, KVM's vCPU limit (capped at [`VCPU_CAP`]) and the file system.
    /// A fact that cannot be read leaves its check permissive rather than failing every config.
    pub fn probe() -> HostFacts {
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| mem_total_mib(&s))
            .unwrap_or(u64::MAX);
        let kvm_max = kvm_ioctls::Kvm::new()
            .map(|k| u32::try_from(k.get_max_vcpus()).unwrap_or(u32::MAX))
            .unwrap_or(VCPU_CAP);
        HostFacts {
            memory_mib,
            max_vcpus: kvm_max.min(VCPU_CAP),
            files: Box::new(HostFiles),
        }
    }
}

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
pub(crate) fn mem_total_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn at(cfg: &Config, path: &Path, key: &str) -> Origin {
    cfg.origins
        .get(key)
        .cloned()
        .unwrap_or_else(|| Origin::File {
            path: path.to_path_buf(),
            line: 0,
        })
}

fn invalid(
    cfg: &Config,
    path: &Path,
    key: &str,
    found: String,
    expected: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        at: at(cfg, path, key),
        key: key.to_string(),
        found,
        expected: expected.into(),
    }
}

fn need_file(
    cfg: &Config,
    path: &Path,
    host: &HostFacts,
    key: &str,
    file: &Path,
    writable: bool,
) -> Result<(), ConfigError> {
    let shown = file.display();
    match host.files.probe(file) {
        FileState::Missing => Err(invalid(
            cfg,
            path,
            key,
            format!("'{shown}', which does not exist"),
            "an existing file",
        )),
        FileState::Directory => Err(invalid(
            cfg,
            path,
            key,
            format!("'{shown}', which is a directory"),
            "a file or block device",
        )),
        FileState::ReadOnly if writable => Err(invalid(
            cfg,
            path,
            key,
            format!("'{shown}' opened read-write, but it is read-only on the host"),
            "a writable image, or mode r for a read-only disk",
        )),
        _ => Ok(()),
    }
}

/// Host checks for a resolved config; `path` is the config file, for messages about defaults.
pub(crate) fn check(cfg: &Config, path: &Path, host: &HostFacts) -> Result<(), ConfigError> {
    if cfg.memory_mib < MIN_MEMORY_MIB {
        return Err(invalid(
            cfg,
            path,
            "memory",
            format!("{} MiB", cfg.memory_mib),
            format!("at least {MIN_MEMORY_MIB} MiB"),
        ));
    }
    if cfg.memory_mib > host.memory_mib {
        return Err(invalid(
            cfg,
            path,
            "memory",
            format!("{} MiB", cfg.memory_mib),
            format!("at most the host's {} MiB", host.memory_mib),
        ));
    }
    if cfg.maxmem_mib < cfg.memory_mib {
        return Err(invalid(
            cfg,
            path,
            "maxmem",
            format!("{} MiB, below memory={}", cfg.maxmem_mib, cfg.memory_mib),
            "maxmem at least as large as memory",
        ));
    }
    if cfg.vcpus == 0 || cfg.vcpus > host.max_vcpus {
        return Err(invalid(
            cfg,
            path,
            "vcpus",
            cfg.vcpus.to_string(),
            format!("1 to {} (this host's limit)", host.max_vcpus),
        ));
    }
    if let Some(mask) = cfg.vcpu_avail {
        let all = if cfg.vcpus >= 64 {
            u64::MAX
        } else {
            (1u64 << cfg.vcpus) - 1
        };
        if mask & 1 == 0 || mask & !all != 0 {
            return Err(invalid(
                cfg,
                path,
                "vcpu_avail",
                format!("{mask:#x} for {} vCPUs", cfg.vcpus),
                format!("a mask with bit 0 set and no bit above {:#x}", all),
            ));
        }
    }
    if let Boot::Kernel {
        path: k,
        ramdisk,
        cmdline,
    } = &cfg.boot
    {
        need_file(cfg, path, host, "kernel", k, false)?;
        if let Some(r) = ramdisk {
            need_file(cfg, path, host, "ramdisk", r, false)?;
        }
        host.files
            .check_kernel(k, ramdisk.as_deref(), cmdline, cfg.memory_mib, cfg.vcpus)
            .map_err(|e| {
                // A command-line problem belongs to whichever key built the line.
                let key = if e.key == "extra" {
                    ["cmdline", "extra", "root"]
                        .into_iter()
                        .find(|k| cfg.origins.contains_key(*k))
                        .unwrap_or("extra")
                } else {
                    e.key
                };
                invalid(cfg, path, key, e.found, e.expected)
            })?;
    }
    for d in &cfg.disks {
        if let Some(p) = &d.path {
            need_file(cfg, path, host, "disk", p, d.mode.writable())?;
        }
    }
    for (key, f) in [("fda", &cfg.fda), ("fdb", &cfg.fdb)] {
        if let Some(p) = f {
            need_file(cfg, path, host, key, p, false)?;
        }
    }
    for dev in &cfg.usb.devices {
        if let UsbDevice::Disk(p) = dev {
            need_file(cfg, path, host, "usbdevice", p, true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probing_the_real_host_gives_usable_limits() {
        let h = HostFacts::probe();
        assert!(h.memory_mib > 0);
        assert!((1..=VCPU_CAP).contains(&h.max_vcpus), "{h:?}");
    }

    #[test]
    fn meminfo() {
        assert_eq!(
            mem_total_mib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24000)
        );
        assert_eq!(mem_total_mib("garbage"), None);
    }

    #[test]
    fn real_files() {
        assert_eq!(
            HostFiles.probe(Path::new("/nonexistent/x")),
            FileState::Missing
        );
        assert_eq!(HostFiles.probe(Path::new("/")), FileState::Directory);
        let f = std::env::temp_dir().join(format!("cfgprobe-{}", std::process::id()));
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(HostFiles.probe(&f), FileState::Writable);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).unwrap();
        // root may write a 0444 file anyway; access(W_OK) must agree with what an open for writing does.
        let privileged = std::fs::OpenOptions::new().write(true).open(&f).is_ok();
        let expected = if privileged {
            FileState::Writable
        } else {
            FileState::ReadOnly
        };
        assert_eq!(HostFiles.probe(&f), expected);
        std::fs::remove_file(&f).unwrap();
    }
}
