//! Snapshots for warm restart: SAVE and BGSAVE write every live item to `dir/dbfilename`,
//! and the server loads that file at start, so a restart or an upgrade does not empty the
//! cache. Redis's names throughout (`dir`, `dbfilename`, `save` rules, `LASTSAVE`,
//! `INFO persistence`).
//!
//! No fork and no stop: a save walks the store one shard at a time ([`Store::visit_shard`]),
//! holding each shard only while its items are copied into a block, then writes the block
//! with no lock held. Each item is saved whole as of one moment (that of its shard); writes
//! to other shards go on meanwhile. The file is written to a temporary name, fsynced and
//! renamed, so a crash mid-save leaves the previous snapshot in place.
//!
//! A load checks every block's checksum, the end block and the record count before it puts
//! a single item in the store: a truncated, corrupt or future-version file is refused whole,
//! never half-loaded. Then every record is put back through the store's write path by
//! several threads at once; expired items are skipped and the memory limit holds (the
//! policy evicts the excess, counted as evictions).
//!
//! `--export-rdb` converts a snapshot file offline into a Redis RDB file ([`export_rdb`]),
//! the way to move a dataset to Redis; `rdb.rs` owns those bytes.
//!
//! This module owns the files and the save state; it never parses a protocol. `format.rs`
//! owns the bytes.

pub mod dump;
pub mod format;
pub mod pace;
pub mod rdb;
pub mod rdb_encoding;
pub mod rdb_read;
pub mod rdb_stream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::store::{RestoreError, RestoredValue, ShardWalk, Store};
use format::{Block, FormatError, RecordValue};
pub use pace::Pace;
use pace::Pacer;

/// Why a save failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("a save is already in progress")]
    InProgress,
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a snapshot was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: FormatError },
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveReport {
    pub items: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// What a load put back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Records in the file.
    pub records: u64,
    /// Items put back in the store.
    pub loaded: u64,
    /// Items skipped because their expiry had passed.
    pub expired: u64,
    /// Items the store refused (out of memory under `noeviction`, a corrupt compressed
    /// value): each logged.
    pub refused: u64,
    pub elapsed: Duration,
}

/// The save state `INFO persistence` and `LASTSAVE` report.
#[derive(Debug, Default)]
pub struct Persistence {
    in_progress: AtomicBool,
    /// Unix seconds of the last successful save (the start time until one happens, as Redis).
    last_save_s: AtomicU64,
    last_ok: AtomicBool,
    /// Seconds the last save took; unix ms the current one started (0 = none running).
    last_duration_s: AtomicU64,
    started_ms: AtomicU64,
    /// The store's change count when the last successful save began.
    changes_at_last_save: AtomicU64,
    saves: AtomicU64,
    /// A load is running (clients are told so).
    loading: AtomicBool,
    /// The last load's figures (INFO `rdb_last_load_keys_loaded` / `_expired`).
    last_load_loaded: AtomicU64,
    last_load_expired: AtomicU64,
    /// BGSAVE asked the saver thread for a save it has not started yet.
    requested: parking_lot::Mutex<bool>,
    wake_saver: parking_lot::Condvar,
    /// The `save` rules CONFIG SET put in force; `None`: the configuration's.
    rules: parking_lot::Mutex<Option<Vec<(u64, u64)>>>,
    /// How far the running load is.
    pub progress: LoadProgress,
    /// SHUTDOWN already saved (or was told NOSAVE): the saver thread does not save again.
    shutdown_save_done: AtomicBool,
}

/// How far a load is, for `INFO persistence`'s `loading_*` fields. Updated by [`load`].
#[derive(Debug, Default)]
pub struct LoadProgress {
    /// Unix seconds the load started.
    pub started_s: AtomicU64,
    /// The file's size.
    pub total_bytes: AtomicU64,
    /// Records in the file (known once every block is checked; 0 before).
    pub total_records: AtomicU64,
    /// Records handled so far (loaded, expired or refused).
    pub done_records: AtomicU64,
}

/// A copy of a running load's progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadFigures {
    pub started_s: u64,
    pub total_bytes: u64,
    /// Bytes of the file put back so far (in proportion to the records done).
    pub loaded_bytes: u64,
    /// Percent done.
    pub percent: f64,
    /// Seconds left at the rate so far (0 while unknown).
    pub eta_s: u64,
}

