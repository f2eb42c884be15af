//! The replication commands, with Redis's replies: REPLCONF and PSYNC/SYNC (what a replica
//! sends its primary), REPLICAOF/SLAVEOF, ROLE, WAIT.
//!
//! `PSYNC` only records the request and tells the server to hand the connection to a
//! replication link ([`Flow::Replica`]); the link (`replication::primary`) sends every byte
//! after. Nothing here does I/O or walks the store.

use ferrocache_protocol::resp::Encoder;

use super::error::RespError;
use super::{err, is, Call};
use crate::blocking::{Parked, WaitFor, Waiter};
use crate::command::Flow;
use crate::replication::primary::Psync;
use crate::replication::{Role, Wait};

/// REPLCONF option value ...
pub fn replconf(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.args.len().is_multiple_of(2) {
        return Err(err::SYNTAX.into());
    }
    let mut i = 1;
    while i + 1 < call.args.len() {
        let (option, value) = (call.arg(i), call.arg(i + 1));
        if is(option, "listening-port") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u16>().ok())
            {
                Some(port) => call.session.replica_hello.listening_port = port,
                None => {
                    return Err("ERR value is not an integer or out of range".into());
                }
            }
        } else if is(option, "capa") {
            if is(value, "ferrocache") {
                call.session.replica_hello.ferrocache = true;
            }
            // Other capabilities (eof, psync2) are what every full sync here does anyway.
        } else if is(option, "ack") || is(option, "getack") {
            // ACKs arrive on the link once it is one; here there is nothing to answer.
            return Ok(Flow::Continue);
        } else if is(option, "ip-address") {
            if value.len() > crate::replication::identity::MAX_ANNOUNCE_IP_LEN {
                return Err(format!(
                    "ERR REPLCONF ip-address provided by replica instance is too long: {} bytes",
                    value.len()
                )
                .into());
            }
            call.session.replica_hello.ip_address =
                Some(String::from_utf8_lossy(value).into_owned());
        } else if is(option, "rdb-only") || is(option, "rdb-filter-only") {
            // Accepted and not used.
        } else {
            return Err(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(option)
            )
            .into());
        }
        i += 2;
    }
    enc.ok();
    Ok(Flow::Continue)
}

/// PSYNC replid offset | SYNC
pub fn psync(call: &mut Call<'_, '_>, _enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    if call.session.queued.is_some() {
        return Err("ERR Replica can't interact with the keyspace".into());
    }
    let (replid, offset) = if is(call.arg(0), "sync") {
        ("?".to_string(), -1)
    } else {
        let offset = std::str::from_utf8(call.arg(2))
            .ok()
            .and_then(|v| v.parse::<i64>().ok());
        let Some(offset) = offset else {
            return Err("ERR value is not an integer or out of range".into());
        };
        (String::from_utf8_lossy(call.arg(1)).into_owned(), offset)
    };
    if let Role::Replica { .. } = call.ctx.shared.replication.role() {
        if !call.ctx.shared.replication.upstream.lock().link_up {
            return Err("NOMASTERLINK Can't SYNC while not connected with my master".into());
        }
    }
    if call.ctx.shared.replication.attached().len() >= crate::replication::primary::MAX_REPLICAS {
        return Err("ERR too many replicas attached".into());
    }
    call.session.psync = Some(Psync {
        replid,
        offset,
        hello: call.session.replica_hello.clone(),
    });
    Ok(Flow::Replica)
}

/// REPLICAOF host port | REPLICAOF NO ONE (and SLAVEOF)
pub fn replicaof(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let repl = &call.ctx.shared.replication;
    if is(call.arg(1), "no") && is(call.arg(2), "one") {
        if matches!(repl.role(), Role::Replica { .. }) {
            log::info!("MASTER MODE enabled (user request)");
        }
        repl.promote();
        enc.ok();
        return Ok(Flow::Continue);
    }
    let port = std::str::from_utf8(call.arg(2))
        .ok()
        .and_then(|v| v.parse::<u16>().ok());
    let Some(port) = port.filter(|&p| p != 0) else {
        return Err("ERR Invalid master port".into());
    };
    let host = String::from_utf8_lossy(call.arg(1)).into_owned();
    if !repl.follow(host.clone(), port) {
        enc.simple("OK Already connected to specified master");
        return Ok(Flow::Continue);
    }
    log::info!("REPLICAOF {host}:{port} enabled (user request)");
    enc.ok();
    Ok(Flow::Continue)
}

/// ROLE
pub fn role(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let repl = &call.ctx.shared.replication;
    match repl.role() {
        Role::Primary => {
            let attached = repl.attached();
            enc.array(3);
            enc.bulk(b"master");
            enc.integer(repl.offset() as i64);
            enc.array(attached.len());
            for replica in attached {
                enc.array(3);
                enc.bulk(replica.ip.as_bytes());
                enc.bulk(
                    replica
                        .port
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string()
                        .as_bytes(),
                );
                enc.bulk(
                    replica
                        .ack_offset
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .to_string()
                        .as_bytes(),
                );
            }
        }
        Role::Replica { host, port } => {
            let up = repl.upstream.lock().clone();
            let state = if up.link_up {
                "connected"
            } else if up.sync_in_progress {
                "sync"
            } else {
                "connect"
            };
            enc.array(5);
            enc.bulk(b"slave");
            enc.bulk(host.as_bytes());
            enc.integer(i64::from(port));
            enc.bulk(state.as_bytes());
            enc.integer(if up.link_up { repl.offset() as i64 } else { -1 });
        }
    }
    Ok(Flow::Continue)
}

/// The refusal of a client write on a read-only replica.
pub const READONLY: &str = "READONLY You can't write against a read only replica.";
/// The refusal of a write on a primary with too few good replicas (`min-replicas-to-write`).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// WAIT numreplicas timeout
pub fn wait(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let number = |arg: &[u8]| std::str::from_utf8(arg).ok()?.parse::<i64>().ok();
    let (Some(needed), Some(timeout_ms)) = (number(call.arg(1)), number(call.arg(2))) else {
        return Err("ERR value is not an integer or out of range".into());
    };
    if timeout_ms < 0 {
        return Err("ERR timeout is negative".into());
    }
    let ctx = call.ctx;
    let repl = &ctx.shared.replication;
    if matches!(repl.role(), Role::Replica { .. }) {
        return Err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.".into());
    }
    let offset = repl.offset();
    let acked = repl.acked(offset);
    if acked as i64 >= needed || call.session.in_exec {
        enc.integer(acked as i64);
        return Ok(Flow::Continue);
    }
    let seq = ctx.shared.blocked.park(Waiter {
        seq: 0,
        conn_id: call.session.info.id,
        worker: ctx.worker,
        keys: Vec::new(),
        wait_for: WaitFor::Acks,
        resp3: enc.is_resp3(),
    });
    // No deadline for the worker: replication answers the timeout too, with the count.
    call.session.parked = Some(Parked {
        seq,
        command: "wait",
        deadline_ms: None,
        timeout_reply: Vec::new(),
    });
    repl.add_wait(Wait {
        seq,
        conn_id: call.session.info.id,
        worker: ctx.worker,
        offset,
        needed: needed.max(0) as usize,
        deadline_ms: (timeout_ms > 0).then(|| ctx.now_ms.saturating_add(timeout_ms as u64)),
    });
    Ok(Flow::Block)
}
