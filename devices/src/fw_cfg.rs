//! QEMU's firmware configuration device ("fw_cfg"): how SeaBIOS learns the memory map, the boot order and the
//! CPU count from the device model.
//!
//! # Hardware behaviour
//!
//! The interface is the one QEMU documents in `docs/specs/fw_cfg.rst`; SeaBIOS (`src/fw/paravirt.c`) is its
//! only client here. On x86 it lives in port space:
//!
//! | port | access | meaning |
//! |---|---|---|
//! | 0x510 | 16-bit write, little-endian | selector: picks an item and rewinds it to offset 0 |
//! | 0x511 | 8-bit read | data: the next byte of the selected item; 0 once past its end |
//! | 0x514 | 32-bit write, big-endian | DMA descriptor address, high half |
//! | 0x518 | 32-bit write, big-endian | DMA descriptor address, low half; writing it runs the transfer |
//! | 0x514–0x51B | read, any width | the signature `"QEMU CFG"`, byte *n* at 0x514+*n* |
//!
//! An *item* is a byte string under a 16-bit key. Keys 0x0000 (`"QEMU"`, how firmware detects the device),
//! 0x0001 (the ID: bit 0 traditional interface, bit 1 DMA) and 0x0019 (the file directory) belong to the device.
//! Other small numeric keys are "legacy" items the machine adds (CPU counts, boot menu, ...). Named *files* get
//! the selectors from 0x0020 up, in name order, and are listed in the directory as a big-endian count followed
//! by 64-byte entries `{BE u32 size, BE u16 select, u16 reserved, char name[56]}`. Unknown keys select an empty
//! item, so they read as zeros, which is what SeaBIOS relies on to treat a missing legacy key as 0. Bit 14 of
//! a selector is QEMU's write channel; it is ignored when looking the item up, as QEMU does.
//!
//! A DMA descriptor in guest memory is `{BE u32 control, BE u32 length, BE u64 address}`. Control bits: 0x08
//! select (key in bits 31:16), then one of 0x02 read (copy item bytes to `address`, zeros past the end), 0x04
//! skip (advance the offset) or 0x10 write (refused: every item here is read-only). The device completes the
//! transfer synchronously and writes `control` back as 0, or 0x01 on error; SeaBIOS spins until the value has
//! no bit other than the error bit set. Every guest address is checked against guest RAM before anything is
//! written, so a descriptor or buffer outside RAM only sets the error bit.
//!
//! # Why the items are configuration, not state
//!
//! The items are rebuilt by the machine from its config on every start, so [`FwCfgState`] only carries what
//! the guest changed: the selector, the offset into the item and the pending high half of the DMA address.
//!
//! # Cost of a byte
//!
//! SeaBIOS reads PIO data with `rep insb`, which KVM reports as one exit with a count; the machine then calls
//! the 1-byte read once per byte. The selected item is therefore kept resolved ([`FwCfg`] holds a reference to
//! its bytes), so a data read is a lock, a bounds check and an increment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use vm_memory::GuestMemoryBackend;

use crate::bus::BusDevice;
use crate::memory::{Bytes, GuestAddress, GuestMemory};

/// First port of the device: the selector register.
pub const PORT_BASE: u64 = 0x510;
/// Length of the port range to map at [`PORT_BASE`]: selector, data, two unused ports, DMA address (0x510–0x51B).
pub const PORT_LEN: u64 = 12;
/// Widest access the port range takes (x86 port I/O never exceeds 4 bytes).
pub const MAX_ACCESS_WIDTH: usize = 4;

/// Offset of the data port (0x511) in the port range.
const DATA_OFFSET: u64 = 1;
/// Offset of the DMA address high half (0x514) in the port range.
const DMA_HIGH_OFFSET: u64 = 4;
/// Offset of the DMA address low half (0x518) in the port range.
const DMA_LOW_OFFSET: u64 = 8;

/// Key of the `"QEMU"` signature item.
pub const KEY_SIGNATURE: u16 = 0x0000;
/// Key of the interface ID item (LE u32).
pub const KEY_ID: u16 = 0x0001;
/// Legacy key: RAM size (LE u64). SeaBIOS 1.16 does not read it.
pub const KEY_RAM_SIZE: u16 = 0x0003;
/// Legacy key: "no graphics" (LE u16); SeaBIOS then mirrors its screen to COM1.
pub const KEY_NOGRAPHIC: u16 = 0x0004;
/// Legacy key: number of CPUs present at boot (LE u16).
pub const KEY_NB_CPUS: u16 = 0x0005;
/// Legacy key: show the boot menu (LE u16); SeaBIOS knows it as `etc/show-boot-menu`.
pub const KEY_BOOT_MENU: u16 = 0x000E;
/// Legacy key: highest possible CPU count (LE u16); SeaBIOS knows it as `etc/max-cpus`.
pub const KEY_MAX_CPUS: u16 = 0x000F;
/// Key of the file directory.
pub const KEY_FILE_DIR: u16 = 0x0019;
/// Selector of the first file; file *n* in name order has `FILE_FIRST + n`.
pub const FILE_FIRST: u16 = 0x0020;
/// Bit of a key marking an architecture-specific item (x86: 0x8000 ACPI tables ... 0x8003 E820 reservations).
pub const KEY_ARCH_LOCAL: u16 = 0x8000;
/// Selector bit QEMU uses for the (obsolete) write channel; ignored for the lookup.
const WRITE_CHANNEL: u16 = 0x4000;

