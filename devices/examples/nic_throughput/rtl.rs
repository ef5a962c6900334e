//! The RTL8139 in C mode, driven as Linux's 8139too drives it (`rtl8139_hw_start`, `rtl8139_start_xmit`,
//! `rtl8139_interrupt`, `rtl8139_poll`/`rtl8139_rx`, `rtl8139_tx_interrupt`), re-expressed from the
//! driver's documented register sequences. Registers through BAR0 (I/O ports, as 8139too built with
//! `CONFIG_8139TOO_PIO` and iPXE use them) on the test bed's port bus, behind the PCI root; ring and
//! transmit buffers in guest memory.

use std::sync::Arc;

use devices::memory::{test_memory, Bytes, GuestAddress, GuestMemory};
use devices::net::rtl8139::regs::{
    cr, int, rcr, tsd, CAPR, CR, CR9346, HLTCLK, IDR0, IMR, ISR, MAR0, MPC, RBSTART, RCR, TCR,
    TSAD0, TSD0,
};
use devices::net::rtl8139::Rtl8139;
use devices::net::{NetBackend, NetReceiver};
use devices::pci::testing::PciTestbed;
use devices::timer::TimerKick;

use crate::common::{Guest, Io, NIC_MAC};

const SLOT: u8 = 4;
const IO_BASE: u16 = 0xc000;
/// 8139too's 32 KiB ring (its allocation has 16 + 2048 bytes of slack past the end for RCR.WRAP).
const RX_BUF_LEN: u32 = 32 << 10;
const RX_RING: u64 = 0x10_0000;
const TX_BUFS: u64 = 0x20_0000;
const TX_BUF_SIZE: u64 = 1536;
/// 8139too's RxConfig: 32 KiB ring, WRAP, FIFO threshold 7, DMA burst 7; broadcast and own address.
const RX_CONFIG: u32 = (2 << 11) | rcr::WRAP | (7 << 13) | (7 << 8) | rcr::AB | rcr::APM;
/// `rtl8139_intr_mask`.
const INTR_MASK: u16 = 0x8000 | 0x4000 | 0x20 | 0x10 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01;
/// `RxAckBits`: RxFIFOOver, RxOverflow, RxOK.
const RX_ACK_BITS: u16 = 0x40 | 0x10 | 0x01;
/// `rtl8139_norx_intr_mask`: the mask while NAPI polls.
const NORX_INTR_MASK: u16 = INTR_MASK & !RX_ACK_BITS;
/// NAPI's budget per poll.
const NAPI_BUDGET: usize = 64;

/// An RTL8139 in slot 4 of a PCI test bed (I/O BAR at 0xC000, INTA# through the PIIX3), opened by 8139too.
pub struct Too {
    _tb: PciTestbed,
    io: Io,
    nic: Arc<Rtl8139>,
    mem: GuestMemory,
    cur_rx: u32,
    cur_tx: usize,
    dirty_tx: usize,
    rx_copy: Vec<u8>,
}

impl Too {
    /// Builds the device on `backend` and runs the driver's probe and open.
    pub fn open(backend: Arc<dyn NetBackend>) -> Too {
        let tb = PciTestbed::new();
        let mem = test_memory(16 << 20);
        let nic = Rtl8139::new(
            NIC_MAC,
            backend,
            mem.clone(),
            tb.clock.clone(),
            tb.intx_line(SLOT, 1),
            TimerKick::none(),
        )
        .unwrap_or_else(|e| panic!("cannot build the RTL8139: {e}"));
        tb.add(SLOT, 0, nic.pci_function());
        tb.route_pirqs_like_seabios();
        tb.cfg_write(SLOT, 0, 0x10, 4, u32::from(IO_BASE) | 1);
        // pci_enable_device (I/O decoding) and pci_set_master.
        tb.cfg_write(SLOT, 0, 0x04, 2, 0x0005);
        let io = Io {
            bus: tb.pio.clone(),
            base: u64::from(IO_BASE),
        };
        // rtl8139_init_board: clock running, chip reset.
        io.outb(HLTCLK, b'R');
        io.outb(CR, cr::RST);
        let mut spins = 0;
        while io.inb(CR) & cr::RST != 0 {
            spins += 1;
            assert!(spins < 1000, "RTL8139 reset did not complete");
        }
        // rtl8139_hw_start (and __set_rx_mode without multicast).
        io.outb(CR9346, 0xc0);
        io.outl(
            IDR0,
            u32::from_le_bytes([NIC_MAC[0], NIC_MAC[1], NIC_MAC[2], NIC_MAC[3]]),
        );
        io.inl(IDR0);
        io.outl(
            IDR0 + 4,
            u32::from(u16::from_le_bytes([NIC_MAC[4], NIC_MAC[5]])),
        );
        io.inl(IDR0 + 4);
        io.outl(RBSTART, RX_RING as u32);
        io.inl(RBSTART);
        io.outb(CR, cr::RE | cr::TE);
        io.outl(RCR, RX_CONFIG);
        io.outl(TCR, (3 << 24) | (6 << 8) | (8 << 4));
        io.outb(CR9346, 0);
        for i in 0..4u8 {
            io.outl(TSAD0 + 4 * i, (TX_BUFS + u64::from(i) * TX_BUF_SIZE) as u32);
            io.inl(TSAD0 + 4 * i);
        }
        io.outl(MPC, 0);
        io.outl(MAR0, 0);
        io.outl(MAR0 + 4, 0);
        assert_eq!(io.inb(CR) & (cr::RE | cr::TE), cr::RE | cr::TE);
        io.outw(IMR, INTR_MASK);
        Too {
            _tb: tb,
            io,
            nic,
            mem,
            cur_rx: 0,
            cur_tx: 0,
            dirty_tx: 0,
            rx_copy: vec![0; 2048],
        }
    }

