//! The figures: printed for a person, written as JSON so runs can be compared.

use std::collections::BTreeMap;

use crate::load::Outcome;
use crate::setup::Check;
use crate::{Args, BackendArg, Profile};

#[derive(Debug, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct Result {
    pub backend: BackendArg,
    pub profile: Profile,
    pub sqlite_synchronous: &'static str,
    pub concurrency: usize,
    pub users: usize,
    /// Users holding an auto top-up rule.
    pub topup_rules: usize,
    pub seconds: f64,
    pub cores: usize,
    pub requests: u64,
    pub requests_per_s: f64,
    /// Acknowledged spends (and captures) per second.
    pub spends_per_s: f64,
    pub latency: Latency,
    pub by_status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub server_peak_rss_mib: Option<f64>,
    /// The ledger writer during the run (from the server's /metrics).
    pub writer: Option<crate::writer_stats::WriterStats>,
    pub check: Check,
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

impl Result {
    pub fn new(args: &Args, outcome: &Outcome, peak_rss_kib: Option<u64>, check: Check) -> Self {
        let mut sorted = outcome.latencies_us.clone();
        sorted.sort_unstable();
        let seconds = outcome.elapsed.as_secs_f64().max(f64::EPSILON);
        let requests = sorted.len() as u64;
        Self {
            backend: args.backend,
            profile: args.profile,
            sqlite_synchronous: if args.sqlite_normal { "normal" } else { "full" },
            concurrency: args.concurrency,
            users: if matches!(args.profile, Profile::Hot) {
                1
            } else {
                args.users
            },
            topup_rules: args.topup_rules,
            seconds,
            cores: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            requests,
            requests_per_s: requests as f64 / seconds,
            spends_per_s: outcome.spends as f64 / seconds,
            latency: Latency {
                p50_ms: percentile(&sorted, 50.0),
                p90_ms: percentile(&sorted, 90.0),
                p99_ms: percentile(&sorted, 99.0),
                max_ms: sorted.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
            },
            by_status: outcome.by_status.clone(),
            transport_errors: outcome.transport_errors,
            server_peak_rss_mib: peak_rss_kib.map(|k| k as f64 / 1024.0),
            writer: None,
            check,
        }
    }

    pub fn print(&self) {
        let durability = match self.backend {
            BackendArg::Sqlite => format!(" (synchronous={})", self.sqlite_synchronous),
            BackendArg::Postgres => String::new(),
        };
        println!(
            "{:?} {:?}{durability}, {} clients, {:.1} s on {} cores",
            self.backend, self.profile, self.concurrency, self.seconds, self.cores
        );
        println!(
            "  requests: {} ({:.0}/s), acknowledged spends: {:.0}/s",
            self.requests, self.requests_per_s, self.spends_per_s
        );
        println!(
            "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.latency.p50_ms, self.latency.p90_ms, self.latency.p99_ms, self.latency.max_ms
        );
        println!(
            "  by status: {:?}, transport errors: {}",
            self.by_status, self.transport_errors
        );
        if let Some(mib) = self.server_peak_rss_mib {
            println!("  server peak memory: {mib:.1} MiB");
        }
        if let Some(w) = &self.writer {
            println!(
                "  ledger writer: {} batches, {:.0} commands and {:.2} ms each, busy {:.0}% of the run",
                w.batches,
                w.mean_batch_size,
                w.mean_batch_ms,
                w.busy * 100.0
            );
            let [begin, load, apply, write, commit] = w.phase_ms;
            println!(
                "    per batch: begin {begin:.2} ms, load {load:.2} ms, apply {apply:.2} ms, write {write:.2} ms, commit {commit:.2} ms"
            );
            println!(
                "    cache of accounts: stale in {} of {} batches that had one",
                w.cache_stale, w.cache_checked
            );
            if w.syncs > 0 {
                println!(
                    "    beside it: {} fsyncs of the log, {:.2} ms each",
                    w.syncs, w.mean_sync_ms
                );
            }
            if w.index_runs > 0 {
                println!(
                    "    between batches: {} runs of the history index, {:.2} ms each",
                    w.index_runs, w.mean_index_run_ms
                );
            }
        }
        println!(
            "  check: {} (balances {} -> {}, acknowledged spent {}, topped up {}, ledger verify {})",
            if self.check.passed {
                "PASSED"
            } else {
                "FAILED"
            },
            self.check.credits_before,
            self.check.credits_after,
            self.check.acknowledged_spent,
            self.check.topped_up,
            if self.check.ledger_verify_ok {
                "ok"
            } else {
                "FAILED"
            }
        );
        for problem in &self.check.problems {
            println!("    - {problem}");
        }
    }
}
