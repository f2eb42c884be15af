//! The byte streams a connection can run over: TCP, unix sockets, and TLS over TCP.
//!
//! [`Transport`] is an enum rather than a trait object so the hot read/write path is a match,
//! not a virtual call; it registers with mio like the stream it wraps.
//!
//! A TLS stream never blocks and owns no thread: its handshake advances inside `read` and
//! `write` as the socket becomes ready (records the socket did not take stay in rustls and go
//! out at the next [`Transport::push_pending`]), so a slow or stalled handshake costs the
//! worker nothing but the connection's slot. It never interprets the plaintext.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

pub enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Boxed: a rustls connection is far larger than a socket.
    Tls(Box<TlsStream>),
}

/// A rustls server connection over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: rustls::ServerConnection,
    /// The peer's certificate was handed out (once, after the handshake).
    certificate_taken: bool,
}

impl TlsStream {
    /// A server-side TLS stream on an accepted socket; the handshake starts with the first
    /// bytes the client sends.
    pub fn new(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            tcp,
            tls: rustls::ServerConnection::new(config)?,
            certificate_taken: false,
        })
    }

    /// Decrypted bytes into `buf`: what rustls already holds, else what the socket has.
    /// `WouldBlock` only once both are empty; `Ok(0)` at the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            if let Err(e) = self.tls.process_new_packets() {
                // Tell the peer why (the alert rustls queued), then give up on it.
                let _ = self.push_pending();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages (or a key update) to answer with.
            self.push_pending()?;
        }
    }

    /// Encrypts what rustls will take of `buf` and sends what the socket will take.
    /// `WouldBlock` while earlier records are still unsent or rustls's buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tls.wants_write() {
            self.push_records()?;
        }
        let n = self.tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            // Buffered up to rustls's limit during the handshake: the client's next
            // handshake message (a readable event) moves things on.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.push_pending()?;
        Ok(n)
    }

    /// Sends queued TLS records until none is left (`WouldBlock` when the socket is full).
    fn push_records(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// [`push_records`](Self::push_records), where a full socket is no error.
    fn push_pending(&mut self) -> io::Result<()> {
        match self.push_records() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// The peer's certificate chain, leaf first, once the handshake has checked it.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }
}

impl Transport {
    /// A printable peer address for logs and `stats conns`.
    pub fn peer(&self) -> String {
        match self {
            Transport::Tcp(stream) => stream
                .peer_addr()
                .map_or_else(|_| "tcp:?".to_string(), |addr| format!("tcp:{addr}")),
            Transport::Unix(_) => "unix:".to_string(),
            Transport::Tls(stream) => stream
                .tcp
                .peer_addr()
                .map_or_else(|_| "tls:?".to_string(), |addr| format!("tls:{addr}")),
        }
    }

    /// A printable local address (CLIENT LIST `laddr`), in [`Transport::peer`]'s form.
    pub fn local(&self) -> String {
        match self {
            Transport::Tcp(stream) => stream
                .local_addr()
                .map_or_else(|_| "tcp:?".to_string(), |addr| format!("tcp:{addr}")),
            Transport::Unix(stream) => stream
                .local_addr()
                .ok()
                .and_then(|addr| addr.as_pathname().map(|p| p.display().to_string()))
                .map_or_else(|| "unix:".to_string(), |path| format!("unix:{path}")),
            Transport::Tls(stream) => stream
                .tcp
                .local_addr()
                .map_or_else(|_| "tls:?".to_string(), |addr| format!("tls:{addr}")),
        }
    }

    /// The socket's file descriptor (CLIENT LIST `fd`).
    /// A blocking-capable copy of a plain TCP connection's socket (a duplicated descriptor),
    /// for a thread that takes the connection over; `None` for unix sockets and TLS.
    pub fn dup_tcp(&self) -> Option<std::net::TcpStream> {
        use std::os::fd::AsFd;
        match self {
            Transport::Tcp(stream) => stream
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(std::net::TcpStream::from),
            _ => None,
        }
    }

    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Transport::Tcp(stream) => stream.as_raw_fd(),
            Transport::Unix(stream) => stream.as_raw_fd(),
            Transport::Tls(stream) => stream.tcp.as_raw_fd(),
        }
    }

    /// Sends output the transport holds beyond what `write` reported taken (TLS records the
    /// socket had no room for); a full socket is no error, [`Transport::has_pending`] stays
    /// true and a writable event brings the connection back.
    pub fn push_pending(&mut self) -> io::Result<()> {
        match self {
            Transport::Tls(stream) => stream.push_pending(),
            _ => Ok(()),
        }
    }

    /// The peer's verified certificate (DER, leaf), once, as soon as the TLS handshake is
    /// done; None on other transports, before, after, and for a client that sent none.
    pub fn take_peer_certificate(&mut self) -> Option<Vec<u8>> {
        match self {
            Transport::Tls(stream) if !stream.certificate_taken && !stream.tls.is_handshaking() => {
                stream.certificate_taken = true;
                stream
                    .peer_certificates()?
                    .first()
                    .map(|cert| cert.to_vec())
            }
            _ => None,
        }
    }

    /// Whether the transport holds output not yet on the socket.
    pub fn has_pending(&self) -> bool {
        match self {
            Transport::Tls(stream) => stream.tls.wants_write(),
            _ => false,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.read(buf),
            Transport::Unix(stream) => stream.read(buf),
            Transport::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.write(buf),
            Transport::Unix(stream) => stream.write(buf),
            Transport::Tls(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.write_vectored(bufs),
            Transport::Unix(stream) => stream.write_vectored(bufs),
            // rustls copies whatever it takes into its records: one piece at a time costs no
            // more than a gathered write there.
            Transport::Tls(stream) => match bufs.iter().find(|buf| !buf.is_empty()) {
                Some(buf) => stream.write(buf),
                None => Ok(0),
            },
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.flush(),
            Transport::Unix(stream) => stream.flush(),
            Transport::Tls(stream) => stream.push_records(),
        }
    }
}

impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.register(registry, token, interests),
            Transport::Unix(stream) => stream.register(registry, token, interests),
            Transport::Tls(stream) => stream.tcp.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.reregister(registry, token, interests),
            Transport::Unix(stream) => stream.reregister(registry, token, interests),
            Transport::Tls(stream) => stream.tcp.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.deregister(registry),
            Transport::Unix(stream) => stream.deregister(registry),
            Transport::Tls(stream) => stream.tcp.deregister(registry),
        }
    }
}
