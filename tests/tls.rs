//! TLS listeners on the real binary: RESP and the memcached protocols over TLS 1.2 and 1.3,
//! mutual TLS against a CA bundle, certificate reload on SIGHUP and by CONFIG SET (open
//! connections keep theirs), and handshakes that never hold up a worker's other connections.
//!
//! Certificates are made at test time with rcgen (a throwaway CA, server and client
//! certificates); the clients are rustls over blocking sockets with read timeouts, so every
//! wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, listens_on, TestServer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A certificate authority that signs the test certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf certificate with common name `cn`, for a server or a client; (cert, key) PEM.
    fn issue(&self, cn: &str, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }
}

/// The files a server is started with.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl Files {
    fn new(ca: &Ca, server_cn: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let files = Files {
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        };
        files.write_server(ca, server_cn);
        std::fs::write(&files.ca, ca.cert.pem()).unwrap();
        files
    }

    fn write_server(&self, ca: &Ca, cn: &str) {
        let (cert, key) = ca.issue(cn, ExtendedKeyUsagePurpose::ServerAuth);
        std::fs::write(&self.cert, cert).unwrap();
        std::fs::write(&self.key, key).unwrap();
    }

    fn dir(&self) -> &Path {
        self.cert.parent().unwrap()
    }
}

/// A server with a memcached TLS port and a RESP TLS port (plus its plain ports).
struct TlsServer {
    server: TestServer,
    tls_port: u16,
    resp_tls_port: u16,
}

