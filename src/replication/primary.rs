//! The primary's side of one replica link: a thread per attached replica that answers its
//! `PSYNC`, sends the full sync when it must, then pushes the stream from the backlog as it
//! grows, and a helper thread that reads the replica's `REPLCONF ACK <offset>`.
//!
//! A RESP connection becomes a link when it sends `PSYNC`/`SYNC`: the worker hands its socket
//! over (the worker never blocks on a replica). The link uses blocking I/O on its own thread;
//! a replica slower than the stream falls behind in the backlog, and once the records it
//! needs are trimmed it is disconnected and comes back for a full sync, which bounds what a
//! slow replica can cost (the backlog's size). Never touches the store but to snapshot it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ferrocache_protocol::resp;

use super::backlog::Position;
use super::{frame, Attached};
use crate::shared::{unix_millis, Shared};

/// Most frame bytes gathered into one write.
const BATCH_BYTES: usize = 1 << 20;
/// Below this many bytes a batch is small, and the link waits [`GATHER`] before the next.
const SMALL_BATCH: usize = 16 * 1024;
const GATHER: Duration = Duration::from_micros(200);
/// How long a link waits for news before it checks whether it should stop.
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// A replica that has not acked for this long is dropped (Redis's `repl-timeout`).
const REPL_TIMEOUT_MS: u64 = 60_000;

/// Most replicas attached at once (each has two threads and a socket).
pub const MAX_REPLICAS: usize = 64;

/// What a replica said before `PSYNC` (`REPLCONF listening-port`, `REPLCONF capa`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    pub listening_port: u16,
    /// `REPLCONF ip-address` (the replica's `replica-announce-ip`): shown instead of the
    /// link's peer address.
    pub ip_address: Option<String>,
    /// `capa ferrocache`: it takes rich frames and `.fcs` full syncs.
    pub ferrocache: bool,
}

/// A replica's `PSYNC replid offset` (`SYNC` is `PSYNC ? -1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psync {
    pub replid: String,
    pub offset: i64,
    pub hello: Hello,
}

/// Why a link ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    #[error("the replica fell behind the backlog")]
    Outrun,
    #[error("the snapshot could not be converted for a Redis replica: {0}")]
    Export(#[from] crate::persist::rdb::ExportError),
    #[error("no ack for {0} ms")]
    Timeout(u64),
}

/// Takes over `stream`, whose connection sent `psync`, on a thread of its own.
pub fn attach(shared: Arc<Shared>, stream: TcpStream, psync: Psync) {
    let ip = match &psync.hello.ip_address {
        Some(announced) => announced.clone(),
        None => stream
            .peer_addr()
            .map_or_else(|_| "?".into(), |a| a.ip().to_string()),
    };
    let attached = shared
        .replication
        .attach_info(ip, psync.hello.listening_port);
    let name = format!("replica-link-{}", attached.id);
    let repl = shared.replication.clone();
    let spawned = std::thread::Builder::new().name(name).spawn({
        let attached = attached.clone();
        move || {
            let peer = format!("{}:{}", attached.ip, attached.port.load(Ordering::Relaxed));
            // However the link ends, the socket is shut down, so the acks thread's read
            // returns too (it holds a duplicate of the descriptor).
            let closer = stream.try_clone().ok();
            let result = serve(&shared, stream, &psync, &attached);
            if let Some(closer) = closer {
                let _ = closer.shutdown(std::net::Shutdown::Both);
            }
            match result {
                Ok(()) => log::info!("replica {peer}: link closed"),
                Err(error) => log::warn!("replica {peer}: link dropped: {error}"),
            }
            attached.closed.store(true, Ordering::Relaxed);
            shared.replication.detach(attached.id);
        }
    });
    if spawned.is_err() {
        log::warn!("could not start a thread for a replica link");
        repl.detach(attached.id);
    }
}

