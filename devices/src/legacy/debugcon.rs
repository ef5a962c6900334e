//! The firmware debug console on port 0x402 (QEMU's `isa-debugcon`, SeaBIOS's `DEBUG_IO`).
//!
//! SeaBIOS writes its debug log one byte at a time to this port. Before it trusts the port it reads it back and
//! requires 0xE9 (the value Bochs' port-0xE9 hack returns); any other value turns its debug output off. So reads
//! return 0xE9 and writes go to an output sink.
//!
//! Bytes are collected into lines and written a line at a time, because the sink is usually a file and one
//! `write` per byte would cost a system call per byte. The buffer is bounded: it is written out when a newline
//! arrives, when it holds [`LINE_MAX`] bytes (a guest that never sends a newline cannot make it grow), on
//! [`Debugcon::flush`] and when the device is dropped. Sink errors are logged (rate-limited) and the bytes
//! dropped: debug output must never stop the guest.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;

/// What a read of the port returns; SeaBIOS checks for it.
pub const READBACK: u8 = 0xe9;
/// The most bytes held before they are written out without a newline.
pub const LINE_MAX: usize = 4096;

/// Bytes written but not yet passed to the sink, for saving.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugconState {
    pending: Vec<u8>,
}

impl DebugconState {
    /// Appends a guest byte; returns a chunk to write out when the line is complete or the buffer full.
    pub fn push(&mut self, byte: u8) -> Option<Vec<u8>> {
        self.pending.push(byte);
        (byte == b'\n' || self.pending.len() >= LINE_MAX).then(|| std::mem::take(&mut self.pending))
    }

    /// Everything still buffered, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// The debug port on the port bus (length 1, max width 1).
pub struct Debugcon {
    state: Mutex<DebugconState>,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl Debugcon {
    /// A debug port whose output goes to `sink` (a log file, stderr, or a [`CaptureSink`]).
    pub fn new(sink: Box<dyn Write + Send>) -> Self {
        Debugcon {
            state: Mutex::new(DebugconState::default()),
            sink: Mutex::new(sink),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DebugconState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `chunk` to the sink. The caller holds the sink lock (taken before the state lock was dropped,
    /// so that chunks reach the sink in the order they were cut).
    fn emit(sink: &mut Box<dyn Write + Send>, chunk: &[u8]) {
        if let Err(e) = sink.write_all(chunk).and_then(|_| sink.flush()) {
            crate::rate_limited!(log::Level::Warn, "debug port 0x402: output lost: {}", e);
        }
    }

    /// Writes out whatever is buffered, even without a newline.
    pub fn flush(&self) {
        let mut state = self.lock();
        let chunk = state.take();
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        drop(state);
        if !chunk.is_empty() {
            Self::emit(&mut sink, &chunk);
        }
    }

    /// The state (bytes not yet written out), for saving.
    pub fn state(&self) -> DebugconState {
        self.lock().clone()
    }

    /// Restores a saved state; an over-long saved buffer is written out at once rather than kept.
    pub fn restore(&self, state: DebugconState) {
        let too_long = state.pending.len() >= LINE_MAX;
        *self.lock() = state;
        if too_long {
            self.flush();
        }
    }
}

impl Drop for Debugcon {
    fn drop(&mut self) {
        self.flush();
    }
}

impl BusDevice for Debugcon {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if let Some(b) = data.first_mut() {
            *b = READBACK;
        }
    }

    fn write(&self, _offset: u64, data: &[u8]) {
        let Some(&byte) = data.first() else {
            return;
        };
        let mut state = self.lock();
        if let Some(chunk) = state.push(byte) {
            let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
            drop(state);
            Self::emit(&mut sink, &chunk);
        }
    }
}

/// A sink that keeps the most recent output in memory, shared with whoever holds a clone (the machine's
/// console log, or a test). It keeps at most `limit` bytes, dropping the oldest.
#[derive(Clone)]
pub struct CaptureSink {
    buf: Arc<Mutex<Vec<u8>>>,
    limit: usize,
}

impl CaptureSink {
    /// An empty capture that keeps the last `limit` bytes.
    pub fn new(limit: usize) -> Self {
        CaptureSink {
            buf: Arc::new(Mutex::new(Vec::new())),
            limit,
        }
    }

    /// Everything captured so far (at most `limit` bytes).
    pub fn contents(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Write for CaptureSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        if buf.len() > self.limit {
            let excess = buf.len() - self.limit;
            buf.drain(..excess);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Access, Bus};

    fn setup() -> (Bus, Arc<Debugcon>, CaptureSink) {
        let sink = CaptureSink::new(1 << 20);
        let dev = Arc::new(Debugcon::new(Box::new(sink.clone())));
        let bus = Bus::new("pio");
        bus.insert(0x402, 1, 1, dev.clone()).unwrap();
        (bus, dev, sink)
    }

    fn out(bus: &Bus, text: &[u8]) {
        for &b in text {
            assert_eq!(bus.write(0x402, &[b]), Access::Handled);
        }
    }

    #[test]
    fn reads_0xe9_as_seabios_requires() {
        let (bus, _dev, _sink) = setup();
        let mut b = [0u8];
        bus.read(0x402, &mut b);
        assert_eq!(b[0], 0xe9);
    }

    #[test]
    fn output_is_captured_line_by_line_and_on_flush() {
        let (bus, dev, sink) = setup();
        out(
            &bus,
            b"SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBUILD: gcc",
        );
        assert_eq!(
            sink.contents(),
            b"SeaBIOS (version 1.16.2-debian-1.16.2-1)\n"
        );
        dev.flush();
        assert_eq!(
            sink.contents(),
            b"SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBUILD: gcc"
        );
        out(&bus, b"\x00\xff\r");
        drop(bus);
        drop(dev);
        assert!(
            sink.contents().ends_with(b"gcc\x00\xff\r"),
            "flushed on drop"
        );
    }

    #[test]
    fn a_line_without_newline_is_bounded() {
        let (bus, dev, sink) = setup();
        let long = vec![b'x'; LINE_MAX * 2 + 10];
        out(&bus, &long);
        assert_eq!(sink.contents().len(), LINE_MAX * 2);
        assert!(dev.state().pending.len() < LINE_MAX);
        dev.flush();
        assert_eq!(sink.contents(), long);
    }

    #[test]
    fn failing_sink_and_odd_accesses_do_no_harm() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let dev = Debugcon::new(Box::new(Broken));
        dev.write(0, b"a\n");
        dev.write(0, b"b");
        dev.write(0, &[]);
        dev.flush();
        let mut wide = [0u8; 2];
        dev.read(0, &mut wide);
        assert_eq!(wide, [0xe9, 0xff]);
        dev.read(0, &mut []);
        let (bus, _dev, sink) = setup();
        assert_eq!(bus.write(0x402, b"ab"), Access::Refused);
        assert!(sink.contents().is_empty());
    }

    #[test]
    fn capture_keeps_the_newest_bytes() {
        let mut sink = CaptureSink::new(4);
        sink.write_all(b"abcdef").unwrap();
        sink.write_all(b"g").unwrap();
        assert_eq!(sink.contents(), b"defg");
    }

    #[test]
    fn state_restore_keeps_pending_bytes() {
        let (bus, dev, sink) = setup();
        out(&bus, b"partial");
        let saved = dev.state();
        let (_bus2, dev2, sink2) = setup();
        dev2.restore(saved);
        dev2.write(0, b"\n");
        assert_eq!(sink2.contents(), b"partial\n");
        assert!(sink.contents().is_empty());
    }
}
