//! Port-I/O and MMIO buses.
//!
//! A bus is a map from address ranges to devices. The map lock is held only to find the device; it is dropped
//! before the device is called, so a device may itself touch the bus (or take a long time) without blocking
//! other vCPUs' lookups. Accesses that are wider than a device accepts, or that run past the end of its
//! range, are refused and counted, never passed on and never a panic. Reads nobody claims return all ones
//! (a floating bus), as on real hardware.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A device as a bus sees it. `offset` is relative to the start of the range the device was inserted at.
///
/// Devices take `&self` and lock their own state: the bus never serialises accesses for them.
pub trait BusDevice: Send + Sync {
    /// Fills `data` (1, 2, 4 or 8 bytes, little-endian) with the value read at `offset`.
    fn read(&self, offset: u64, data: &mut [u8]);
    /// Handles a write of `data` (1, 2, 4 or 8 bytes, little-endian) at `offset`.
    fn write(&self, offset: u64, data: &[u8]);

    /// String input (`rep insb/insw/insd`): `data.len() / width` reads of `width` bytes at `offset`, in order.
    /// The default reads one element at a time; a device with a data port overrides it to move a whole string
    /// under one lock.
    fn read_repeated(&self, offset: u64, width: usize, data: &mut [u8]) {
        read_each(self, offset, width, data);
    }

    /// String output (`rep outsb/outsw/outsd`), the counterpart of [`BusDevice::read_repeated`].
    fn write_repeated(&self, offset: u64, width: usize, data: &[u8]) {
        write_each(self, offset, width, data);
    }
}

/// String input element by element: what [`BusDevice::read_repeated`] does unless a device overrides it (an
/// override calls this for the ports it does not speed up).
pub fn read_each<D: BusDevice + ?Sized>(device: &D, offset: u64, width: usize, data: &mut [u8]) {
    for chunk in data.chunks_exact_mut(width.max(1)) {
        device.read(offset, chunk);
    }
}

/// String output element by element; see [`read_each`].
pub fn write_each<D: BusDevice + ?Sized>(device: &D, offset: u64, width: usize, data: &[u8]) {
    for chunk in data.chunks_exact(width.max(1)) {
        device.write(offset, chunk);
    }
}

/// Why a range could not be inserted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The new range overlaps one that is already there.
    #[error("range {base:#x}+{len:#x} overlaps an existing range at {existing:#x}")]
    Overlap { base: u64, len: u64, existing: u64 },
    /// A zero-length range, or one that wraps around the address space.
    #[error("invalid range {base:#x}+{len:#x}")]
    InvalidRange { base: u64, len: u64 },
    /// No range starts at this address.
    #[error("no range at {0:#x}")]
    NotFound(u64),
}

#[derive(Clone)]
struct Entry {
    len: u64,
    max_width: usize,
    device: Arc<dyn BusDevice>,
}

/// Counters a bus keeps about accesses it did not pass on.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Accesses to addresses nobody claims.
    pub unclaimed: AtomicU64,
    /// Accesses refused because they were too wide or crossed the end of a device's range.
    pub refused: AtomicU64,
}

/// What happened to one access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A device handled it.
    Handled,
    /// Nobody claims the address; a read returned all ones.
    Unclaimed,
    /// Too wide for the device, crossing its end, or not 1/2/4/8 bytes; a read returned all ones.
    Refused,
}

/// A port-I/O or MMIO bus. Cheap to share: clone the `Arc` around it.
pub struct Bus {
    name: &'static str,
    map: RwLock<BTreeMap<u64, Entry>>,
    stats: BusStats,
}

impl Bus {
    /// An empty bus; `name` appears in log messages ("pio", "mmio").
    pub fn new(name: &'static str) -> Self {
        Bus {
            name,
            map: RwLock::new(BTreeMap::new()),
            stats: BusStats::default(),
        }
    }

