//! What runs replication inside the server: the link threads that follow a primary (started
//! through the starter this hands [`Replication`]), the cron (WAIT timeouts, the keepalive
//! PING, every 50 ms) and the answers to WAITs, which wake parked clients through the
//! server's shared state. The replication state itself (`mod.rs`) never sees that state:
//! this file is the one that joins them, and it must never hold replication state of its own.

use std::sync::{Arc, Weak};

use super::{replica, Replication};
use crate::clock::unix_millis;
use crate::shared::Shared;

/// How often the cron runs.
const CRON_PERIOD: std::time::Duration = std::time::Duration::from_millis(50);

/// Lets `shared.replication` start link threads and starts its cron thread.
pub fn start(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    shared
        .replication
        .set_link_starter(Box::new(move |host, port, generation| {
            if let Some(shared) = weak.upgrade() {
                replica::start(shared, host, port, generation);
            }
        }));
    let weak = Arc::downgrade(shared);
    let _ = std::thread::Builder::new()
        .name("replication-cron".into())
        .spawn(move || loop {
            std::thread::sleep(CRON_PERIOD);
            let Some(shared) = weak.upgrade() else { return };
            if shared.is_shutting_down() {
                return;
            }
            let now = unix_millis();
            serve_waits(&shared, now);
            shared.replication.tick(now);
        });
}

/// Answers every WAIT that is due ([`Replication::take_due_waits`]) with its count.
pub fn serve_waits(shared: &Shared, now_ms: u64) {
    let replication: &Replication = &shared.replication;
    let due = replication.take_due_waits(now_ms, |seq| shared.blocked.is_parked(seq));
    for (wait, count) in due {
        // Whoever takes the waiter out of the registry owns its reply (blocking.rs).
        if shared.blocked.cancel(wait.seq) {
            let served = crate::blocking::Served {
                conn_id: wait.conn_id,
                seq: wait.seq,
                reply: format!(":{count}\r\n").into_bytes(),
                give_back: None,
            };
            shared
                .blocked
                .wake(wait.worker, served, &shared.store, now_ms);
        }
    }
}
