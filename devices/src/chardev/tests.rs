//! Tests of the real back-ends, each behind a real UART and driven by a real `EventManager` loop.
//!
//! Every wait is bounded: loops give up after [`LIMIT`] and fail the test instead of hanging.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_manager::{EventManager, SubscriberOps};

use super::*;
use crate::bus::Bus;
use crate::clock::FakeClock;
use crate::irq::RecordingIrq;
use crate::timer::TimerKick;
use crate::uart::{regs, Serial, UART_MAX_WIDTH, UART_PORTS};

const LIMIT: Duration = Duration::from_secs(10);
const COM1: u64 = 0x3f8;
const LSR: u64 = COM1 + 5;

struct Machine {
    bus: Bus,
    irq: Arc<RecordingIrq>,
    em: EventManager<CharSubscriber>,
}

impl Machine {
    fn new(opened: OpenedChar) -> Self {
        let irq = RecordingIrq::new();
        let serial = Serial::new(
            opened.backend,
            irq.clone(),
            Arc::new(FakeClock::new()),
            TimerKick::none(),
        );
        let bus = Bus::new("pio");
        bus.insert(COM1, UART_PORTS, UART_MAX_WIDTH, serial)
            .unwrap();
        let mut em = EventManager::new().unwrap();
        if let Some(sub) = opened.subscriber {
            em.add_subscriber(sub);
        }
        let m = Machine { bus, irq, em };
        // As Linux's driver leaves it: FIFOs on (trigger 1), RX interrupt enabled, OUT2 set.
        m.outb(COM1 + 2, 0x07);
        m.outb(COM1 + 1, regs::IER_ERBFI);
        m.outb(COM1 + 4, regs::MCR_OUT2 | regs::MCR_DTR | regs::MCR_RTS);
        m
    }
    fn inb(&self, port: u64) -> u8 {
        let mut b = [0u8; 1];
        self.bus.read(port, &mut b);
        b[0]
    }
    fn outb(&self, port: u64, v: u8) {
        self.bus.write(port, &[v]);
    }
    fn thre(&self) -> bool {
        self.inb(LSR) & regs::LSR_THRE != 0
    }
    /// One event-loop iteration of at most 20 ms.
    fn turn(&mut self) -> usize {
        self.em.run_with_timeout(20).unwrap()
    }
    /// Runs the loop until `done` holds; panics after [`LIMIT`].
    fn pump_until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
            self.turn();
        }
    }
    /// Writes `data` as a polling driver does: a byte whenever THRE is set, running the loop otherwise.
    fn transmit(&mut self, data: &[u8]) {
        for &b in data {
            self.pump_until("THRE", |m| m.thre());
            self.outb(COM1, b);
        }
    }
    /// Reads whatever the guest has received, running the loop until `n` bytes have come.
    fn receive(&mut self, n: usize) -> Vec<u8> {
        let mut got = Vec::new();
        self.pump_until("input", |m| {
            while m.inb(LSR) & regs::LSR_DR != 0 {
                got.push(m.inb(COM1));
            }
            got.len() >= n
        });
        got
    }
}

fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("devmodel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Reads from `r` until `n` bytes arrived (bounded by the stream's read timeout and [`LIMIT`]).
fn read_exactly(r: &mut impl Read, n: usize) -> Vec<u8> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        assert!(
            start.elapsed() < LIMIT,
            "timed out after {} bytes",
            out.len()
        );
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn subscriber_is_send() {
    fn is_send<T: Send>() {}
    is_send::<CharSubscriber>();
}

#[test]
fn null_and_file_backends() {
    let opened = open(&CharSpec::Null).unwrap();
    assert!(opened.subscriber.is_none());
    assert_eq!(opened.backend.write(b"gone"), 4);

    let path = temp_path("file.log");
    std::fs::write(&path, b"old;").unwrap();
    let mut m = Machine::new(open(&CharSpec::File(path.clone())).unwrap());
    m.transmit(b"guest says hi\n");
    assert_eq!(std::fs::read(&path).unwrap(), b"old;guest says hi\n");
    let _ = std::fs::remove_file(&path);

    let err = open(&CharSpec::File("/nonexistent-dir/x".into()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent-dir/x"), "{err}");
}

/// Opens the pty slave as a user's `cat /dev/pts/N` would, with a read timeout through poll.
fn open_slave(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

#[test]
fn pty_keeps_output_written_before_anyone_attaches() {
    let opened = open(&CharSpec::Pty).unwrap();
    let path = opened.pty_path.clone().unwrap();
    assert!(path.starts_with("/dev/pts"), "{}", path.display());
    let mut m = Machine::new(opened);
    // Nobody has the slave open: a short banner fits the kernel's buffer.
    let banner = pattern(3000);
    m.transmit(&banner);
    for _ in 0..5 {
        m.turn();
    }
    let mut slave = open_slave(&path);
    assert_eq!(read_exactly(&mut slave, banner.len()), banner);

    // Input typed into the terminal reaches the receiver through the event loop and raises IRQ 4.
    slave.write_all(b"typed").unwrap();
    assert_eq!(m.receive(5), b"typed");
    assert!(m.irq.rising_edges() >= 1);
}

#[test]
fn pty_backpressure_holds_the_guest_instead_of_losing_output() {
    let opened = open(&CharSpec::Pty).unwrap();
    let path = opened.pty_path.clone().unwrap();
    let mut m = Machine::new(opened);
    // Far more than the kernel and our buffer hold: the guest must stall, not lose bytes.
    let total = pattern(3 * OUTPUT_BUFFER);
    let mut sent = 0;
    let start = Instant::now();
    while sent < total.len() {
        if m.thre() {
            m.outb(COM1, total[sent]);
            sent += 1;
        } else {
            break;
        }
        assert!(start.elapsed() < LIMIT);
    }
    assert!(sent < total.len(), "THRE stayed set although nobody reads");
    // No busy loop while stalled: once it has registered for EPOLLOUT, the loop has nothing to do.
    m.turn();
    for _ in 0..5 {
        assert_eq!(m.turn(), 0, "the event loop spins while nobody reads");
    }
    assert!(!m.thre());

    // A user attaches and reads everything, in order, while the guest keeps writing.
    let reader = std::thread::spawn({
        let path = path.clone();
        let n = total.len();
        move || read_exactly(&mut open_slave(&path), n)
    });
    let rest = total[sent..].to_vec();
    m.transmit(&rest);
    // The tail still queued in the back-end drains as the event loop runs.
    m.pump_until("the reader", |_| reader.is_finished());
    let got = reader.join().unwrap();
    assert_eq!(got.len(), total.len());
    assert!(got == total, "output corrupted or reordered");
}

#[test]
fn input_is_flow_controlled_by_the_fifo() {
    let opened = open(&CharSpec::Pty).unwrap();
    let path = opened.pty_path.clone().unwrap();
    let mut m = Machine::new(opened);
    let mut slave = open_slave(&path);
    let typed = pattern(100);
    slave.write_all(&typed).unwrap();
    // The loop fills the 16-byte FIFO, then stops polling the pty: no overrun, no spinning.
    m.pump_until("the loop to go idle", |m| {
        m.inb(LSR) & regs::LSR_DR != 0 && m.turn() == 0
    });
    assert_eq!(m.turn(), 0, "the pty is not polled while the FIFO is full");
    let mut first = Vec::new();
    while m.inb(LSR) & regs::LSR_DR != 0 {
        first.push(m.inb(COM1));
    }
    assert_eq!(first, typed[..16], "exactly one FIFO's worth was taken");
    assert_eq!(m.inb(LSR) & regs::LSR_OE, 0);
    let mut rest = m.receive(84);
    first.append(&mut rest);
    assert_eq!(first, typed);
}

#[test]
fn unix_server_nowait_accepts_clients_later_and_replaces_departed_ones() {
    let path = temp_path("nowait.sock");
    let spec: CharSpec = format!("unix:{},server,nowait", path.display())
        .parse()
        .unwrap();
    let mut m = Machine::new(open(&spec).unwrap());
    // No client: output is dropped and the guest is not held.
    m.transmit(b"nobody hears this");
    assert!(m.thre());

    let mut client = UnixStream::connect(&path).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    m.turn(); // accept
    m.transmit(b"hello client");
    assert_eq!(read_exactly(&mut client, 12), b"hello client");
    client.write_all(b"from client").unwrap();
    assert_eq!(m.receive(11), b"from client");

    // The client leaves; a new one takes its place.
    drop(client);
    for _ in 0..3 {
        m.turn();
    }
    let mut second = UnixStream::connect(&path).unwrap();
    second.set_read_timeout(Some(LIMIT)).unwrap();
    second.write_all(b"again").unwrap();
    assert_eq!(m.receive(5), b"again");
    m.transmit(b"welcome back");
    assert_eq!(read_exactly(&mut second, 12), b"welcome back");
    drop(m);
    assert!(
        !path.exists(),
        "the socket file is removed with the back-end"
    );
}

#[test]
fn unix_server_wait_blocks_until_the_first_client() {
    let path = temp_path("wait.sock");
    let spec: CharSpec = format!("unix:{},server", path.display()).parse().unwrap();
    let client = std::thread::spawn({
        let path = path.clone();
        move || {
            let start = Instant::now();
            loop {
                match UnixStream::connect(&path) {
                    Ok(s) => return s,
                    Err(_) if start.elapsed() < LIMIT => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("connect: {e}"),
                }
            }
        }
    });
    let opened = open(&spec).unwrap();
    let mut client = client.join().unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut m = Machine::new(opened);
    m.transmit(b"first words");
    assert_eq!(read_exactly(&mut client, 11), b"first words");
}

#[test]
fn tcp_server_on_an_ephemeral_port_both_directions() {
    let opened = open(&"tcp:127.0.0.1:1,server,nowait".parse().unwrap());
    // Port 1 is privileged or taken; binding must fail with a clear error, not panic.
    if let Err(e) = &opened {
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }
    let opened = open(&CharSpec::Tcp {
        host: "127.0.0.1".into(),
        port: 0,
        server: true,
        wait: false,
    })
    .unwrap();
    let addr = opened.local_addr.unwrap();
    let mut m = Machine::new(opened);
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    client.write_all(b"ping").unwrap();
    assert_eq!(m.receive(4), b"ping");
    m.transmit(b"pong");
    assert_eq!(read_exactly(&mut client, 4), b"pong");
}

#[test]
fn tcp_and_unix_clients_connect_or_fail_clearly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let opened = open(&format!("tcp:127.0.0.1:{port}").parse().unwrap()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut m = Machine::new(opened);
    m.transmit(b"out");
    assert_eq!(read_exactly(&mut peer, 3), b"out");
    peer.write_all(b"in").unwrap();
    assert_eq!(m.receive(2), b"in");

    let missing = temp_path("missing.sock");
    let err = open(&CharSpec::Unix {
        path: missing.clone(),
        server: false,
        wait: false,
    })
    .err()
    .unwrap();
    assert!(matches!(err, CharError::Socket { .. }));
    assert!(err.to_string().contains(&missing.display().to_string()));
}