/// Longest file name: the directory entry has 56 bytes including the terminating NUL.
pub const MAX_FILE_NAME: usize = 55;
/// Most files the selector space holds (0x0020 to 0x3FFF).
pub const MAX_FILES: usize = (WRITE_CHANNEL - FILE_FIRST) as usize;

/// What reads of 0x514–0x51B return, byte *n* at 0x514+*n*.
pub const DMA_SIGNATURE: &[u8; 8] = b"QEMU CFG";
/// ID bit: the traditional selector/data interface.
pub const ID_TRADITIONAL: u32 = 1 << 0;
/// ID bit: the DMA interface.
pub const ID_DMA: u32 = 1 << 1;

/// DMA control bit: the transfer failed (the only bit the device ever writes back).
pub const DMA_CTL_ERROR: u32 = 0x01;
/// DMA control bit: copy item bytes into guest memory.
pub const DMA_CTL_READ: u32 = 0x02;
/// DMA control bit: advance the item offset without copying.
pub const DMA_CTL_SKIP: u32 = 0x04;
/// DMA control bit: select the key in bits 31:16 first.
pub const DMA_CTL_SELECT: u32 = 0x08;
/// DMA control bit: write guest memory into the item (refused: items are read-only).
pub const DMA_CTL_WRITE: u32 = 0x10;

/// Size of a DMA descriptor in guest memory.
const DMA_DESCRIPTOR_LEN: usize = 16;
/// Zero-fill past an item's end is written in chunks of this size, so a huge length allocates nothing.
const ZERO_CHUNK: usize = 4096;
static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];

/// Why an item or file could not be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FwCfgError {
    /// The key is one the device provides itself, a file selector, or has the write-channel bit.
    #[error("fw_cfg key {key:#06x} cannot be set: {reason}")]
    InvalidKey {
        /// The refused key.
        key: u16,
        /// Why.
        reason: &'static str,
    },
    /// Empty, longer than 55 bytes, or containing a NUL byte.
    #[error("invalid fw_cfg file name '{0}' (1 to 55 bytes, no NUL)")]
    BadName(String),
    /// A file of that name exists already.
    #[error("fw_cfg file '{0}' exists already")]
    DuplicateFile(String),
    /// Items are addressed with 32-bit sizes and offsets.
    #[error("fw_cfg item of {0} bytes is too large (at most 4 GiB - 1)")]
    TooLarge(usize),
    /// The file selector space is full.
    #[error("too many fw_cfg files (at most {MAX_FILES})")]
    TooManyFiles,
}

/// What the guest changed: serialised with the machine, restored with [`FwCfg::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCfgState {
    /// The last selector written (port 0x510 or a DMA select).
    pub selector: u16,
    /// Offset of the next byte to read in the selected item (never beyond its end).
    pub offset: u32,
    /// High half of the DMA descriptor address, written to 0x514 and consumed by the next 0x518 write.
    pub dma_address_high: u32,
}

/// The fw_cfg state machine: items, files and the selector/offset cursor.
pub struct FwCfg {
    mem: GuestMemory,
    /// Every item by key (write-channel bit clear), including the signature, ID, directory and file selectors.
    items: BTreeMap<u16, Arc<[u8]>>,
    /// Files by name; their order gives their selectors.
    files: BTreeMap<String, Arc<[u8]>>,
    state: FwCfgState,
    /// The bytes of the selected item (empty for an unknown key), kept resolved for cheap data reads.
    current: Arc<[u8]>,
}

impl FwCfg {
    /// A device with only its own items (signature, ID with DMA, an empty file directory), DMA going to `mem`.
    pub fn new(mem: GuestMemory) -> Self {
        let mut items: BTreeMap<u16, Arc<[u8]>> = BTreeMap::new();
        items.insert(KEY_SIGNATURE, Arc::from(&b"QEMU"[..]));
        items.insert(
            KEY_ID,
            Arc::from(&(ID_TRADITIONAL | ID_DMA).to_le_bytes()[..]),
        );
        items.insert(KEY_FILE_DIR, Arc::from(&0u32.to_be_bytes()[..]));
        let mut fw_cfg = FwCfg {
            mem,
            items,
            files: BTreeMap::new(),
            state: FwCfgState::default(),
            current: Arc::from(&[][..]),
        };
        fw_cfg.select(KEY_SIGNATURE);
        fw_cfg
    }

