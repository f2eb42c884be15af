//! The HTTP port's I/O: one thread with its own `mio::Poll`, keep-alive connections, request
//! heads parsed by `httparse`, bodies framed by `Content-Length`, limits on both.
//!
//! Off unless `[http] listen` (or `--http-port`) is set; HTTPS with `[http] tls`, through the
//! same non-blocking TLS transport and the same certificate settings as the memcached and RESP
//! TLS ports (so a reload reaches new HTTPS connections too, and a handshake never blocks the
//! thread's other connections). Connections count against the same
//! `max_connections` as the memcached and RESP ports, and the same counters (`bytes_read`,
//! `curr_connections`, ...), in the thread's own slot ([`Shared::http_slot`]). What a request
//! means is [`crate::command::http`]'s business; this module only moves bytes and frames.
//!
//! Never: interpret a route or touch the store, or grow a buffer past its limit (a head over
//! `max_header_bytes` gets 431, a body over `max_body_bytes` 413, both then close), or keep
//! a connection silent for over `idle_timeout_secs` (closed, counted as `idle_kicks`).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::command::http::{handle, AdminToken, HttpRequest, HttpResponse};
use crate::command::Context;
use crate::config::HttpSection;
use crate::server::transport::{TlsStream, Transport};
use crate::shared::{unix_millis, Shared};

/// Most headers a request may carry (more gets 431).
const MAX_HEADERS: usize = 64;
/// Past this much unsent output, a connection's input is not read until it drains.
const MAX_PENDING_OUTPUT: usize = 4 * 1024 * 1024;
const LISTENER: Token = Token(usize::MAX);

/// Why the HTTP port could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("http.listen: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("http.listen: {0:?} is not an ip:port address")]
    Address(String),
    #[error("http.admin_token_file: cannot read {path}: {source}")]
    TokenFile { path: PathBuf, source: io::Error },
    #[error("http.admin_token_file: {0} holds no token")]
    EmptyToken(PathBuf),
}

/// The bound, not yet running, HTTP port.
pub struct HttpPort {
    listener: TcpListener,
    token: AdminToken,
    max_header_bytes: usize,
    max_body_bytes: usize,
    /// Silence after which a connection closes, in ms (0 = never).
    idle_timeout_ms: u64,
    /// HTTPS: connections speak TLS with `Shared::tls`'s current configuration.
    tls: bool,
}