fn serve(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    psync: &Psync,
    attached: &Arc<Attached>,
) -> Result<(), LinkError> {
    let repl = &shared.replication;
    let generation = repl.generation();
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let rich = psync.hello.ferrocache;
    let tail = if rich { " ferrocache" } else { "" };
    let mut cursor;
    if repl.can_continue(&psync.replid, psync.offset) {
        cursor = psync.offset as u64 - 1;
        let replid = repl.ids().replid;
        stream.write_all(format!("+CONTINUE {replid}{tail}\r\n").as_bytes())?;
        repl.syncs.partial_ok.fetch_add(1, Ordering::Relaxed);
        log::info!("replica accepted for partial resync at offset {cursor}");
    } else {
        if psync.replid != "?" {
            repl.syncs.partial_err.fetch_add(1, Ordering::Relaxed);
        }
        repl.syncs.full.fetch_add(1, Ordering::Relaxed);
        // One snapshot in memory at a time; held until it is sent.
        let _turn = repl.full_sync.lock();
        // The stream from here on is replayed over the snapshot taken after this point.
        cursor = repl.activate();
        let replid = repl.ids().replid;
        *attached.state.lock() = "wait_bgsave";
        let now = unix_millis();
        let mut snapshot = Vec::new();
        let (items, _) = crate::persist::write_snapshot(&shared.store, now, &mut snapshot)?;
        let payload = if rich {
            snapshot
        } else {
            let mut rdb = Vec::with_capacity(snapshot.len());
            crate::persist::rdb::export(&snapshot, now, &mut rdb)?;
            rdb
        };
        log::info!(
            "full sync: {items} items, {} bytes, from offset {cursor}",
            payload.len()
        );
        // Only a sync that is whole in hand is announced: a snapshot that cannot be sent
        // (an RDB export refused) drops the link before +FULLRESYNC, so the replica keeps
        // its data (valkey#2588), and retries.
        *attached.state.lock() = "send_bulk";
        stream.write_all(format!("+FULLRESYNC {replid} {cursor}{tail}\r\n").as_bytes())?;
        stream.write_all(format!("${}\r\n", payload.len()).as_bytes())?;
        stream.write_all(&payload)?;
    }
    *attached.state.lock() = "online";
    attached.last_ack_ms.store(unix_millis(), Ordering::Relaxed);
    let reader = stream.try_clone()?;
    let acks = attached.clone();
    let acks_shared = shared.clone();
    let _ = std::thread::Builder::new()
        .name(format!("replica-acks-{}", attached.id))
        .spawn(move || read_acks(reader, &acks, &acks_shared));
    let mut out = Vec::with_capacity(BATCH_BYTES + 4096);
    let mut bad_frame = false;
    loop {
        if attached.closed.load(Ordering::Relaxed)
            || repl.generation() != generation
            || shared.is_shutting_down()
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Ok(());
        }
        let silent = unix_millis().saturating_sub(attached.last_ack_ms.load(Ordering::Relaxed));
        if silent > REPL_TIMEOUT_MS {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return Err(LinkError::Timeout(silent));
        }
        out.clear();
        let read = repl
            .backlog
            .read_after(cursor, IDLE_WAIT, BATCH_BYTES, |record| {
                if rich {
                    frame::put_wire(&record.frame, record.resp_len, &mut out);
                } else if frame::render_resp(&record.frame, &mut out).is_err() {
                    bad_frame = true;
                }
            });
        match read {
            Ok(next) => cursor = next,
            Err(Position::Lost | Position::Held) => {
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return Err(LinkError::Outrun);
            }
        }
        if bad_frame {
            // Cannot happen: the backlog holds only frames this process encoded.
            log::error!("a backlog record did not render as RESP; dropping the replica");
            return Err(LinkError::Outrun);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            if out.len() < SMALL_BATCH {
                // A small batch: let a few more records gather before the next write, one
                // syscall for many (adds at most this much to the lag).
                std::thread::sleep(GATHER);
            }
        }
    }
}

/// Reads what the replica sends (`REPLCONF ACK <offset> [FACK <offset>]`), until it closes.
fn read_acks(mut stream: TcpStream, attached: &Attached, shared: &Shared) {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let limits = resp::Limits::default();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        loop {
            match resp::parse(&buf, &limits) {
                Ok(Some((command, used))) => {
                    let args = &command.args;
                    if args.len() >= 3
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"ack")
                    {
                        if let Some(offset) = std::str::from_utf8(&args[2])
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                        {
                            attached.ack_offset.store(offset, Ordering::Relaxed);
                        }
                        let now = unix_millis();
                        attached.last_ack_ms.store(now, Ordering::Relaxed);
                        // A WAIT this ack satisfies is answered now, not at the next cron.
                        super::runner::serve_waits(shared, now);
                    }
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => {
                    attached.closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        if buf.len() > 1 << 20 {
            break; // a replica says nothing this long
        }
    }
    attached.closed.store(true, Ordering::Relaxed);
}