    /// `rtl8139_rx`: the records up to CBR, each acknowledged as `rtl8139_isr_ack` does.
    fn rx(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        let io = &self.io;
        let mut received = 0;
        while received < NAPI_BUDGET && io.inb(CR) & cr::BUFE == 0 {
            let ring_offset = self.cur_rx % RX_BUF_LEN;
            let addr = RX_RING + u64::from(ring_offset);
            let rx_status: u32 = self
                .mem
                .read_obj(GuestAddress(addr))
                .unwrap_or_else(|e| panic!("ring read: {e}"));
            let rx_size = rx_status >> 16;
            assert!(
                rx_status & 1 != 0 && rx_size as usize == len.max(60) + 4,
                "bad record {rx_status:#010x} at {ring_offset:#x} for a {len}-byte frame"
            );
            if let Some(expect) = compare {
                // The driver's copy into its skb (only when checking: it is guest work).
                let n = rx_size as usize;
                self.mem
                    .read_slice(&mut self.rx_copy[..n], GuestAddress(addr + 4))
                    .unwrap_or_else(|e| panic!("ring read: {e}"));
                let (data, fcs) = self.rx_copy[..n].split_at(n - 4);
                assert_eq!(&data[..expect.len()], expect, "received frame content");
                assert_eq!(fcs, crc32fast::hash(data).to_le_bytes(), "received FCS");
            }
            received += 1;
            self.cur_rx = (self.cur_rx + rx_size + 4 + 3) & !3;
            io.outw(CAPR, self.cur_rx.wrapping_sub(16) as u16);
            // rtl8139_isr_ack.
            if io.inw(ISR) & RX_ACK_BITS != 0 {
                io.outw(ISR, RX_ACK_BITS);
                io.inw(ISR);
            }
        }
        received
    }

    /// `rtl8139_tx_interrupt`: reaps completed descriptors.
    fn tx_interrupt(&mut self) {
        while self.cur_tx > self.dirty_tx {
            let entry = (self.dirty_tx % 4) as u8;
            let status = self.io.inl(TSD0 + 4 * entry);
            if status & (tsd::TOK | tsd::TUN | tsd::TABT) == 0 {
                break;
            }
            assert_eq!(status & tsd::TABT, 0, "descriptor {entry} aborted");
            self.dirty_tx += 1;
        }
    }

    /// `rtl8139_interrupt`, and the NAPI poll it schedules for receive events.
    fn interrupt(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        let status = self.io.inw(ISR);
        let ackstat = status & !(RX_ACK_BITS | int::TER);
        if ackstat != 0 {
            self.io.outw(ISR, ackstat);
        }
        let mut received = 0;
        if status & RX_ACK_BITS != 0 {
            self.io.outw(IMR, NORX_INTR_MASK);
            self.io.inw(IMR);
            // rtl8139_poll: rtl8139_rx, then napi_complete_done and the full mask back.
            received = self.rx(len, compare);
            self.io.outw(IMR, INTR_MASK);
            self.io.inw(IMR);
        }
        if status & (int::TOK | int::TER) != 0 {
            self.tx_interrupt();
            if status & int::TER != 0 {
                self.io.outw(ISR, int::TER);
            }
        }
        received
    }
}

impl Guest for Too {
    fn receiver(&self) -> Arc<dyn NetReceiver> {
        self.nic.clone()
    }

    fn rx_burst(&self, _len: usize) -> usize {
        // 16 full-sized records (16 × 1524 bytes) leave more than a frame's room in the 32 KiB ring.
        16
    }

    fn prepare_tx(&mut self, frame: &[u8]) {
        let mut padded = frame.to_vec();
        padded.resize(frame.len().max(60), 0);
        for i in 0..4 {
            self.mem
                .write_slice(&padded, GuestAddress(TX_BUFS + i * TX_BUF_SIZE))
                .unwrap_or_else(|e| panic!("transmit buffer: {e}"));
        }
    }

    fn transmit(&mut self, frame: &[u8]) {
        // rtl8139_start_xmit: the frame is already in the entry's buffer (prepare_tx).
        assert!(self.cur_tx - self.dirty_tx < 4, "transmit queue stopped");
        let entry = (self.cur_tx % 4) as u8;
        let len = frame.len().max(60) as u32;
        let tx_flag = (256u32 << 11) & 0x003f_0000;
        // RTL_W32_F: the write, then a read to flush it.
        self.io.outl(TSD0 + 4 * entry, tx_flag | len);
        self.io.inl(TSD0 + 4 * entry);
        self.cur_tx += 1;
        // The TOK interrupt arrives as start_xmit releases its lock.
        self.interrupt(0, None);
        assert_eq!(self.cur_tx, self.dirty_tx, "transmit not completed");
    }

    fn service_rx(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        self.interrupt(len, compare)
    }

    fn device_counts(&self) -> (u64, u64) {
        let c = self.nic.counters();
        (c.rx_frames, c.tx_frames)
    }
}