fn start(files: &Files, extra: &[&str]) -> TlsServer {
    for _attempt in 0..5 {
        let (tls_port, resp_tls_port) = (free_port(), free_port());
        let (tls, resp_tls) = (tls_port.to_string(), resp_tls_port.to_string());
        let mut args = vec![
            "--tls-port",
            tls.as_str(),
            "--resp-tls-port",
            resp_tls.as_str(),
            "--tls-cert-file",
            files.cert.to_str().unwrap(),
            "--tls-key-file",
            files.key.to_str().unwrap(),
            "--tls-ca-cert-file",
            files.ca.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let server = TestServer::start_with_resp(&args);
        let pid = server.child.as_ref().unwrap().id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if listens_on(pid, tls_port) && listens_on(pid, resp_tls_port) {
                return TlsServer {
                    server,
                    tls_port,
                    resp_tls_port,
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("ferrocache did not start with TLS ports");
}

/// What a test client presents and accepts.
struct ClientSetup<'a> {
    trusted: &'a Ca,
    identity: Option<(String, String)>,
    versions: &'a [&'static rustls::SupportedProtocolVersion],
}

impl<'a> ClientSetup<'a> {
    fn trusting(ca: &'a Ca) -> ClientSetup<'a> {
        ClientSetup {
            trusted: ca,
            identity: None,
            versions: rustls::DEFAULT_VERSIONS,
        }
    }

    fn with_identity(mut self, pem: (String, String)) -> Self {
        self.identity = Some(pem);
        self
    }

    fn config(&self) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.trusted.der()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        Arc::new(config)
    }
}

use rustls::pki_types::pem::PemObject;

/// A blocking TLS client connection with a 10 s read timeout.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    /// Connects and completes the handshake; the error when the server refuses it.
    fn connect(port: u16, setup: &ClientSetup<'_>) -> std::io::Result<TlsClient> {
        Self::connect_with_window(port, setup, None)
    }

    /// [`connect`](Self::connect) with the socket's receive buffer set to `window` bytes
    /// before connecting (a small window keeps the server's send buffer small and full).
    fn connect_with_window(
        port: u16,
        setup: &ClientSetup<'_>,
        window: Option<usize>,
    ) -> std::io::Result<TlsClient> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(bytes) = window {
            socket.set_recv_buffer_size(bytes)?;
        }
        socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
        let tcp: TcpStream = socket.into();
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn =
            rustls::ClientConnection::new(setup.config(), name).map_err(std::io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient { stream })
    }

    /// The common name of the server's certificate.
    fn server_cn(&self) -> String {
        let certs = self
            .stream
            .conn
            .peer_certificates()
            .expect("server certificate");
        let der = certs[0].as_ref();
        // The test certificates carry the CN as a short UTF8String; find it by its OID.
        let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
        let at = der
            .windows(oid.len())
            .rposition(|w| w == oid)
            .expect("a CN in the certificate");
        let len = der[at + oid.len() + 1] as usize;
        let start = at + oid.len() + 2;
        String::from_utf8(der[start..start + len].to_vec()).unwrap()
    }

    fn version(&self) -> rustls::ProtocolVersion {
        self.stream.conn.protocol_version().unwrap()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    fn read_exact(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Sends `request` and asserts the reply is exactly `expected`.
    fn roundtrip(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request);
        let got = self.read_exact(expected.len()).expect("reply");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Whether the server has ended the session (EOF, reset, or a TLS alert) within the
    /// read timeout, rather than answering.
    fn is_refused(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn resp_and_memcached_speak_over_tls_and_share_the_store_with_plain_ports() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let tls = start(&files, &["--tls-auth-clients", "no"]);
    let setup = ClientSetup::trusting(&ca);

    let mut redis = TlsClient::connect(tls.resp_tls_port, &setup).expect("RESP handshake");
    redis.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");
    redis.roundtrip(&resp(&[b"SET", b"k", b"over-tls"]), b"+OK\r\n");

    let mut memcached = TlsClient::connect(tls.tls_port, &setup).expect("memcached handshake");
    memcached.roundtrip(b"get k\r\n", b"VALUE k 0 8\r\nover-tls\r\nEND\r\n");
    memcached.roundtrip(b"set m 5 0 3\r\nabc\r\n", b"STORED\r\n");
    memcached.roundtrip(b"mg m v f\r\n", b"VA 3 f5\r\nabc\r\n");

    // The plain ports serve the same store.
    let mut plain = tls.server.connect();
    plain.roundtrip(b"get m\r\n", b"VALUE m 5 3\r\nabc\r\nEND\r\n");

    // A reply far past rustls's 64 KiB buffer goes out whole, record after record.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    redis.roundtrip(&resp(&[b"SET", b"big", &big]), b"+OK\r\n");
    redis.send(&resp(&[b"GET", b"big"]));
    let header = format!("${}\r\n", big.len());
    let got = redis.read_exact(header.len() + big.len() + 2).unwrap();
    assert_eq!(&got[..header.len()], header.as_bytes());
    assert!(got[header.len()..header.len() + big.len()] == big[..]);
}

#[test]
fn tls_1_2_and_1_3_are_both_offered() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let tls = start(&files, &["--tls-auth-clients", "no"]);
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let setup = ClientSetup {
            versions: &[version],
            ..ClientSetup::trusting(&ca)
        };
        let mut client = TlsClient::connect(tls.resp_tls_port, &setup).expect("handshake");
        assert_eq!(client.version(), expected);
        client.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");
    }
}

#[test]
fn mutual_tls_accepts_clients_of_the_ca_and_refuses_the_others() {
    let ca = Ca::new("test CA");
    let stranger = Ca::new("another CA");
    let files = Files::new(&ca, "server");
    let tls = start(&files, &[]); // tls-auth-clients defaults to yes, as in Redis
    let good = ca.issue("app1", ExtendedKeyUsagePurpose::ClientAuth);
    let forged = stranger.issue("app1", ExtendedKeyUsagePurpose::ClientAuth);

    let mut client = TlsClient::connect(
        tls.resp_tls_port,
        &ClientSetup::trusting(&ca).with_identity(good),
    )
    .expect("a client of the CA is let in");
    client.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");

    // In TLS 1.3 the client finishes its side first; the refusal arrives as an alert on the
    // first read.
    for setup in [
        ClientSetup::trusting(&ca),
        ClientSetup::trusting(&ca).with_identity(forged.clone()),
    ] {
        for port in [tls.resp_tls_port, tls.tls_port] {
            match TlsClient::connect(port, &setup) {
                Err(_) => {}
                Ok(mut refused) => {
                    let _ = refused.stream.write_all(b"version\r\n");
                    let _ = refused.stream.flush();
                    assert!(refused.is_refused(), "a client without a valid certificate");
                }
            }
        }
    }

    // optional: no certificate is fine, a forged one is not.
    let tls = start(&files, &["--tls-auth-clients", "optional"]);
    let mut anonymous = TlsClient::connect(tls.tls_port, &ClientSetup::trusting(&ca)).unwrap();
    anonymous.roundtrip(b"version\r\n", b"VERSION ");
    match TlsClient::connect(
        tls.tls_port,
        &ClientSetup::trusting(&ca).with_identity(forged),
    ) {
        Err(_) => {}
        Ok(mut refused) => {
            let _ = refused.stream.write_all(b"version\r\n");
            let _ = refused.stream.flush();
            assert!(refused.is_refused(), "a forged certificate under optional");
        }
    }
}

#[test]
fn a_stalled_handshake_does_not_hold_up_the_worker() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let tls = start(&files, &["--tls-auth-clients", "no", "-t", "1"]);
    // Half a TLS record header, then silence: the one worker must serve on.
    let mut stalled = TcpStream::connect(("127.0.0.1", tls.tls_port)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    // Bytes that are not TLS at all end that connection only.
    let mut garbage = TcpStream::connect(("127.0.0.1", tls.resp_tls_port)).unwrap();
    garbage.write_all(b"PING\r\n").unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match garbage.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {} // the alert
        }
    }
    assert!(closed, "a non-TLS client on a TLS port is closed");

    let started = Instant::now();
    let mut client = TlsClient::connect(tls.resp_tls_port, &ClientSetup::trusting(&ca)).unwrap();
    client.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");
    let mut plain = tls.server.connect();
    plain.roundtrip(b"version\r\n", b"VERSION ");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stalled);
}