    /// Puts `device` at `base..base+len`. Accesses wider than `max_width` bytes are refused.
    pub fn insert(
        &self,
        base: u64,
        len: u64,
        max_width: usize,
        device: Arc<dyn BusDevice>,
    ) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::InvalidRange { base, len })?;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        // The closest range starting at or below the new end must end at or before the new base.
        if let Some((&start, entry)) = map.range(..end).next_back() {
            if start + entry.len > base {
                return Err(BusError::Overlap {
                    base,
                    len,
                    existing: start,
                });
            }
        }
        map.insert(
            base,
            Entry {
                len,
                max_width,
                device,
            },
        );
        Ok(())
    }

    /// Removes the range that starts at `base` (used when a guest moves a PCI BAR).
    pub fn remove(&self, base: u64) -> Result<(), BusError> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.remove(&base)
            .map(|_| ())
            .ok_or(BusError::NotFound(base))
    }

    /// Whether some range contains `addr`.
    pub fn is_claimed(&self, addr: u64) -> bool {
        self.lookup(addr).is_some()
    }

    fn lookup(&self, addr: u64) -> Option<(u64, Entry)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let (&start, entry) = map.range(..=addr).next_back()?;
        (addr - start < entry.len).then(|| (start, entry.clone()))
        // The map lock is dropped here, before the caller calls the device.
    }

    fn route(&self, addr: u64, width: usize) -> Result<(u64, Arc<dyn BusDevice>), Access> {
        let Some((start, entry)) = self.lookup(addr) else {
            self.stats.unclaimed.fetch_add(1, Ordering::Relaxed);
            return Err(Access::Unclaimed);
        };
        let offset = addr - start;
        let fits = matches!(width, 1 | 2 | 4 | 8)
            && width <= entry.max_width
            && offset + width as u64 <= entry.len;
        if !fits {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            crate::rate_limited!(
                log::Level::Warn,
                "{} bus: refused {}-byte access at {:#x} (device range {:#x}+{:#x}, max width {})",
                self.name,
                width,
                addr,
                start,
                entry.len,
                entry.max_width
            );
            return Err(Access::Refused);
        }
        Ok((offset, entry.device))
    }

    /// Reads `data.len()` bytes at `addr`. Unclaimed and refused reads fill `data` with all ones.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> Access {
        match self.route(addr, data.len()) {
            Ok((offset, device)) => {
                device.read(offset, data);
                Access::Handled
            }
            Err(access) => {
                data.fill(0xff);
                access
            }
        }
    }

    /// Writes `data` at `addr`. Unclaimed and refused writes are dropped.
    pub fn write(&self, addr: u64, data: &[u8]) -> Access {
        match self.route(addr, data.len()) {
            Ok((offset, device)) => {
                device.write(offset, data);
                Access::Handled
            }
            Err(access) => access,
        }
    }

    /// String input: `data.len() / width` reads of `width` bytes at `addr`, routed once (one KVM exit for a
    /// `rep ins` instruction). Unclaimed and refused strings read all ones; a trailing partial element is left
    /// untouched.
    pub fn read_repeated(&self, addr: u64, width: usize, data: &mut [u8]) -> Access {
        match self.route(addr, width) {
            Ok((offset, device)) => {
                let whole = data.len() - data.len() % width;
                device.read_repeated(offset, width, &mut data[..whole]);
                Access::Handled
            }
            Err(access) => {
                data.fill(0xff);
                access
            }
        }
    }

    /// String output: `data.len() / width` writes of `width` bytes at `addr`, routed once.
    pub fn write_repeated(&self, addr: u64, width: usize, data: &[u8]) -> Access {
        match self.route(addr, width) {
            Ok((offset, device)) => {
                let whole = data.len() - data.len() % width;
                device.write_repeated(offset, width, &data[..whole]);
                Access::Handled
            }
            Err(access) => access,
        }
    }

    /// Counters of unclaimed and refused accesses.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }
}

