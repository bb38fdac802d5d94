//! `bursar-bench`: starts a Bursar server on 127.0.0.1, creates users with credits, drives a
//! request mix at a fixed concurrency for a fixed time, prints throughput and latency, and then
//! checks that the ledger agrees with every acknowledged response.
//!
//! cargo run --release -p bursar-bench -- --backend sqlite --profile spend --concurrency 256 --seconds 10

mod load;
mod pages;
mod report;
mod server;
mod setup;
mod writer_stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Spends of 1 on random accounts.
    Spend,
    /// Every client spends on one account.
    Hot,
    /// Hold 5, then capture 1–5, on random accounts.
    HoldCapture,
    /// Balance reads.
    Balance,
    /// An AI service: 70% spends, 15% hold+capture, 15% balance reads.
    Mixed,
    /// The web pages' latency on a large database: seeds `--users` users and `--transfers`
    /// transfers through the API (a few heavy users with long histories), signs in on the web
    /// form, then requests every member page at `--page-clients` clients.
    Pages,
}

#[derive(Debug, Clone, Copy, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendArg {
    Sqlite,
    Postgres,
}

#[derive(Debug, Parser)]
#[command(about = "Load benchmark for Bursar (loopback only, bounded in time and count)")]
pub struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: BackendArg,
    #[arg(long, value_enum, default_value = "spend")]
    pub profile: Profile,
    /// Concurrent clients.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// How long to drive load, in seconds (at most 300).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Users to create.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Credits each user starts with.
    #[arg(long, default_value_t = 1_000_000)]
    pub credits: i64,
    /// How many of the users hold an enabled auto top-up rule (a sandbox card that always
    /// pays), so the writer's threshold check and the top-ups it triggers are part of the load.
    #[arg(long, default_value_t = 0)]
    pub topup_rules: usize,
    /// Their threshold is this many credits below what they start with (the target is what
    /// they start with): smaller means more top-ups during the run.
    #[arg(long, default_value_t = 200)]
    pub topup_gap: i64,
    /// How many users (the first ones) buy a pack of `--purchased-credits` through the sandbox
    /// before the load, so their spends burn a purchase grant, as a topped-up user's do: a build
    /// without auto top-up can then be given the same kind of credits to spend.
    #[arg(long, default_value_t = 0)]
    pub purchased_users: usize,
    #[arg(long, default_value_t = 100_000)]
    pub purchased_credits: i64,
    /// The bursar binary to start (build it with `cargo build --release` first).
    #[arg(long, default_value = "target/release/bursar")]
    pub bursar: PathBuf,
    /// Set BURSAR_SQLITE_SYNCHRONOUS=normal on the server (not durable against power loss).
    #[arg(long)]
    pub sqlite_normal: bool,
    /// Show the server's own log lines (warnings and errors) on this terminal.
    #[arg(long)]
    pub server_logs: bool,
    /// `pages`: transfers to seed in all (each user's grant counts as one).
    #[arg(long, default_value_t = 1_000_000)]
    pub transfers: usize,
    /// `pages`: users with long histories…
    #[arg(long, default_value_t = 10)]
    pub heavy_users: usize,
    /// …of this many transfers each.
    #[arg(long, default_value_t = 10_000)]
    pub heavy_transfers: usize,
    /// `pages`: ordinary users who sign in on the web form and whose pages are requested.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// `pages`: clients requesting pages at once (modest, so latency is not queueing).
    #[arg(long, default_value_t = 8)]
    pub page_clients: usize,
    /// `pages`: requests per page and kind of user (CSV exports for heavy users: a quarter).
    #[arg(long, default_value_t = 1000)]
    pub page_requests: usize,
    /// `pages`: keep the database after a passing run too (to EXPLAIN its queries).
    #[arg(long)]
    pub keep_database: bool,
    /// Start the load at this instant (milliseconds since the Unix epoch) rather than as soon
    /// as the setup is done: two benches given the same instant load two servers in the same
    /// spell, so the machine's drift touches both alike (`crates/bench/alternate.sh` with
    /// `TOGETHER=1`).
    #[arg(long)]
    pub start_at_unix_ms: Option<u64>,
    /// Where to write the JSON result.
    #[arg(long, default_value = "bench-result.json")]
    pub out: PathBuf,
}

/// Hard bounds so a typo cannot run a load test for hours.
const SECONDS_MAX: u64 = 300;
const CONCURRENCY_MAX: usize = 4096;

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.seconds = args.seconds.clamp(1, SECONDS_MAX);
    args.concurrency = args.concurrency.clamp(1, CONCURRENCY_MAX);
    args.users = args.users.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = runtime.block_on(run(args))?;
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if matches!(args.profile, Profile::Pages) {
        return pages::run(&args).await;
    }
    let server = server::Server::start(&args).await?;
    let fixture = std::sync::Arc::new(setup::prepare(&server, &args).await?);
    if let Some(at) = args.start_at_unix_ms {
        wait_until_unix_ms(at).await;
    }
    eprintln!(
        "driving {:?} with {} clients for {} s against {} ({:?})",
        args.profile, args.concurrency, args.seconds, server.base, args.backend
    );
    let before = writer_stats::sample(&fixture).await;
    let outcome = load::drive(
        std::sync::Arc::clone(&fixture),
        &args,
        Duration::from_secs(args.seconds),
    )
    .await;
    let after = writer_stats::sample(&fixture).await;
    let writer = before
        .zip(after)
        .map(|(b, a)| writer_stats::between(b, a, outcome.elapsed.as_secs_f64()));
    let peak_rss_kib = server.peak_rss_kib();
    let check = setup::check(&fixture, &outcome).await?;
    let mut result = report::Result::new(&args, &outcome, peak_rss_kib, check);
    result.writer = writer;
    result.print();
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
    eprintln!("result written to {}", args.out.display());
    if result.check.passed {
        server.stop_and_remove_database().await;
    } else {
        eprintln!(
            "the database is kept for inspection: {}",
            server.database_url
        );
    }
    Ok(result.check.passed)
}

/// Sleeps until `at` (milliseconds since the Unix epoch); warns when that has already passed,
/// since a bench meant to run beside another then does not.
async fn wait_until_unix_ms(at: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if now > at {
        eprintln!(
            "warning: the setup ended {} ms after --start-at-unix-ms",
            now - at
        );
        return;
    }
    tokio::time::sleep(Duration::from_millis(at - now)).await;
}