    /// Adds (or replaces) a numeric item such as [`KEY_NB_CPUS`]. The device's own keys, the file selector range
    /// 0x0020–0x3FFF and keys with bit 14 are refused; arch-local keys (0x8000 and up) are allowed.
    pub fn add_item(&mut self, key: u16, data: Vec<u8>) -> Result<(), FwCfgError> {
        let invalid = |reason| Err(FwCfgError::InvalidKey { key, reason });
        if key & WRITE_CHANNEL != 0 {
            return invalid("bit 14 is the write channel, not part of a key");
        }
        if matches!(key, KEY_SIGNATURE | KEY_ID | KEY_FILE_DIR) {
            return invalid("the device provides this item itself");
        }
        if key & KEY_ARCH_LOCAL == 0 && key >= FILE_FIRST {
            return invalid("keys from 0x0020 are file selectors; use add_file");
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge(data.len()));
        }
        self.items.insert(key, Arc::from(data));
        self.refresh_current();
        Ok(())
    }

    /// Adds a named file; the directory and the selectors of all files are rebuilt in name order.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<(), FwCfgError> {
        if name.is_empty() || name.len() > MAX_FILE_NAME || name.contains('\0') {
            return Err(FwCfgError::BadName(name.to_string()));
        }
        if self.files.contains_key(name) {
            return Err(FwCfgError::DuplicateFile(name.to_string()));
        }
        if self.files.len() >= MAX_FILES {
            return Err(FwCfgError::TooManyFiles);
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge(data.len()));
        }
        self.files.insert(name.to_string(), Arc::from(data));
        self.rebuild_files();
        self.refresh_current();
        Ok(())
    }

    /// The selector of a file, as the directory lists it.
    pub fn file_selector(&self, name: &str) -> Option<u16> {
        let index = self.files.keys().position(|n| n == name)?;
        // `add_file` keeps the count below MAX_FILES, so this fits a u16.
        u16::try_from(index).ok().map(|i| FILE_FIRST + i)
    }

    /// Names of all files, in directory order.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    fn rebuild_files(&mut self) {
        self.items
            .retain(|&key, _| !(FILE_FIRST..WRITE_CHANNEL).contains(&key));
        let count = self.files.len();
        let mut dir = Vec::with_capacity(4 + 64 * count);
        // `add_file` bounds the count by MAX_FILES, far below u32::MAX.
        dir.extend_from_slice(&(count as u32).to_be_bytes());
        for (selector, (name, data)) in (FILE_FIRST..WRITE_CHANNEL).zip(self.files.iter()) {
            // Sizes were checked to fit a u32 in `add_file`.
            dir.extend_from_slice(&(data.len() as u32).to_be_bytes());
            dir.extend_from_slice(&selector.to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut raw_name = [0u8; 56];
            raw_name[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&raw_name);
            self.items.insert(selector, data.clone());
        }
        self.items.insert(KEY_FILE_DIR, Arc::from(dir));
    }

    fn refresh_current(&mut self) {
        self.current = self
            .items
            .get(&(self.state.selector & !WRITE_CHANNEL))
            .cloned()
            .unwrap_or_else(|| Arc::from(&[][..]));
        let len = u32::try_from(self.current.len()).unwrap_or(u32::MAX);
        self.state.offset = self.state.offset.min(len);
    }

    /// Selects `key` and rewinds to its first byte (a selector write or a DMA select).
    pub fn select(&mut self, key: u16) {
        self.state.selector = key;
        self.state.offset = 0;
        self.refresh_current();
    }

    /// The next byte of the selected item, or 0 past its end (the offset then stays put).
    pub fn read_data(&mut self) -> u8 {
        match self.current.get(self.state.offset as usize) {
            Some(&byte) => {
                self.state.offset += 1;
                byte
            }
            None => 0,
        }
    }

    /// Fills `out` as that many 1-byte data reads would (for `rep insb` exits with a count).
    pub fn read_data_into(&mut self, out: &mut [u8]) {
        let start = (self.state.offset as usize).min(self.current.len());
        let n = (self.current.len() - start).min(out.len());
        out[..n].copy_from_slice(&self.current[start..start + n]);
        out[n..].fill(0);
        // n is at most the item length, which fits a u32.
        self.state.offset += n as u32;
    }

    /// Byte `index` (0–7) of the "QEMU CFG" signature at 0x514; 0xFF outside it.
    fn signature_byte(index: u64) -> u8 {
        usize::try_from(index)
            .ok()
            .and_then(|i| DMA_SIGNATURE.get(i))
            .copied()
            .unwrap_or(0xff)
    }

    /// Handles a write of the high half of the DMA descriptor address (port 0x514).
    pub fn write_dma_high(&mut self, value: u32) {
        self.state.dma_address_high = value;
    }

    /// Handles a write of the low half (port 0x518): runs the transfer described at the full address.
    pub fn write_dma_low(&mut self, value: u32) {
        let address = (u64::from(self.state.dma_address_high) << 32) | u64::from(value);
        // The high half is consumed by the transfer, as in QEMU: a later 32-bit-only client starts from 0.
        self.state.dma_address_high = 0;
        self.run_dma(address);
    }

    /// Reads the descriptor at `descriptor`, performs it and writes the status back into its control word.
    pub fn run_dma(&mut self, descriptor: u64) {
        let mut raw = [0u8; DMA_DESCRIPTOR_LEN];
        if self
            .mem
            .read_slice(&mut raw, GuestAddress(descriptor))
            .is_err()
        {
            crate::rate_limited!(
                log::Level::Warn,
                "fw_cfg: DMA descriptor at {:#x} is outside guest RAM",
                descriptor
            );
            // If at least the control word is in RAM, let the guest see the failure instead of spinning.
            self.write_control(descriptor, DMA_CTL_ERROR);
            return;
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let control = be32(&raw[0..4]);
        let length = be32(&raw[4..8]);
        let mut address = [0u8; 8];
        address.copy_from_slice(&raw[8..16]);
        let status = self.dma_transfer(control, length, u64::from_be_bytes(address));
        self.write_control(descriptor, status);
    }

    fn write_control(&self, descriptor: u64, status: u32) {
        if self
            .mem
            .write_slice(&status.to_be_bytes(), GuestAddress(descriptor))
            .is_err()
        {
            crate::rate_limited!(
                log::Level::Warn,
                "fw_cfg: cannot write DMA status back to {:#x}",
                descriptor
            );
        }
    }

    /// Performs one DMA operation; returns the control word to write back (0 or [`DMA_CTL_ERROR`]).
    fn dma_transfer(&mut self, control: u32, length: u32, address: u64) -> u32 {
        if control & DMA_CTL_SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        // QEMU's precedence when several operation bits are set: read, then write, then skip.
        if control & DMA_CTL_READ != 0 {
            self.dma_read(length, address)
        } else if control & DMA_CTL_WRITE != 0 {
            if length == 0 {
                return 0;
            }
            crate::rate_limited!(
                log::Level::Warn,
                "fw_cfg: DMA write of {} bytes to read-only item {:#06x} refused",
                length,
                self.state.selector
            );
            DMA_CTL_ERROR
        } else if control & DMA_CTL_SKIP != 0 {
            let available = self
                .current
                .len()
                .saturating_sub(self.state.offset as usize);
            // Bounded by the item length, which fits a u32.
            self.state.offset += (length as usize).min(available) as u32;
            0
        } else {
            0
        }
    }

    fn dma_read(&mut self, length: u32, address: u64) -> u32 {
        if length == 0 {
            return 0;
        }
        let len = length as usize;
        let in_ram = address.checked_add(u64::from(length)).is_some()
            && self.mem.check_range(GuestAddress(address), len);
        if !in_ram {
            crate::rate_limited!(
                log::Level::Warn,
                "fw_cfg: DMA read of {} bytes to {:#x} runs outside guest RAM",
                length,
                address
            );
            return DMA_CTL_ERROR;
        }
        let start = self.state.offset as usize;
        let n = self.current.len().saturating_sub(start).min(len);
        if n > 0
            && self
                .mem
                .write_slice(&self.current[start..start + n], GuestAddress(address))
                .is_err()
        {
            return DMA_CTL_ERROR;
        }
        // n is at most the item length, which fits a u32.
        self.state.offset += n as u32;
        // Past the item's end the guest gets zeros, written from a fixed buffer chunk by chunk.
        let mut done = n;
        while done < len {
            let chunk = (len - done).min(ZERO_CHUNK);
            let at = GuestAddress(address + done as u64);
            if self.mem.write_slice(&ZEROS[..chunk], at).is_err() {
                return DMA_CTL_ERROR;
            }
            done += chunk;
        }
        0
    }

    /// Back to power-on state: key 0 selected, no pending DMA address.
    pub fn reset(&mut self) {
        self.state.dma_address_high = 0;
        self.select(KEY_SIGNATURE);
    }

    /// The guest-visible state, for snapshots.
    pub fn state(&self) -> FwCfgState {
        self.state.clone()
    }

    /// Restores a snapshot taken with [`FwCfg::state`] (after the machine has re-added the same items).
    /// An offset beyond the selected item's end is clamped to it.
    pub fn restore(&mut self, state: &FwCfgState) {
        self.state = state.clone();
        self.refresh_current();
    }

    /// Handles a port read at `offset` from [`PORT_BASE`].
    pub fn port_read(&mut self, offset: u64, data: &mut [u8]) {
        // The data register is byte-wide; QEMU answers a byte read at 0x510 from it as well.
        if data.len() == 1 && offset <= DATA_OFFSET {
            data[0] = self.read_data();
            return;
        }
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .and_then(|at| at.checked_sub(DMA_HIGH_OFFSET))
                .map_or(0xff, Self::signature_byte);
        }
    }

    /// Handles a port write at `offset` from [`PORT_BASE`].
    pub fn port_write(&mut self, offset: u64, data: &[u8]) {
        // The DMA registers are big-endian: the byte at the lowest port is the most significant.
        let be = |d: &[u8]| d.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        match (offset, data.len()) {
            (0, 2) => self.select(u16::from_le_bytes([data[0], data[1]])),
            (DMA_HIGH_OFFSET, 4) => self.write_dma_high(be(data) as u32),
            (DMA_LOW_OFFSET, 4) => self.write_dma_low(be(data) as u32),
            (DMA_HIGH_OFFSET, 8) => {
                self.state.dma_address_high = 0;
                self.run_dma(be(data));
            }
            _ => crate::rate_limited!(
                log::Level::Warn,
                "fw_cfg: ignored {}-byte write at port {:#x}",
                data.len(),
                PORT_BASE + offset
            ),
        }
    }
}

