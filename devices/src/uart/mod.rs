//! 16550A UARTs: the PC's COM ports.
//!
//! A PC has up to four, each eight byte-wide registers: COM1 at 0x3F8 and COM3 at 0x3E8 on IRQ 4, COM2 at
//! 0x2F8 and COM4 at 0x2E8 on IRQ 3 (see [`COM_PORTS`]). [`regs::Uart`] is the register file as a plain state
//! machine; [`Serial`] puts it on the port bus, drives its IRQ line and connects it to a
//! [`CharBackend`](crate::chardev::CharBackend).
//!
//! # Interrupts
//!
//! IIR reports the highest-priority enabled source, as the datasheet orders them: receiver line status
//! (overrun; cleared by reading LSR) > received data at the FIFO trigger level (cleared when the FIFO drops
//! below it) > character timeout (cleared by reading RBR) > THR empty (cleared by reading IIR while it is
//! the reported source, or by writing THR) > modem status (cleared by reading MSR). The THR-empty
//! interrupt is raised when the transmitter empties and when ETBEI is switched on while it is empty.
//!
//! The ISA line is a level: any enabled pending source AND MCR.OUT2, because on a PC the OUT2 output
//! enables the buffer between the UART's INTR pin and the IRQ line. Drivers rely on it (Linux sets OUT2
//! when it opens a port; a closed port must not interrupt). Loopback does not change the gating here: the
//! bit, not the pin, opens the gate, as in the Super I/O chips that integrate the buffer.
//!
//! # Character timeout
//!
//! With FIFOs on, data below the trigger level is announced by the timeout interrupt once four character
//! times pass with no byte received and no byte read. The character time follows the programmed divisor
//! and frame format (at 115200 baud, 8N1: 87 µs per character). [`Serial`] implements
//! [`Timed`](crate::timer::Timed): the machine's timer loop calls `advance` at the deadline, and the UART
//! kicks the loop when a new, earlier deadline appears. Without a loop (tests) the harness steps a
//! `FakeClock` and calls `advance`.
//!
//! # Flow control and locks
//!
//! Bytes the guest writes stay in THR/the TX FIFO until the back-end takes them, so guest output is never
//! lost: when the back-end is full, LSR.THRE stays clear and the driver waits; the back-end calls
//! [`CharFrontend::tx_ready`] when it has drained and the UART sends the rest. Input is pushed by the
//! back-end only up to the room the receiver reports; when it refused input, the UART calls
//! [`CharBackend::rx_ready`](crate::chardev::CharBackend::rx_ready) after the guest reads.
//!
//! Lock order: `tx_lock` → `state` (short, never held while calling out) and `irq_lock` → `state`. The
//! back-end and the IRQ line are called with the state lock released; back-ends call in with their own
//! locks released.

pub mod regs;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::chardev::{CharBackend, CharFrontend};
use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::timer::{Timed, TimerKick};

pub use regs::{Uart, UartState};

/// Number of port addresses a UART occupies; accesses are one byte wide.
pub const UART_PORTS: u64 = 8;
/// Widest access the UART accepts (for [`crate::bus::Bus::insert`]).
pub const UART_MAX_WIDTH: usize = 1;
/// Base port and ISA IRQ of COM1 to COM4.
pub const COM_PORTS: [(u16, u32); 4] = [(0x3f8, 4), (0x2f8, 3), (0x3e8, 4), (0x2e8, 3)];

/// What a snapshot of a [`Serial`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialState {
    /// The registers and FIFOs.
    pub uart: UartState,
}

struct Locked {
    uart: Uart,
    /// The deadline the timer loop last learnt from `advance`.
    known_deadline: Option<u64>,
}

/// A 16550A on the port bus, connected to a back-end and an IRQ line.
pub struct Serial {
    state: Mutex<Locked>,
    /// Serialises moving bytes from the TX FIFO to the back-end (vCPU and event thread may both do it).
    tx_lock: Mutex<()>,
    /// Serialises setting the IRQ line, holding the level last set.
    irq_lock: Mutex<Option<bool>>,
    backend: Arc<dyn CharBackend>,
    irq: Arc<dyn IrqLine>,
    clock: Arc<dyn Clock>,
    kick: TimerKick,
}

