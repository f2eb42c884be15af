//! The replica's side: one thread that follows the primary named by `REPLICAOF` (or
//! `replicaof` in the config): it connects, shakes hands as Redis does (`AUTH` when
//! `masterauth` is set, `PING`, `REPLCONF listening-port`, `REPLCONF capa eof capa psync2
//! capa ferrocache`, `PSYNC`), loads a full sync or continues, then applies the stream through
//! the store's write path, acks its offset every second, and reconnects when the link drops.
//!
//! Received records are also appended to this server's own backlog, verbatim and at the
//! primary's offsets, so replicas of this replica (chained) and a promotion (PSYNC2) continue
//! the same stream. The thread stops when the role changes (its generation is old). It
//! never serves a client; the only writes it makes are the primary's.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::frame::{self, Decoded, FrameError};
use crate::persist::format::RecordValue;
use crate::shared::{unix_millis, Shared};
use crate::store::{Mutation, RestoredValue};

/// Largest full sync accepted (the primary's snapshot is held whole before it is loaded).
const MAX_SYNC_BYTES: usize = 16 << 30;
/// Largest single frame accepted.
const MAX_FRAME_BYTES: usize = 1 << 30;
/// Longest reply line in the handshake.
const MAX_LINE: usize = 4096;

/// Why a session with the primary ended.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("the primary answered {command} with: {reply}")]
    Refused {
        command: &'static str,
        reply: String,
    },
    #[error("the primary is not a ferrocache server (a stock Redis primary is not followed yet)")]
    NotFerrocache,
    #[error("a malformed reply from the primary: {0}")]
    Protocol(String),
    #[error("the full sync was refused: {0}")]
    Load(#[from] crate::persist::format::FormatError),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("the role changed")]
    Stopped,
}

/// Starts the thread that follows `host:port`, for role generation `generation`.
pub fn start(shared: Arc<Shared>, host: String, port: u16, generation: u64) {
    let spawned = std::thread::Builder::new()
        .name("replica-of".into())
        .spawn(move || follow(&shared, &host, port, generation));
    if spawned.is_err() {
        log::error!("could not start the replication thread");
    }
}

fn current(shared: &Shared, generation: u64) -> bool {
    shared.replication.generation() == generation && !shared.is_shutting_down()
}

fn follow(shared: &Arc<Shared>, host: &str, port: u16, generation: u64) {
    while current(shared, generation) {
        match session(shared, host, port, generation) {
            Ok(()) | Err(UpstreamError::Stopped) => {}
            Err(error) => log::warn!("replication with {host}:{port}: {error}"),
        }
        {
            let mut up = shared.replication.upstream.lock();
            if up.link_up || up.down_since_ms == 0 {
                up.down_since_ms = unix_millis();
            }
            up.link_up = false;
            up.sync_in_progress = false;
        }
        // Retry about once a second, as Redis's replicationCron does.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && current(shared, generation) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A blocking connection to the primary with a read buffer.
struct Link {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Link {
    fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out)
    }

    /// Reads more into the buffer; `Ok(false)` on a read timeout.
    fn fill(&mut self) -> Result<bool, UpstreamError> {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// One reply line (without CRLF). Redis sends bare `\n` keepalives while it prepares
    /// a full sync: they are skipped.
    fn line(&mut self, shared: &Shared, generation: u64) -> Result<String, UpstreamError> {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(UpstreamError::Protocol("reply line too long".into()));
            }
            if !current(shared, generation) {
                return Err(UpstreamError::Stopped);
            }
            self.fill()?;
        }
    }

    /// Sends a command and expects a reply that is not an error.
    fn ask(
        &mut self,
        shared: &Shared,
        generation: u64,
        command: &'static str,
        args: &[&[u8]],
    ) -> Result<String, UpstreamError> {
        self.send(args)?;
        let reply = self.line(shared, generation)?;
        if reply.starts_with('-') {
            return Err(UpstreamError::Refused { command, reply });
        }
        Ok(reply)
    }
}