/// Retries `new connection` until it sees a certificate with common name `cn` (a reload is
/// applied by another thread of the server), for at most 10 s.
fn wait_for_certificate(port: u16, setup: &ClientSetup<'_>, cn: &str) -> TlsClient {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = TlsClient::connect(port, setup).expect("handshake");
        if client.server_cn() == cn {
            return client;
        }
        assert!(
            Instant::now() < deadline,
            "still served {:?}, not {cn:?}",
            client.server_cn()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reload_gives_new_connections_the_new_certificate_and_keeps_open_ones() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "first");
    let tls = start(&files, &["--tls-auth-clients", "no"]);
    let setup = ClientSetup::trusting(&ca);
    let mut old = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
    assert_eq!(old.server_cn(), "first");
    old.roundtrip(&resp(&[b"SET", b"a", b"1"]), b"+OK\r\n");

    files.write_server(&ca, "second");
    let pid = tls.server.child.as_ref().unwrap().id();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe {
        libc::kill(pid as i32, libc::SIGHUP);
    }
    let mut new = wait_for_certificate(tls.tls_port, &setup, "second");
    new.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\n1\r\nEND\r\n");
    assert_eq!(old.server_cn(), "first");
    old.roundtrip(&resp(&[b"GET", b"a"]), b"$1\r\n1\r\n");
}