/// Reads a little-endian value of `data.len()` bytes (at most 8) into a `u64`.
pub fn le_value(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = data.len().min(8);
    bytes[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(bytes)
}

/// Stores the low `data.len()` bytes (at most 8) of `value` into `data`, little-endian.
pub fn put_le_value(data: &mut [u8], value: u64) {
    let n = data.len().min(8);
    data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Scratch(Mutex<Vec<(u64, Vec<u8>)>>);
    impl BusDevice for Scratch {
        fn read(&self, offset: u64, data: &mut [u8]) {
            put_le_value(data, 0x1122_3344_5566_7788 + offset);
        }
        fn write(&self, offset: u64, data: &[u8]) {
            self.0.lock().unwrap().push((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_with_relative_offsets() {
        let bus = Bus::new("pio");
        let dev = Arc::new(Scratch::default());
        bus.insert(0x3f8, 8, 1, dev.clone()).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(bus.read(0x3fa, &mut b), Access::Handled);
        assert_eq!(b[0], 0x8a);
        assert_eq!(bus.write(0x3ff, &[7]), Access::Handled);
        assert_eq!(dev.0.lock().unwrap().as_slice(), &[(7, vec![7])]);
    }

    #[test]
    fn unclaimed_reads_float_high_and_are_counted() {
        let bus = Bus::new("pio");
        let mut b = [0u8; 4];
        assert_eq!(bus.read(0x80, &mut b), Access::Unclaimed);
        assert_eq!(b, [0xff; 4]);
        assert_eq!(bus.stats().unclaimed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn too_wide_or_crossing_accesses_are_refused_not_passed_on() {
        let bus = Bus::new("pio");
        let dev = Arc::new(Scratch::default());
        bus.insert(0x60, 1, 1, dev.clone()).unwrap();
        bus.insert(0xcfc, 4, 4, dev.clone()).unwrap();
        let mut w = [0u8; 2];
        assert_eq!(bus.read(0x60, &mut w), Access::Refused);
        assert_eq!(w, [0xff, 0xff]);
        assert_eq!(bus.write(0xcfd, &[1, 2, 3, 4]), Access::Refused);
        assert_eq!(bus.write(0xcfc, &[1, 2, 3]), Access::Refused);
        assert_eq!(bus.write(0xcfe, &[1, 2]), Access::Handled);
        assert_eq!(bus.stats().refused.load(Ordering::Relaxed), 3);
        assert_eq!(dev.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn string_io_is_routed_once_and_split_into_elements() {
        let bus = Bus::new("pio");
        let dev = Arc::new(Scratch::default());
        bus.insert(0x1f0, 8, 4, dev.clone()).unwrap();
        assert_eq!(
            bus.write_repeated(0x1f0, 2, &[1, 2, 3, 4, 5]),
            Access::Handled
        );
        assert_eq!(
            dev.0.lock().unwrap().as_slice(),
            &[(0, vec![1, 2]), (0, vec![3, 4])],
            "two whole words; the odd byte is not an element"
        );
        let mut data = [0u8; 4];
        assert_eq!(bus.read_repeated(0x1f1, 2, &mut data), Access::Handled);
        assert_eq!(data, [0x89, 0x77, 0x89, 0x77]);
        assert_eq!(bus.read_repeated(0x1f7, 2, &mut data), Access::Refused);
        assert_eq!(data, [0xff; 4]);
    }

    #[test]
    fn overlapping_and_empty_ranges_are_rejected() {
        let bus = Bus::new("mmio");
        let dev = Arc::new(Scratch::default());
        bus.insert(0x1000, 0x100, 8, dev.clone()).unwrap();
        assert!(matches!(
            bus.insert(0x10ff, 1, 8, dev.clone()),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(0xf01, 0x100, 8, dev.clone()),
            Err(BusError::Overlap { .. })
        ));
        assert!(bus.insert(0x1100, 1, 8, dev.clone()).is_ok());
        assert!(bus.insert(0xf00, 0x100, 8, dev.clone()).is_ok());
        assert!(matches!(
            bus.insert(0, 0, 8, dev.clone()),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(matches!(
            bus.insert(u64::MAX, 2, 8, dev.clone()),
            Err(BusError::InvalidRange { .. })
        ));
        bus.remove(0x1000).unwrap();
        assert!(!bus.is_claimed(0x1000));
        assert!(bus.is_claimed(0x1100));
    }
}
