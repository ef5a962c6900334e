//! The 16550A register file and interrupt logic as a plain state machine.
//!
//! Nothing here knows about buses, locks, back-ends or interrupt lines: the adapter in the parent module
//! feeds in register accesses, received bytes and the time, and reads out the interrupt level, the bytes
//! waiting to be transmitted and whether the receiver has room again.
//!
//! Transmission is instantaneous: a byte written to THR leaves as soon as the back-end takes it. When the
//! back-end cannot take it, the byte stays in THR (or the TX FIFO), LSR.THRE/TEMT stay clear and the guest
//! waits exactly as it would for a slow line. Reception has no baud-rate pacing either; the back-end hands
//! over only as many bytes as [`Uart::rx_room`] reports, so the receiver never overruns because of input
//! from outside. Only loopback mode, where the guest feeds itself, can overrun.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Register offsets from the port base.
pub(crate) mod reg {
    /// RBR (read) / THR (write); DLL with LCR.DLAB.
    pub const DATA: u8 = 0;
    /// IER; DLM with LCR.DLAB.
    pub const IER: u8 = 1;
    /// IIR (read) / FCR (write).
    pub const IIR_FCR: u8 = 2;
    /// Line control.
    pub const LCR: u8 = 3;
    /// Modem control.
    pub const MCR: u8 = 4;
    /// Line status.
    pub const LSR: u8 = 5;
    /// Modem status.
    pub const MSR: u8 = 6;
    /// Scratch.
    pub const SCR: u8 = 7;
}

/// IER: received data available (and character timeout).
pub const IER_ERBFI: u8 = 0x01;
/// IER: transmitter holding register empty.
pub const IER_ETBEI: u8 = 0x02;
/// IER: receiver line status.
pub const IER_ELSI: u8 = 0x04;
/// IER: modem status.
pub const IER_EDSSI: u8 = 0x08;

/// IIR: no interrupt pending.
pub const IIR_NONE: u8 = 0x01;
/// IIR: modem status change.
pub const IIR_MODEM: u8 = 0x00;
/// IIR: THR empty.
pub const IIR_THRE: u8 = 0x02;
/// IIR: received data available (at or above the trigger level).
pub const IIR_RDA: u8 = 0x04;
/// IIR: receiver line status (overrun, parity, framing, break).
pub const IIR_RLS: u8 = 0x06;
/// IIR: character timeout (FIFO mode only).
pub const IIR_TIMEOUT: u8 = 0x0c;
/// IIR bits 7:6, set while the FIFOs are enabled.
pub const IIR_FIFO_BITS: u8 = 0xc0;

/// FCR: enable FIFOs.
pub const FCR_ENABLE: u8 = 0x01;
/// FCR: clear the receive FIFO (self-clearing).
pub const FCR_CLEAR_RX: u8 = 0x02;
/// FCR: clear the transmit FIFO (self-clearing).
pub const FCR_CLEAR_TX: u8 = 0x04;
/// FCR: DMA mode select; stored, no effect without a DMA wiring.
pub const FCR_DMA: u8 = 0x08;

/// LCR: divisor latch access.
pub const LCR_DLAB: u8 = 0x80;

/// MCR: data terminal ready.
pub const MCR_DTR: u8 = 0x01;
/// MCR: request to send.
pub const MCR_RTS: u8 = 0x02;
/// MCR: OUT1.
pub const MCR_OUT1: u8 = 0x04;
/// MCR: OUT2; on a PC it gates the UART's interrupt output onto the ISA IRQ line.
pub const MCR_OUT2: u8 = 0x08;
/// MCR: loopback mode.
pub const MCR_LOOP: u8 = 0x10;

/// LSR: data ready.
pub const LSR_DR: u8 = 0x01;
/// LSR: overrun error.
pub const LSR_OE: u8 = 0x02;
/// LSR: parity error.
pub const LSR_PE: u8 = 0x04;
/// LSR: framing error.
pub const LSR_FE: u8 = 0x08;
/// LSR: break interrupt.
pub const LSR_BI: u8 = 0x10;
/// LSR: transmitter holding register (TX FIFO) empty.
pub const LSR_THRE: u8 = 0x20;
/// LSR: transmitter empty (THR and shift register).
pub const LSR_TEMT: u8 = 0x40;
/// The LSR bits that raise a receiver line status interrupt and clear on an LSR read.
pub const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

