//! `arena-attack KIND`: one attack against a server you run, a line (or
//! `--json`) of what the server did; exits 1 unless the server ended
//! every attacker (or, for the counting attacks, every attacker ran).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use arena_attack::{AttackConfig, AttackKind, run_attack};
use arena_bots::flags;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "arena-attack",
    version,
    about = "Attack your own arena-server (only a server you run, on loopback)"
)]
struct Args {
    /// The attack.
    #[arg(value_enum)]
    kind: AttackKind,
    /// The server's WebSocket URL.
    #[arg(long, env = "ARENA_URL", default_value = "ws://127.0.0.1:7777/ws", value_parser = flags::websocket_url)]
    url: String,
    /// Attackers (join cycles for reset and churn).
    #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    count: u64,
    /// Seconds each attacker keeps going before giving up on being closed.
    #[arg(long, short = 'd', default_value_t = 10.0, value_parser = flags::seconds)]
    duration: f64,
    /// Attackers running at once (default: all of them).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: Option<u64>,
    /// Spread attackers over this many source addresses, from
    /// --first-source up (loopback only), so per-address caps do not hide
    /// the total cap.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=250))]
    sources: u8,
    /// The first source address's last byte: 127.0.0.N.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=254))]
    first_source: u8,
    /// Print the report as one JSON object instead of a line.
    #[arg(long)]
    json: bool,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Thousands of attackers need as many sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let config = AttackConfig {
        kind: args.kind,
        url: args.url.clone(),
        count: args.count as usize,
        concurrency: args.concurrency.unwrap_or(args.count) as usize,
        duration: Duration::from_secs_f64(args.duration),
        sources: (0..args.sources)
            .map_while(|i| args.first_source.checked_add(i))
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("arena-attack: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.quiet {
        eprintln!(
            "attacking {} with {} × {:?} for up to {}s",
            config.url, config.count, args.kind, args.duration
        );
    }
    let report = runtime.block_on(run_attack(config));
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("arena-attack: cannot write the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", report.to_line());
        for error in &report.errors {
            println!("  error: {error}");
        }
    }
    if report.is_defended() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
