//! The HTTP port on the real binary: the cache API with pools and TTLs, every error status,
//! keep-alive, the connection limit, the admin token, `/metrics` parsed by a Prometheus
//! parser and agreeing with `stats`, and the dashboard page being self-contained.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, listens_on, TestServer};

/// A server with its HTTP port on (on a free port) plus `args`.
fn start(args: &[&str]) -> (TestServer, SocketAddr) {
    for _attempt in 0..5 {
        let port = free_port();
        let port_text = port.to_string();
        let mut all = vec!["--http-port", port_text.as_str()];
        all.extend_from_slice(args);
        let server = TestServer::start(&all);
        let pid = server.child.as_ref().expect("spawned").id();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if listens_on(pid, port) {
                return (server, addr);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("the HTTP port did not come up");
}

fn config_file(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const POOLS: &str = "[[pool]]\nname = \"sessions\"\nprefix = \"sess:\"\n";

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// A keep-alive client connection.
struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "PUT" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).unwrap();
    }

    /// Reads one response (`None` if the server closed first).
    fn read(&mut self) -> Option<Reply> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = response.parse(&self.pending) {
                let headers: HashMap<String, String> = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .map_or(0, |v| v.parse().unwrap());
                if self.pending.len() >= head + len {
                    let status = response.code.unwrap();
                    let body = self.pending[head..head + len].to_vec();
                    self.pending.drain(..head + len);
                    return Some(Reply {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn call(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.send(method, target, headers, body);
        self.read().expect("a response")
    }
}

#[test]
fn the_cache_api_round_trips_through_pools_on_the_shared_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, POOLS);
    let (server, http) = start(&["--config", &config]);
    let mut h = Client::connect(http);
    let pool = [("X-Pool", "sessions")];
    assert_eq!(h.call("PUT", "/v1/cache/42", &pool, b"alice").status, 204);
    // The pool's prefix was applied: memcached sees sess:42.
    let mut mc = server.connect();
    mc.roundtrip(b"get sess:42\r\n", b"VALUE sess:42 0 5\r\nalice\r\nEND\r\n");
    let got = h.call("GET", "/v1/cache/42", &pool, b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.json(), serde_json::json!({"value": "alice"}));
    // Without the pool header the key is plain "42": a miss.
    let miss = h.call("GET", "/v1/cache/42", &[], b"");
    assert_eq!(
        (miss.status, miss.json()),
        (404, serde_json::json!({"error": "miss"}))
    );
    // A value memcached wrote that is not UTF-8 comes back base64.
    mc.roundtrip(b"set bin 0 0 3\r\n\xff\x00\xfe\r\n", b"STORED\r\n");
    let bin = h.call("GET", "/v1/cache/bin", &[], b"");
    assert_eq!(
        bin.json(),
        serde_json::json!({"value": "/wD+", "encoding": "base64"})
    );
    // Percent-encoded keys are decoded.
    assert_eq!(h.call("PUT", "/v1/cache/a%2Fb", &[], b"slash").status, 204);
    mc.roundtrip(b"get a/b\r\n", b"VALUE a/b 0 5\r\nslash\r\nEND\r\n");
    assert_eq!(h.call("DELETE", "/v1/cache/42", &pool, b"").status, 204);
    assert_eq!(h.call("GET", "/v1/cache/42", &pool, b"").status, 404);
    // A TTL: the key disappears once it passes (bounded wait on the key itself).
    assert_eq!(h.call("PUT", "/v1/cache/t?ttl=1", &[], b"x").status, 204);
    assert_eq!(h.call("GET", "/v1/cache/t", &[], b"").status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.call("GET", "/v1/cache/t", &[], b"").status != 404 {
        assert!(Instant::now() < deadline, "ttl never passed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A body of several KB sent after `Expect: 100-continue` (as curl does).
    let big = vec![b'z'; 5000];
    h.send(
        "PUT",
        "/v1/cache/big",
        &[("Expect", "100-continue"), ("Content-Length", "5000")],
        b"",
    );
    let mut interim = [0u8; 25];
    h.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    h.stream.write_all(&big).unwrap();
    assert_eq!(h.read().unwrap().status, 204);
    let value = h.call("GET", "/v1/cache/big", &[], b"").json();
    assert_eq!(value["value"].as_str().unwrap().len(), 5000);
}

/// method, target, headers, body, expected status.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [u8],
    u16,
);

#[test]
fn every_error_is_a_json_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        &format!("[http]\nmax_body_bytes = \"1KiB\"\nmax_header_bytes = \"1KiB\"\n{POOLS}"),
    );
    let (_server, http) = start(&["--config", &config]);
    let mut h = Client::connect(http);
    let cases: [Case; 6] = [
        ("GET", "/nowhere", &[], b"", 404),
        ("POST", "/v1/cache/k", &[], b"v", 405),
        ("DELETE", "/metrics", &[], b"", 405),
        ("PUT", "/v1/cache/k?ttl=soon", &[], b"v", 400),
        ("GET", "/v1/cache/k", &[("X-Pool", "nope")], b"", 400),
        ("GET", "/v1/cache/", &[], b"", 400),
    ];
    for (method, target, headers, body, status) in cases {
        let reply = h.call(method, target, headers, body);
        assert_eq!(reply.status, status, "{method} {target}");
        assert!(reply.json()["error"].is_string(), "{method} {target}");
    }
    // Over the body limit: 413, then the connection closes (the body is not read).
    let mut big = Client::connect(http);
    let reply = big.call("PUT", "/v1/cache/k", &[], &vec![b'x'; 2048]);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.headers["connection"], "close");
    // A head over the header limit: 431.
    let mut fat = Client::connect(http);
    let filler = "y".repeat(2000);
    let reply = fat.call("GET", "/healthz", &[("X-Filler", &filler)], b"");
    assert_eq!(reply.status, 431);
    assert!(reply.json()["error"].is_string());
    // Not HTTP at all: 400 and closed.
    let mut junk = Client::connect(http);
    junk.stream.write_all(b"\x01\x02 nonsense\r\n\r\n").unwrap();
    let reply = junk.read().expect("a 400");
    assert_eq!(reply.status, 400);
    assert!(junk.read().is_none(), "closed after a bad request");
    // Chunked bodies are refused with 411.
    let mut chunked = Client::connect(http);
    let reply = chunked.call(
        "PUT",
        "/v1/cache/k",
        &[("Transfer-Encoding", "chunked")],
        b"",
    );
    assert_eq!(reply.status, 411);
    // The first connection survived all its errors (keep-alive).
    assert_eq!(h.call("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn admin_routes_want_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let config = config_file(
        &dir,
        &format!(
            "[http]\nadmin_token_file = \"{}\"\n",
            token_file.to_str().unwrap()
        ),
    );
    let (_server, http) = start(&["--config", &config]);
    let mut h = Client::connect(http);
    for route in ["/metrics", "/v1/admin/stats"] {
        assert_eq!(h.call("GET", route, &[], b"").status, 401, "{route}");
        let wrong = [("Authorization", "Bearer s3cret-tokem")];
        assert_eq!(h.call("GET", route, &wrong, b"").status, 403, "{route}");
        let right = [("Authorization", "Bearer s3cret-token")];
        assert_eq!(h.call("GET", route, &right, b"").status, 200, "{route}");
    }
    // Health, the page and the cache API need no token.
    assert_eq!(
        h.call("GET", "/healthz", &[], b"").json()["status"],
        "serving"
    );
    assert_eq!(h.call("GET", "/", &[], b"").status, 200);
    assert_eq!(h.call("GET", "/v1/cache/x", &[], b"").status, 404);
}

#[test]
fn connections_count_against_the_shared_limit_and_close_on_request() {
    let (server, http) = start(&["-c", "2"]);
    let mut first = Client::connect(http);
    assert_eq!(first.call("GET", "/healthz", &[], b"").status, 200);
    let mut mc = server.connect();
    mc.send(b"version\r\n");
    assert!(mc.read_until(b"\r\n").starts_with(b"VERSION "));
    // Two open (one HTTP, one memcached): the third is refused with 503.
    let mut third = Client::connect(http);
    let refused = third.read().expect("a 503");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "max number of clients reached");
    // Connection: close ends the keep-alive connection after its answer.
    let reply = first.call("GET", "/healthz", &[("Connection", "close")], b"");
    assert_eq!(reply.headers["connection"], "close");
    assert!(first.read().is_none());
}

/// `/metrics` as (name, labels) -> value, through a Prometheus text parser.
fn scrape(h: &mut Client) -> Vec<prometheus_parse::Sample> {
    let reply = h.call("GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"].starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(reply.body).unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("Prometheus text parses")
        .samples
}

fn value(samples: &[prometheus_parse::Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {metric} {labels:?}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{metric}: {other:?}"),
    }
}

#[test]
fn metrics_parse_and_agree_with_stats() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, POOLS);
    let (server, http) = start(&["--config", &config]);
    let mut h = Client::connect(http);
    let pool = [("X-Pool", "sessions")];
    h.call("PUT", "/v1/cache/1", &pool, b"a");
    for _ in 0..3 {
        assert_eq!(h.call("GET", "/v1/cache/1", &pool, b"").status, 200);
    }
    assert_eq!(h.call("GET", "/v1/cache/2", &pool, b"").status, 404);
    let mut mc = server.connect();
    mc.roundtrip(b"get sess:1 other\r\n", b"VALUE sess:1 0 1\r\na\r\nEND\r\n");
    let stats: HashMap<String, String> = mc.stats("").into_iter().collect();
    let pools: HashMap<String, String> = mc.stats("pools").into_iter().collect();
    let samples = scrape(&mut h);
    let num = |map: &HashMap<String, String>, key: &str| map[key].parse::<f64>().unwrap();
    // HTTP GETs count as memcached gets: 4 over HTTP plus 2 keys over memcached.
    assert_eq!(num(&stats, "cmd_get"), 6.0);
    assert_eq!(value(&samples, "ferrocache_cmd_get_total", &[]), 6.0);
    assert_eq!(
        value(&samples, "ferrocache_get_hits_total", &[]),
        num(&stats, "get_hits")
    );
    assert_eq!(num(&pools, "pool:sessions:hits"), 4.0);
    assert_eq!(
        value(
            &samples,
            "ferrocache_pool_hits_total",
            &[("pool", "sessions")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &samples,
            "ferrocache_pool_misses_total",
            &[("pool", "sessions")]
        ),
        num(&pools, "pool:sessions:misses")
    );
    assert_eq!(
        value(
            &samples,
            "ferrocache_pool_hit_ratio",
            &[("pool", "sessions")]
        ),
        0.8
    );
    assert_eq!(
        value(
            &samples,
            "ferrocache_evictions_total",
            &[("pool", "sessions"), ("reason", "lru")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "ferrocache_commands_total",
            &[("cmd", "get"), ("proto", "http")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &samples,
            "ferrocache_commands_total",
            &[("cmd", "get"), ("proto", "memcache")]
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "ferrocache_memory_limit_bytes", &[]),
        num(&stats, "limit_maxbytes")
    );
    assert_eq!(
        value(&samples, "ferrocache_items", &[]),
        num(&stats, "curr_items")
    );
    // The latency histogram: cumulative buckets ending at the call count.
    let histogram = samples
        .iter()
        .find(|s| {
            s.metric == "ferrocache_command_duration_seconds"
                && s.labels.get("cmd") == Some("get")
                && s.labels.get("proto") == Some("http")
        })
        .expect("the http get histogram");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("{:?}", histogram.value)
    };
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    assert_eq!(buckets.last().unwrap().count, 4.0);
    // Per pool: the 5 HTTP requests on sessions keys and memcached's get naming sess:1 first.
    let pool_histogram = samples
        .iter()
        .find(|s| {
            s.metric == "ferrocache_pool_command_duration_seconds"
                && s.labels.get("pool") == Some("sessions")
        })
        .expect("the sessions pool's histogram");
    let prometheus_parse::Value::Histogram(buckets) = &pool_histogram.value else {
        panic!("{:?}", pool_histogram.value)
    };
    assert_eq!(buckets.last().unwrap().count, 6.0);
    // The JSON report says the same.
    let report = h.call("GET", "/v1/admin/stats", &[], b"").json();
    assert_eq!(report["counters"]["cmd_get"], 6);
    let sessions = report["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sessions")
        .unwrap();
    assert_eq!(sessions["hits"], 4);
}

#[test]
fn the_dashboard_is_one_self_contained_page() {
    let (_server, http) = start(&[]);
    let mut h = Client::connect(http);
    let page = h.call("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"].starts_with("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("/v1/admin/stats"), "it reads the admin stats");
    assert!(
        html.contains("<canvas") || html.contains("<svg"),
        "it draws charts"
    );
    for external in ["http://", "https://", "src=\"//", "@import", "<link"] {
        assert!(!html.contains(external), "the page loads {external}");
    }
}

/// Every series the shipped Grafana dashboard queries is one `/metrics` serves.
#[test]
fn the_grafana_dashboard_queries_only_metrics_we_serve() {
    let (_server, http) = start(&[]);
    let mut h = Client::connect(http);
    h.call("PUT", "/v1/cache/k", &[], b"v");
    h.call("GET", "/v1/cache/k", &[], b"");
    let text = String::from_utf8(h.call("GET", "/metrics", &[], b"").body).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/grafana/ferrocache-dashboard.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("ferrocache_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let served = text.lines().any(|line| {
                    line.strip_prefix(name.as_str())
                        .is_some_and(|tail| tail.starts_with('{') || tail.starts_with(' '))
                });
                assert!(served, "the dashboard queries {name}, which /metrics lacks");
                queried += 1;
            }
        }
    }
    assert!(queried > 10);
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, "[http]\nidle_timeout_secs = 1\n");
    let (server, http) = start(&["--config", &config]);
    let mut talking = Client::connect(http);
    let mut silent = Client::connect(http);
    // Half a request, then nothing: a slow client does not hold the connection forever.
    let mut half = Client::connect(http);
    half.stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(talking.call("GET", "/healthz", &[], b"").status, 200);
    }
    assert!(
        silent.read().is_none(),
        "the silent connection is still open"
    );
    assert!(
        half.read().is_none(),
        "the half-sent request's connection is still open"
    );
    assert!(server.connect().stat("idle_kicks") >= 2);
}

