//! arena-floor: the machine's floor for delivering a frame. It opens
//! `--sockets` loopback TCP connections and, `--rate` times a second for
//! `--secs`, writes `--bytes` bytes to each with one non-blocking `write`
//! from one thread, while another thread drains the receiving ends. What
//! the writing thread spends per write is what the kernel's send and
//! loopback delivery cost, with nothing of a server around them: the
//! floor a game server's write path is measured against
//! (`scripts/sidebyside.sh`). Prints one JSON line.
//!
//! How the receiving ends read matters to the sender, because loopback
//! delivery runs in the sender's system call:
//! - `--receivers poll` (the default): one thread sweeps every socket each
//!   millisecond, so no reader is ever waiting to be woken;
//! - `--receivers wait`: each socket has a task waiting on it in a tokio
//!   runtime, as a browser's or a bot's socket does, so each write also
//!   wakes a waiting reader.
//!
//! With `--input-bytes N` each receiver sends N bytes back for every
//! frame it reads (a player's input), and the writing thread reads each
//! socket once a tick, non-blocking, before writing: a frame out and an
//! input in per player per tick, the least a game server's tick does.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arena-floor", about = "Measures one non-blocking loopback write per socket per tick")]
struct Args {
    /// Loopback connections written to each tick.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    sockets: u32,
    /// Bytes written to each socket each tick.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    bytes: u32,
    /// Ticks a second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    rate: u32,
    /// How long to write.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    secs: u64,
    /// How the receiving ends read: `poll` (a sweep a millisecond) or
    /// `wait` (a task waiting on each socket).
    #[arg(long, value_enum, default_value_t = Receivers::Poll)]
    receivers: Receivers,
    /// Bytes each receiver sends back per frame it reads (0: none).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_024))]
    input_bytes: u32,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Receivers {
    Poll,
    Wait,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (mut senders, mut receivers) = (Vec::new(), Vec::new());
    for _ in 0..args.sockets {
        let receiver = TcpStream::connect(addr)?;
        let (sender, _) = listener.accept()?;
        sender.set_nonblocking(true)?;
        sender.set_nodelay(true)?;
        receiver.set_nonblocking(true)?;
        senders.push(sender);
        receivers.push(receiver);
    }
    let done = Arc::new(AtomicBool::new(false));
    let (mode, answer) = (args.receivers, args.input_bytes as usize);
    let drained = {
        let done = done.clone();
        std::thread::spawn(move || match mode {
            Receivers::Poll => drain(receivers, answer, &done),
            Receivers::Wait => wait_and_drain(receivers, answer, &done),
        })
    };
    let mut inbox = vec![0u8; 64 << 10];
    let mut inputs_read = 0u64;

    let payload = vec![0x5au8; args.bytes as usize];
    let period = Duration::from_secs(1) / args.rate;
    let ticks = args.secs * u64::from(args.rate);
    let (mut busy, mut would_block, mut writes) = (Duration::ZERO, 0u64, 0u64);
    let cpu_before = thread_cpu_secs();
    let started = Instant::now();
    for tick in 0..ticks {
        let writing = Instant::now();
        if answer > 0 {
            // The tick's reads: whatever input each socket has, non-blocking.
            for sender in &mut senders {
                if let Ok(n) = sender.read(&mut inbox) {
                    inputs_read += n as u64;
                }
            }
        }
        for sender in &mut senders {
            match sender.write(&payload) {
                Ok(_) => writes += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => would_block += 1,
                Err(e) => return Err(e),
            }
        }
        busy += writing.elapsed();
        let next = started + period * u32::try_from(tick + 1).unwrap_or(u32::MAX);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_secs().map(|after| after - cpu_before.unwrap_or(after));
    done.store(true, Relaxed);
    let received = drained.join().unwrap_or(0);
    let summary = serde_json::json!({
        "sockets": args.sockets,
        "bytes": args.bytes,
        "rate": args.rate,
        "writes": writes,
        "would_block": would_block,
        "bytes_received": received,
        "receivers": format!("{:?}", args.receivers).to_lowercase(),
        "input_bytes": args.input_bytes,
        "input_bytes_read": inputs_read,
        "busy_percent_of_one_core": (100.0 * busy.as_secs_f64() / wall * 10.0).round() / 10.0,
        "cpu_percent_of_one_core": cpu.map(|cpu| (100.0 * cpu / wall * 10.0).round() / 10.0),
        "micros_per_write": (busy.as_secs_f64() * 1e6 / writes.max(1) as f64 * 100.0).round() / 100.0,
        // The same from the thread's CPU time, as the servers' are measured.
        "cpu_micros_per_write": cpu.map(|cpu| (cpu * 1e6 / writes.max(1) as f64 * 100.0).round() / 100.0),
    });
    println!("{summary}");
    Ok(())
}

/// Reads every receiving end until `done`, a sweep a millisecond; with
/// `answer`, sends that many bytes back on a socket that had something.
fn drain(mut receivers: Vec<TcpStream>, answer: usize, done: &AtomicBool) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let input = vec![0x11u8; answer];
    let mut total = 0u64;
    while !done.load(Relaxed) {
        for receiver in &mut receivers {
            let mut got = false;
            while let Ok(n @ 1..) = receiver.read(&mut buf) {
                total += n as u64;
                got = true;
            }
            if got && answer > 0 {
                let _ = receiver.write(&input);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    total
}

/// Reads every receiving end from a task waiting on it, as a client's
/// socket is read, until `done`; with `answer`, sends that many bytes back
/// after each read.
fn wait_and_drain(receivers: Vec<TcpStream>, answer: usize, done: &Arc<AtomicBool>) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    runtime.block_on(async {
        for receiver in receivers {
            let Ok(socket) = tokio::net::TcpStream::from_std(receiver) else { continue };
            let total = total.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4 << 10];
                let input = vec![0x11u8; answer];
                while socket.readable().await.is_ok() {
                    let mut got = false;
                    while let Ok(n @ 1..) = socket.try_read(&mut buf) {
                        total.fetch_add(n as u64, Relaxed);
                        got = true;
                    }
                    if got && answer > 0 {
                        let _ = socket.try_write(&input);
                    }
                }
            });
        }
        while !done.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    total.load(Relaxed)
}

/// This thread's CPU time so far (user and system), from
/// `/proc/thread-self/stat`; `None` where there is no such file.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