impl Serial {
    /// A UART in its reset state, attached to `backend` (which it registers itself with as frontend).
    /// `irq` is its ISA line (4 for COM1/COM3, 3 for COM2/COM4), `clock` the machine clock, and `kick`
    /// wakes the timer loop when the character-timeout deadline moves earlier.
    pub fn new(
        backend: Arc<dyn CharBackend>,
        irq: Arc<dyn IrqLine>,
        clock: Arc<dyn Clock>,
        kick: TimerKick,
    ) -> Arc<Self> {
        let serial = Arc::new(Serial {
            state: Mutex::new(Locked {
                uart: Uart::new(),
                known_deadline: None,
            }),
            tx_lock: Mutex::new(()),
            irq_lock: Mutex::new(None),
            backend,
            irq,
            clock,
            kick,
        });
        let weak = Arc::downgrade(&serial);
        let frontend: std::sync::Weak<dyn CharFrontend> = weak;
        serial.backend.attach(frontend);
        serial
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state to save.
    pub fn state(&self) -> SerialState {
        SerialState {
            uart: self.lock().uart.state(),
        }
    }

    /// Restores a saved state (values out of range are trimmed, never trusted).
    pub fn restore(&self, state: SerialState) {
        {
            let mut st = self.lock();
            st.uart = Uart::from_state(state.uart);
            st.known_deadline = None;
        }
        *self.irq_lock.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.after_access();
    }

    /// A platform reset: registers to their reset values, both FIFOs emptied (held output is dropped).
    pub fn reset(&self) {
        self.lock().uart.reset();
        self.after_access();
    }

    /// Sets the modem-status inputs (`regs::MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD`); a back-end default of
    /// CTS, DSR and DCD asserted is in place from the start.
    pub fn set_modem_inputs(&self, inputs: u8) {
        self.lock().uart.set_modem_inputs(inputs);
        self.after_access();
    }

    /// Work common to every change: tell the back-end about receiver room, send pending output, set the
    /// IRQ level and wake the timer loop if the timeout deadline moved earlier.
    fn after_access(&self) {
        let (rx_ready, has_tx, kick) = {
            let mut st = self.lock();
            let deadline = st.uart.timeout_deadline();
            let kick = match (deadline, st.known_deadline) {
                (Some(d), Some(k)) => d < k,
                (Some(_), None) => true,
                _ => false,
            };
            if kick {
                // Remember it so that a burst of input kicks once, not per byte.
                st.known_deadline = deadline;
            }
            (st.uart.take_rx_ready(), st.uart.has_tx(), kick)
        };
        if rx_ready {
            self.backend.rx_ready();
        }
        if has_tx {
            self.flush_tx();
        }
        self.sync_irq();
        if kick {
            self.kick.kick();
        }
    }

    /// Moves TX FIFO bytes to the back-end until it is empty or the back-end is full.
    fn flush_tx(&self) {
        let _tx = self.tx_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = [0u8; regs::FIFO_SIZE];
        loop {
            let (n, generation) = self.lock().uart.tx_pending(&mut buf);
            if n == 0 {
                break;
            }
            let taken = self.backend.write(&buf[..n]).min(n);
            self.lock().uart.tx_consumed(taken, generation);
            if taken < n {
                // The back-end calls tx_ready when it can take more.
                break;
            }
        }
    }

    fn sync_irq(&self) {
        let mut last = self.irq_lock.lock().unwrap_or_else(|e| e.into_inner());
        let level = self.lock().uart.irq_level();
        if *last != Some(level) {
            *last = Some(level);
            self.irq.set_level(level);
        }
    }
}

impl BusDevice for Serial {
    fn read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        let (&mut [ref mut byte], Ok(offset @ 0..=7)) = (data, u8::try_from(offset)) else {
            crate::rate_limited!(log::Level::Warn, "uart: read at offset {offset} refused");
            return;
        };
        let now = self.clock.now_ns();
        *byte = self.lock().uart.read(offset, now);
        self.after_access();
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let (&[value], Ok(offset @ 0..=7)) = (data, u8::try_from(offset)) else {
            crate::rate_limited!(
                log::Level::Warn,
                "uart: {}-byte write at offset {offset} ignored",
                data.len()
            );
            return;
        };
        let now = self.clock.now_ns();
        self.lock().uart.write(offset, value, now);
        self.after_access();
    }
}

impl CharFrontend for Serial {
    fn rx_room(&self) -> usize {
        self.lock().uart.rx_room()
    }

    fn receive(&self, data: &[u8]) -> usize {
        let now = self.clock.now_ns();
        let n = self.lock().uart.receive(data, now);
        self.after_access();
        n
    }

    fn tx_ready(&self) {
        self.flush_tx();
        self.sync_irq();
    }
}

impl Timed for Serial {
    fn advance(&self, now_ns: u64) -> Option<u64> {
        let next = {
            let mut st = self.lock();
            let next = st.uart.advance(now_ns);
            st.known_deadline = next;
            next
        };
        self.sync_irq();
        next
    }
}