#[test]
fn requests_run_as_acl_users_by_basic_credentials_or_the_admin_tokens_user() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        &dir,
        "[acl]\nusers = [\"user app1 on >secret ~app1:* +@read +@write -@admin\", \
         \"user metrics on >m ~* +info\"]\n\
         [http]\nadmin_token = \"tok\"\nadmin_token_user = \"metrics\"\n",
    );
    let (_server, http) = start(&["--config", &config]);
    let mut h = Client::connect(http);
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let app1 = basic("app1", "secret");
    let auth = |value: &str| vec![("Authorization", value.to_string())];
    let call =
        |h: &mut Client, method: &str, target: &str, headers: Vec<(&str, String)>, body: &[u8]| {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.call(method, target, &headers, body).status
        };
    // An ACL user's key patterns apply to the cache API.
    assert_eq!(
        call(&mut h, "PUT", "/v1/cache/app1:k", auth(&app1), b"v"),
        204
    );
    assert_eq!(
        call(&mut h, "GET", "/v1/cache/app1:k", auth(&app1), b""),
        200
    );
    assert_eq!(
        call(&mut h, "PUT", "/v1/cache/app2:k", auth(&app1), b"v"),
        403
    );
    assert_eq!(
        call(&mut h, "DELETE", "/v1/cache/app2:k", auth(&app1), b""),
        403
    );
    assert_eq!(
        call(
            &mut h,
            "GET",
            "/v1/cache/app1:k",
            auth(&basic("app1", "wrong")),
            b""
        ),
        403
    );
    // app1 may not run INFO: no metrics for it.
    assert_eq!(call(&mut h, "GET", "/metrics", auth(&app1), b""), 403);
    // The admin token runs as `metrics`: figures yes, writes no.
    assert_eq!(
        call(&mut h, "GET", "/metrics", auth("Bearer tok"), b""),
        200
    );
    assert_eq!(
        call(&mut h, "PUT", "/v1/cache/x", auth("Bearer tok"), b"v"),
        403
    );
    assert_eq!(
        call(&mut h, "GET", "/metrics", auth("Bearer nope"), b""),
        403
    );
    assert_eq!(call(&mut h, "GET", "/metrics", vec![], b""), 401);
    // Without credentials the cache API runs as `default` (nopass, everything).
    assert_eq!(call(&mut h, "PUT", "/v1/cache/free", vec![], b"v"), 204);
}