fn session(
    shared: &Arc<Shared>,
    host: &str,
    port: u16,
    generation: u64,
) -> Result<(), UpstreamError> {
    let repl = &shared.replication;
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| UpstreamError::Resolve(format!("{host}:{port}")))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    if current(shared, generation) {
        *repl.upstream_socket.lock() = stream.try_clone().ok();
    }
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut link = Link {
        stream,
        buf: Vec::new(),
    };
    let settings = &shared.config.replication;
    if !settings.masterauth.is_empty() {
        if settings.masteruser.is_empty() {
            link.ask(
                shared,
                generation,
                "AUTH",
                &[b"AUTH", settings.masterauth.as_bytes()],
            )?;
        } else {
            link.ask(
                shared,
                generation,
                "AUTH",
                &[
                    b"AUTH",
                    settings.masteruser.as_bytes(),
                    settings.masterauth.as_bytes(),
                ],
            )?;
        }
    }
    link.ask(shared, generation, "PING", &[b"PING"])?;
    let identity = &repl.identity;
    let port_text = identity
        .listening_port(shared.config.server.resp_port)
        .to_string();
    link.ask(
        shared,
        generation,
        "REPLCONF",
        &[b"REPLCONF", b"listening-port", port_text.as_bytes()],
    )?;
    // Redis sends ip-address only when replica-announce-ip is set.
    let announce_ip = identity.announce_ip();
    if !announce_ip.is_empty() {
        link.ask(
            shared,
            generation,
            "REPLCONF",
            &[b"REPLCONF", b"ip-address", announce_ip.as_bytes()],
        )?;
    }
    link.ask(
        shared,
        generation,
        "REPLCONF",
        &[
            b"REPLCONF",
            b"capa",
            b"eof",
            b"capa",
            b"psync2",
            b"capa",
            b"ferrocache",
        ],
    )?;
    let ids = repl.ids();
    let (replid, offset) = if repl.backlog.is_active() {
        (ids.replid.clone(), (repl.offset() + 1).to_string())
    } else {
        ("?".to_string(), "-1".to_string())
    };
    let reply = link.ask(
        shared,
        generation,
        "PSYNC",
        &[b"PSYNC", replid.as_bytes(), offset.as_bytes()],
    )?;
    let words: Vec<&str> = reply.split_whitespace().collect();
    if words.last() != Some(&"ferrocache") {
        return Err(UpstreamError::NotFerrocache);
    }
    match words.first().copied() {
        Some("+FULLRESYNC") if words.len() == 4 => {
            let primary_id = words[1].to_string();
            let offset: u64 = words[2]
                .parse()
                .map_err(|_| UpstreamError::Protocol(reply.clone()))?;
            repl.upstream.lock().sync_in_progress = true;
            let snapshot = read_bulk(&mut link, shared, generation)?;
            let now = unix_millis();
            // Our data goes only once the primary's is here whole and checked.
            crate::persist::format::read_header(&snapshot)?;
            crate::persist::format::blocks(&snapshot)?;
            shared.store.apply(Mutation::FlushAll { at_ms: None }, now);
            // Every core: the load is what a full sync waits for (the workers meanwhile
            // serve only reads of a replica, and little of them).
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            // Clients are told LOADING meanwhile, as a Redis replica loading its RDB does.
            let persistence = &shared.persistence;
            persistence.set_loading(true);
            let loaded = crate::persist::load_bytes(
                &shared.store,
                &snapshot,
                now,
                threads,
                &persistence.progress,
            );
            persistence.set_loading(false);
            let report = loaded?;
            log::info!(
                "full sync from {host}:{port}: {} items loaded at offset {offset}",
                report.loaded
            );
            repl.synced(&primary_id, offset);
            repl.upstream.lock().sync_in_progress = false;
        }
        Some("+CONTINUE") => {
            if words.len() == 3 {
                repl.continued(words[1]);
            }
            log::info!(
                "partial resync with {host}:{port} from offset {}",
                repl.offset()
            );
        }
        _ => return Err(UpstreamError::Protocol(reply)),
    }
    {
        let mut up = repl.upstream.lock();
        up.link_up = true;
        up.last_io_ms = unix_millis();
        up.down_since_ms = 0;
    }
    stream_loop(&mut link, shared, generation)
}