/// The bus adapter: put one at [`PORT_BASE`] with length [`PORT_LEN`] and max width [`MAX_ACCESS_WIDTH`] on
/// the port-I/O bus.
pub struct FwCfgDevice {
    inner: Mutex<FwCfg>,
}

impl FwCfgDevice {
    /// Wraps a configured [`FwCfg`].
    pub fn new(fw_cfg: FwCfg) -> Self {
        FwCfgDevice {
            inner: Mutex::new(fw_cfg),
        }
    }

    /// The device itself, e.g. to add items, reset or snapshot it.
    pub fn lock(&self) -> MutexGuard<'_, FwCfg> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `count` data-port reads at once, for a `rep insb` exit on port 0x511.
    pub fn read_data_into(&self, out: &mut [u8]) {
        self.lock().read_data_into(out);
    }
}

impl BusDevice for FwCfgDevice {
    fn read(&self, offset: u64, data: &mut [u8]) {
        self.lock().port_read(offset, data);
    }

    fn write(&self, offset: u64, data: &[u8]) {
        self.lock().port_write(offset, data);
    }

    /// SeaBIOS reads items with `rep insb` on the data port: one copy under one lock.
    fn read_repeated(&self, offset: u64, width: usize, data: &mut [u8]) {
        if offset == DATA_OFFSET && width == 1 {
            self.read_data_into(data);
        } else {
            crate::bus::read_each(self, offset, width, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Access, Bus};
    use crate::memory::test_memory;

    const MEM_SIZE: usize = 0x10_0000;

    /// A port bus with the device mapped as the machine maps it, plus the guest memory behind it.
    fn machine(setup: impl FnOnce(&mut FwCfg)) -> (Bus, Arc<FwCfgDevice>, GuestMemory) {
        let mem = test_memory(MEM_SIZE);
        let mut fw_cfg = FwCfg::new(mem.clone());
        setup(&mut fw_cfg);
        let device = Arc::new(FwCfgDevice::new(fw_cfg));
        let bus = Bus::new("pio");
        bus.insert(PORT_BASE, PORT_LEN, MAX_ACCESS_WIDTH, device.clone())
            .unwrap();
        (bus, device, mem)
    }

    #[test]
    fn rep_insb_on_the_data_port_reads_like_single_reads() {
        let (bus, _, _) = machine(|f| f.add_file("etc/x", b"abcdef".to_vec()).unwrap());
        select(&bus, 0x0020);
        let mut string = [0u8; 8];
        assert_eq!(bus.read_repeated(0x511, 1, &mut string), Access::Handled);
        assert_eq!(&string, b"abcdef\0\0");
    }

    fn select(bus: &Bus, key: u16) {
        assert_eq!(bus.write(0x510, &key.to_le_bytes()), Access::Handled);
    }

    /// `n` bytes by repeated 1-byte reads of 0x511, as `rep insb` is delivered.
    fn read_bytes(bus: &Bus, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                let mut b = [0u8];
                assert_eq!(bus.read(0x511, &mut b), Access::Handled);
                b[0]
            })
            .collect()
    }