impl LoadProgress {
    pub fn figures(&self, now_ms: u64) -> LoadFigures {
        let total_bytes = self.total_bytes.load(Ordering::Relaxed);
        let total = self.total_records.load(Ordering::Relaxed);
        let done = self.done_records.load(Ordering::Relaxed).min(total);
        let started_s = self.started_s.load(Ordering::Relaxed);
        let fraction = if total == 0 {
            0.0
        } else {
            done as f64 / total as f64
        };
        let elapsed_s = (now_ms / 1000).saturating_sub(started_s);
        let eta_s = if done == 0 {
            0
        } else {
            (elapsed_s as f64 * (total - done) as f64 / done as f64) as u64
        };
        LoadFigures {
            started_s,
            total_bytes,
            loaded_bytes: (total_bytes as f64 * fraction) as u64,
            percent: fraction * 100.0,
            eta_s,
        }
    }
}

/// A copy of the save state, for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistenceFigures {
    pub in_progress: bool,
    pub last_save_s: u64,
    pub last_ok: bool,
    pub last_duration_s: u64,
    /// Seconds the running save has taken so far (`None` when none runs).
    pub current_s: Option<u64>,
    pub changes_since_last_save: u64,
    pub saves: u64,
    pub loading: bool,
    pub last_load_loaded: u64,
    pub last_load_expired: u64,
}

impl Persistence {
    pub fn new(now_ms: u64) -> Persistence {
        let state = Persistence::default();
        state.last_save_s.store(now_ms / 1000, Ordering::Relaxed);
        state.last_ok.store(true, Ordering::Relaxed);
        state
    }

    pub fn figures(&self, store: &Store, now_ms: u64) -> PersistenceFigures {
        let started = self.started_ms.load(Ordering::Relaxed);
        PersistenceFigures {
            in_progress: self.in_progress.load(Ordering::Acquire),
            last_save_s: self.last_save_s.load(Ordering::Relaxed),
            last_ok: self.last_ok.load(Ordering::Relaxed),
            last_duration_s: self.last_duration_s.load(Ordering::Relaxed),
            current_s: (started != 0).then(|| now_ms.saturating_sub(started) / 1000),
            changes_since_last_save: store
                .changes()
                .saturating_sub(self.changes_at_last_save.load(Ordering::Relaxed)),
            saves: self.saves.load(Ordering::Relaxed),
            loading: self.loading.load(Ordering::Acquire),
            last_load_loaded: self.last_load_loaded.load(Ordering::Relaxed),
            last_load_expired: self.last_load_expired.load(Ordering::Relaxed),
        }
    }

    /// Records what a load at start put back.
    pub fn loaded(&self, report: &LoadReport) {
        self.last_load_loaded
            .store(report.loaded, Ordering::Relaxed);
        self.last_load_expired
            .store(report.expired, Ordering::Relaxed);
    }

    /// BGSAVE: asks the saver thread for a save. `InProgress` when one runs or is already
    /// asked for (BGSAVE SCHEDULE asks anyway: it runs when the current one is done).
    pub fn request_save(&self, schedule: bool) -> Result<(), SaveError> {
        let mut requested = self.requested.lock();
        if !schedule && (*requested || self.in_progress.load(Ordering::Acquire)) {
            return Err(SaveError::InProgress);
        }
        *requested = true;
        self.wake_saver.notify_one();
        Ok(())
    }

    /// The saver thread's wait: true when a save was asked for, false after `timeout`.
    pub fn wait_for_request(&self, timeout: Duration) -> bool {
        let mut requested = self.requested.lock();
        if !*requested {
            self.wake_saver.wait_for(&mut requested, timeout);
        }
        std::mem::take(&mut *requested)
    }