/// Reads `$<len>\r\n` and then that many bytes.
fn read_bulk(link: &mut Link, shared: &Shared, generation: u64) -> Result<Vec<u8>, UpstreamError> {
    let header = link.line(shared, generation)?;
    let len: usize = header
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|&n| n <= MAX_SYNC_BYTES)
        .ok_or_else(|| UpstreamError::Protocol(format!("bulk header {header:?}")))?;
    let mut bytes = std::mem::take(&mut link.buf);
    if bytes.len() > len {
        link.buf = bytes.split_off(len);
    }
    bytes.reserve(len - bytes.len());
    while bytes.len() < len {
        if !current(shared, generation) {
            return Err(UpstreamError::Stopped);
        }
        let mut chunk = vec![0u8; (len - bytes.len()).min(1 << 20)];
        match link.stream.read(&mut chunk) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(bytes)
}

fn stream_loop(
    link: &mut Link,
    shared: &Arc<Shared>,
    generation: u64,
) -> Result<(), UpstreamError> {
    let repl = &shared.replication;
    let mut last_ack = Instant::now() - Duration::from_secs(1);
    loop {
        let mut used = 0;
        let mut applied = false;
        while let Some((frame, resp_len, len)) =
            frame::take_wire(&link.buf[used..], MAX_FRAME_BYTES)?
        {
            apply(shared, frame)?;
            repl.backlog.append(frame, resp_len, unix_millis());
            used += len;
            applied = true;
        }
        link.buf.drain(..used);
        if applied {
            repl.upstream.lock().last_io_ms = unix_millis();
        }
        if !current(shared, generation) {
            return Err(UpstreamError::Stopped);
        }
        if applied || last_ack.elapsed() >= Duration::from_secs(1) {
            let offset = repl.offset().to_string();
            link.send(&[b"REPLCONF", b"ACK", offset.as_bytes()])?;
            last_ack = Instant::now();
        }
        if link.fill()? {
            repl.upstream.lock().last_io_ms = unix_millis();
        }
    }
}

/// Applies one record through the store's write path.
fn apply(shared: &Shared, frame: &[u8]) -> Result<(), UpstreamError> {
    let store = &shared.store;
    let now = unix_millis();
    match frame::decode(frame)? {
        Decoded::Put(record) => {
            if record.expiry_ms != 0 && record.expiry_ms <= now {
                // Already past here: what the key held must not outlive it.
                store.apply(Mutation::Unlink { key: record.key }, now);
                return Ok(());
            }
            let value = match record.value {
                RecordValue::String { bytes, compressed } => {
                    RestoredValue::String { bytes, compressed }
                }
                RecordValue::Object(object) => RestoredValue::Object(object),
            };
            if let Err(error) = store.restore(
                record.key,
                value,
                record.flags,
                record.cas,
                record.expiry_ms,
                now,
            ) {
                log::warn!(
                    "replication: key {:?} not applied: {error}",
                    String::from_utf8_lossy(&record.key[..record.key.len().min(64)])
                );
            }
            store.restore_memory_bound(now);
        }
        Decoded::Del(key) => {
            store.apply(Mutation::Unlink { key }, now);
        }
        Decoded::Flush => {
            store.apply(Mutation::FlushAll { at_ms: None }, now);
        }
        // Every applied batch is acked at once (stream_loop), this one included.
        Decoded::Ping | Decoded::GetAck => {}
    }
    Ok(())
}