    /// SeaBIOS's DMA path: descriptor in guest memory, BE address halves to 0x514 and 0x518 with outl.
    fn dma(bus: &Bus, mem: &GuestMemory, at: u64, control: u32, length: u32, address: u64) -> u32 {
        let mut desc = Vec::new();
        desc.extend_from_slice(&control.to_be_bytes());
        desc.extend_from_slice(&length.to_be_bytes());
        desc.extend_from_slice(&address.to_be_bytes());
        mem.write_slice(&desc, GuestAddress(at)).unwrap();
        bus.write(0x514, &((at >> 32) as u32).to_be_bytes());
        bus.write(0x518, &(at as u32).to_be_bytes());
        let mut status = [0u8; 4];
        mem.read_slice(&mut status, GuestAddress(at)).unwrap();
        u32::from_be_bytes(status)
    }

    /// Parses the directory as SeaBIOS does and returns (name, select, size).
    fn directory(bus: &Bus) -> Vec<(String, u16, u32)> {
        select(bus, KEY_FILE_DIR);
        let count = u32::from_be_bytes(read_bytes(bus, 4).try_into().unwrap());
        (0..count)
            .map(|_| {
                let e = read_bytes(bus, 64);
                let size = u32::from_be_bytes(e[0..4].try_into().unwrap());
                let sel = u16::from_be_bytes([e[4], e[5]]);
                let name_end = e[8..].iter().position(|&b| b == 0).unwrap();
                let name = String::from_utf8(e[8..8 + name_end].to_vec()).unwrap();
                (name, sel, size)
            })
            .collect()
    }

    #[test]
    fn signature_and_id_read_byte_by_byte() {
        let (bus, _, _) = machine(|_| {});
        select(&bus, KEY_SIGNATURE);
        assert_eq!(read_bytes(&bus, 4), b"QEMU");
        select(&bus, KEY_ID);
        assert_eq!(read_bytes(&bus, 4), [3, 0, 0, 0]);
    }

