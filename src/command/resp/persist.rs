//! The snapshot commands: SAVE, BGSAVE [SCHEDULE], LASTSAVE, SHUTDOWN [NOSAVE|SAVE], INFO's
//! `# Persistence` section, and which commands run while the snapshot loads, with Redis's
//! replies and field names.
//!
//! SAVE writes the snapshot on this worker (as Redis's SAVE blocks its server); BGSAVE hands
//! the save to the saver thread and answers at once. Nothing here touches a file: `persist`
//! does.

use std::fmt::Write as _;

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, Call};
use crate::command::Flow;
use crate::persist::{self, SaveError};
use crate::shared::Shared;

const IN_PROGRESS: &str = "ERR Background save already in progress";

/// Whether a command runs while the snapshot loads; the others get `-LOADING`. Redis 7.0's
/// commands flagged `loading` (the connection, server-introspection and pub/sub ones; PING
/// is not among them).
pub fn allowed_while_loading(name: &str) -> bool {
    matches!(
        name,
        "acl"
            | "auth"
            | "client"
            | "command"
            | "config"
            | "discard"
            | "echo"
            | "exec"
            | "hello"
            | "info"
            | "lastsave"
            | "latency"
            | "monitor"
            | "multi"
            | "psubscribe"
            | "publish"
            | "pubsub"
            | "punsubscribe"
            | "quit"
            | "readonly"
            | "readwrite"
            | "replconf"
            | "reset"
            | "role"
            | "select"
            | "shutdown"
            | "slowlog"
            | "spublish"
            | "ssubscribe"
            | "subscribe"
            | "sunsubscribe"
            | "time"
            | "unsubscribe"
            | "unwatch"
            | "watch"
    )
}

/// Runs SAVE's save on this worker.
fn save_here(shared: &Shared, now_ms: u64) -> Result<persist::SaveReport, SaveError> {
    let path = shared.config.persistence.path();
    shared.persistence.save_now(&shared.store, &path, now_ms)
}

/// SAVE
pub fn save(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    match save_here(call.ctx.shared, call.ctx.now_ms) {
        Ok(_) => enc.ok(),
        Err(SaveError::InProgress) => enc.error(IN_PROGRESS),
        Err(_) => enc.error("ERR"),
    }
    Ok(Flow::Continue)
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: saves first when asked to (SAVE) or when
/// `save` rules are set (unless NOSAVE), then stops the server; the connection closes
/// without a reply, as Redis's does. A failed save stops nothing unless FORCE. There is no
/// wait for replicas here, so NOW changes nothing and ABORT finds nothing to abort. While
/// the snapshot loads nothing is saved (a half-loaded store would replace the file). While a
/// script runs only NOSAVE is accepted, and it stops the script (written to or not).
pub fn shutdown(call: &mut Call<'_, '_>, _enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.session.queued.is_some() {
        call.session.queue_failed = true;
        return Err("ERR Command not allowed inside a transaction".into());
    }
    let (mut save, mut nosave, mut force, mut abort) = (false, false, false, false);
    for arg in &call.args[1..] {
        if is(arg, "SAVE") {
            save = true;
        } else if is(arg, "NOSAVE") {
            nosave = true;
        } else if is(arg, "FORCE") {
            force = true;
        } else if is(arg, "ABORT") {
            abort = true;
        } else if !is(arg, "NOW") {
            return Err(err::SYNTAX.into());
        }
    }
    if (save && nosave) || (abort && (call.args.len() > 2)) {
        return Err(err::SYNTAX.into());
    }
    if abort {
        return Err("ERR No shutdown in progress.".into());
    }
    let shared = call.ctx.shared;
    if shared.scripting.is_running() {
        if !nosave {
            // A save now would catch the script half done (Redis: only SHUTDOWN NOSAVE).
            log::warn!("SHUTDOWN refused while a script runs: use SHUTDOWN NOSAVE");
            return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
        }
        shared.scripting.abort_for_shutdown();
    }
    let loading = shared.persistence.is_loading();
    let rules = !shared
        .persistence
        .rules(&shared.config.persistence.save_rules())
        .is_empty();
    if (save || rules) && !nosave && !loading {
        if let Err(error) = save_here(shared, call.ctx.now_ms) {
            if !force {
                log::warn!("SHUTDOWN: the save failed ({error}); not shutting down");
                return Err("ERR Errors trying to SHUTDOWN. Check logs.".into());
            }
        }
    }
    shared.persistence.shutdown_save_settled();
    log::info!("SHUTDOWN asked by a client: shutting down");
    shared.begin_shutdown();
    Ok(Flow::Close)
}

/// BGSAVE [SCHEDULE]
pub fn bgsave(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let schedule = match call.args.len() {
        1 => false,
        2 if is(call.arg(1), "SCHEDULE") => true,
        _ => {
            return Err(err::SYNTAX.into());
        }
    };
    let persistence = &call.ctx.shared.persistence;
    let running = persistence
        .figures(&call.ctx.shared.store, call.ctx.now_ms)
        .in_progress;
    match persistence.request_save(schedule) {
        Ok(()) if schedule && running => enc.simple("Background saving scheduled"),
        Ok(()) => enc.simple("Background saving started"),
        Err(SaveError::InProgress) => enc.error(IN_PROGRESS),
        Err(_) => enc.error("ERR"),
    }
    Ok(Flow::Continue)
}

/// LASTSAVE
pub fn lastsave(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let figures = call
        .ctx
        .shared
        .persistence
        .figures(&call.ctx.shared.store, call.ctx.now_ms);
    enc.integer(figures.last_save_s as i64);
    Ok(Flow::Continue)
}

/// INFO's `# Persistence` section (the fields that have a meaning here; no AOF, no fork).
pub fn info_section(shared: &Shared, now_ms: u64, text: &mut String) {
    let f = shared.persistence.figures(&shared.store, now_ms);
    let mut loading = String::new();
    if f.loading {
        let p = shared.persistence.progress.figures(now_ms);
        let _ = write!(
            loading,
            "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_loaded_bytes:{}\r\nloading_loaded_perc:{:.2}\r\nloading_eta_seconds:{}\r\n",
            p.started_s, p.total_bytes, p.loaded_bytes, p.percent, p.eta_s
        );
    }
    let last_time = if f.saves == 0 {
        -1
    } else {
        f.last_duration_s as i64
    };
    let _ = write!(
        text,
        "# Persistence\r\nloading:{}\r\nasync_loading:0\r\n{loading}rdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{last_time}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:0\r\n\r\n",
        u8::from(f.loading),
        f.changes_since_last_save,
        u8::from(f.in_progress),
        f.last_save_s,
        if f.last_ok { "ok" } else { "err" },
        f.current_s.map_or(-1, |s| s as i64),
        f.saves,
        f.last_load_expired,
        f.last_load_loaded,
    );
}
