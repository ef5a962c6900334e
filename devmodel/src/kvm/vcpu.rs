//! One vCPU: its power-on state (for resets) and its run loop.
//!
//! I/O and MMIO exits are dispatched synchronously on the vCPU thread to the buses, as every Rust VMM does: the
//! bus lookup takes a read lock only, and devices lock their own state.

use std::sync::Arc;

use devices::bus::Bus;
use devices::system::{SystemEvents, SystemRequest};
use firmware::direct::BootEntry;
use kvm_bindings::{
    kvm_fpu, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_run, kvm_sregs,
    kvm_vcpu_events, Msrs, KVM_EXIT_IO, KVM_EXIT_IO_IN, KVM_SYSTEM_EVENT_CRASH,
    KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit, VcpuFd};

use super::control::{set_thread_immediate_exit, Checkpoint, VcpuControl};
use super::KvmError;

/// The register state KVM gave a vCPU at creation (or, for a direct kernel boot, the kernel's entry state),
/// put back at every platform reset.
struct PowerOnState {
    regs: kvm_regs,
    sregs: kvm_sregs,
    fpu: kvm_fpu,
    lapic: kvm_lapic_state,
    mp_state: kvm_mp_state,
    events: kvm_vcpu_events,
    /// MSRs to write as well (a direct boot's BIOS-like settings); empty for a firmware boot.
    msrs: Vec<kvm_msr_entry>,
}

/// A vCPU ready to run on its own thread.
pub struct Vcpu {
    fd: VcpuFd,
    id: usize,
    power_on: PowerOnState,
}

/// Why a vCPU stopped running guest code for good, as reported to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuExitReason {
    /// A triple fault (KVM_EXIT_SHUTDOWN).
    TripleFault,
    /// KVM could not run or emulate guest code.
    InternalError(String),
}

impl Vcpu {
    pub(super) fn new(fd: VcpuFd, id: usize) -> Result<Self, KvmError> {
        let err = |what| move |source| KvmError::Ioctl { what, source };
        let power_on = PowerOnState {
            regs: fd.get_regs().map_err(err("KVM_GET_REGS"))?,
            sregs: fd.get_sregs().map_err(err("KVM_GET_SREGS"))?,
            fpu: fd.get_fpu().map_err(err("KVM_GET_FPU"))?,
            lapic: fd.get_lapic().map_err(err("KVM_GET_LAPIC"))?,
            mp_state: fd.get_mp_state().map_err(err("KVM_GET_MP_STATE"))?,
            events: fd.get_vcpu_events().map_err(err("KVM_GET_VCPU_EVENTS"))?,
            msrs: Vec::new(),
        };
        Ok(Vcpu { fd, id, power_on })
    }

    /// This vCPU's index (and APIC id).
    pub fn id(&self) -> usize {
        self.id
    }

    /// Makes this (boot) vCPU enter a directly loaded kernel, now and after every reset, instead of running
    /// the firmware from the reset vector.
    pub fn set_boot_entry(&mut self, entry: &BootEntry) -> Result<(), KvmError> {
        let p = &mut self.power_on;
        p.sregs = super::boot::entry_sregs(&p.sregs, entry);
        p.regs = super::boot::entry_regs(entry);
        p.lapic = super::boot::entry_lapic(&p.lapic);
        p.msrs = super::boot::entry_msrs();
        self.reset().map_err(|source| KvmError::Ioctl {
            what: "setting the kernel entry state",
            source,
        })
    }

    /// Puts the vCPU back into its power-on state: CS:IP at the reset vector (or the kernel entry of a
    /// direct boot), LAPIC and MP state as created (so application processors wait for INIT/SIPI again).
    fn reset(&mut self) -> Result<(), kvm_ioctls::Error> {
        let p = &self.power_on;
        self.fd.set_sregs(&p.sregs)?;
        self.fd.set_regs(&p.regs)?;
        self.fd.set_fpu(&p.fpu)?;
        self.fd.set_lapic(&p.lapic)?;
        self.fd.set_mp_state(p.mp_state)?;
        self.fd.set_vcpu_events(&p.events)?;
        if !p.msrs.is_empty() {
            let msrs =
                Msrs::from_entries(&p.msrs).map_err(|_| kvm_ioctls::Error::new(libc::E2BIG))?;
            let written = self.fd.set_msrs(&msrs)?;
            if written != p.msrs.len() {
                // KVM stops at the first MSR it refuses.
                return Err(kvm_ioctls::Error::new(libc::EINVAL));
            }
        }
        Ok(())
    }

