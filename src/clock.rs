//! Wall-clock time: milliseconds since the unix epoch, read in one place. Owns no state and
//! must never cache the time (each caller decides how fresh its reading must be).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
