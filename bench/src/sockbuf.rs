//! Non-blocking socket buffering shared by the load runner and the soak mode: writing out a
//! pending output buffer and reading into a growable input buffer.
//!
//! Invariants: `wbuf[wpos..]` is what is still to be sent; `rbuf[rstart..rend]` is received
//! and not yet parsed.

use std::io::{self, Read, Write};
use std::time::Duration;

use mio::net::TcpStream;

/// How long the runner and the soak mode wait for replies still in flight once their
/// measured time is over.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Writes as much of `wbuf[wpos..]` as the socket takes; empties the buffer once all is sent.
pub fn flush(stream: &mut TcpStream, wbuf: &mut Vec<u8>, wpos: &mut usize) -> io::Result<()> {
    while *wpos < wbuf.len() {
        match stream.write(&wbuf[*wpos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *wpos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if *wpos == wbuf.len() {
        wbuf.clear();
        *wpos = 0;
    }
    Ok(())
}

/// Reads what the socket has into `rbuf[rend..]`, compacting or growing the buffer as needed;
/// false if the server closed the connection. With `stop_on_short_read`, a read that did not
/// fill the room ends the loop (the queue is empty; an edge-triggered poll reports new data).
pub fn fill(
    stream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
    rstart: &mut usize,
    rend: &mut usize,
    stop_on_short_read: bool,
) -> io::Result<bool> {
    loop {
        if *rend == rbuf.len() {
            if *rstart > 0 {
                rbuf.copy_within(*rstart..*rend, 0);
                *rend -= *rstart;
                *rstart = 0;
            } else {
                let grown = rbuf.len() * 2;
                rbuf.resize(grown, 0);
            }
        }
        match stream.read(&mut rbuf[*rend..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                let room = rbuf.len() - *rend;
                *rend += n;
                if stop_on_short_read && n < room {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
