//! `arena-bots`: headless bot clients that play a server, measure what
//! they saw and report it (`--json` for machines); `--verify-replay`
//! re-runs a recorded round. The abuse tool is `arena-attack`.

// The bots allocate and free a little for every frame (the frame's updates,
// near bodies, the view): jemalloc's thread caches do that cheaper than
// the system allocator.
#[cfg(unix)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use arena_bots::{
    Behaviour, Live, ProcessCpu, Report, RoomPlan, SwarmConfig, flags, process_cpu_seconds, run_swarm,
};
use arena_client_core::conditioner::LinkConditions;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "arena-bots", version, about = "Headless arena bots: play, measure, report")]
struct Args {
    /// The server's WebSocket URL.
    #[arg(long, env = "ARENA_URL", default_value = "ws://127.0.0.1:7777/ws", value_parser = flags::websocket_url)]
    url: String,
    /// Bots to run at once.
    #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    count: u64,
    /// Seconds to play before reporting.
    #[arg(long, short = 'd', default_value_t = 10.0, value_parser = flags::seconds)]
    duration: f64,
    /// How the bots steer.
    #[arg(long, value_enum, default_value_t = Behaviour::Brawler)]
    behaviour: Behaviour,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// PEM certificate to trust for wss:// (a host's self-signed one);
    /// without it, wss:// trusts the public certificate authorities.
    #[arg(long, value_parser = parse_ca_cert)]
    ca_cert: Option<CaCert>,
    /// Link conditioner: round-trip milliseconds added (half each way).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    latency_ms: u32,
    /// Link conditioner: spread of that round trip, ± half each way, ms.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    jitter_ms: u32,
    /// Link conditioner: a stall of this many ms (nothing gets through,
    /// then everything at once) every --stall-every-ms.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=60_000))]
    stall_ms: u32,
    /// Time between the starts of stalls, ms.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(100..=600_000))]
    stall_every_ms: u32,
    /// Every bot joins the room with this code (an invite link's /r/CODE).
    #[arg(long, conflicts_with = "rooms", value_parser = parse_room_code)]
    room: Option<String>,
    /// Spread the bots over this many new private rooms (bot i in room i mod N).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    rooms: Option<u64>,
    /// Resume a dropped connection (the server restarted, or a cluster
    /// node crashed) within this many seconds, at the node it was on or
    /// else at --url, instead of ending the bot's run.
    #[arg(long, value_parser = flags::seconds)]
    reconnect_secs: Option<f64>,
    /// Bot names are this prefix plus a number.
    #[arg(long, default_value = "bot-")]
    name_prefix: String,
    /// Light bots, for load: nobody draws them, so they keep no
    /// interpolation tracks and wake 30 times a second for two inputs
    /// (the report then has no interpolation figures).
    #[arg(long)]
    light: bool,
    /// Threads to run the bots on (default: one per core). With 1 the
    /// bots share one core without handing work between threads.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    threads: Option<u64>,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Instead of playing, re-run a recorded round (a file, or
    /// http://host/api/replays/<id>) with the shared rules and check
    /// every checksum; exits 1 on a mismatch.
    #[arg(long, value_name = "FILE|URL")]
    verify_replay: Option<String>,
}

/// A parsed --ca-cert: the client config that trusts it.
#[derive(Clone)]
struct CaCert(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaCert")
    }
}

fn parse_ca_cert(value: &str) -> Result<CaCert, String> {
    let pem = std::fs::read(value).map_err(|e| format!("cannot read '{value}': {e}"))?;
    arena_bots::tls::trusting(&pem).map(CaCert).map_err(|e| format!("'{value}': {e}"))
}

