//! The machine without vCPUs, for tests: the production wiring ([`Platform::build`]) around a fake clock, a
//! recording interrupt sink and recording system requests. A test plays the guest: it reads and writes ports
//! and MMIO exactly as guest code would, steps time, and looks at interrupt lines, serial output, the debug
//! port and the requests the devices made.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use devices::bus::{le_value, put_le_value};
use devices::chardev::{CharBackend, CharFrontend};
use devices::clock::{Clock, FakeClock};
use devices::irq::RecordingGsi;
use devices::legacy::debugcon::CaptureSink;
use devices::net::testing::RecordingNet;
use devices::net::NetBackend;
use devices::system::{RecordingSystem, SystemRequest};

use crate::config::{self, ConfigError, HostFacts};
use crate::machine::{MachineError, MachineOptions, Platform, PlatformEnv};

/// Why a test machine could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The config text was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The machine could not be built.
    #[error(transparent)]
    Machine(#[from] MachineError),
}

/// The most serial output a [`CaptureBackend`] keeps.
const CAPTURE_LIMIT: usize = 1 << 20;

/// An in-memory serial back-end: keeps what the guest sends (up to 1 MiB) and lets the test type input.
#[derive(Default)]
pub struct CaptureBackend {
    output: Mutex<Vec<u8>>,
    frontend: Mutex<Option<Weak<dyn CharFrontend>>>,
}

impl CaptureBackend {
    /// Everything the guest sent so far.
    pub fn output(&self) -> Vec<u8> {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    /// Offers `data` as typed input; returns how many bytes the UART took (its FIFO may be full).
    pub fn type_input(&self, data: &[u8]) -> usize {
        let frontend = self
            .frontend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        frontend.map_or(0, |f| f.receive(data))
    }
}

impl CharBackend for CaptureBackend {
    fn write(&self, data: &[u8]) -> usize {
        let mut out = self.output.lock().unwrap_or_else(|e| e.into_inner());
        let room = CAPTURE_LIMIT.saturating_sub(out.len());
        let n = data.len().min(room);
        out.extend_from_slice(&data[..n]);
        n
    }
    fn attach(&self, frontend: Weak<dyn CharFrontend>) {
        *self.frontend.lock().unwrap_or_else(|e| e.into_inner()) = Some(frontend);
    }
}

/// A whole platform driven by the test.
pub struct TestMachine {
    /// The production platform.
    pub platform: Platform,
    /// Machine time, moved only by [`TestMachine::step`].
    pub clock: Arc<FakeClock>,
    /// GSI levels as the interrupt controllers would see them.
    pub gsi: Arc<RecordingGsi>,
    /// Reset, power-off and crash requests.
    pub system: Arc<RecordingSystem>,
    /// What the firmware debug port received.
    pub debug: CaptureSink,
    /// COM1, COM2, ... as the config lists them.
    pub serial: Vec<Arc<CaptureBackend>>,
    /// The NICs' back-ends made by [`TestMachine::from_config`], in `vif` order (empty when the test gave its
    /// own back-ends).
    pub nets: Vec<Arc<RecordingNet>>,
}

/// Host facts for tests: plenty of memory and vCPUs, real file checks.
fn test_host() -> HostFacts {
    HostFacts {
        memory_mib: 1 << 20,
        max_vcpus: 255,
        files: Box::new(config::HostFiles),
    }
}

impl TestMachine {
    /// Builds the machine an xm config text describes. Every `serial` entry gets a [`CaptureBackend`], every
    /// NIC a [`RecordingNet`] (in [`TestMachine::nets`]).
    pub fn from_config(text: &str, options: &MachineOptions) -> Result<Self, HarnessError> {
        Self::build(text, options, None)
    }

    /// As [`TestMachine::from_config`], with the NICs on the test's own back-ends (one per NIC of the machine,
    /// in `vif` order), such as taps in a private network namespace.
    pub fn with_nic_backends(
        text: &str,
        options: &MachineOptions,
        nics: Vec<Arc<dyn NetBackend>>,
    ) -> Result<Self, HarnessError> {
        Self::build(text, options, Some(nics))
    }

    fn build(
        text: &str,
        options: &MachineOptions,
        nic_backends: Option<Vec<Arc<dyn NetBackend>>>,
    ) -> Result<Self, HarnessError> {
        let config = config::load_source(Path::new("test.hvm"), text, &[], &test_host())?;
        let mut nets = Vec::new();
        let nic_backends = nic_backends.unwrap_or_else(|| {
            nets = crate::machine::machine_nics(&config)
                .map(|_| RecordingNet::new())
                .collect();
            nets.iter()
                .map(|n| n.clone() as Arc<dyn NetBackend>)
                .collect()
        });
        let clock = Arc::new(FakeClock::new());
        let gsi = RecordingGsi::new();
        let system = Arc::new(RecordingSystem::new());
        let debug = CaptureSink::new(1 << 20);
        let serial: Vec<Arc<CaptureBackend>> = config
            .serial
            .iter()
            .map(|_| Arc::new(CaptureBackend::default()))
            .collect();
        let env = PlatformEnv {
            clock: clock.clone(),
            gsi: gsi.clone(),
            system: system.clone(),
            kick: devices::timer::TimerKick::none(),
            rtc_start: 946_684_800, // 2000-01-01 00:00:00 UTC
            debugcon: Box::new(debug.clone()),
            serial: serial
                .iter()
                .map(|s| s.clone() as Arc<dyn CharBackend>)
                .collect(),
            nics: nic_backends,
        };
        let platform = Platform::build(&config, options, env)?;
        Ok(TestMachine {
            platform,
            clock,
            gsi,
            system,
            debug,
            serial,
            nets,
        })
    }

