//! The machine's one event loop (rust-vmm `event-manager`): device timers, back-end fds and the requests
//! devices and vCPUs make of the machine (reset, power-off, crash).
//!
//! vCPU threads never wait on this loop: they only write an eventfd (a timer kick or a system request), so an
//! I/O exit stays short whatever the loop is doing.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devices::clock::Clock;
use devices::system::{SystemEvents, SystemRequest};
use devices::timer::{Timed, TimerKick};
use event_manager::{EventOps, Events, MutEventSubscriber};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::timerfd::TimerFd;

/// Runs every [`Timed`] device when its deadline comes, using one timerfd for the earliest deadline.
pub struct Timers {
    clock: Arc<dyn Clock>,
    devices: Vec<Arc<dyn Timed>>,
    timerfd: TimerFd,
    kick: Arc<EventFd>,
}

impl Timers {
    /// Timers for `devices`, measured on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        Ok(Timers {
            clock,
            devices: Vec::new(),
            timerfd: TimerFd::new().map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?,
            kick: Arc::new(EventFd::new(EFD_NONBLOCK)?),
        })
    }

    /// Adds a device whose deadlines this loop keeps.
    pub fn add(&mut self, device: Arc<dyn Timed>) {
        self.devices.push(device);
    }

    /// A kick that makes the loop recompute its deadline (given to devices whose rates the guest programs).
    pub fn kick_handle(&self) -> TimerKick {
        let kick = Arc::clone(&self.kick);
        TimerKick::new(Arc::new(move || {
            // A full counter (after 2^64-2 kicks without the loop running) already means "wake up".
            let _ = kick.write(1);
        }))
    }

    /// Runs everything due now and arms the timerfd for the earliest next deadline.
    pub fn service(&mut self) {
        let now = self.clock.now_ns();
        let next = self.devices.iter().filter_map(|d| d.advance(now)).min();
        let armed = match next {
            // A zero duration disarms a timerfd, so an overdue deadline waits 1 ns instead.
            Some(deadline) => self.timerfd.reset(
                Duration::from_nanos(deadline.saturating_sub(now).max(1)),
                None,
            ),
            None => self.timerfd.clear(),
        };
        if let Err(e) = armed {
            log::error!("cannot arm the device timer: {e}");
        }
    }
}

impl MutEventSubscriber for Timers {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if events.fd() == self.timerfd.as_raw_fd() {
            // Non-blocking in effect: epoll said it is readable. The count of expirations does not matter.
            let _ = self.timerfd.wait();
        } else {
            let _ = self.kick.read();
        }
        self.service();
    }

    fn init(&mut self, ops: &mut EventOps) {
        for fd in [self.timerfd.as_raw_fd(), self.kick.as_raw_fd()] {
            if let Err(e) = ops.add(Events::new_raw(fd, EventSet::IN)) {
                log::error!("cannot watch the device timer: {e}");
            }
        }
        self.service();
    }
}

/// What the machine decided after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Leave the event loop; the process ends with this outcome.
    Exit(Outcome),
}

/// How a machine's life ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guest powered off and `on_poweroff` said destroy (exit status 0).
    PoweredOff,
    /// The guest rebooted and `on_reboot` said destroy (exit status 0).
    RebootDestroyed,
    /// The guest crashed and `on_crash` said destroy; the text says why (exit status 1).
    Crashed(String),
    /// The toolstack or a signal ended it (exit status 0).
    Destroyed,
}

/// At most this many requests wait for the loop; more of the same kind add nothing.
const MAX_PENDING: usize = 16;

/// Where devices and vCPUs send [`SystemRequest`]s: a short queue and an eventfd the loop watches.
pub struct SystemChannel {
    queue: Mutex<VecDeque<SystemRequest>>,
    wake: EventFd,
    stop_hook: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl SystemChannel {
    /// An empty channel.
    pub fn new() -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(SystemChannel {
            queue: Mutex::new(VecDeque::new()),
            wake: EventFd::new(EFD_NONBLOCK)?,
            stop_hook: std::sync::OnceLock::new(),
        }))
    }

    /// Sets what stops the guest's CPUs at once when a request arrives (the vCPU control's `request_stop`).
    pub fn set_stop_hook(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.stop_hook.set(hook);
    }

    fn take(&self) -> Vec<SystemRequest> {
        let _ = self.wake.read();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect()
    }
}