    /// Runs guest code until the machine says exit. Fatal exits are reported through `system`; the thread then
    /// parks until the machine resets or ends.
    pub fn run(
        mut self,
        pio: Arc<Bus>,
        mmio: Arc<Bus>,
        control: Arc<VcpuControl>,
        system: Arc<dyn SystemEvents>,
    ) {
        control.register_thread();
        let immediate_exit: *mut u8 = &mut self.fd.get_kvm_run().immediate_exit;
        set_thread_immediate_exit(immediate_exit);
        let mut generation = control.generation();
        let mut checkpoint = control.checkpoint(&mut generation);
        loop {
            match checkpoint {
                Checkpoint::Exit => break,
                Checkpoint::Reset => {
                    if let Err(e) = self.reset() {
                        system.request(SystemRequest::Crash(format!(
                            "vCPU {} reset failed: {e}",
                            self.id
                        )));
                        checkpoint = control.park_until_reset(&mut generation);
                        continue;
                    }
                }
                Checkpoint::Run => {}
            }
            let fatal = self.run_once(&pio, &mmio, &*system);
            self.fd.set_kvm_immediate_exit(0);
            checkpoint = match fatal {
                None => control.checkpoint(&mut generation),
                Some(reason) => {
                    let text = match reason {
                        VcpuExitReason::TripleFault => format!("vCPU {}: triple fault", self.id),
                        VcpuExitReason::InternalError(s) => format!("vCPU {}: {s}", self.id),
                    };
                    system.request(SystemRequest::Crash(text));
                    control.park_until_reset(&mut generation)
                }
            };
        }
        set_thread_immediate_exit(std::ptr::null_mut());
    }

    /// One `KVM_RUN` and the handling of its exit. Returns a reason when the vCPU cannot go on.
    fn run_once(
        &mut self,
        pio: &Bus,
        mmio: &Bus,
        system: &dyn SystemEvents,
    ) -> Option<VcpuExitReason> {
        let io_exit = match self.fd.run() {
            Ok(VcpuExit::IoIn(..)) | Ok(VcpuExit::IoOut(..)) => true,
            Ok(VcpuExit::MmioRead(addr, data)) => {
                mmio.read(addr, data);
                false
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                mmio.write(addr, data);
                false
            }
            Ok(VcpuExit::Shutdown) => return Some(VcpuExitReason::TripleFault),
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                match kind {
                    KVM_SYSTEM_EVENT_RESET => system.request(SystemRequest::Reset),
                    KVM_SYSTEM_EVENT_SHUTDOWN => system.request(SystemRequest::PowerOff),
                    KVM_SYSTEM_EVENT_CRASH => {
                        return Some(VcpuExitReason::InternalError("guest crash event".into()))
                    }
                    other => log::warn!("vCPU {}: unknown system event {other}", self.id),
                }
                false
            }
            Ok(VcpuExit::Intr) => false,
            Ok(VcpuExit::InternalError) => {
                // SAFETY: the exit reason says the `internal` union member is the valid one.
                let suberror = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                return Some(VcpuExitReason::InternalError(format!(
                    "KVM internal error, suberror {suberror} (1 = instruction emulation failed)"
                )));
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                return Some(VcpuExitReason::InternalError(format!(
                    "KVM entry failed: hardware reason {reason:#x} on cpu {cpu}"
                )))
            }
            Ok(other) => {
                return Some(VcpuExitReason::InternalError(format!(
                    "unexpected KVM exit {other:?}"
                )))
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => false,
            Err(e) => {
                return Some(VcpuExitReason::InternalError(format!(
                    "KVM_RUN failed: {e}"
                )))
            }
        };
        if io_exit {
            dispatch_io(self.fd.get_kvm_run(), pio);
        }
        None
    }
}

/// Handles a port-I/O exit, including string I/O (`rep insb/outsw`, `count > 1`) in one go: KVM puts all
/// `count` elements of `size` bytes in the data page, and each element is one bus access.
fn dispatch_io(run: &mut kvm_run, pio: &Bus) {
    if run.exit_reason != KVM_EXIT_IO {
        return;
    }
    // SAFETY: the exit reason says the `io` union member is the valid one.
    let io = unsafe { run.__bindgen_anon_1.io };
    let size = usize::from(io.size);
    let count = io.count as usize;
    if !matches!(size, 1 | 2 | 4) || count == 0 {
        return;
    }
    let total = size * count;
    // KVM's data area is the page after `kvm_run` in the vCPU mapping; it never holds more than a page.
    if io.data_offset < std::mem::size_of::<kvm_run>() as u64 || total > 4096 {
        return;
    }
    let base = (run as *mut kvm_run).cast::<u8>();
    // SAFETY: `data_offset` and `size * count` come from the kernel for this exit and lie within the vCPU's
    // mmap'd run area (checked to be at most one page past the struct, which the mapping covers).
    let data = unsafe { std::slice::from_raw_parts_mut(base.add(io.data_offset as usize), total) };
    let port = u64::from(io.port);
    match (u32::from(io.direction) == KVM_EXIT_IO_IN, count) {
        (true, 1) => {
            pio.read(port, data);
        }
        (false, 1) => {
            pio.write(port, data);
        }
        (true, _) => {
            pio.read_repeated(port, size, data);
        }
        (false, _) => {
            pio.write_repeated(port, size, data);
        }
    }
}