    #[test]
    fn the_signature_is_selected_at_power_on_and_after_reset() {
        let (bus, device, _) = machine(|_| {});
        assert_eq!(read_bytes(&bus, 4), b"QEMU");
        select(&bus, KEY_ID);
        device.lock().reset();
        assert_eq!(read_bytes(&bus, 4), b"QEMU");
    }

    #[test]
    fn reads_past_the_end_and_unknown_keys_give_zeros() {
        let (bus, _, _) = machine(|f| f.add_item(KEY_NB_CPUS, vec![2, 0]).unwrap());
        select(&bus, KEY_NB_CPUS);
        assert_eq!(read_bytes(&bus, 5), [2, 0, 0, 0, 0]);
        select(&bus, 0x0d);
        assert_eq!(read_bytes(&bus, 8), [0; 8]);
        select(&bus, 0x3fff);
        assert_eq!(read_bytes(&bus, 3), [0; 3]);
        // Reselecting rewinds.
        select(&bus, KEY_NB_CPUS);
        assert_eq!(read_bytes(&bus, 1), [2]);
    }

    #[test]
    fn the_write_channel_bit_is_ignored_for_the_lookup() {
        let (bus, _, _) = machine(|_| {});
        select(&bus, WRITE_CHANNEL | KEY_SIGNATURE);
        assert_eq!(read_bytes(&bus, 4), b"QEMU");
    }

    #[test]
    fn files_are_listed_sorted_by_name_and_read_by_selector() {
        let (bus, _, _) = machine(|f| {
            f.add_file("etc/e820", vec![1; 20]).unwrap();
            f.add_file("bootorder", b"/a\n".to_vec()).unwrap();
            f.add_file("etc/boot-fail-wait", 60000u32.to_le_bytes().to_vec())
                .unwrap();
        });
        let dir = directory(&bus);
        assert_eq!(
            dir,
            [
                ("bootorder".to_string(), 0x20, 3),
                ("etc/boot-fail-wait".to_string(), 0x21, 4),
                ("etc/e820".to_string(), 0x22, 20),
            ]
        );
        // Lookup by name, then read the file as SeaBIOS does.
        let (_, sel, size) = dir
            .iter()
            .find(|(n, ..)| n == "etc/boot-fail-wait")
            .unwrap();
        select(&bus, *sel);
        assert_eq!(read_bytes(&bus, *size as usize), 60000u32.to_le_bytes());
        select(&bus, 0x20);
        assert_eq!(read_bytes(&bus, 4), b"/a\n\0");
    }

    #[test]
    fn directory_entries_are_64_bytes_with_nul_padded_names() {
        let name = "x".repeat(MAX_FILE_NAME);
        let (bus, _, _) = machine(|f| f.add_file(&name, vec![9]).unwrap());
        select(&bus, KEY_FILE_DIR);
        let raw = read_bytes(&bus, 4 + 64 + 1);
        assert_eq!(&raw[0..4], &[0, 0, 0, 1]);
        assert_eq!(&raw[4..8], &[0, 0, 0, 1]);
        assert_eq!(&raw[8..12], &[0, 0x20, 0, 0]);
        assert_eq!(&raw[12..12 + 55], name.as_bytes());
        assert_eq!(raw[67], 0);
        assert_eq!(raw[68], 0, "past the directory's end");
    }

    #[test]
    fn bad_items_and_names_are_refused() {
        let mut f = FwCfg::new(test_memory(0x1000));
        for key in [KEY_SIGNATURE, KEY_ID, KEY_FILE_DIR, 0x20, 0x3fff, 0x4005] {
            assert!(
                matches!(f.add_item(key, vec![1]), Err(FwCfgError::InvalidKey { .. })),
                "key {key:#x}"
            );
        }
        assert_eq!(f.add_item(0x8002, vec![1]), Ok(()));
        assert!(matches!(
            f.add_file("", vec![]),
            Err(FwCfgError::BadName(_))
        ));
        assert!(matches!(
            f.add_file(&"y".repeat(56), vec![]),
            Err(FwCfgError::BadName(_))
        ));
        assert!(matches!(
            f.add_file("a\0b", vec![]),
            Err(FwCfgError::BadName(_))
        ));
        f.add_file("bootorder", vec![]).unwrap();
        assert_eq!(
            f.add_file("bootorder", vec![]),
            Err(FwCfgError::DuplicateFile("bootorder".into()))
        );
    }

