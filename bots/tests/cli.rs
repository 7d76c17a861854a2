#![cfg(not(target_arch = "wasm32"))]
//! Runs the built `arena-bots` binary against a real in-process server.

use std::net::SocketAddr;
use std::process::Output;

use arena_server::ServerConfig;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_arena-bots");

async fn server(max_players: u16) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // One room: bots past its size are refused rather than given another.
    let config = ServerConfig::default().with(|c| {
        c.game.max_players = max_players;
        c.game.max_rooms = 1;
    });
    tokio::spawn(arena_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn bots(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || std::process::Command::new(BIN).args(&args).output())
        .await
        .expect("join")
        .expect("arena-bots runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_has_every_field_and_exit_code_zero() {
    let (addr, _stop) = server(64).await;
    let url = format!("ws://{addr}/ws");
    let out = bots(&["--url", &url, "--count", "5", "--duration", "2", "--json"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "should exit 0: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout should be one JSON object");
    for field in ["connected", "failed", "protocol_errors", "frames_per_sec", "tick_gaps"] {
        assert!(report[field].as_f64().is_some_and(|n| n >= 0.0), "report has {field} as a count: {report}");
    }
    let rtt = |field: &str| report["rtt_ms"][field].as_f64().unwrap_or(-1.0);
    assert!(
        (0.0..1_000.0).contains(&rtt("p50")) && rtt("p50") <= rtt("p95") && rtt("p95") <= rtt("p99"),
        "rtt_ms has its percentiles, in order, on loopback: {report}"
    );
    let fps = report["frames_per_sec"].as_f64().unwrap_or(0.0);
    assert!((20.0..=31.0).contains(&fps), "each bot sees about 30 frames a second: {fps}");
    let silence = report["reconnects"]["longest_silence_ms"].as_f64().unwrap_or(-1.0);
    assert!((20.0..2_000.0).contains(&silence), "the longest wait for a frame, at 30 a second: {silence}");
    assert_eq!(report["connected"], 5);
    assert_eq!(report["failed"], 0);
    assert!(report["frames_per_sec"].as_f64().unwrap_or(0.0) > 10.0, "bots should receive frames: {report}");
    assert!(report["down_bytes_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["up_bytes_per_sec"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("connected"), "progress should show on stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_bots_make_the_exit_code_nonzero() {
    let (addr, _stop) = server(2).await;
    let url = format!("ws://{addr}/ws");
    let out = bots(&["--url", &url, "--count", "4", "--duration", "1", "--json", "--quiet"]).await;
    assert!(!out.status.success(), "bots that failed to join should fail the run");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report even on failure");
    assert_eq!(report["connected"], 2);
    assert_eq!(report["failed"], 2);
    assert_eq!(report["rejected"], 2);
    assert!(report["errors"][0].as_str().unwrap_or("").contains("full"), "should say why: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_is_the_default_output() {
    let (addr, _stop) = server(8).await;
    let url = format!("ws://{addr}/ws");
    let out = bots(&["--url", &url, "-n", "2", "-d", "1", "--behaviour", "idle", "-q"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("rtt p50/p95/p99") && stdout.contains("frames/s per bot"), "{stdout}");
}

#[test]
fn unreachable_server_and_bad_flags_are_explained() {
    let out = std::process::Command::new(BIN)
        .args(["--url", "ws://127.0.0.1:1/ws", "-n", "1", "-d", "1", "-q"])
        .output()
        .expect("runs");
    assert!(!out.status.success(), "no server should be a failure");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot connect"));
    for (args, expect) in [
        (&["--url", "http://x"][..], "not a WebSocket URL"),
        (&["--count", "0"], "count"),
        (&["--duration=-3"], "not a duration"),
        (&["--behaviour", "dance"], "behaviour"),
        (&["--ca-cert", "/no/such.pem"], "cannot read '/no/such.pem'"),
        (&["--ca-cert", "Cargo.toml"], "no certificate found"),
        (&["--attack", "nuke"], "attack"),
        (&["--sources", "251"], "sources"),
    ] {
        let out = std::process::Command::new(BIN).args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expect),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_conditioner_adds_its_round_trip_and_keeps_prediction_exact() {
    let (addr, _stop) = server(8).await;
    let url = format!("ws://{addr}/ws");
    let args =
        ["--url", &url, "-n", "1", "-d", "3", "--behaviour", "circle", "--json", "-q", "--latency-ms", "150"];
    let out = bots(&args).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(out.status.success(), "{report}");
    let rtt = report["rtt_ms"]["p50"].as_f64().unwrap_or(0.0);
    assert!(rtt >= 150.0, "150 ms of added round trip should show in the RTT: {rtt}");
    assert_eq!(report["conditions"]["latency_ms"], 150);
    assert_eq!(
        report["corrections"]["corrected"], 0,
        "alone, prediction stays exact under latency: {report}"
    );
    assert!(report["interp_delay_ms"].as_f64().unwrap_or(0.0) > 0.0, "the bots report their delay: {report}");
    let underruns = report["interp_underrun_rate"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&underruns), "a rate: {report}");
}
