//! Runs a machine on KVM: the VM, the platform, one thread per vCPU and the event loop on the calling thread.
//! With the SDL window (`sdl=1`, cargo feature `sdl`) the calling thread, which must be the process's main
//! thread, runs the window instead and the event loop gets a thread of its own.
//!
//! Guest reboot, power-off and crash arrive as [`SystemRequest`]s; the config's `on_reboot`, `on_poweroff` and
//! `on_crash` decide what follows (Xen's actions: destroy, restart, preserve, rename-restart).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use devices::clock::{Clock, HostClock};
use devices::system::{SystemEvents, SystemRequest};
use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::config::{Action, Config};
use crate::event_loop::{Flow, Outcome, SystemChannel, SystemSubscriber, Timers};
use crate::kvm::{install_kick_handler, KvmBarMapper, KvmError, KvmVm, VcpuControl};
use crate::machine::{MachineError, MachineOptions, Platform, PlatformEnv};
use crate::toolstack::control::{Command, ControlError, ControlServer, Handler};
use crate::toolstack::registry::{run_dir, stat_fields, DomainRecord, Registry, RegistryError};

/// Why a machine could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// KVM refused something.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// The machine could not be built.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// A serial back-end could not be opened.
    #[error("serial port {port} ({spec}): {source}")]
    Serial {
        port: usize,
        spec: String,
        #[source]
        source: devices::chardev::CharError,
    },
    /// The domain could not be registered (name taken, runtime directory unusable).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The control socket could not be set up.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A display front-end (the VNC server, the SDL window) could not start.
    #[error(transparent)]
    Frontend(#[from] crate::frontends::FrontendError),
    /// A NIC's tap could not be set up.
    #[error(transparent)]
    Net(#[from] crate::net_host::NetHostError),
    /// An OS resource (eventfd, timerfd, epoll, thread) could not be had.
    #[error("{what}: {source}")]
    Os {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn os(what: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Os { what, source }
}

/// What the caller provides besides the config.
pub struct RunIo {
    /// Where the firmware debug port's bytes go.
    pub debugcon: Box<dyn std::io::Write + Send>,
}

/// The eventfd SIGTERM/SIGINT/SIGHUP write to, so the loop ends the guest cleanly (back-ends flushed).
static TERMINATE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_terminate(_: libc::c_int) {
    let fd = TERMINATE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live 8-byte local.
        unsafe {
            libc::write(fd, (&one as *const u64).cast(), 8);
        }
    }
}

struct Terminate(EventFd, Arc<Mutex<Option<Outcome>>>);

impl MutEventSubscriber for Terminate {
    fn process(&mut self, _: Events, _: &mut EventOps) {
        let _ = self.0.read();
        log::info!("termination signal: destroying the domain");
        let mut outcome = self.1.lock().unwrap_or_else(|e| e.into_inner());
        outcome.get_or_insert(Outcome::Destroyed);
    }
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.0, EventSet::IN)) {
            log::error!("cannot watch termination signals: {e}");
        }
    }
}

