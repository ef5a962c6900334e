//! Interrupt lines as injected objects.
//!
//! A device holds an [`IrqLine`] and sets its level; it never knows whether the line ends at KVM's in-kernel
//! PIC/IOAPIC, at a PCI PIRQ router, or at a [`RecordingIrq`] in a test.
//!
//! Several sources may drive one GSI (PCI INTx sharing through PIIX3 PIRQ routing, or a PCI link routed to
//! the same ISA IRQ as the SCI). KVM keeps one level per GSI for the whole of userspace, so the OR of all
//! sources must be formed here: [`IrqMux`] keeps, per GSI, the set of sources holding it high and tells its
//! [`GsiSink`] only when the OR changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One interrupt output of a device.
pub trait IrqLine: Send + Sync {
    /// Drives the line high (`true`) or low.
    fn set_level(&self, high: bool);
    /// An edge: high then low. ISA devices with edge-triggered IRQs use this.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}

/// Where a GSI's level finally goes: KVM's `KVM_IRQ_LINE`, or a recorder in tests.
pub trait GsiSink: Send + Sync {
    /// Sets the level of global system interrupt `gsi`.
    fn set_gsi(&self, gsi: u32, high: bool);
}

/// Identifies one source on an [`IrqMux`].
pub type SourceId = u32;

/// ORs the levels of every source that drives a GSI and forwards changes to a [`GsiSink`].
pub struct IrqMux {
    sink: Arc<dyn GsiSink>,
    state: Mutex<MuxState>,
}

#[derive(Default, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
/// The serialisable part of an [`IrqMux`]: which sources hold which GSI high.
pub struct MuxState {
    next_source: SourceId,
    /// GSI → sources currently asserting it.
    asserted: BTreeMap<u32, Vec<SourceId>>,
}

impl IrqMux {
    /// A mux that forwards OR-ed levels to `sink`.
    pub fn new(sink: Arc<dyn GsiSink>) -> Arc<Self> {
        Arc::new(IrqMux {
            sink,
            state: Mutex::new(MuxState::default()),
        })
    }

    /// A new source id, for a device output that will share GSIs with others.
    pub fn new_source(&self) -> SourceId {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let id = st.next_source;
        st.next_source += 1;
        id
    }

    /// Sets `source`'s level on `gsi`; the sink hears about it only if the OR of all sources changes.
    pub fn set(&self, gsi: u32, source: SourceId, high: bool) {
        let (before, after) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let list = st.asserted.entry(gsi).or_default();
            let before = !list.is_empty();
            let present = list.contains(&source);
            if high && !present {
                list.push(source);
            } else if !high && present {
                list.retain(|&s| s != source);
            }
            let after = !list.is_empty();
            if !after {
                st.asserted.remove(&gsi);
            }
            (before, after)
        };
        // The sink is called without the mux lock held.
        if before != after {
            self.sink.set_gsi(gsi, after);
        }
    }

    /// Whether any source holds `gsi` high.
    pub fn level(&self, gsi: u32) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.asserted.get(&gsi).is_some_and(|l| !l.is_empty())
    }

    /// An [`IrqLine`] for a device that owns one fixed GSI (an ISA device), sharing it with any others.
    pub fn line(self: &Arc<Self>, gsi: u32) -> Arc<dyn IrqLine> {
        Arc::new(MuxLine {
            mux: Arc::clone(self),
            gsi,
            source: self.new_source(),
        })
    }
}

/// One source's fixed line on an [`IrqMux`].
pub struct MuxLine {
    mux: Arc<IrqMux>,
    gsi: u32,
    source: SourceId,
}

impl IrqLine for MuxLine {
    fn set_level(&self, high: bool) {
        self.mux.set(self.gsi, self.source, high);
    }
    // `pulse` is the trait's high-then-low. While a sharer holds the GSI high the OR does not change, so no edge
    // reaches the in-kernel PIC: an edge source sharing a line with a level source is a wiring error.
}

/// A recording line for tests: the current level and every change.
#[derive(Default)]
pub struct RecordingIrq {
    events: Mutex<Vec<bool>>,
}

impl RecordingIrq {
    /// A new low line.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// The level last set.
    pub fn level(&self) -> bool {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .copied()
            .unwrap_or(false)
    }
    /// How many times the line went from low to high.
    pub fn rising_edges(&self) -> usize {
        let ev = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let mut prev = false;
        let mut n = 0;
        for &l in ev.iter() {
            if l && !prev {
                n += 1;
            }
            prev = l;
        }
        n
    }
    /// Every level set so far, oldest first; clears the record but keeps the current level.
    pub fn take_events(&self) -> Vec<bool> {
        let mut ev = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let out = std::mem::take(&mut *ev);
        if let Some(&last) = out.last() {
            ev.push(last);
        }
        // The pushed entry keeps `level()` right; it is not reported again as an edge.
        out
    }
}

impl IrqLine for RecordingIrq {
    fn set_level(&self, high: bool) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(high);
    }
}

/// A recording [`GsiSink`] for machine tests: the level of every GSI and how often each rose.
#[derive(Default)]
pub struct RecordingGsi {
    state: Mutex<BTreeMap<u32, (bool, usize)>>,
}

impl RecordingGsi {
    /// A sink with every GSI low.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// The current level of `gsi`.
    pub fn level(&self, gsi: u32) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.get(&gsi).is_some_and(|s| s.0)
    }
    /// How many times `gsi` went from low to high.
    pub fn rising_edges(&self, gsi: u32) -> usize {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.get(&gsi).map_or(0, |s| s.1)
    }
}

impl GsiSink for RecordingGsi {
    fn set_gsi(&self, gsi: u32, high: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let entry = st.entry(gsi).or_insert((false, 0));
        if high && !entry.0 {
            entry.1 += 1;
        }
        entry.0 = high;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_gsi_is_the_or_of_its_sources() {
        let sink = RecordingGsi::new();
        let mux = IrqMux::new(sink.clone());
        let a = mux.line(10);
        let b = mux.line(10);
        a.set_level(true);
        b.set_level(true);
        assert!(sink.level(10));
        a.set_level(false);
        assert!(sink.level(10), "b still holds the line");
        b.set_level(false);
        assert!(!sink.level(10));
        assert_eq!(sink.rising_edges(10), 1);
    }

    #[test]
    fn pulses_reach_the_sink_as_edges() {
        let sink = RecordingGsi::new();
        let mux = IrqMux::new(sink.clone());
        let l = mux.line(4);
        l.pulse();
        l.pulse();
        assert_eq!(sink.rising_edges(4), 2);
        assert!(!sink.level(4));
    }

    #[test]
    fn recording_irq_counts_rising_edges() {
        let irq = RecordingIrq::new();
        irq.set_level(true);
        irq.set_level(true);
        irq.set_level(false);
        irq.pulse();
        assert_eq!(irq.rising_edges(), 2);
        assert!(!irq.level());
        assert_eq!(irq.take_events().len(), 5);
        assert_eq!(irq.rising_edges(), 0);
    }
}
