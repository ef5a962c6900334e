//! Private network namespaces with real peers, for tests that put NICs on a real network without touching
//! the host's own.
//!
//! # How a test enters a namespace
//!
//! Network namespaces belong to threads, not processes: `unshare(CLONE_NEWNET)` moves only the calling
//! thread. [`run_isolated`] and [`with_lab`] therefore spawn a fresh thread, move it into a new namespace,
//! and run the test's closure there; the test harness's own threads never change namespace, so one test
//! cannot leak its namespace into another (libtest reuses the main thread with `--test-threads=1`).
//! Everything made from that thread stays in the namespace for life: a tap opened there, a socket created
//! there, and every process and thread it starts (`ip`, `dnsmasq`, a vif script, an event-loop thread)
//! inherit it. Descriptors keep their namespace when used from other threads, so an event loop may run
//! anywhere once the tap is open. When the thread ends and the last descriptor closes, the namespace, its
//! bridge and its taps disappear; [`NetLab`]'s drop stops `dnsmasq` first.
//!
//! Nothing here runs a network command unless the thread's `unshare` succeeded, so a test can never
//! configure the host's interfaces by mistake.
//!
//! # Requirements
//!
//! Root (`CAP_SYS_ADMIN` for `unshare`, `CAP_NET_ADMIN` inside), `/dev/net/tun`, `ip` from iproute2 and,
//! for [`with_lab`], `dnsmasq` (Debian's `dnsmasq-base`, which `scripts/setup.sh` installs). Without them the
//! tests fail with a message saying what is missing, unless `DEVMODEL_SKIP_NETNS=1` asks to skip them, as
//! `DEVMODEL_SKIP_KVM=1` does for the KVM tests.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Set to `1` to skip network-namespace tests where they cannot run.
pub const SKIP_VAR: &str = "DEVMODEL_SKIP_NETNS";
/// The lab's bridge: the name Xen configs use by default.
pub const LAB_BRIDGE: &str = "xenbr0";
/// The bridge's address (the host side, and the DHCP server).
pub const LAB_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
/// The bridge's prefix length.
pub const LAB_PREFIX: u8 = 24;
/// The first address `dnsmasq` leases.
pub const DHCP_FIRST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
/// The last address `dnsmasq` leases.
pub const DHCP_LAST: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 200);
/// How long `dnsmasq` may take to start listening.
const DNSMASQ_START: Duration = Duration::from_secs(10);

/// Where a tool may be when `PATH` lacks the sbin directories (as it does for non-login shells).
const SYSTEM_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The path of the executable `name`, from `PATH` or the system directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn enter_new_netns() -> std::io::Result<()> {
    // SAFETY: unshare(2) with CLONE_NEWNET only moves the calling thread into a new network namespace; it
    // touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Why namespace tests cannot run here, if they cannot.
fn missing(need_dnsmasq: bool) -> Option<String> {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("they must run as root".to_string());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (load the tun module)".to_string());
    }
    if find_tool("ip").is_none() {
        return Some("`ip` is not installed (Debian package iproute2)".to_string());
    }
    if need_dnsmasq && find_tool("dnsmasq").is_none() {
        return Some(
            "`dnsmasq` is not installed (Debian package dnsmasq-base; scripts/setup.sh installs it)"
                .to_string(),
        );
    }
    // Try it, in a thread that is thrown away.
    match std::thread::spawn(enter_new_netns).join() {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("unshare(CLONE_NEWNET) failed: {e}")),
        Err(_) => Some("the namespace probe thread panicked".to_string()),
    }
}

/// Whether namespace tests can run. When they cannot, this panics with the reason, unless
/// `DEVMODEL_SKIP_NETNS=1` is set (then it prints SKIPPED and returns false).
pub fn netns_available(need_dnsmasq: bool) -> bool {
    let Some(why) = missing(need_dnsmasq) else {
        return true;
    };
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("SKIPPED: network-namespace test: {why}; {SKIP_VAR}=1");
        return false;
    }
    panic!("network-namespace tests cannot run: {why} (set {SKIP_VAR}=1 to skip them explicitly)");
}

/// Runs a command to completion; its stdout, or an error with everything it printed.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let path = find_tool(program).ok_or_else(|| format!("{program} is not installed"))?;
    let out = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `ip ARGS` in the current thread's namespace, panicking with its output on failure.
pub fn ip(args: &[&str]) -> String {
    run("ip", args).unwrap_or_else(|e| panic!("{e}"))
}

