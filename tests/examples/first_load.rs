//! How long a first visit takes in headless Chromium (Debian's, software
//! WebGL): from navigation to the page's HTML, to the game started
//! (`data-load="ready"`), to the join screen (`data-state="landing"`, at
//! `/`), and to playing (`data-state="connected"`, at `/?play`). Each run
//! is a new browser with an empty profile, so nothing is cached; the median
//! of the runs is printed, with each run's figures.
//!
//!   cargo run --release -p arena-tests --example first_load -- URL [RUNS]
//!
//! `scripts/first-load.sh` starts a release server on the built client and
//! runs it.

use std::time::Duration;

use arena_tests::browser::Browser;
use serde_json::Value;

/// Notes, by the page's own clock (ms since navigation), the first time
/// `<body>` carries each `data-load` and `data-state` value.
const WATCH: &str = r#"
window.__marks = {};
const note = () => {
  const body = document.body;
  if (!body) return;
  for (const [key, value] of [["load", body.dataset.load], ["state", body.dataset.state]]) {
    const mark = key + ":" + value;
    if (value && !(mark in window.__marks)) window.__marks[mark] = performance.now();
  }
};
new MutationObserver(note).observe(document, { subtree: true, attributes: true, childList: true });
document.addEventListener("DOMContentLoaded", () => { window.__marks.html = performance.now(); note(); });
"#;

/// Loads `url` once in a fresh browser until `done` is marked; the marks.
async fn visit(url: &str, done: &str) -> anyhow::Result<Value> {
    let mut browser = Browser::launch().await?;
    let page = browser.open_watched(url, WATCH).await?;
    let finished = format!("!!(window.__marks && window.__marks['{done}'])");
    browser.wait_for(&page, &finished, Duration::from_secs(120)).await?;
    let marks = browser.eval(&page, "JSON.stringify(window.__marks)").await?;
    browser.close().await;
    Ok(serde_json::from_str(marks.as_str().unwrap_or("{}"))?)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().ok_or_else(|| anyhow::anyhow!("usage: first_load URL [RUNS]"))?;
    let base = base.trim_end_matches('/').to_owned();
    let runs: usize = match args.next() {
        Some(runs) => runs.parse().map_err(|_| anyhow::anyhow!("RUNS must be a number, not {runs}"))?,
        None => 5,
    };
    let milestones = [
        ("html", "the page's HTML parsed"),
        ("load:ready", "the game started (wasm downloaded and instantiated)"),
        ("state:landing", "the join screen"),
        ("state:connected", "playing (?play skips the join screen)"),
    ];
    let mut seen: Vec<Vec<f64>> = vec![Vec::new(); milestones.len()];
    for run in 1..=runs {
        // The join screen comes before the game has started: wait for both.
        let landing = visit(&format!("{base}/"), "load:ready").await?;
        let playing = visit(&format!("{base}/?name=probe&play"), "state:connected").await?;
        let mut line = format!("run {run}/{runs}:");
        for (i, (mark, _)) in milestones.iter().enumerate() {
            let from = if *mark == "state:connected" { &playing } else { &landing };
            if let Some(ms) = from[*mark].as_f64() {
                seen[i].push(ms);
                line.push_str(&format!(" {mark} {ms:.0} ms"));
            }
        }
        eprintln!("{line}");
    }
    println!("median of {runs} first visits to {base} (ms after navigation):");
    for (i, (mark, what)) in milestones.iter().enumerate() {
        println!("  {:>6.0}  {what} ({mark})", median(seen[i].clone()));
    }
    Ok(())
}
