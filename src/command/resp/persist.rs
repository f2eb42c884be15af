//! The snapshot commands: SAVE, BGSAVE [SCHEDULE], LASTSAVE, and INFO's `# Persistence`
//! section, with Redis's replies and field names.
//!
//! SAVE writes the snapshot on this worker (as Redis's SAVE blocks its server); BGSAVE hands
//! the save to the saver thread and answers at once. Nothing here touches a file: `persist`
//! does.

use std::fmt::Write as _;

use ferrocache_protocol::resp::Encoder;

use super::{err, is, Call};
use crate::command::Flow;
use crate::persist::{self, SaveError};
use crate::shared::Shared;

const IN_PROGRESS: &str = "ERR Background save already in progress";

/// SAVE
pub fn save(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let shared = call.ctx.shared;
    let now = call.ctx.now_ms;
    let guard = match shared.persistence.begin(&shared.store, now) {
        Ok(guard) => guard,
        Err(_) => {
            enc.error(IN_PROGRESS);
            return Flow::Continue;
        }
    };
    let path = shared.config.persistence.path();
    let result = persist::save(&shared.store, &path, now);
    guard.finish(&result, crate::shared::unix_millis());
    match result {
        Ok(report) => {
            log::info!(
                "DB saved on disk: {} items, {} bytes in {:?}",
                report.items,
                report.bytes,
                report.elapsed
            );
            enc.ok();
        }
        Err(error) => {
            log::warn!("SAVE failed: {error}");
            enc.error("ERR");
        }
    }
    Flow::Continue
}

/// BGSAVE [SCHEDULE]
pub fn bgsave(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let schedule = match call.args.len() {
        1 => false,
        2 if is(call.arg(1), "SCHEDULE") => true,
        _ => {
            enc.error(err::SYNTAX);
            return Flow::Continue;
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
    Flow::Continue
}

/// LASTSAVE
pub fn lastsave(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let figures = call
        .ctx
        .shared
        .persistence
        .figures(&call.ctx.shared.store, call.ctx.now_ms);
    enc.integer(figures.last_save_s as i64);
    Flow::Continue
}

/// INFO's `# Persistence` section (the fields that have a meaning here; no AOF, no fork).
pub fn info_section(shared: &Shared, now_ms: u64, text: &mut String) {
    let f = shared.persistence.figures(&shared.store, now_ms);
    let last_time = if f.saves == 0 {
        -1
    } else {
        f.last_duration_s as i64
    };
    let _ = write!(
        text,
        "# Persistence\r\nloading:{}\r\nasync_loading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{last_time}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:0\r\n\r\n",
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