fn install_terminate_handler(fd: &EventFd) -> std::io::Result<()> {
    TERMINATE_FD.store(fd.as_raw_fd(), Ordering::Relaxed);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a plain handler that only calls write(2); installing it has no other
        // effect on the process.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_terminate as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Host time plus the guest's RTC offsets, in Unix seconds.
pub fn rtc_start(localtime: bool, offset_secs: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let local = if localtime { local_utc_offset(now) } else { 0 };
    now.saturating_add(local).saturating_add(offset_secs)
}

/// The host's offset from UTC at `now`, in seconds (what `localtime=1` adds to the RTC).
fn local_utc_offset(now: i64) -> i64 {
    let t: libc::time_t = now;
    // SAFETY: `tm` is a plain struct filled by localtime_r, which only reads `t` and the timezone database.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

/// Boots `config` on KVM and runs it until the guest's life ends; returns how it ended.
pub fn run(config: &Config, options: &MachineOptions, io: RunIo) -> Result<Outcome, RunError> {
    install_kick_handler().map_err(os("installing the vCPU kick signal handler"))?;
    // Register first: a second domain with this name is refused before anything starts.
    let registry = Registry::open(run_dir())?;
    let mut record = DomainRecord {
        id: 0,
        name: config.name.clone(),
        pid: std::process::id() as i32,
        memory_mib: config.memory_mib,
        vcpus: config.vcpus,
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ptys: Default::default(),
        vnc: None,
    };
    let registration = registry.register(&record)?;
    record.id = registration.id;
    log::info!("domain {} has id {}", config.name, registration.id);
    // The SDL window opens before any other thread starts (it hands `display` and `xauthority` to Xlib through
    // the environment) and before the guest runs, so an X display that cannot be opened stops nothing.
    #[cfg(feature = "sdl")]
    let sdl_window = match &config.display.sdl {
        Some(settings) => Some(
            crate::sdl::SdlWindow::open(&config.name, settings)
                .map_err(crate::frontends::FrontendError::from)?,
        ),
        None => None,
    };
    let vm = Arc::new(KvmVm::new()?);
    let clock: Arc<dyn Clock> = Arc::new(HostClock::new());
    let channel = SystemChannel::new().map_err(os("eventfd"))?;
    let mut timers = Timers::new(clock.clone()).map_err(os("timerfd"))?;

    // Back-ends open before any vCPU runs: a `server` socket without `nowait` waits here for its first client,
    // as qemu-dm did, so that no early output is lost.
    let mut serial = Vec::new();
    let mut char_subscribers = Vec::new();
    for (port, spec) in config.serial.iter().enumerate() {
        let opened = devices::chardev::open(spec).map_err(|source| RunError::Serial {
            port,
            spec: spec.to_string(),
            source,
        })?;
        if let Some(path) = &opened.pty_path {
            // The line qemu-dm printed and xend parsed to find the console.
            println!("char device redirected to {}", path.display());
            record.ptys.insert(port, path.clone());
        }
        if let Some(addr) = opened.local_addr {
            log::info!("serial port {port} listening on {addr}");
        }
        serial.push(opened.backend);
        char_subscribers.extend(opened.subscriber);
    }

    registration.update(&record)?;

    // One tap per NIC, named after the domain id, joined to its bridge (or handed to its script) before the
    // guest runs, as qemu-dm did. The taps go away when the process ends.
    let mut nic_backends: Vec<Arc<dyn devices::net::NetBackend>> = Vec::new();
    let mut tap_subscribers = Vec::new();
    let mut taps = Vec::new();
    for (index, nic) in crate::machine::machine_nics(config) {
        let host = crate::net_host::open_nic_backend(nic, record.id, index)?;
        taps.push((index, host.backend.clone()));
        nic_backends.push(host.backend);
        tap_subscribers.push(host.subscriber);
    }

    let env = PlatformEnv {
        clock: clock.clone(),
        gsi: vm.gsi_sink(),
        system: channel.clone(),
        kick: timers.kick_handle(),
        rtc_start: rtc_start(config.rtc.localtime, config.rtc.offset_seconds),
        debugcon: io.debugcon,
        serial,
        nics: nic_backends,
    };
    let platform = Arc::new(Platform::build(config, options, env)?);
    for device in &platform.timed {
        timers.add(device.clone());
    }
    vm.map_ram(&platform.mem)?;
    vm.map_rom(platform.bios.rom_base(), platform.bios.bytes())?;
    // The VGA's linear framebuffer as guest RAM with dirty-page logging, folded into each display refresh.
    // Where KVM refuses the slot, the BAR stays trapped MMIO (with a warning).
    let bar_mapper = KvmBarMapper::new(vm.clone());
    platform.vga.set_dirty_source(bar_mapper.clone());
    platform.pci.set_memory_mapper(bar_mapper);

    // The VNC server listens before the first instruction runs, so a viewer sees the firmware from its start.
    let _vnc = match &config.display.vnc {
        Some(vnc) => {
            let input = platform.i8042.clone();
            let server = crate::frontends::start_vnc(
                vnc,
                &config.display.keymap,
                record.id,
                platform.display.clone(),
                input.clone(),
                input,
            )?;
            let addr = server.local_addr();
            let target = crate::frontends::viewer_target(addr);
            println!("VNC server listening on {addr} (vncviewer {target})");
            log::info!("VNC server listening on {addr}");
            record.vnc = Some(addr.to_string());
            registration.update(&record)?;
            if vnc.viewer {
                crate::frontends::spawn_viewer(&target);
            }
            Some(server)
        }
        None => None,
    };

    let mut vcpus = vm.create_vcpus(config.vcpus as usize, &config.cpuid)?;
    // Direct kernel boot: the boot vCPU enters the kernel (now and after every reset); the others wait for
    // INIT/SIPI from it as they would under firmware.
    if let (Some(entry), Some(boot_cpu)) = (&platform.boot_entry, vcpus.first_mut()) {
        boot_cpu.set_boot_entry(entry)?;
    }
    let control = Arc::new(VcpuControl::new(vcpus.len()));
    {
        let control = control.clone();
        channel.set_stop_hook(Box::new(move || control.request_stop()));
    }
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for vcpu in vcpus {
        let (pio, mmio) = (platform.pio.clone(), platform.mmio.clone());
        let (ctl, sys) = (control.clone(), channel.clone() as Arc<dyn SystemEvents>);
        let handle = std::thread::Builder::new()
            .name(format!("vcpu{}", vcpu.id()))
            .spawn(move || vcpu.run(pio, mmio, ctl, sys))
            .map_err(os("starting a vCPU thread"))?;
        threads.push(handle);
    }

    let outcome = Arc::new(Mutex::new(None));
    let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> = EventManager::new()
        .map_err(|e| RunError::Os {
            what: "epoll",
            source: std::io::Error::other(e.to_string()),
        })?;
    manager.add_subscriber(Box::new(timers));
    for subscriber in char_subscribers {
        manager.add_subscriber(Box::new(subscriber));
    }
    for subscriber in tap_subscribers {
        manager.add_subscriber(Box::new(subscriber));
    }
    let terminate = EventFd::new(EFD_NONBLOCK).map_err(os("eventfd"))?;
    install_terminate_handler(&terminate).map_err(os("installing signal handlers"))?;
    let status = Arc::new(AtomicU8::new(b'r'));
    let _control_server = ControlServer::start(
        &registration.control_path(),
        control_handler(
            control.clone(),
            platform.clone(),
            channel.clone(),
            terminate.try_clone().map_err(os("eventfd"))?,
            status.clone(),
            taps,
        ),
    )?;
    manager.add_subscriber(Box::new(Terminate(terminate, outcome.clone())));

    let actions = Actions {
        on_poweroff: config.on_poweroff,
        on_reboot: config.on_reboot,
        on_crash: config.on_crash,
    };
    let (ctl, plat, kvm, st) = (
        control.clone(),
        platform.clone(),
        vm.clone(),
        status.clone(),
    );
    let handler = move |request: SystemRequest| actions.decide(request, &ctl, &plat, &kvm, &st);
    manager.add_subscriber(Box::new(SystemSubscriber::new(
        channel.clone(),
        handler,
        outcome.clone(),
    )));

    let event_loop = move || {
        let result = loop {
            if let Some(done) = outcome.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                break done;
            }
            if let Err(e) = manager.run() {
                log::error!("event loop: {e}");
            }
        };
        control.exit();
        for thread in threads {
            let _ = thread.join();
        }
        result
    };
    #[cfg(feature = "sdl")]
    if let Some(window) = sdl_window {
        return run_with_window(window, event_loop, &platform, &channel);
    }
    Ok(event_loop())
}

/// Runs `event_loop` on a thread of its own while this (main) thread runs the SDL window, until the machine
/// ends; the window closes then.
#[cfg(feature = "sdl")]
fn run_with_window(
    window: crate::sdl::SdlWindow,
    event_loop: impl FnOnce() -> Outcome + Send + 'static,
    platform: &Platform,
    channel: &Arc<SystemChannel>,
) -> Result<Outcome, RunError> {
    let machine = std::thread::Builder::new()
        .name("event-loop".into())
        .spawn(event_loop)
        .map_err(os("starting the event loop thread"))?;
    // Closing qemu-dm's SDL window powered the domain off (on_poweroff decides what follows).
    let channel = channel.clone();
    let on_close = Box::new(move || channel.request(SystemRequest::PowerOff));
    let input = platform.i8042.clone();
    if let Err(e) = window.run(
        platform.display.clone(),
        input.clone(),
        input,
        on_close,
        &|| !machine.is_finished(),
    ) {
        log::error!("{e}; the guest goes on without its window");
    }
    machine.join().map_err(|_| RunError::Os {
        what: "event loop thread",
        source: std::io::Error::other("it panicked"),
    })
}

/// The config's answers to the guest's reboot, power-off and crash.
#[derive(Clone, Copy)]
struct Actions {
    on_poweroff: Action,
    on_reboot: Action,
    on_crash: Action,
}

impl Actions {
    fn decide(
        &self,
        request: SystemRequest,
        control: &VcpuControl,
        platform: &Platform,
        vm: &KvmVm,
        status: &AtomicU8,
    ) -> Flow {
        let (action, event, end) = match &request {
            SystemRequest::Reset => (self.on_reboot, "rebooted", Outcome::RebootDestroyed),
            SystemRequest::PowerOff => (self.on_poweroff, "powered off", Outcome::PoweredOff),
            SystemRequest::Crash(why) => (self.on_crash, "crashed", Outcome::Crashed(why.clone())),
        };
        if let SystemRequest::Crash(why) = &request {
            log::error!("guest crashed: {why}");
        } else {
            log::info!("guest {event}");
        }
        match action {
            Action::Destroy | Action::CoredumpDestroy => Flow::Exit(end),
            Action::Restart | Action::RenameRestart | Action::CoredumpRestart => {
                if !control.pause() {
                    return Flow::Exit(Outcome::Crashed("vCPUs did not stop for a reset".into()));
                }
                platform.reset();
                if let Err(e) = vm.reset_irqchips() {
                    return Flow::Exit(Outcome::Crashed(format!("reset failed: {e}")));
                }
                control.resume(true);
                status.store(b'r', Ordering::SeqCst);
                log::info!("guest restarted");
                Flow::Continue
            }
            Action::Preserve => {
                control.pause();
                // xm's letters: s for a guest that shut down, c for one that crashed.
                let letter = if matches!(request, SystemRequest::Crash(_)) {
                    b'c'
                } else {
                    b's'
                };
                status.store(letter, Ordering::SeqCst);
                log::info!("guest {event}; preserved (paused) as on_* = 'preserve' asks");
                Flow::Continue
            }
        }
    }
}

/// What the domain does for each toolstack command. Runs on the control thread: everything it touches is
/// thread-safe, and what must happen on the event loop (a reset, the end of the domain) is sent there.
fn control_handler(
    control: Arc<VcpuControl>,
    platform: Arc<Platform>,
    channel: Arc<SystemChannel>,
    terminate: EventFd,
    status: Arc<AtomicU8>,
    taps: Vec<(usize, Arc<devices::net::tap::TapBackend>)>,
) -> Handler {
    Arc::new(move |command| match command {
        Command::Info => Ok(format!(
            "state={} time={:.1}",
            state_letter(status.load(Ordering::SeqCst)),
            cpu_seconds()
        )),
        Command::Shutdown => match &platform.pm {
            Some(pm) if pm.press_power_button() => Ok(String::new()),
            Some(_) => Err(
                "the guest does not listen to the ACPI power button yet (no ACPI OS running); \
                            use destroy to end it"
                    .into(),
            ),
            None => Err(
                "the guest has no ACPI (acpi=0): it cannot be asked to shut down; use destroy"
                    .into(),
            ),
        },
        Command::Reboot => {
            channel.request(SystemRequest::Reset);
            Ok(String::new())
        }
        Command::Destroy => terminate
            .write(1)
            .map(|_| String::new())
            .map_err(|e| e.to_string()),
        Command::Pause => {
            if status.load(Ordering::SeqCst) != b'r' {
                return Err("the domain is not running".into());
            }
            if !control.pause() {
                return Err("the vCPUs did not stop".into());
            }
            status.store(b'p', Ordering::SeqCst);
            Ok(String::new())
        }
        Command::Unpause => {
            if status.load(Ordering::SeqCst) != b'p' {
                return Err("the domain is not paused".into());
            }
            control.resume(false);
            status.store(b'r', Ordering::SeqCst);
            Ok(String::new())
        }
        Command::BlockConfigure { device, path } => platform.change_medium(&device, &path),
        Command::SetLink { nic, up } => set_link(&platform, &taps, nic, up),
    })
}

/// Takes the tap of NIC `nic` (its `vif` index) down or up and lets the NIC model see the change.
fn set_link(
    platform: &Platform,
    taps: &[(usize, Arc<devices::net::tap::TapBackend>)],
    nic: usize,
    up: bool,
) -> Result<String, String> {
    let position = taps
        .iter()
        .position(|(index, _)| *index == nic)
        .ok_or_else(|| format!("the domain has no NIC {nic} (it has {})", taps.len()))?;
    let (_, tap) = &taps[position];
    tap.set_link(up).map_err(|e| e.to_string())?;
    if let Some(wired) = platform.nics.get(position) {
        wired.device.link_changed();
    }
    Ok(String::new())
}

/// The `xm list` state letter: a running domain whose vCPUs all wait (HLT, or for a SIPI) shows as blocked.
fn state_letter(status: u8) -> char {
    if status == b'r' && !any_vcpu_running() {
        return 'b';
    }
    char::from(status)
}

/// Whether some vCPU thread of this process is on a CPU or runnable now.
fn any_vcpu_running() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return true;
    };
    tasks.flatten().any(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("vcpu") {
            return false;
        }
        stat_fields(&task.path().join("stat").to_string_lossy())
            .first()
            .is_some_and(|state| state == "R")
    })
}

/// CPU seconds this process used (user + system), as `xm list` shows per domain.
fn cpu_seconds() -> f64 {
    let fields = stat_fields("/proc/self/stat");
    // After the command name: state is field 0, utime field 11, stime field 12.
    let ticks: u64 = [11usize, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}