impl HttpPort {
    /// Binds the listener and reads the admin token (both before any thread starts, so a bad
    /// setting fails the start with one line).
    pub fn bind(config: &HttpSection) -> Result<HttpPort, HttpError> {
        let addr: SocketAddr = config
            .listen
            .parse()
            .map_err(|_| HttpError::Address(config.listen.clone()))?;
        let listener =
            TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
        let token = if !config.admin_token.is_empty() {
            Some(config.admin_token.as_bytes().to_vec())
        } else if !config.admin_token_file.as_os_str().is_empty() {
            let path = &config.admin_token_file;
            let text = std::fs::read_to_string(path).map_err(|source| HttpError::TokenFile {
                path: path.clone(),
                source,
            })?;
            let line = text.lines().next().unwrap_or("").trim();
            if line.is_empty() {
                return Err(HttpError::EmptyToken(path.clone()));
            }
            Some(line.as_bytes().to_vec())
        } else {
            if !addr.ip().is_loopback() {
                log::warn!(
                    "HTTP admin routes on {addr} are open: set http.admin_token or admin_token_file"
                );
            }
            None
        };
        Ok(HttpPort {
            listener,
            token: AdminToken(token),
            max_header_bytes: config.max_header_bytes.bytes() as usize,
            max_body_bytes: config.max_body_bytes.bytes() as usize,
            idle_timeout_ms: config.idle_timeout_secs.saturating_mul(1000),
            tls: config.tls,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until shutdown.
    pub fn run(mut self, shared: Arc<Shared>) {
        let mut poll = match Poll::new() {
            Ok(poll) => poll,
            Err(e) => {
                log::error!("http: cannot create a poll: {e}");
                return;
            }
        };
        if let Err(e) = poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)
        {
            log::error!("http: cannot register the listener: {e}");
            return;
        }
        let mut conns: Slab<Conn> = Slab::new();
        let mut events = Events::with_capacity(256);
        let slot = shared.http_slot();
        while !shared.is_shutting_down() {
            // The shutdown flag is looked at every 250 ms at least.
            if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(250))) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("http: poll failed: {e}");
                    return;
                }
            }
            let ctx = Context {
                shared: &shared,
                stats: &shared.worker_stats[slot],
                worker: slot,
                now_ms: unix_millis(),
            };
            if self.idle_timeout_ms > 0 {
                let idle: Vec<usize> = conns
                    .iter()
                    .filter(|(_, conn)| {
                        ctx.now_ms.saturating_sub(conn.last_active_ms) > self.idle_timeout_ms
                    })
                    .map(|(key, _)| key)
                    .collect();
                for key in idle {
                    let mut conn = conns.remove(key);
                    let _ = poll.registry().deregister(&mut conn.stream);
                    shared.clients.idle_kicked();
                    shared
                        .connections
                        .curr_connections
                        .fetch_sub(1, Ordering::Relaxed);
                }
            }
            for event in events.iter() {
                if event.token() == LISTENER {
                    self.accept_all(&poll, &mut conns, &shared);
                    continue;
                }
                let key = event.token().0;
                let Some(conn) = conns.get_mut(key) else {
                    continue;
                };
                if conn.turn(&self, &ctx).is_err() || conn.done() {
                    let mut conn = conns.remove(key);
                    let _ = poll.registry().deregister(&mut conn.stream);
                    shared
                        .connections
                        .curr_connections
                        .fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        for mut conn in conns.drain() {
            let _ = poll.registry().deregister(&mut conn.stream);
            shared
                .connections
                .curr_connections
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn accept_all(&mut self, poll: &Poll, conns: &mut Slab<Conn>, shared: &Shared) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("http: accept failed: {e}");
                    // Out of descriptors and the like: back off instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                    return;
                }
            };
            let counts = &shared.connections;
            if counts.curr_connections.load(Ordering::Relaxed)
                >= shared.config.server.max_connections as u64
            {
                counts.rejected_connections.fetch_add(1, Ordering::Relaxed);
                // Over TLS the refusal would need a handshake first: the client just sees
                // the connection close.
                if !self.tls {
                    let mut refusal = Vec::new();
                    write_response(
                        &mut refusal,
                        &HttpResponse::error(503, "max number of clients reached"),
                        false,
                    );
                    let _ = stream.write(&refusal);
                }
                continue;
            }
            let _ = stream.set_nodelay(true);
            let mut stream = match (self.tls, &shared.tls) {
                (false, _) => Transport::Tcp(stream),
                (true, Some(tls)) => match TlsStream::new(stream, tls.server_config()) {
                    Ok(stream) => Transport::Tls(Box::new(stream)),
                    Err(e) => {
                        log::warn!("http: cannot start a TLS session: {e}");
                        continue;
                    }
                },
                (true, None) => {
                    // Server::start builds the TLS state whenever http.tls is set.
                    log::error!("http: http.tls is set but no TLS configuration was loaded");
                    continue;
                }
            };
            let entry = conns.vacant_entry();
            if poll
                .registry()
                .register(
                    &mut stream,
                    Token(entry.key()),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            counts.curr_connections.fetch_add(1, Ordering::Relaxed);
            counts.total_connections.fetch_add(1, Ordering::Relaxed);
            entry.insert(Conn {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                close_after_output: false,
                peer_closed: false,
                continue_sent: false,
                last_active_ms: unix_millis(),
            });
        }
    }
}

/// One client connection.
struct Conn {
    stream: Transport,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Close once `output` is sent (Connection: close, or an error that ends the framing).
    close_after_output: bool,
    peer_closed: bool,
    /// A `100 Continue` went out for the request at the front of `input`.
    continue_sent: bool,
    /// When it last sent or took bytes (for `idle_timeout_secs`).
    last_active_ms: u64,
}

/// What the front of the input holds.
enum Framed {
    /// A whole request: (head length, body length).
    Request(usize, usize),
    /// Not all of it yet.
    Incomplete,
}

impl Conn {
    /// Whether the connection is finished with.
    fn done(&self) -> bool {
        self.output.is_empty()
            && !self.stream.has_pending()
            && (self.close_after_output || self.peer_closed)
    }