    /// Wakes the saver thread (at shutdown).
    pub fn wake(&self) {
        self.wake_saver.notify_all();
    }

    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
    }

    pub fn set_loading(&self, loading: bool) {
        self.loading.store(loading, Ordering::Release);
    }

    /// SHUTDOWN has saved, or was told not to: the saver thread's save at shutdown is skipped.
    pub fn shutdown_save_settled(&self) {
        self.shutdown_save_done.store(true, Ordering::Release);
    }

    pub fn shutdown_save_is_settled(&self) -> bool {
        self.shutdown_save_done.load(Ordering::Acquire)
    }

    /// Claims the one save slot; `InProgress` if a save runs.
    pub fn begin(&self, store: &Store, now_ms: u64) -> Result<SaveGuard<'_>, SaveError> {
        if self.in_progress.swap(true, Ordering::AcqRel) {
            return Err(SaveError::InProgress);
        }
        self.started_ms.store(now_ms.max(1), Ordering::Relaxed);
        Ok(SaveGuard {
            state: self,
            changes_at_start: store.changes(),
        })
    }

    /// SAVE: writes the snapshot of `store` to `path` on the calling thread, claiming the
    /// save slot (`InProgress` if a save runs), and records and logs the outcome.
    pub fn save_now(
        &self,
        store: &Store,
        path: &Path,
        now_ms: u64,
    ) -> Result<SaveReport, SaveError> {
        let guard = self.begin(store, now_ms)?;
        let started = Instant::now();
        let result = save(store, path, now_ms, Pace::Full);
        guard.finish(&result, now_ms + started.elapsed().as_millis() as u64);
        match &result {
            Ok(report) => log::info!(
                "DB saved on disk: {} items, {} bytes in {:?}",
                report.items,
                report.bytes,
                report.elapsed
            ),
            Err(error) => log::warn!("save failed: {error}"),
        }
        result
    }

    /// The `save` rules in force: those CONFIG SET gave, else `configured`.
    pub fn rules(&self, configured: &[(u64, u64)]) -> Vec<(u64, u64)> {
        self.rules
            .lock()
            .clone()
            .unwrap_or_else(|| configured.to_vec())
    }

    /// Puts `rules` in force (CONFIG SET save); the saver reads them each second.
    pub fn set_rules(&self, rules: Vec<(u64, u64)>) {
        *self.rules.lock() = Some(rules);
    }

    /// Whether a `save` rule (seconds, changes) is due.
    pub fn rule_due(&self, rules: &[(u64, u64)], store: &Store, now_ms: u64) -> bool {
        let figures = self.figures(store, now_ms);
        let since_s = (now_ms / 1000).saturating_sub(figures.last_save_s);
        !figures.in_progress
            && rules.iter().any(|&(seconds, changes)| {
                figures.changes_since_last_save >= changes && since_s >= seconds
            })
    }
}

/// The claim on the save slot; records the outcome when finished.
pub struct SaveGuard<'a> {
    state: &'a Persistence,
    changes_at_start: u64,
}

impl SaveGuard<'_> {
    pub fn finish(self, result: &Result<SaveReport, SaveError>, now_ms: u64) {
        let state = self.state;
        match result {
            Ok(report) => {
                state.last_ok.store(true, Ordering::Relaxed);
                state.last_save_s.store(now_ms / 1000, Ordering::Relaxed);
                state
                    .changes_at_last_save
                    .store(self.changes_at_start, Ordering::Relaxed);
                state
                    .last_duration_s
                    .store(report.elapsed.as_secs(), Ordering::Relaxed);
                state.saves.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => state.last_ok.store(false, Ordering::Relaxed),
        }
    }
}

impl Drop for SaveGuard<'_> {
    fn drop(&mut self) {
        self.state.started_ms.store(0, Ordering::Relaxed);
        self.state.in_progress.store(false, Ordering::Release);
    }
}

/// Writes a snapshot of `store` to `path` (through a temporary file in the same directory,
/// fsynced, then renamed over `path`) at `pace`.
pub fn save(store: &Store, path: &Path, now_ms: u64, pace: Pace) -> Result<SaveReport, SaveError> {
    let started = Instant::now();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let temp = dir.join(format!("temp-{}.fcs", std::process::id()));
    let io = |source| SaveError::Io {
        path: temp.clone(),
        source,
    };
    let file = std::fs::File::create(&temp).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (items, bytes) = write_snapshot_paced(store, now_ms, &mut out, pace).map_err(io)?;
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|source| SaveError::Io {
        path: path.to_owned(),
        source,
    })?;
    // The rename itself is durable once the directory is synced.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(SaveReport {
        items,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Writes a whole snapshot of `store` (header, blocks, end block) to `out`, shard by shard
