//! Stopping and restarting vCPU threads: pause for a platform reset, resume, exit.
//!
//! vCPU threads spend their time inside `KVM_RUN`. To get them out, the controller sets the desired state, then
//! sends each thread a signal whose handler sets `kvm_run.immediate_exit`: whether the signal lands before or
//! during `KVM_RUN`, the ioctl returns `EINTR` and the thread comes to [`VcpuControl::checkpoint`], where it
//! parks until told to go on. The handler touches only a thread-local pointer, so it is async-signal-safe.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

/// What the vCPU threads should be doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Running guest code.
    Running,
    /// Parked at their checkpoint (for a reset, pause or while the machine decides what follows a crash).
    Paused,
    /// Leaving their threads for good.
    Exiting,
}

/// What a vCPU thread should do after its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Go on running.
    Run,
    /// A platform reset happened while parked: restore the power-on register state first.
    Reset,
    /// End the thread.
    Exit,
}

struct Inner {
    state: RunState,
    generation: u64,
    parked: usize,
    threads: Vec<libc::pthread_t>,
}

/// Shared by the machine and every vCPU thread.
pub struct VcpuControl {
    inner: Mutex<Inner>,
    changed: Condvar,
    vcpus: usize,
}

thread_local! {
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only a `const`-initialised thread-local read and a volatile byte write: async-signal-safe.
    let ptr = IMMEDIATE_EXIT.with(|p| p.get());
    if !ptr.is_null() {
        // SAFETY: the pointer was set by this thread to its own `kvm_run.immediate_exit`, which stays mapped for
        // the vCPU's lifetime; it is cleared before the vCPU is dropped.
        unsafe { std::ptr::write_volatile(ptr, 1) };
    }
}

/// The signal used to kick vCPU threads out of `KVM_RUN`.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

/// Installs the kick handler (once per process).
pub fn install_kick_handler() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = register_signal_handler(kick_signal(), kick_handler)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()));
    });
    result
}

/// Makes `ptr` (this thread's `kvm_run.immediate_exit`) the byte the kick handler sets; null clears it.
pub fn set_thread_immediate_exit(ptr: *mut u8) {
    IMMEDIATE_EXIT.with(|p| p.set(ptr));
}

impl VcpuControl {
    /// Control for `vcpus` threads, initially running.
    pub fn new(vcpus: usize) -> Self {
        VcpuControl {
            inner: Mutex::new(Inner {
                state: RunState::Running,
                generation: 0,
                parked: 0,
                threads: Vec::new(),
            }),
            changed: Condvar::new(),
            vcpus,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by each vCPU thread when it starts, so that it can be kicked.
    pub fn register_thread(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.lock().threads.push(me);
    }

    /// The current reset generation; a vCPU thread starts with it.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Where a vCPU thread waits while the machine is paused. `seen` is the thread's reset generation.
    pub fn checkpoint(&self, seen: &mut u64) -> Checkpoint {
        let mut inner = self.lock();
        while inner.state == RunState::Paused {
            inner.parked += 1;
            self.changed.notify_all();
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
            inner.parked -= 1;
        }
        if inner.state == RunState::Exiting {
            return Checkpoint::Exit;
        }
        if inner.generation != *seen {
            *seen = inner.generation;
            return Checkpoint::Reset;
        }
        Checkpoint::Run
    }

    /// Parks the calling vCPU thread until the machine resets or exits (after a crash or an exit it cannot
    /// handle, running on would only repeat the failure).
    pub fn park_until_reset(&self, seen: &mut u64) -> Checkpoint {
        let mut inner = self.lock();
        inner.parked += 1;
        self.changed.notify_all();
        while inner.state != RunState::Exiting
            && (inner.generation == *seen || inner.state == RunState::Paused)
        {
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        inner.parked -= 1;
        if inner.state == RunState::Exiting {
            return Checkpoint::Exit;
        }
        *seen = inner.generation;
        Checkpoint::Reset
    }

    fn kick_all(&self, threads: &[libc::pthread_t]) {
        for &t in threads {
            // SAFETY: every registered thread is a live vCPU thread: threads are joined only after `Exiting`,
            // and no kick is sent after that. A failed kill (ESRCH) is harmless.
            unsafe {
                libc::pthread_kill(t, kick_signal());
            }
        }
    }

    /// Stops every vCPU and waits until all are parked. Returns false if they did not park in time.
    pub fn pause(&self) -> bool {
        let threads = {
            let mut inner = self.lock();
            if inner.state == RunState::Exiting {
                return true;
            }
            inner.state = RunState::Paused;
            inner.threads.clone()
        };
        let mut inner = self.lock();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while inner.parked < self.vcpus.min(inner.threads.len().max(1)) {
            drop(inner);
            // Kicks are repeated: a thread that was between its checkpoint and KVM_RUN when the first signal came
            // has its immediate_exit set and leaves at once, but one that had not yet registered needs another.
            self.kick_all(&threads);
            inner = self.lock();
            let (guard, _) = self
                .changed
                .wait_timeout(inner, Duration::from_millis(5))
                .unwrap_or_else(|e| e.into_inner());
            inner = guard;
            if std::time::Instant::now() > deadline {
                return false;
            }
        }
        true
    }

    /// Asks every vCPU to stop at its next checkpoint, without waiting (safe to call from a vCPU thread).
    /// Used when a device requests a reset or power-off: real hardware executes no further instruction after
    /// the write that resets it, so neither may a vCPU here while the machine acts on the request.
    pub fn request_stop(&self) {
        let threads = {
            let mut inner = self.lock();
            if inner.state != RunState::Running {
                return;
            }
            inner.state = RunState::Paused;
            inner.threads.clone()
        };
        self.kick_all(&threads);
    }

    /// Starts paused vCPUs again; with `reset`, each restores its power-on state first.
    pub fn resume(&self, reset: bool) {
        let mut inner = self.lock();
        if inner.state == RunState::Exiting {
            return;
        }
        if reset {
            inner.generation += 1;
        }
        inner.state = RunState::Running;
        self.changed.notify_all();
    }

    /// Tells every vCPU thread to end, and kicks them out of the guest.
    pub fn exit(&self) {
        let threads = {
            let mut inner = self.lock();
            inner.state = RunState::Exiting;
            self.changed.notify_all();
            inner.threads.clone()
        };
        self.kick_all(&threads);
    }

    /// The current state.
    pub fn state(&self) -> RunState {
        self.lock().state
    }
}