impl SystemEvents for SystemChannel {
    fn request(&self, request: SystemRequest) {
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            // A guest hammering the reset port must not grow the queue: one pending request of a kind is enough.
            if queue.contains(&request) || queue.len() >= MAX_PENDING {
                return;
            }
            queue.push_back(request);
        }
        // Every request (reset, power-off, crash) ends what the guest is doing: stop its CPUs before the loop
        // gets to the request, so that no instruction after the resetting write runs.
        if let Some(stop) = self.stop_hook.get() {
            stop();
        }
        let _ = self.wake.write(1);
    }
}

/// Feeds queued requests to the machine's handler from the event loop.
pub struct SystemSubscriber<F: FnMut(SystemRequest) -> Flow> {
    channel: Arc<SystemChannel>,
    handler: F,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl<F: FnMut(SystemRequest) -> Flow> SystemSubscriber<F> {
    /// Calls `handler` for each request; the first `Flow::Exit` is stored in `outcome`.
    pub fn new(
        channel: Arc<SystemChannel>,
        handler: F,
        outcome: Arc<Mutex<Option<Outcome>>>,
    ) -> Self {
        SystemSubscriber {
            channel,
            handler,
            outcome,
        }
    }
}

impl<F: FnMut(SystemRequest) -> Flow> MutEventSubscriber for SystemSubscriber<F> {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        for request in self.channel.take() {
            if self
                .outcome
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
            {
                return;
            }
            if let Flow::Exit(outcome) = (self.handler)(request) {
                *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            }
        }
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.channel.wake, EventSet::IN)) {
            log::error!("cannot watch system requests: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::clock::FakeClock;
    use event_manager::{EventManager, SubscriberOps};
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Every {
        period: u64,
        next: AtomicU64,
        fired: AtomicU64,
    }
    impl Timed for Every {
        fn advance(&self, now: u64) -> Option<u64> {
            while self.next.load(Ordering::SeqCst) <= now {
                self.fired.fetch_add(1, Ordering::SeqCst);
                self.next.fetch_add(self.period, Ordering::SeqCst);
            }
            Some(self.next.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn timers_run_due_devices_on_the_machine_clock() {
        let clock = Arc::new(FakeClock::new());
        let mut timers = Timers::new(clock.clone()).unwrap();
        let dev = Arc::new(Every {
            period: 1000,
            next: AtomicU64::new(1000),
            fired: AtomicU64::new(0),
        });
        timers.add(dev.clone());
        timers.service();
        assert_eq!(dev.fired.load(Ordering::SeqCst), 0);
        clock.advance(3500);
        timers.service();
        assert_eq!(dev.fired.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn system_requests_reach_the_handler_once_per_kind_and_exit_the_loop() {
        let channel = SystemChannel::new().unwrap();
        let outcome = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let sub = SystemSubscriber::new(
            channel.clone(),
            move |r: SystemRequest| {
                seen2.lock().unwrap().push(r.clone());
                match r {
                    SystemRequest::PowerOff => Flow::Exit(Outcome::PoweredOff),
                    _ => Flow::Continue,
                }
            },
            outcome.clone(),
        );
        let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
            EventManager::new().unwrap();
        manager.add_subscriber(Box::new(sub));
        for _ in 0..100 {
            channel.request(SystemRequest::Reset);
        }
        channel.request(SystemRequest::PowerOff);
        manager.run_with_timeout(1000).unwrap();
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[SystemRequest::Reset, SystemRequest::PowerOff]
        );
        assert_eq!(*outcome.lock().unwrap(), Some(Outcome::PoweredOff));
    }
}