    fn pio_read(&self, port: u16, width: usize) -> u64 {
        let mut data = [0u8; 8];
        self.platform.pio.read(u64::from(port), &mut data[..width]);
        le_value(&data[..width])
    }

    fn pio_write(&self, port: u16, width: usize, value: u64) {
        let mut data = [0u8; 8];
        put_le_value(&mut data[..width], value);
        self.platform.pio.write(u64::from(port), &data[..width]);
    }

    /// `inb`.
    pub fn inb(&self, port: u16) -> u8 {
        self.pio_read(port, 1) as u8
    }
    /// `inw`.
    pub fn inw(&self, port: u16) -> u16 {
        self.pio_read(port, 2) as u16
    }
    /// `inl`.
    pub fn inl(&self, port: u16) -> u32 {
        self.pio_read(port, 4) as u32
    }
    /// `outb`.
    pub fn outb(&self, port: u16, value: u8) {
        self.pio_write(port, 1, value.into())
    }
    /// `outw`.
    pub fn outw(&self, port: u16, value: u16) {
        self.pio_write(port, 2, value.into())
    }
    /// `outl`.
    pub fn outl(&self, port: u16, value: u32) {
        self.pio_write(port, 4, value.into())
    }
    /// `rep insw`/`insd`-style string input: `data.len() / width` reads of the port in one go.
    pub fn ins(&self, port: u16, width: usize, data: &mut [u8]) {
        self.platform
            .pio
            .read_repeated(u64::from(port), width, data);
    }

    /// `rep outsw`/`outsd`-style string output.
    pub fn outs(&self, port: u16, width: usize, data: &[u8]) {
        self.platform
            .pio
            .write_repeated(u64::from(port), width, data);
    }

    /// A `width`-byte MMIO read.
    pub fn mmio_read(&self, addr: u64, width: usize) -> u64 {
        let mut data = [0u8; 8];
        let width = width.min(8);
        self.platform.mmio.read(addr, &mut data[..width]);
        le_value(&data[..width])
    }
    /// A `width`-byte MMIO write.
    pub fn mmio_write(&self, addr: u64, width: usize, value: u64) {
        let mut data = [0u8; 8];
        let width = width.min(8);
        put_le_value(&mut data[..width], value);
        self.platform.mmio.write(addr, &data[..width]);
    }

    /// Reads a dword of PCI config space through 0xCF8/0xCFC, as firmware does.
    pub fn pci_read32(&self, dev: u8, func: u8, reg: u8) -> u32 {
        self.outl(0xcf8, pci_address(dev, func, reg));
        self.inl(0xcfc)
    }
    /// Writes a dword of PCI config space through 0xCF8/0xCFC.
    pub fn pci_write32(&self, dev: u8, func: u8, reg: u8, value: u32) {
        self.outl(0xcf8, pci_address(dev, func, reg));
        self.outl(0xcfc, value)
    }
    /// Writes a byte of PCI config space.
    pub fn pci_write8(&self, dev: u8, func: u8, reg: u8, value: u8) {
        self.outl(0xcf8, pci_address(dev, func, reg & !3));
        self.outb(0xcfc + u16::from(reg & 3), value)
    }

    /// Moves machine time forward by `ns`, running every device timer that comes due on the way, in order.
    pub fn step(&self, ns: u64) {
        let end = self.clock.now_ns().saturating_add(ns);
        loop {
            let now = self.clock.now_ns();
            let next = self
                .platform
                .timed
                .iter()
                .filter_map(|d| d.advance(now))
                .min();
            match next {
                Some(t) if t <= end && t > now => self.clock.set(t),
                _ => break,
            }
        }
        self.clock.set(end);
        for d in &self.platform.timed {
            d.advance(end);
        }
    }

    /// Whether `gsi` is high.
    pub fn irq(&self, gsi: u32) -> bool {
        self.gsi.level(gsi)
    }
    /// How many times `gsi` went high.
    pub fn irq_edges(&self, gsi: u32) -> usize {
        self.gsi.rising_edges(gsi)
    }
    /// The requests devices made since the last call.
    pub fn requests(&self) -> Vec<SystemRequest> {
        self.system.take()
    }
    /// What COM`n+1` sent, as text.
    pub fn serial_text(&self, n: usize) -> String {
        self.serial
            .get(n)
            .map(|s| String::from_utf8_lossy(&s.output()).into_owned())
            .unwrap_or_default()
    }
    /// What the firmware debug port received, as text.
    pub fn debug_text(&self) -> String {
        String::from_utf8_lossy(&self.debug.contents()).into_owned()
    }
}

/// CONFIG_ADDRESS for bus 0, `dev`, `func`, dword register `reg`.
pub fn pci_address(dev: u8, func: u8, reg: u8) -> u32 {
    0x8000_0000 | (u32::from(dev & 0x1f) << 11) | (u32::from(func & 7) << 8) | u32::from(reg & 0xfc)
}
