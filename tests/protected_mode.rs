//! Protected mode on the real binary: with no password, clients from beyond loopback are
//! refused with Redis's DENIED text on RESP and a SERVER_ERROR on the memcached port, until
//! `CONFIG SET protected-mode no`, `--protected-mode no`, or a password.
//!
//! The "remote" client is this host reached through one of its own non-loopback addresses
//! (the kernel then uses that address as the source). A host with none skips the tests.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use common::TestServer;

/// An IPv4 address of this host beyond loopback, if it has one that is up.
fn non_loopback_address() -> Option<Ipv4Addr> {
    let mut found = None;
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs;
    // every node and its `ifa_addr` stay valid until then, and AF_INET addresses are
    // sockaddr_in.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return None;
        }
        let mut node = list;
        while !node.is_null() {
            let addr = (*node).ifa_addr;
            let up = (*node).ifa_flags & libc::IFF_UP as u32 != 0;
            if up && !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let v4 = &*(addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                if !ip.is_loopback() && found.is_none() {
                    found = Some(ip);
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found
}

/// What the server sends before closing, read until EOF (10 s at most).
fn read_to_close(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no close within the timeout: {e}"),
        }
    }
    String::from_utf8(out).unwrap()
}

/// Sends `request` from the remote address and returns the first reply line.
fn remote_line(remote: Ipv4Addr, port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(SocketAddr::new(IpAddr::V4(remote), port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if stream.read(&mut byte).unwrap() == 0 {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

fn start(remote: Ipv4Addr, extra: &[&str]) -> TestServer {
    let listen = remote.to_string();
    let mut args = vec!["-l", listen.as_str()];
    args.extend_from_slice(extra);
    TestServer::start_with_resp(&args)
}

#[test]
fn remote_clients_are_refused_without_a_password_until_protected_mode_is_off() {
    let Some(remote) = non_loopback_address() else {
        eprintln!("SKIPPED: this host has no non-loopback IPv4 address");
        return;
    };
    let server = start(remote, &[]);
    let resp_port = server.resp_addr.unwrap().port();
    let mut refused = TcpStream::connect((remote, resp_port)).unwrap();
    let text = read_to_close(&mut refused);
    assert!(
        text.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.")
            && text.ends_with("in order for the server to start accepting connections from the outside.\r\n"),
        "{text}"
    );
    let mut refused = TcpStream::connect((remote, server.addr.port())).unwrap();
    let text = read_to_close(&mut refused);
    assert!(text.starts_with("SERVER_ERROR protected mode"), "{text}");
    assert!(text.ends_with("\r\n") && text.matches("\r\n").count() == 1);

    // Loopback clients are let in; from there protected mode can be turned off.
    let mut local = server.connect_resp();
    local.roundtrip(
        b"CONFIG GET protected-mode\r\n",
        b"*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n",
    );
    local.roundtrip(
        b"CONFIG SET protected-mode maybe\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'protected-mode') - argument must be 'yes' or 'no'\r\n",
    );
    local.roundtrip(b"CONFIG SET protected-mode no\r\n", b"+OK\r\n");
    assert_eq!(remote_line(remote, resp_port, b"PING\r\n"), "+PONG\r\n");
    assert_eq!(
        remote_line(remote, server.addr.port(), b"version\r\n")[..8].to_string(),
        "VERSION "
    );
}

#[test]
fn a_password_or_the_flag_lets_remote_clients_in() {
    let Some(remote) = non_loopback_address() else {
        eprintln!("SKIPPED: this host has no non-loopback IPv4 address");
        return;
    };
    let server = start(remote, &["--protected-mode", "no"]);
    let resp_port = server.resp_addr.unwrap().port();
    assert_eq!(remote_line(remote, resp_port, b"PING\r\n"), "+PONG\r\n");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferrocache.toml");
    std::fs::write(&config, "[resp]\nrequirepass = \"secret\"\n").unwrap();
    let server = start(remote, &["--config", config.to_str().unwrap()]);
    let resp_port = server.resp_addr.unwrap().port();
    assert_eq!(
        remote_line(remote, resp_port, b"PING\r\n"),
        "-NOAUTH Authentication required.\r\n"
    );
    // The memcached port has no password (no SASL): still protected.
    let mut refused = TcpStream::connect((remote, server.addr.port())).unwrap();
    assert!(read_to_close(&mut refused).starts_with("SERVER_ERROR protected mode"));
}
