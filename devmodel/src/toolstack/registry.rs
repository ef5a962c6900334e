//! The runtime directory: which domains run, under which ids and names.
//!
//! Layout under the runtime directory (`$DEVMODEL_RUN_DIR`, default `/run/devmodel`, mode 0700):
//!
//! ```text
//! .lock              flock'ed while an id is allocated, so two starts cannot take the same id or name
//! <id>/domain        key=value lines: name, pid, memory, vcpus, started, serialN (pty paths)
//! <id>/control.sock  the domain's control socket (mode 0600)
//! ```
//!
//! Domain ids are the smallest free integers from 1, as Xen's were while a domain ran. An entry whose process
//! is gone (killed with `kill -9`, say) is stale: every look-up removes it, so its id and name are free again.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the runtime directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another running domain has this name.
    #[error("a domain named '{name}' is already running as id {id} (names are unique: destroy it first or change `name`)")]
    NameTaken { name: String, id: u32 },
    /// No running domain has this name or id.
    #[error("no running domain is called or numbered '{0}' (see `devmodel list`)")]
    NotFound(String),
    /// All ids are in use.
    #[error("no free domain id")]
    NoFreeId,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RegistryError + 'a {
    move |source| RegistryError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The most domains one runtime directory holds.
const MAX_DOMAINS: u32 = 4096;

/// The runtime directory in use: `$DEVMODEL_RUN_DIR`, or `/run/devmodel`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("DEVMODEL_RUN_DIR")
        .map_or_else(|| PathBuf::from("/run/devmodel"), PathBuf::from)
}

/// What the runtime directory records about one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Domain id.
    pub id: u32,
    /// Domain name.
    pub name: String,
    /// The device-model process.
    pub pid: i32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Start time, Unix seconds.
    pub started: u64,
    /// Pty paths of the serial ports that have one, by port index.
    pub ptys: BTreeMap<usize, PathBuf>,
    /// The VNC server's address (`host:port`), when it has one.
    pub vnc: Option<String>,
}

impl DomainRecord {
    fn render(&self) -> String {
        let mut s = format!(
            "name={}\npid={}\nmemory={}\nvcpus={}\nstarted={}\n",
            self.name, self.pid, self.memory_mib, self.vcpus, self.started
        );
        for (port, path) in &self.ptys {
            s.push_str(&format!("serial{port}={}\n", path.display()));
        }
        if let Some(vnc) = &self.vnc {
            s.push_str(&format!("vnc={vnc}\n"));
        }
        s
    }

    fn parse(id: u32, text: &str) -> Option<DomainRecord> {
        let mut rec = DomainRecord {
            id,
            name: String::new(),
            pid: 0,
            memory_mib: 0,
            vcpus: 0,
            started: 0,
            ptys: BTreeMap::new(),
            vnc: None,
        };
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            match key {
                "name" => rec.name = value.to_string(),
                "pid" => rec.pid = value.parse().ok()?,
                "memory" => rec.memory_mib = value.parse().ok()?,
                "vcpus" => rec.vcpus = value.parse().ok()?,
                "started" => rec.started = value.parse().ok()?,
                "vnc" => rec.vnc = Some(value.to_string()),
                k if k.starts_with("serial") => {
                    let port = k["serial".len()..].parse().ok()?;
                    rec.ptys.insert(port, PathBuf::from(value));
                }
                _ => {}
            }
        }
        (!rec.name.is_empty() && rec.pid > 0).then_some(rec)
    }
}

/// The runtime directory.
pub struct Registry {
    dir: PathBuf,
}

/// A domain's entry, removed when dropped (the process that registered it is ending).
pub struct Registration {
    /// The domain's directory.
    pub dir: PathBuf,
    /// The allocated id.
    pub id: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Registration {
    /// The control socket's path.
    pub fn control_path(&self) -> PathBuf {
        control_socket(&self.dir)
    }

    /// Rewrites the record (e.g. once the pty paths are known).
    pub fn update(&self, record: &DomainRecord) -> Result<(), RegistryError> {
        write_record(&self.dir, record)
    }
}

/// The control socket inside a domain's directory.
fn control_socket(domain_dir: &Path) -> PathBuf {
    domain_dir.join("control.sock")
}

fn write_record(dir: &Path, record: &DomainRecord) -> Result<(), RegistryError> {
    let tmp = dir.join("domain.tmp");
    fs::write(&tmp, record.render()).map_err(io("cannot write", &tmp))?;
    let path = dir.join("domain");
    fs::rename(&tmp, &path).map_err(io("cannot write", &path))
}

/// Whether process `pid` exists and has not ended: a zombie (ended, not yet reaped by its parent) counts as
/// gone, since its device model is no longer there.
pub(crate) fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists
        && stat_fields(&format!("/proc/{pid}/stat"))
            .first()
            .map(String::as_str)
            != Some("Z")
}