/// MSR: delta CTS.
pub const MSR_DCTS: u8 = 0x01;
/// MSR: delta DSR.
pub const MSR_DDSR: u8 = 0x02;
/// MSR: trailing edge of RI.
pub const MSR_TERI: u8 = 0x04;
/// MSR: delta DCD.
pub const MSR_DDCD: u8 = 0x08;
/// MSR: clear to send.
pub const MSR_CTS: u8 = 0x10;
/// MSR: data set ready.
pub const MSR_DSR: u8 = 0x20;
/// MSR: ring indicator.
pub const MSR_RI: u8 = 0x40;
/// MSR: data carrier detect.
pub const MSR_DCD: u8 = 0x80;

/// Depth of each FIFO on a 16550A.
pub const FIFO_SIZE: usize = 16;
/// The modem inputs a back-end presents: carrier, data set ready and clear to send all asserted, so that
/// drivers that honour DCD or CTS see a live line.
pub const DEFAULT_MODEM_INPUTS: u8 = MSR_DCD | MSR_DSR | MSR_CTS;
/// Input clock of a PC UART divided by 16: the baud rate at divisor 1.
const BAUD_BASE: u64 = 115_200;

/// Every register and FIFO of one UART; what a snapshot saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UartState {
    /// Interrupt enable (low four bits).
    pub ier: u8,
    /// Line control.
    pub lcr: u8,
    /// Modem control (low five bits).
    pub mcr: u8,
    /// Error bits of LSR (OE/PE/FE/BI) not yet read.
    pub lsr_errors: u8,
    /// Modem status: line levels in the high nibble, delta bits in the low one.
    pub msr: u8,
    /// Scratch register.
    pub scr: u8,
    /// Divisor latch, low byte.
    pub dll: u8,
    /// Divisor latch, high byte.
    pub dlm: u8,
    /// FIFO control as last programmed (enable, DMA mode, trigger level).
    pub fcr: u8,
    /// Receive FIFO (at most one byte while FIFOs are disabled).
    pub rx: VecDeque<u8>,
    /// Transmit FIFO: bytes written by the guest that the back-end has not taken yet.
    pub tx: VecDeque<u8>,
    /// A THR-empty interrupt is pending (set when THR empties or ETBEI is enabled while it is empty).
    pub thre_pending: bool,
    /// A character timeout is pending.
    pub timeout_pending: bool,
    /// Machine time of the last byte received or read, for the character timeout.
    pub last_rx_activity_ns: u64,
    /// The receiver refused input; the back-end must be told when there is room again.
    pub rx_blocked: bool,
    /// Modem inputs from outside (high nibble of MSR outside loopback).
    pub modem_inputs: u8,
}

impl Default for UartState {
    fn default() -> Self {
        UartState {
            ier: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr: DEFAULT_MODEM_INPUTS,
            scr: 0,
            // 9600 baud, what a PC BIOS leaves behind.
            dll: 12,
            dlm: 0,
            fcr: 0,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            thre_pending: false,
            timeout_pending: false,
            last_rx_activity_ns: 0,
            rx_blocked: false,
            modem_inputs: DEFAULT_MODEM_INPUTS,
        }
    }
}

/// A 16550A UART: registers, FIFOs and interrupt identification.
#[derive(Debug, Default)]
pub struct Uart {
    s: UartState,
    /// Whether the back-end must be told that the receiver has room again (not part of the snapshot: a
    /// restored UART re-derives it from `rx_blocked`).
    rx_ready_signal: bool,
    /// Bumped whenever the TX FIFO is cleared, so that a transmission racing with the clear does not
    /// remove bytes written after it.
    tx_generation: u64,
}

impl Uart {
    /// A UART in its power-on state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A UART with a saved state. Out-of-range values (over-full FIFOs, reserved bits) are trimmed.
    pub fn from_state(mut s: UartState) -> Self {
        s.ier &= 0x0f;
        s.mcr &= 0x1f;
        s.lsr_errors &= LSR_ERRORS;
        s.modem_inputs &= 0xf0;
        s.fcr &= FCR_ENABLE | FCR_DMA | 0xc0;
        let cap = if s.fcr & FCR_ENABLE != 0 {
            FIFO_SIZE
        } else {
            1
        };
        s.rx.truncate(cap);
        s.tx.truncate(cap);
        let rx_ready_signal = s.rx_blocked;
        Uart {
            s,
            rx_ready_signal,
            tx_generation: 0,
        }
    }