/// in slices as [`save`] does: each shard is held only while one slice of its items is
/// copied into the block being filled ([`Store::visit_slice`]); a full block is framed and
/// written with no lock held, so the memory a save takes is one block, whatever the size of
/// the data. Returns the items and bytes written. A full sync to a replica streams this
/// (`replication`).
pub fn write_snapshot(
    store: &Store,
    now_ms: u64,
    out: &mut impl Write,
) -> std::io::Result<(u64, u64)> {
    write_snapshot_paced(store, now_ms, out, Pace::Full)
}

/// [`write_snapshot`] at `pace`: between slices, never with a shard held, a paced save
/// sleeps to keep to its share of a core.
pub fn write_snapshot_paced(
    store: &Store,
    now_ms: u64,
    out: &mut impl Write,
    pace: Pace,
) -> std::io::Result<(u64, u64)> {
    let mut pacer = Pacer::new(pace);
    out.write_all(&format::header(now_ms))?;
    let mut bytes = format::HEADER_LEN as u64;
    let mut items = 0u64;
    let mut payload = Vec::with_capacity(format::BLOCK_TARGET + (64 << 10));
    let mut scratch = Vec::new();
    let mut flush = |payload: &mut Vec<u8>, out: &mut dyn Write| {
        out.write_all(&format::block_header(payload))?;
        out.write_all(payload)?;
        bytes += (format::BLOCK_HEADER_LEN + payload.len()) as u64;
        payload.clear();
        std::io::Result::Ok(())
    };
    for shard in 0..Store::SHARDS {
        let mut walk = ShardWalk::new(shard);
        while !walk.is_done() {
            store.visit_slice(&mut walk, now_ms, |item| {
                format::encode_item(item, &mut payload, &mut scratch);
                items += 1;
            });
            if payload.len() >= format::BLOCK_TARGET {
                flush(&mut payload, out)?;
                // A block grown past its target by one large item goes back to the target.
                payload.shrink_to(format::BLOCK_TARGET + (64 << 10));
            }
            pacer.tick();
        }
    }
    if !payload.is_empty() {
        flush(&mut payload, out)?;
    }
    let mut end = format::end_payload(items);
    flush(&mut end, out)?;
    Ok((items, bytes))
}