/// The fields of a `/proc/.../stat` file after the parenthesised command name (state first), or none if it
/// cannot be read. The name may hold spaces and parentheses, hence the split at the last ") ".
pub(crate) fn stat_fields(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

impl Registry {
    /// Opens (creating, owner-only) the runtime directory.
    pub fn open(dir: PathBuf) -> Result<Registry, RegistryError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io("cannot create the runtime directory", &dir))?;
        Ok(Registry { dir })
    }

    fn lock(&self) -> Result<fs::File, RegistryError> {
        let path = self.dir.join(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        // SAFETY: flock on a file descriptor we own; it is released when the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RegistryError::Io {
                what: "cannot lock",
                path,
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(file)
    }

    /// Every live domain, ordered by id; stale entries are removed on the way.
    pub fn domains(&self) -> Result<Vec<DomainRecord>, RegistryError> {
        let _lock = self.lock()?;
        self.scan()
    }

    fn scan(&self) -> Result<Vec<DomainRecord>, RegistryError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(io("cannot read", &self.dir))?;
        for entry in entries.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let record = fs::read_to_string(entry.path().join("domain"))
                .ok()
                .and_then(|t| DomainRecord::parse(id, &t));
            match record {
                Some(rec) if alive(rec.pid) => out.push(rec),
                Some(_) => {
                    // The process is gone (kill -9, crash of the device model): clean up after it.
                    let _ = fs::remove_dir_all(entry.path());
                }
                None => {
                    // Being registered right now (under the lock that is not possible) or a damaged entry whose
                    // directory is older than a minute.
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|d| d.as_secs() > 60);
                    if old {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Registers a new domain: checks its name is free and takes the smallest free id.
    pub fn register(&self, record: &DomainRecord) -> Result<Registration, RegistryError> {
        let _lock = self.lock()?;
        let live = self.scan()?;
        if let Some(existing) = live.iter().find(|r| r.name == record.name) {
            return Err(RegistryError::NameTaken {
                name: record.name.clone(),
                id: existing.id,
            });
        }
        for id in 1..=MAX_DOMAINS {
            let dir = self.dir.join(id.to_string());
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
                    let registration = Registration { dir, id };
                    let mut rec = record.clone();
                    rec.id = id;
                    write_record(&registration.dir, &rec)?;
                    return Ok(registration);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io("cannot create", &dir)(e)),
            }
        }
        Err(RegistryError::NoFreeId)
    }

    /// The live domain called `name_or_id` (a name, or a number for an id).
    pub fn find(&self, name_or_id: &str) -> Result<DomainRecord, RegistryError> {
        let live = self.domains()?;
        let by_id = name_or_id.parse::<u32>().ok();
        live.into_iter()
            .find(|r| r.name == name_or_id || Some(r.id) == by_id)
            .ok_or_else(|| RegistryError::NotFound(name_or_id.to_string()))
    }

    /// A domain's control socket path.
    pub fn control_path(&self, id: u32) -> PathBuf {
        control_socket(&self.dir.join(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> DomainRecord {
        DomainRecord {
            id: 0,
            name: name.into(),
            pid: std::process::id() as i32,
            memory_mib: 128,
            vcpus: 1,
            started: 1,
            ptys: BTreeMap::from([(0, PathBuf::from("/dev/pts/7"))]),
            vnc: Some("127.0.0.1:5901".into()),
        }
    }

    fn temp_registry(tag: &str) -> (Registry, PathBuf) {
        let dir = std::env::temp_dir().join(format!("devmodel-reg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (Registry::open(dir.clone()).unwrap(), dir)
    }

    #[test]
    fn ids_are_the_smallest_free_and_names_unique() {
        let (reg, dir) = temp_registry("ids");
        let a = reg.register(&record("a")).unwrap();
        let b = reg.register(&record("b")).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert!(matches!(
            reg.register(&record("a")),
            Err(RegistryError::NameTaken { .. })
        ));
        drop(a);
        let c = reg.register(&record("c")).unwrap();
        assert_eq!(c.id, 1, "a freed id is reused");
        let found = reg.find("b").unwrap();
        assert_eq!(found.id, 2);
        assert_eq!(reg.find("1").unwrap().name, "c");
        assert_eq!(found.ptys.get(&0), Some(&PathBuf::from("/dev/pts/7")));
        assert!(matches!(reg.find("zz"), Err(RegistryError::NotFound(_))));
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop((b, c));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn entries_of_dead_processes_are_cleaned() {
        let (reg, dir) = temp_registry("stale");
        let mut dead = record("ghost");
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        dead.pid = child.id() as i32;
        child.wait().unwrap();
        let reg_entry = reg.register(&dead).unwrap();
        let path = reg_entry.dir.clone();
        std::mem::forget(reg_entry); // as if the process had been killed with -9
        assert!(reg.domains().unwrap().is_empty());
        assert!(!path.exists(), "the stale entry is removed");
        let again = reg.register(&record("ghost")).unwrap();
        assert_eq!(again.id, 1);
        drop(again);
        let _ = fs::remove_dir_all(dir);
    }
}
