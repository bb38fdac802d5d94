//! The ledger writer's side of a run, from the server's `/metrics`: how many batches it
//! committed, how large they were and how long each took. Tells whether the writer or the HTTP
//! path is the limit.

use crate::setup::Fixture;

/// Sums of the writer's batch histograms at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    batches: f64,
    commands: f64,
    seconds: f64,
    /// Seconds spent beginning, loading, applying, writing and committing.
    phases: [f64; 5],
    /// Batches that found the writer's cache of accounts fresh, and that had to reload it.
    cache_hits: f64,
    cache_stale: f64,
    /// fsyncs of the write-ahead log made off the writer's path, and their seconds.
    syncs: f64,
    sync_seconds: f64,
    /// SQLite: runs that moved new transfers into the history index, and their seconds.
    index_runs: f64,
    index_run_seconds: f64,
}

const PHASES: [&str; 5] = ["begin", "load", "apply", "write", "commit"];

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct WriterStats {
    pub batches: u64,
    pub mean_batch_size: f64,
    pub mean_batch_ms: f64,
    /// Share of the run the writer spent inside batches (1.0: never idle).
    pub busy: f64,
    /// Mean milliseconds per batch spent beginning its transaction (on SQLite, waiting for a
    /// write lock another connection holds, and advancing the ledger epoch), loading, applying,
    /// writing and committing (on SQLite, sent with the writes and counted with them).
    pub phase_ms: [f64; 5],
    /// Batches whose cache of accounts had been invalidated by another change (stale), of
    /// those that had one to check.
    pub cache_stale: u64,
    pub cache_checked: u64,
    /// SQLite with durable commits: fsyncs of the log made beside the writer, and their mean.
    pub syncs: u64,
    pub mean_sync_ms: f64,
    /// SQLite: runs of the history index between batches, and their mean.
    pub index_runs: u64,
    pub mean_index_run_ms: f64,
}

/// Reads the writer's histogram sums; `None` when /metrics is not reachable.
pub async fn sample(fixture: &Fixture) -> Option<Sample> {
    let text = fixture
        .client
        .get(format!("{}/metrics", fixture.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(Sample {
        batches: value("bursar_ledger_batch_size_count "),
        commands: value("bursar_ledger_batch_size_sum "),
        seconds: value("bursar_ledger_batch_seconds_sum "),
        phases: PHASES.map(|p| {
            value(&format!(
                "bursar_ledger_phase_seconds_sum{{phase=\"{p}\"}} "
            ))
        }),
        cache_hits: value("bursar_ledger_cache_total{outcome=\"hit\"} "),
        cache_stale: value("bursar_ledger_cache_total{outcome=\"stale\"} "),
        syncs: value("bursar_ledger_sync_seconds_count "),
        sync_seconds: value("bursar_ledger_sync_seconds_sum "),
        index_runs: value("bursar_ledger_index_run_seconds_count "),
        index_run_seconds: value("bursar_ledger_index_run_seconds_sum "),
    })
}

pub fn between(before: Sample, after: Sample, run_seconds: f64) -> WriterStats {
    let batches = (after.batches - before.batches).max(0.0);
    let per_batch = |total: f64| if batches > 0.0 { total / batches } else { 0.0 };
    let seconds = after.seconds - before.seconds;
    let syncs = (after.syncs - before.syncs).max(0.0);
    let index_runs = (after.index_runs - before.index_runs).max(0.0);
    let mean_ms = |count: f64, seconds: f64| {
        if count > 0.0 {
            seconds / count * 1000.0
        } else {
            0.0
        }
    };
    WriterStats {
        batches: batches as u64,
        mean_batch_size: per_batch(after.commands - before.commands),
        mean_batch_ms: per_batch(seconds) * 1000.0,
        busy: seconds / run_seconds.max(f64::EPSILON),
        phase_ms: std::array::from_fn(|i| per_batch(after.phases[i] - before.phases[i]) * 1000.0),
        cache_stale: (after.cache_stale - before.cache_stale).max(0.0) as u64,
        cache_checked: (after.cache_stale + after.cache_hits
            - before.cache_stale
            - before.cache_hits)
            .max(0.0) as u64,
        syncs: syncs as u64,
        mean_sync_ms: mean_ms(syncs, after.sync_seconds - before.sync_seconds),
        index_runs: index_runs as u64,
        mean_index_run_ms: mean_ms(
            index_runs,
            after.index_run_seconds - before.index_run_seconds,
        ),
    }
}