#[test]
fn config_set_swaps_certificate_and_key_together() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "first");
    let tls = start(&files, &["--tls-auth-clients", "no"]);
    let setup = ClientSetup::trusting(&ca);
    let mut admin = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();

    let (cert, key) = ca.issue("rotated", ExtendedKeyUsagePurpose::ServerAuth);
    let cert_path = files.dir().join("rotated.pem");
    let key_path = files.dir().join("rotated.key");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let cert_path = cert_path.to_str().unwrap().as_bytes();
    let key_path = key_path.to_str().unwrap().as_bytes();

    // The new certificate with the old key does not make a configuration: refused whole.
    admin.roundtrip(
        &resp(&[b"CONFIG", b"SET", b"tls-cert-file", cert_path]),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n",
    );
    assert_eq!(
        TlsClient::connect(tls.tls_port, &setup)
            .unwrap()
            .server_cn(),
        "first"
    );
    admin.roundtrip(
        &resp(&[b"CONFIG", b"SET", b"tls-auth-clients", b"sometimes"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - argument(s) must be one of the following: no, yes, optional\r\n",
    );

    admin.roundtrip(
        &resp(&[
            b"CONFIG",
            b"SET",
            b"tls-cert-file",
            cert_path,
            b"tls-key-file",
            key_path,
        ]),
        b"+OK\r\n",
    );
    let fresh = TlsClient::connect(tls.tls_port, &setup).unwrap();
    assert_eq!(fresh.server_cn(), "rotated");
    let mut expected = b"*2\r\n$13\r\ntls-cert-file\r\n".to_vec();
    expected.extend_from_slice(format!("${}\r\n", cert_path.len()).as_bytes());
    expected.extend_from_slice(cert_path);
    expected.extend_from_slice(b"\r\n");
    admin.roundtrip(&resp(&[b"CONFIG", b"GET", b"tls-cert-file"]), &expected);
    assert_eq!(admin.server_cn(), "first");
    admin.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn records_the_socket_could_not_take_go_out_when_it_drains() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let tls = start(&files, &["--tls-auth-clients", "no"]);
    let mut client =
        TlsClient::connect_with_window(tls.resp_tls_port, &ClientSetup::trusting(&ca), Some(4096))
            .unwrap();
    let value: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    client.roundtrip(&resp(&[b"SET", b"v", &value]), b"+OK\r\n");
    // A slow reader keeps the server's socket full, so its last records are written when the
    // reply has already left the connection's buffer and only rustls holds them.
    for _ in 0..3 {
        client.send(&resp(&[b"GET", b"v"]));
        let expected = value.len() + format!("${}\r\n\r\n", value.len()).len();
        let mut got = 0;
        let mut chunk = [0u8; 8192];
        while got < expected {
            let n = client
                .stream
                .read(&mut chunk)
                .expect("the rest of the reply");
            assert!(n > 0, "closed after {got} of {expected} bytes");
            got += n;
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    client.roundtrip(&resp(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn a_client_certificate_common_name_maps_to_its_acl_user() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let config = files.dir().join("ferrocache.toml");
    std::fs::write(
        &config,
        "[tls]\nauth_clients_user = \"CN\"\n[resp]\nrequirepass = \"adminpw\"\n\
         [acl]\nusers = [\"user app1 on ~app1:* +@all\", \"user off1 off ~* +@all\"]\n",
    )
    .unwrap();
    let tls = start(&files, &["--config", config.to_str().unwrap()]);
    let whoami = resp(&[b"ACL", b"WHOAMI"]);

    let app1 = ca.issue("app1", ExtendedKeyUsagePurpose::ClientAuth);
    let setup = ClientSetup::trusting(&ca).with_identity(app1);
    let mut client = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
    client.roundtrip(&whoami, b"$4\r\napp1\r\n");
    client.roundtrip(
        &resp(&[b"GET", b"other"]),
        b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );

    // A CN that is no ACL user, or one that is off: not authenticated (requirepass is set).
    for cn in ["stranger", "off1"] {
        let identity = ca.issue(cn, ExtendedKeyUsagePurpose::ClientAuth);
        let setup = ClientSetup::trusting(&ca).with_identity(identity);
        let mut client = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
        client.roundtrip(
            &resp(&[b"GET", b"k"]),
            b"-NOAUTH Authentication required.\r\n",
        );
    }

    // Turned off at run time: the next connection must authenticate.
    let mut admin = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
    admin.roundtrip(&resp(&[b"AUTH", b"adminpw"]), b"+OK\r\n");
    admin.roundtrip(
        &resp(&[b"CONFIG", b"SET", b"tls-auth-clients-user", b"off"]),
        b"+OK\r\n",
    );
    let mut client = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
    client.roundtrip(&whoami, b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn memcached_spelling_dash_z_with_dash_o_ssl_options_puts_tls_on_the_memcached_port() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "server");
    let options = format!(
        "ssl_chain_cert={},ssl_key={}",
        files.cert.to_str().unwrap(),
        files.key.to_str().unwrap()
    );
    // memcached -Z -o ssl_chain_cert=...,ssl_key=...: -p's port speaks TLS.
    let server = TestServer::start(&["-Z", "-o", &options]);
    let port = server.addr.port();
    let setup = ClientSetup::trusting(&ca);
    let mut memcached = TlsClient::connect(port, &setup).expect("TLS handshake on -p's port");
    memcached.roundtrip(b"set z 1 0 2\r\nok\r\n", b"STORED\r\n");
    memcached.roundtrip(b"get z\r\n", b"VALUE z 1 2\r\nok\r\nEND\r\n");
    // A plain-text client on that port gets no memcached reply.
    let mut plain = server.connect();
    plain.send(b"version\r\n");
    let mut first = [0u8; 1];
    use std::io::Read;
    let got = plain.stream.read(&mut first);
    assert!(
        !matches!(got, Ok(1) if first[0] == b'V'),
        "a plain client was served on a TLS port"
    );
}

/// The HTTP port over TLS (`--http-tls`, `[http] tls`): the cache API over rustls with the
/// certificate and client-authentication settings of the other TLS ports, keep-alive across
/// requests, the same store as RESP over TLS, no answer to plain HTTP, and a SIGHUP reload
/// that reaches new HTTPS connections while an open one keeps going.
#[test]
fn the_http_port_speaks_tls_with_the_tls_sections_certificate() {
    let ca = Ca::new("test CA");
    let files = Files::new(&ca, "first");
    let http_port = free_port();
    let http = http_port.to_string();
    let tls = start(&files, &["--http-port", &http, "--http-tls"]);
    let pid = tls.server.child.as_ref().unwrap().id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listens_on(pid, http_port) {
        assert!(Instant::now() < deadline, "the HTTPS port did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
    let identity = ca.issue("app1", ExtendedKeyUsagePurpose::ClientAuth);
    let setup = ClientSetup::trusting(&ca).with_identity(identity);

    let mut client = TlsClient::connect(http_port, &setup).expect("an HTTPS client of the CA");
    assert_eq!(client.server_cn(), "first");
    let keep = "Cache-Control: no-store\r\nConnection: keep-alive\r\n";
    client.roundtrip(
        b"PUT /v1/cache/greeting HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        format!("HTTP/1.1 204 No Content\r\n{keep}\r\n").as_bytes(),
    );
    let body = r#"{"value":"hello"}"#;
    let expected = format!(
        "HTTP/1.1 200 OK\r\n{keep}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    client.roundtrip(
        b"GET /v1/cache/greeting HTTP/1.1\r\nHost: x\r\n\r\n",
        expected.as_bytes(),
    );
    let mut resp_client = TlsClient::connect(tls.resp_tls_port, &setup).unwrap();
    resp_client.roundtrip(&resp(&[b"GET", b"greeting"]), b"$5\r\nhello\r\n");

    // tls-auth-clients yes (the default) holds here too.
    match TlsClient::connect(http_port, &ClientSetup::trusting(&ca)) {
        Err(_) => {}
        Ok(mut refused) => {
            let _ = refused
                .stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let _ = refused.stream.flush();
            assert!(
                refused.is_refused(),
                "an HTTPS client without a certificate"
            );
        }
    }
    // Plain HTTP gets a TLS alert at most, never an HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&answer)
    );

    files.write_server(&ca, "second");
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe {
        libc::kill(pid as i32, libc::SIGHUP);
    }
    let mut renewed = wait_for_certificate(http_port, &setup, "second");
    renewed.roundtrip(
        b"DELETE /v1/cache/greeting HTTP/1.1\r\nHost: x\r\n\r\n",
        format!("HTTP/1.1 204 No Content\r\n{keep}\r\n").as_bytes(),
    );
    assert_eq!(client.server_cn(), "first");
    client.roundtrip(
        b"GET /v1/cache/greeting HTTP/1.1\r\nHost: x\r\n\r\n",
        &b"HTTP/1.1 404 Not Found\r\n"[..],
    );
}