    /// The state to save.
    pub fn state(&self) -> UartState {
        self.s.clone()
    }

    /// A hardware reset (MR pin): registers to their reset values, FIFOs emptied. The divisor and
    /// scratch register are not touched by MR on real parts, but a PC reset reprograms them anyway.
    pub fn reset(&mut self) {
        let was_blocked = self.s.rx_blocked;
        let modem_inputs = self.s.modem_inputs;
        self.s = UartState {
            modem_inputs,
            msr: modem_inputs,
            ..UartState::default()
        };
        self.tx_generation = self.tx_generation.wrapping_add(1);
        if was_blocked {
            self.rx_ready_signal = true;
        }
    }

    fn fifo_enabled(&self) -> bool {
        self.s.fcr & FCR_ENABLE != 0
    }

    fn loopback(&self) -> bool {
        self.s.mcr & MCR_LOOP != 0
    }

    fn dlab(&self) -> bool {
        self.s.lcr & LCR_DLAB != 0
    }

    fn capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_SIZE
        } else {
            1
        }
    }

    fn trigger_level(&self) -> usize {
        match self.s.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// The line status register as the guest would read it (without the read's side effects).
    pub fn lsr(&self) -> u8 {
        let mut v = self.s.lsr_errors;
        if !self.s.rx.is_empty() {
            v |= LSR_DR;
        }
        if self.s.tx.is_empty() {
            v |= LSR_THRE | LSR_TEMT;
        }
        v
    }

    fn data_available(&self) -> bool {
        if self.fifo_enabled() {
            self.s.rx.len() >= self.trigger_level()
        } else {
            !self.s.rx.is_empty()
        }
    }

    /// The highest-priority enabled interrupt, as IIR bits 3:0.
    fn interrupt_id(&self) -> u8 {
        let ier = self.s.ier;
        if ier & IER_ELSI != 0 && self.s.lsr_errors != 0 {
            IIR_RLS
        } else if ier & IER_ERBFI != 0 && self.data_available() {
            IIR_RDA
        } else if ier & IER_ERBFI != 0 && self.s.timeout_pending {
            IIR_TIMEOUT
        } else if ier & IER_ETBEI != 0 && self.s.thre_pending {
            IIR_THRE
        } else if ier & IER_EDSSI != 0 && self.s.msr & 0x0f != 0 {
            IIR_MODEM
        } else {
            IIR_NONE
        }
    }

    /// The level of the ISA IRQ line: an enabled interrupt is pending and MCR.OUT2 opens the PC's gate.
    pub fn irq_level(&self) -> bool {
        self.interrupt_id() != IIR_NONE && self.s.mcr & MCR_OUT2 != 0
    }

    /// Reads register `offset` (0 to 7; anything else reads as all ones).
    pub fn read(&mut self, offset: u8, now_ns: u64) -> u8 {
        match offset {
            reg::DATA if self.dlab() => self.s.dll,
            reg::DATA => self.read_rbr(now_ns),
            reg::IER if self.dlab() => self.s.dlm,
            reg::IER => self.s.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                // Reading IIR acknowledges a THR-empty interrupt, but only when that is what it reports.
                if id == IIR_THRE {
                    self.s.thre_pending = false;
                }
                id | if self.fifo_enabled() {
                    IIR_FIFO_BITS
                } else {
                    0
                }
            }
            reg::LCR => self.s.lcr,
            reg::MCR => self.s.mcr,
            reg::LSR => {
                let v = self.lsr();
                self.s.lsr_errors = 0;
                v
            }
            reg::MSR => {
                let v = self.s.msr;
                self.s.msr &= 0xf0;
                v
            }
            reg::SCR => self.s.scr,
            _ => 0xff,
        }
    }

    fn read_rbr(&mut self, now_ns: u64) -> u8 {
        let Some(byte) = self.s.rx.pop_front() else {
            // An empty receiver returns what the holding register last held on real parts; zero will do.
            return 0;
        };
        self.s.last_rx_activity_ns = now_ns;
        self.s.timeout_pending = false;
        self.note_rx_room();
        byte
    }

    fn note_rx_room(&mut self) {
        if self.s.rx_blocked && self.rx_room_now() > 0 {
            self.s.rx_blocked = false;
            self.rx_ready_signal = true;
        }
    }

    /// Writes `value` to register `offset` (0 to 7; anything else is ignored).
    pub fn write(&mut self, offset: u8, value: u8, now_ns: u64) {
        match offset {
            reg::DATA if self.dlab() => self.s.dll = value,
            reg::DATA => self.write_thr(value, now_ns),
            reg::IER if self.dlab() => self.s.dlm = value,
            reg::IER => {
                let new = value & 0x0f;
                // Enabling ETBEI while THR is empty raises a THR-empty interrupt, which is how drivers kick off
                // transmission (and how Linux tests for the "TXEN" bug of clones that do not re-assert).
                if new & IER_ETBEI != 0 && self.s.ier & IER_ETBEI == 0 && self.s.tx.is_empty() {
                    self.s.thre_pending = true;
                }
                self.s.ier = new;
            }
            reg::IIR_FCR => self.write_fcr(value),
            reg::LCR => self.s.lcr = value,
            reg::MCR => {
                self.s.mcr = value & 0x1f;
                self.update_modem_status();
                self.note_rx_room();
            }
            // LSR and MSR writes are factory-test features; ignored, as by most parts in the field.
            reg::SCR => self.s.scr = value,
            _ => {}
        }
    }

    fn write_thr(&mut self, value: u8, now_ns: u64) {
        self.s.thre_pending = false;
        if self.loopback() {
            // The transmitter's output is looped into the receiver; THR is empty again at once.
            self.loopback_receive(value, now_ns);
            if self.s.tx.is_empty() {
                self.s.thre_pending = true;
            }
            return;
        }
        if self.s.tx.len() >= self.capacity() {
            // Writing a full THR/FIFO loses the byte on real hardware too; a driver that checks THRE never
            // does this.
            crate::rate_limited!(
                log::Level::Warn,
                "uart: guest wrote THR while the transmitter was full; byte dropped"
            );
            return;
        }
        self.s.tx.push_back(value);
    }

    fn loopback_receive(&mut self, value: u8, now_ns: u64) {
        if self.s.rx.len() < self.capacity() {
            self.s.rx.push_back(value);
        } else {
            self.s.lsr_errors |= LSR_OE;
            if !self.fifo_enabled() {
                // Without FIFOs the new character overwrites the holding register.
                if let Some(slot) = self.s.rx.back_mut() {
                    *slot = value;
                }
            }
        }
        self.s.last_rx_activity_ns = now_ns;
        self.s.timeout_pending = false;
    }

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled() {
            // Switching between 16450 and FIFO mode empties both FIFOs.
            self.clear_rx();
            self.clear_tx();
        }
        if !enable {
            // The other bits are programmed only together with FCR0.
            self.s.fcr = 0;
            return;
        }
        if value & FCR_CLEAR_RX != 0 {
            self.clear_rx();
        }
        if value & FCR_CLEAR_TX != 0 {
            self.clear_tx();
        }
        self.s.fcr = value & (FCR_ENABLE | FCR_DMA | 0xc0);
    }

    fn clear_rx(&mut self) {
        self.s.rx.clear();
        self.s.timeout_pending = false;
        self.note_rx_room();
    }

    fn clear_tx(&mut self) {
        if !self.s.tx.is_empty() {
            self.s.tx.clear();
            self.s.thre_pending = true;
        }
        self.tx_generation = self.tx_generation.wrapping_add(1);
    }

    fn update_modem_status(&mut self) {
        let inputs = if self.loopback() {
            // Loopback wires the modem outputs to the inputs: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
            let m = self.s.mcr;
            let mut v = 0;
            if m & MCR_DTR != 0 {
                v |= MSR_DSR;
            }
            if m & MCR_RTS != 0 {
                v |= MSR_CTS;
            }
            if m & MCR_OUT1 != 0 {
                v |= MSR_RI;
            }
            if m & MCR_OUT2 != 0 {
                v |= MSR_DCD;
            }
            v
        } else {
            self.s.modem_inputs
        };
        let old = self.s.msr & 0xf0;
        let changed = old ^ inputs;
        let mut delta = self.s.msr & 0x0f;
        if changed & MSR_CTS != 0 {
            delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            delta |= MSR_DDSR;
        }
        if old & MSR_RI != 0 && inputs & MSR_RI == 0 {
            delta |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            delta |= MSR_DDCD;
        }
        self.s.msr = inputs | delta;
    }

    /// Sets the modem inputs the outside world presents (`MSR_CTS | MSR_DSR | MSR_RI | MSR_DCD` bits).
    pub fn set_modem_inputs(&mut self, inputs: u8) {
        self.s.modem_inputs = inputs & 0xf0;
        self.update_modem_status();
    }

    fn rx_room_now(&self) -> usize {
        if self.loopback() {
            // In loopback the serial input is disconnected from the receiver; outside input waits.
            0
        } else {
            self.capacity().saturating_sub(self.s.rx.len())
        }
    }

    /// How many received bytes the UART can take now. When none, it remembers to report room later
    /// ([`Uart::take_rx_ready`]).
    pub fn rx_room(&mut self) -> usize {
        let room = self.rx_room_now();
        if room == 0 {
            self.s.rx_blocked = true;
        }
        room
    }

    /// Takes bytes from outside into the receiver; returns how many fit. When not all fit, the UART
    /// remembers to report room later.
    pub fn receive(&mut self, data: &[u8], now_ns: u64) -> usize {
        let n = self.rx_room_now().min(data.len());
        self.s.rx.extend(&data[..n]);
        if n > 0 {
            self.s.last_rx_activity_ns = now_ns;
            self.s.timeout_pending = false;
        }
        if n < data.len() {
            self.s.rx_blocked = true;
        }
        n
    }

    /// Whether the receiver has room again after refusing input; clears the indication.
    pub fn take_rx_ready(&mut self) -> bool {
        std::mem::take(&mut self.rx_ready_signal)
    }

    /// Copies the bytes waiting for the back-end into `buf` (none in loopback mode); returns how many,
    /// and the generation to hand back to [`Uart::tx_consumed`].
    pub fn tx_pending(&self, buf: &mut [u8; FIFO_SIZE]) -> (usize, u64) {
        if self.loopback() {
            return (0, self.tx_generation);
        }
        let mut n = 0;
        for (dst, &b) in buf.iter_mut().zip(self.s.tx.iter()) {
            *dst = b;
            n += 1;
        }
        (n, self.tx_generation)
    }

    /// Whether bytes are waiting for the back-end.
    pub fn has_tx(&self) -> bool {
        !self.s.tx.is_empty() && !self.loopback()
    }

    /// The back-end took `n` of the bytes [`Uart::tx_pending`] returned with `generation`.
    pub fn tx_consumed(&mut self, n: usize, generation: u64) {
        if generation != self.tx_generation || n == 0 {
            return;
        }
        let n = n.min(self.s.tx.len());
        self.s.tx.drain(..n);
        if self.s.tx.is_empty() {
            self.s.thre_pending = true;
        }
    }

    /// Nanoseconds four characters take on the line at the programmed divisor and frame format.
    fn four_char_times_ns(&self) -> u64 {
        let divisor = u64::from(u16::from_le_bytes([self.s.dll, self.s.dlm]).max(1));
        let lcr = self.s.lcr;
        // In half bits: start bit, 5 to 8 data bits, optional parity, 1, 1.5 (5-bit words) or 2 stop bits.
        let data = 5 + u64::from(lcr & 3);
        let parity = u64::from((lcr >> 3) & 1);
        let stop2 = match (lcr & 4 != 0, lcr & 3 == 0) {
            (false, _) => 2,
            (true, true) => 3,
            (true, false) => 4,
        };
        let half_bits = 2 * (1 + data + parity) + stop2;
        4 * half_bits * divisor * crate::clock::NS_PER_SEC / (2 * BAUD_BASE)
    }

    /// When the character timeout will fire: FIFO mode, data in the receive FIFO, and four character times
    /// without a byte received or read.
    pub fn timeout_deadline(&self) -> Option<u64> {
        (self.fifo_enabled() && !self.s.rx.is_empty() && !self.s.timeout_pending).then(|| {
            self.s
                .last_rx_activity_ns
                .saturating_add(self.four_char_times_ns())
        })
    }

    /// Raises the character timeout if it is due at `now_ns`; returns the next deadline.
    pub fn advance(&mut self, now_ns: u64) -> Option<u64> {
        if let Some(deadline) = self.timeout_deadline() {
            if now_ns >= deadline {
                self.s.timeout_pending = true;
            }
        }
        self.timeout_deadline()
    }
}