    /// Reads what arrived, answers every whole request, writes what it can.
    fn turn(&mut self, port: &HttpPort, ctx: &Context<'_>) -> io::Result<()> {
        loop {
            self.flush(ctx)?;
            if self.close_after_output || self.peer_closed {
                return Ok(());
            }
            if self.output.len() > MAX_PENDING_OUTPUT {
                // The client is not reading its replies: wait for a writable event.
                return Ok(());
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.last_active_ms = ctx.now_ms;
                    ctx.stats.add(&ctx.stats.bytes_read, n as u64);
                    self.input.extend_from_slice(&chunk[..n]);
                    self.serve(port, ctx);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self, ctx: &Context<'_>) -> io::Result<()> {
        // TLS records (a handshake's, or earlier replies') the socket had no room for.
        self.stream.push_pending()?;
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.last_active_ms = ctx.now_ms;
                    ctx.stats.add(&ctx.stats.bytes_written, n as u64);
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Answers the whole requests at the front of the input.
    fn serve(&mut self, port: &HttpPort, ctx: &Context<'_>) {
        while !self.close_after_output && !self.input.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            let head_len = match request.parse(&self.input) {
                Ok(httparse::Status::Complete(len)) if len <= port.max_header_bytes => len,
                Ok(httparse::Status::Complete(_)) => {
                    return self.refuse(431, "request head too large");
                }
                Ok(httparse::Status::Partial) if self.input.len() > port.max_header_bytes => {
                    return self.refuse(431, "request head too large");
                }
                Ok(httparse::Status::Partial) => return,
                Err(httparse::Error::TooManyHeaders) => {
                    return self.refuse(431, "too many headers");
                }
                Err(e) => return self.refuse(400, &format!("bad request: {e}")),
            };
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value)
            };
            if header("transfer-encoding").is_some() {
                return self.refuse(411, "a Content-Length is required");
            }
            let body_len = match header("content-length") {
                None => 0,
                Some(value) => match std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                {
                    Some(n) => n,
                    None => return self.refuse(400, "bad Content-Length"),
                },
            };
            if body_len > port.max_body_bytes {
                return self.refuse(413, "body too large");
            }
            let framed = if self.input.len() >= head_len + body_len {
                Framed::Request(head_len, body_len)
            } else {
                Framed::Incomplete
            };
            let (head_len, body_len) = match framed {
                Framed::Request(head, body) => (head, body),
                Framed::Incomplete => {
                    let expects =
                        header("expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
                    if expects && !self.continue_sent {
                        self.output
                            .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.continue_sent = true;
                    }
                    return;
                }
            };
            // HTTP/1.1 keeps the connection unless told to close; 1.0 closes unless asked.
            let connection = header("connection").unwrap_or(b"");
            let keep_alive = if request.version == Some(0) {
                connection.eq_ignore_ascii_case(b"keep-alive")
            } else {
                !connection.eq_ignore_ascii_case(b"close")
            };
            let parsed = HttpRequest {
                method: request.method.unwrap_or(""),
                target: request.path.unwrap_or("/"),
                pool: header("x-pool"),
                authorization: header("authorization"),
                body: &self.input[head_len..head_len + body_len],
            };
            let response = handle(&parsed, ctx, &port.token);
            write_response(&mut self.output, &response, keep_alive);
            self.input.drain(..head_len + body_len);
            self.continue_sent = false;
            if !keep_alive {
                self.close_after_output = true;
            }
        }
    }

    /// Answers an unframeable request and closes: what follows it cannot be trusted.
    fn refuse(&mut self, status: u16, message: &str) {
        write_response(
            &mut self.output,
            &HttpResponse::error(status, message),
            false,
        );
        self.input.clear();
        self.close_after_output = true;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "",
    }
}

fn write_response(out: &mut Vec<u8>, response: &HttpResponse, keep_alive: bool) {
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nCache-Control: no-store\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        if keep_alive { "keep-alive" } else { "close" },
    );
    // A 204 carries neither a body nor its length (RFC 9110 §8.6).
    if response.status != 204 {
        let _ = write!(
            out,
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            response.content_type,
            response.body.len()
        );
    }
    if response.status == 401 {
        out.extend_from_slice(b"WWW-Authenticate: Bearer\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
}