    #[test]
    fn dma_select_and_read_into_guest_memory() {
        let (bus, _, mem) = machine(|f| f.add_file("etc/e820", (1..=20).collect()).unwrap());
        let sel = u32::from(0x20u16);
        let status = dma(
            &bus,
            &mem,
            0x1000,
            (sel << 16) | DMA_CTL_SELECT | DMA_CTL_READ,
            8,
            0x2000,
        );
        assert_eq!(status, 0);
        let mut got = [0u8; 8];
        mem.read_slice(&mut got, GuestAddress(0x2000)).unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8]);
        // A read without select continues where the last one stopped, and runs into zeros.
        mem.write_slice(&[0xaa; 16], GuestAddress(0x3000)).unwrap();
        assert_eq!(dma(&bus, &mem, 0x1000, DMA_CTL_READ, 16, 0x3000), 0);
        let mut got = [0u8; 16];
        mem.read_slice(&mut got, GuestAddress(0x3000)).unwrap();
        assert_eq!(
            got,
            [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 0, 0, 0, 0]
        );
    }

    #[test]
    fn dma_skip_advances_the_offset() {
        let (bus, _, mem) = machine(|f| f.add_file("f", (0..10).collect()).unwrap());
        assert_eq!(
            dma(
                &bus,
                &mem,
                0x1000,
                (0x20 << 16) | DMA_CTL_SELECT | DMA_CTL_SKIP,
                6,
                0
            ),
            0
        );
        // The PIO data port sees the same cursor.
        assert_eq!(read_bytes(&bus, 5), [6, 7, 8, 9, 0]);
        // Skipping beyond the end stops at the end.
        assert_eq!(
            dma(
                &bus,
                &mem,
                0x1000,
                (0x20 << 16) | DMA_CTL_SELECT | DMA_CTL_SKIP,
                600,
                0
            ),
            0
        );
        assert_eq!(read_bytes(&bus, 1), [0]);
    }

    #[test]
    fn dma_write_to_a_read_only_item_sets_the_error_bit() {
        let (bus, _, mem) = machine(|f| f.add_file("f", vec![5; 4]).unwrap());
        let status = dma(
            &bus,
            &mem,
            0x1000,
            (0x20 << 16) | DMA_CTL_SELECT | DMA_CTL_WRITE,
            4,
            0x2000,
        );
        assert_eq!(status, DMA_CTL_ERROR);
        select(&bus, 0x20);
        assert_eq!(read_bytes(&bus, 4), [5; 4]);
    }

    #[test]
    fn dma_without_an_operation_only_selects() {
        let (bus, _, mem) = machine(|f| f.add_item(KEY_NB_CPUS, vec![4, 0]).unwrap());
        let control = (u32::from(KEY_NB_CPUS) << 16) | DMA_CTL_SELECT;
        assert_eq!(dma(&bus, &mem, 0x1000, control, 100, 0x2000), 0);
        assert_eq!(read_bytes(&bus, 2), [4, 0]);
    }

    #[test]
    fn dma_descriptor_outside_ram_does_nothing_and_does_not_panic() {
        let (bus, device, mem) = machine(|_| {});
        bus.write(0x514, &0u32.to_be_bytes());
        bus.write(0x518, &0xfff0_0000u32.to_be_bytes());
        // A descriptor straddling the end of RAM: the control word is in RAM and gets the error bit.
        let at = MEM_SIZE as u64 - 8;
        mem.write_slice(&(DMA_CTL_READ).to_be_bytes(), GuestAddress(at))
            .unwrap();
        bus.write(0x518, &(at as u32).to_be_bytes());
        let mut status = [0u8; 4];
        mem.read_slice(&mut status, GuestAddress(at)).unwrap();
        assert_eq!(u32::from_be_bytes(status), DMA_CTL_ERROR);
        // Address wrapping around 2^64 via the high half.
        bus.write(0x514, &u32::MAX.to_be_bytes());
        bus.write(0x518, &u32::MAX.to_be_bytes());
        assert_eq!(device.lock().state().dma_address_high, 0);
    }

    #[test]
    fn dma_buffers_running_past_ram_set_the_error_bit_without_writing() {
        let (bus, _, mem) = machine(|f| f.add_file("f", vec![7; 64]).unwrap());
        let sel = (0x20 << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
        let end = MEM_SIZE as u64;
        mem.write_slice(&[0xaa; 16], GuestAddress(end - 16))
            .unwrap();
        assert_eq!(
            dma(&bus, &mem, 0x1000, sel, u32::MAX, end - 16),
            DMA_CTL_ERROR
        );
        assert_eq!(dma(&bus, &mem, 0x1000, sel, 32, end - 16), DMA_CTL_ERROR);
        assert_eq!(
            dma(&bus, &mem, 0x1000, sel, 16, u64::MAX - 4),
            DMA_CTL_ERROR
        );
        assert_eq!(dma(&bus, &mem, 0x1000, sel, 16, 1 << 40), DMA_CTL_ERROR);
        let mut tail = [0u8; 16];
        mem.read_slice(&mut tail, GuestAddress(end - 16)).unwrap();
        assert_eq!(tail, [0xaa; 16], "nothing was written");
        // Exactly up to the end of RAM is fine.
        assert_eq!(dma(&bus, &mem, 0x1000, sel, 16, end - 16), 0);
        mem.read_slice(&mut tail, GuestAddress(end - 16)).unwrap();
        assert_eq!(tail, [7; 16]);
    }

    #[test]
    fn dma_zero_fill_of_a_large_buffer_is_complete() {
        let (bus, _, mem) = machine(|f| f.add_file("f", vec![1, 2]).unwrap());
        mem.write_slice(&vec![0xaa; 3 * ZERO_CHUNK], GuestAddress(0x10000))
            .unwrap();
        let len = (2 * ZERO_CHUNK + 100) as u32;
        let control = (0x20 << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
        assert_eq!(dma(&bus, &mem, 0x1000, control, len, 0x10000), 0);
        let mut got = vec![0u8; 3 * ZERO_CHUNK];
        mem.read_slice(&mut got, GuestAddress(0x10000)).unwrap();
        assert_eq!(&got[..2], &[1, 2]);
        assert!(got[2..len as usize].iter().all(|&b| b == 0));
        assert!(got[len as usize..].iter().all(|&b| b == 0xaa));
    }

    #[test]
    fn dma_high_half_is_used_and_consumed() {
        let (bus, device, _) = machine(|_| {});
        bus.write(0x514, &[0x00, 0x00, 0x00, 0x01]);
        assert_eq!(device.lock().state().dma_address_high, 1);
        // 4G + 0x1000 is not RAM here: the transfer fails quietly and the high half is cleared.
        bus.write(0x518, &[0x00, 0x00, 0x10, 0x00]);
        assert_eq!(device.lock().state().dma_address_high, 0);
    }

    #[test]
    fn dma_registers_read_the_qemu_cfg_signature() {
        let (bus, _, _) = machine(|_| {});
        let mut sig = [0u8; 4];
        bus.read(0x514, &mut sig);
        assert_eq!(&sig, b"QEMU");
        bus.read(0x518, &mut sig);
        assert_eq!(&sig, b" CFG");
        let mut b = [0u8];
        bus.read(0x51b, &mut b);
        assert_eq!(b, [b'G']);
        let mut w = [0u8; 2];
        bus.read(0x516, &mut w);
        assert_eq!(&w, b"MU");
    }

    #[test]
    fn odd_widths_and_offsets_are_harmless() {
        let (bus, device, _) = machine(|f| f.add_item(KEY_NB_CPUS, vec![1, 0]).unwrap());
        select(&bus, KEY_NB_CPUS);
        // A word read of the data port does not consume data; the unused ports float.
        let mut w = [0u8; 2];
        bus.read(0x511, &mut w);
        assert_eq!(w, [0xff, 0xff]);
        let mut d = [0u8; 4];
        bus.read(0x512, &mut d);
        assert_eq!(d, [0xff, 0xff, b'Q', b'E']);
        // Byte and dword writes to the selector, writes to the data port and unused ports are ignored.
        bus.write(0x510, &[0x00]);
        bus.write(0x510, &[0, 0, 0, 0]);
        bus.write(0x511, &[0x55]);
        bus.write(0x512, &[1, 2]);
        bus.write(0x514, &[1, 2]);
        bus.write(0x519, &[1]);
        assert_eq!(device.lock().state().selector, KEY_NB_CPUS);
        assert_eq!(read_bytes(&bus, 2), [1, 0]);
        // A byte read at the selector port reads data, as in QEMU.
        select(&bus, KEY_SIGNATURE);
        let mut b = [0u8];
        bus.read(0x510, &mut b);
        assert_eq!(b, [b'Q']);
    }

    #[test]
    fn bulk_reads_match_single_byte_reads() {
        let (bus, device, _) = machine(|f| f.add_file("f", (0..10).collect()).unwrap());
        select(&bus, 0x20);
        let mut buf = [0xeeu8; 6];
        device.read_data_into(&mut buf);
        assert_eq!(buf, [0, 1, 2, 3, 4, 5]);
        device.read_data_into(&mut buf);
        assert_eq!(buf, [6, 7, 8, 9, 0, 0]);
        assert_eq!(read_bytes(&bus, 1), [0]);
    }

    #[test]
    fn state_round_trips_and_clamps_bad_offsets() {
        let (bus, device, _) = machine(|f| f.add_file("f", (0..10).collect()).unwrap());
        select(&bus, 0x20);
        read_bytes(&bus, 3);
        let state = device.lock().state();
        assert_eq!(
            state,
            FwCfgState {
                selector: 0x20,
                offset: 3,
                dma_address_high: 0
            }
        );
        select(&bus, KEY_ID);
        device.lock().restore(&state);
        assert_eq!(read_bytes(&bus, 2), [3, 4]);
        device.lock().restore(&FwCfgState {
            selector: 0x20,
            offset: u32::MAX,
            dma_address_high: 0,
        });
        assert_eq!(device.lock().state().offset, 10);
        assert_eq!(read_bytes(&bus, 1), [0]);
    }

    #[test]
    fn adding_a_file_renumbers_the_selected_one_consistently() {
        let (_, device, _) = machine(|f| f.add_file("b", vec![2]).unwrap());
        let mut f = device.lock();
        f.select(0x20);
        f.add_file("a", vec![1]).unwrap();
        assert_eq!(f.file_selector("a"), Some(0x20));
        assert_eq!(f.file_selector("b"), Some(0x21));
        // Selector 0x20 now names "a"; the cursor follows the selector, as after QEMU's re-sort.
        assert_eq!(f.read_data(), 1);
    }
}
