//! The byte streams a connection can run over: TCP and unix sockets (TLS joins later).
//!
//! [`Transport`] is an enum rather than a trait object so the hot read/write path is a match,
//! not a virtual call; it registers with mio like the stream it wraps.

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

pub enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Transport {
    /// A printable peer address for logs and `stats conns`.
    pub fn peer(&self) -> String {
        match self {
            Transport::Tcp(stream) => stream
                .peer_addr()
                .map_or_else(|_| "tcp:?".to_string(), |addr| format!("tcp:{addr}")),
            Transport::Unix(_) => "unix:".to_string(),
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
        }
    }

    /// The socket's file descriptor (CLIENT LIST `fd`).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Transport::Tcp(stream) => stream.as_raw_fd(),
            Transport::Unix(stream) => stream.as_raw_fd(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.read(buf),
            Transport::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.write(buf),
            Transport::Unix(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Tcp(stream) => stream.write_vectored(bufs),
            Transport::Unix(stream) => stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.flush(),
            Transport::Unix(stream) => stream.flush(),
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
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.deregister(registry),
            Transport::Unix(stream) => stream.deregister(registry),
        }
    }
}