fn isolated_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("netns-test".to_string())
            .spawn_scoped(s, || {
                enter_new_netns().unwrap_or_else(|e| panic!("unshare(CLONE_NEWNET) failed: {e}"));
                ip(&["link", "set", "lo", "up"]);
                f()
            })
            .unwrap_or_else(|e| panic!("cannot start the namespace thread: {e}"));
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `f` on a fresh thread in a new network namespace holding only a loopback interface (up). `None`
/// when namespaces are unavailable and `DEVMODEL_SKIP_NETNS=1`; panics (with the reason) when unavailable
/// otherwise. A panic in `f` is the test's failure and propagates.
pub fn run_isolated<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    netns_available(false).then(|| isolated_thread(f))
}

/// Like [`run_isolated`], with a [`NetLab`] set up in the namespace first and torn down after.
pub fn with_lab<R: Send>(f: impl FnOnce(&NetLab) -> R + Send) -> Option<R> {
    netns_available(true).then(|| {
        isolated_thread(|| {
            let lab =
                NetLab::start().unwrap_or_else(|e| panic!("setting up the test network: {e}"));
            f(&lab)
        })
    })
}

/// A test network inside a private namespace: the bridge [`LAB_BRIDGE`] with [`LAB_ADDRESS`]/24, up, and a
/// real `dnsmasq` serving DHCP on it for [`DHCP_FIRST`]–[`DHCP_LAST`]. IPv6 is off in the namespace so that
/// the kernel's router solicitations and MLD reports do not clutter what the NICs receive. Made only by
/// [`with_lab`], so only ever inside a fresh namespace.
pub struct NetLab {
    dnsmasq: Option<Child>,
    dir: PathBuf,
}

impl NetLab {
    fn start() -> Result<NetLab, String> {
        for which in ["all", "default"] {
            // Best effort: a kernel without IPv6 has nothing to turn off.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6"), "1");
        }
        run("ip", &["link", "add", LAB_BRIDGE, "type", "bridge"])?;
        let address = format!("{LAB_ADDRESS}/{LAB_PREFIX}");
        run("ip", &["addr", "add", &address, "dev", LAB_BRIDGE])?;
        run("ip", &["link", "set", LAB_BRIDGE, "up"])?;

        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "devmodel-netlab-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut lab = NetLab { dnsmasq: None, dir };
        lab.start_dnsmasq()?;
        Ok(lab)
    }

    fn start_dnsmasq(&mut self) -> Result<(), String> {
        let dnsmasq = find_tool("dnsmasq").ok_or("dnsmasq is not installed")?;
        let log = self.dir.join("dnsmasq.log");
        let stderr = std::fs::File::create(self.dir.join("dnsmasq.stderr"))
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let range = format!("--dhcp-range={DHCP_FIRST},{DHCP_LAST},255.255.255.0,1h");
        let child = Command::new(dnsmasq)
            .args([
                "--keep-in-foreground",
                // No configuration file of the host's, no DNS service, no host files.
                "--conf-file=/dev/null",
                "--port=0",
                "--no-resolv",
                "--no-hosts",
                &format!("--interface={LAB_BRIDGE}"),
                "--bind-interfaces",
                &range,
                // Answer at once: no ping probe of the address first, and authoritative for REQUESTs.
                "--no-ping",
                "--dhcp-authoritative",
                "--user=root",
                "--log-dhcp",
                &format!("--log-facility={}", log.display()),
                &format!("--dhcp-leasefile={}", self.dir.join("leases").display()),
                &format!("--pid-file={}", self.dir.join("dnsmasq.pid").display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start dnsmasq: {e}"))?;
        self.dnsmasq = Some(child);
        // Ready once its DHCP socket (port 67 = 0x0043) is bound, in this thread's namespace.
        let deadline = Instant::now() + DNSMASQ_START;
        loop {
            let udp = std::fs::read_to_string("/proc/thread-self/net/udp").unwrap_or_default();
            if udp.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(":0043"))
            }) {
                return Ok(());
            }
            if let Some(status) = self
                .dnsmasq
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("dnsmasq exited at once ({status}): {}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!("dnsmasq did not start listening: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        LAB_BRIDGE
    }

    /// The bridge's (and DHCP server's) address.
    pub fn address(&self) -> Ipv4Addr {
        LAB_ADDRESS
    }

    /// A scratch directory that lives as long as the lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `dnsmasq` logged (for failure messages).
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}{}", read("dnsmasq.log"), read("dnsmasq.stderr"))
    }

    /// The `dnsmasq` lease file: one line per lease, `EXPIRY MAC IP HOSTNAME CLIENT-ID`.
    pub fn leases(&self) -> String {
        std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default()
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        if let Some(mut child) = self.dnsmasq.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The bridge would go with the namespace; removing it keeps a reused thread's namespace clean too.
        let _ = run("ip", &["link", "del", LAB_BRIDGE]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