fn parse_room_code(value: &str) -> Result<String, String> {
    let code = value.rsplit('/').find(|part| !part.is_empty()).unwrap_or(value);
    let valid = !code.is_empty()
        && code.len() <= arena_shared::protocol::MAX_ROOM_CODE_CHARS
        && code.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(code.to_owned())
    } else {
        Err(format!("'{value}' is not a room code or invite link; expected e.g. k3x9q2m7pd"))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Thousands of bots need as many sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if let Some(source) = &args.verify_replay {
        return verify_replay(source, args.json);
    }
    let config = SwarmConfig {
        url: args.url,
        count: args.count as usize,
        duration: Duration::from_secs_f64(args.duration),
        behaviour: args.behaviour,
        name_prefix: args.name_prefix.clone(),
        tls: args.ca_cert.as_ref().map(|ca| ca.0.clone()),
        conditions: LinkConditions {
            latency_ms: args.latency_ms,
            jitter_ms: args.jitter_ms,
            stall_ms: args.stall_ms,
            stall_every_ms: args.stall_every_ms,
        },
        rooms: match (&args.room, args.rooms) {
            (Some(code), _) => RoomPlan::Join(code.clone()),
            (None, Some(n)) => RoomPlan::Spread(n as usize),
            (None, None) => RoomPlan::Quick,
        },
        reconnect: args.reconnect_secs.map(Duration::from_secs_f64),
        light: args.light,
    };
    let Some(runtime) = runtime(args.threads) else { return ExitCode::FAILURE };
    let (cpu_before, started) = (process_cpu_seconds(), std::time::Instant::now());
    let records = runtime.block_on(async {
        let live = Arc::new(Live::default());
        let progress = (!args.quiet).then(|| tokio::spawn(show_progress(live.clone(), config.clone())));
        let records = run_swarm(config.clone(), live).await;
        if let Some(progress) = progress {
            progress.abort();
        }
        records
    });
    let mut report = Report::from_records(&records, &config);
    let wall = started.elapsed().as_secs_f64();
    report.cpu = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| ProcessCpu::over(after - before, wall, &records));
    let printed = print_report(&report, args.json, || report.to_table());
    if !printed || report.is_failure() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `--verify-replay`: the round re-run, or why it could not be.
fn verify_replay(source: &str, json: bool) -> ExitCode {
    let Some(runtime) = runtime(Some(1)) else { return ExitCode::FAILURE };
    match runtime.block_on(arena_bots::verify::verify_replay(source)) {
        Ok(verified) => {
            let text = || {
                format!(
                    "replay verified: {} ticks ({:.1} s), {} inputs, {} bytes, all {} checksums equal\n",
                    verified.ticks, verified.secs, verified.inputs, verified.bytes, verified.checksums
                )
            };
            if print_report(&verified, json, text) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(why) => {
            eprintln!("arena-bots: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `report` as one JSON object or as `text`; `false` if it could not.
fn print_report(report: &impl serde::Serialize, json: bool, text: impl FnOnce() -> String) -> bool {
    if !json {
        print!("{}", text());
        return true;
    }
    match serde_json::to_string(report) {
        Ok(json) => {
            println!("{json}");
            true
        }
        Err(e) => {
            eprintln!("arena-bots: cannot write the report: {e}");
            false
        }
    }
}

fn runtime(threads: Option<u64>) -> Option<tokio::runtime::Runtime> {
    let built = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n as usize).enable_all().build()
        }
        None => tokio::runtime::Runtime::new(),
    };
    match built {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("arena-bots: cannot start the async runtime: {e}");
            None
        }
    }
}

/// One line a second on stderr: elapsed, connected, frames.
async fn show_progress(live: Arc<Live>, config: SwarmConfig) {
    let started = tokio::time::Instant::now();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        every.tick().await;
        let line = format!(
            "[{:>4.0}s/{:.0}s] connected {}/{}  failed {}  frames {}",
            started.elapsed().as_secs_f64(),
            config.duration.as_secs_f64(),
            live.connected.load(Relaxed) - live.finished.load(Relaxed).min(live.connected.load(Relaxed)),
            config.count,
            live.failed.load(Relaxed),
            live.frames.load(Relaxed),
        );
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}