/// Loads the snapshot at `path` into `store` with `threads` threads: refused whole, with
/// nothing loaded, unless every block checks out. `progress` follows it.
pub fn load(
    store: &Store,
    path: &Path,
    now_ms: u64,
    threads: usize,
    progress: &LoadProgress,
) -> Result<LoadReport, LoadError> {
    let file = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_bytes(store, &file, now_ms, threads, progress).map_err(|source| LoadError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Loads a whole snapshot held in memory (a file's bytes, or a full sync from a primary):
/// refused whole, with nothing loaded, unless every block checks out.
pub fn load_bytes(
    store: &Store,
    file: &[u8],
    now_ms: u64,
    threads: usize,
    progress: &LoadProgress,
) -> Result<LoadReport, FormatError> {
    let started = Instant::now();
    progress.started_s.store(now_ms / 1000, Ordering::Relaxed);
    progress.total_records.store(0, Ordering::Relaxed);
    progress.done_records.store(0, Ordering::Relaxed);
    progress
        .total_bytes
        .store(file.len() as u64, Ordering::Relaxed);
    format::read_header(file)?;
    let blocks = format::blocks(file)?;
    let (decoded, expected) = decode_all(&blocks, threads)?;
    let records: u64 = decoded
        .iter()
        .flatten()
        .map(|block| block.len() as u64)
        .sum();
    if records != expected {
        return Err(FormatError::CountMismatch {
            expected,
            found: records,
        });
    }
    progress.total_records.store(records, Ordering::Relaxed);
    let loaded = AtomicU64::new(0);
    let expired = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    std::thread::scope(|scope| {
        // Each thread loads the blocks it decoded: nothing is decoded twice.
        for share in decoded {
            let (loaded, expired, refused) = (&loaded, &expired, &refused);
            scope.spawn(move || {
                for block in share {
                    let block_len = block.len() as u64;
                    for record in block {
                        if record.expiry_ms != 0 && record.expiry_ms <= now_ms {
                            expired.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let value = match record.value {
                            RecordValue::String { bytes, compressed } => {
                                RestoredValue::String { bytes, compressed }
                            }
                            RecordValue::Object(object) => RestoredValue::Object(object),
                        };
                        let key = record.key;
                        match store.restore(
                            key,
                            value,
                            record.flags,
                            record.cas,
                            record.expiry_ms,
                            now_ms,
                        ) {
                            Ok(()) => loaded.fetch_add(1, Ordering::Relaxed),
                            Err(error) => {
                                log_refused(key, error);
                                refused.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                    store.restore_memory_bound(now_ms);
                    progress
                        .done_records
                        .fetch_add(block_len, Ordering::Relaxed);
                }
            });
        }
    });
    Ok(LoadReport {
        records,
        loaded: loaded.into_inner(),
        expired: expired.into_inner(),
        refused: refused.into_inner(),
        elapsed: started.elapsed(),
    })
}

fn log_refused(key: &[u8], error: RestoreError) {
    log::warn!(
        "snapshot: item {:?} not loaded: {error}",
        String::from_utf8_lossy(&key[..key.len().min(64)])
    );
}

/// Decoded records: per thread, per block.
type Decoded<'a> = Vec<Vec<Vec<format::Record<'a>>>>;

/// Decodes every block with `threads` threads (block i on thread i % threads) before
/// anything is loaded: each thread's records, block by block, for it to load next, and the
/// count the end block promises. Any malformed block refuses the whole file.
fn decode_all<'a>(
    blocks: &[(usize, &'a [u8])],
    threads: usize,
) -> Result<(Decoded<'a>, u64), FormatError> {
    let threads = threads.clamp(1, blocks.len().max(1));
    type Share<'a> = (Vec<Vec<format::Record<'a>>>, Option<u64>);
    let results: Vec<Result<Share<'a>, FormatError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|first| {
                scope.spawn(move || {
                    let (mut share, mut end) = (Vec::new(), None);
                    for &(offset, payload) in blocks.iter().skip(first).step_by(threads) {
                        match format::decode_block(offset, payload)? {
                            Block::Records(records) => share.push(records),
                            Block::End { records } => end = Some(records),
                        }
                    }
                    Ok((share, end))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(FormatError::Malformed(0))))
            .collect()
    });
    let mut decoded = Vec::with_capacity(threads);
    let mut expected = 0;
    for result in results {
        let (share, end) = result?;
        decoded.push(share);
        expected += end.unwrap_or(0);
    }
    Ok((decoded, expected))
}

/// Why `--export-rdb` failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportFileError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Export {
        path: PathBuf,
        source: rdb::ExportError,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Converts the snapshot at `input` into an RDB file at `output` ([`rdb::export`]), as of
/// `now_ms`. The file is written to a temporary name beside `output`, fsynced and renamed,
/// so `output` is either the whole export or untouched.
pub fn export_rdb(
    input: &Path,
    output: &Path,
    now_ms: u64,
) -> Result<rdb::ExportReport, ExportFileError> {
    let fcs = std::fs::read(input).map_err(|source| ExportFileError::Read {
        path: input.to_owned(),
        source,
    })?;
    let mut temp_name = output.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = output.with_file_name(temp_name);
    let write_err = |source| ExportFileError::Write {
        path: output.to_owned(),
        source,
    };
    let file = std::fs::File::create(&temp).map_err(write_err)?;
    let mut writer = std::io::BufWriter::new(file);
    let result = rdb::export(&fcs, now_ms, &mut writer)
        .map_err(|source| match source {
            rdb::ExportError::Io(source) => write_err(source),
            source => ExportFileError::Export {
                path: input.to_owned(),
                source,
            },
        })
        .and_then(|report| {
            let file = writer.into_inner().map_err(|e| write_err(e.into_error()))?;
            file.sync_all().map_err(write_err)?;
            std::fs::rename(&temp, output).map_err(write_err)?;
            Ok(report)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Parses Redis's `save` rules: pairs of `seconds changes`; empty = never.
pub fn parse_save_rules(text: &str) -> Option<Vec<(u64, u64)>> {
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|word| word.parse().ok())
        .collect::<Option<_>>()?;
    if !numbers.len().is_multiple_of(2) || numbers.iter().step_by(2).any(|&seconds| seconds == 0) {
        return None;
    }
    Some(numbers.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}

#[cfg(test)]
mod rdb_tests;
#[cfg(test)]
mod tests;
