//! What the HTTP port's requests mean: the cache API (`/v1/cache/{key}`), `/healthz`,
//! `/metrics`, `/v1/admin/stats` and the dashboard page (`/`).
//!
//! The cache API runs on the same store, pools and counters as memcached and RESP: a GET is a
//! memcached `get` (`cmd_get`, `get_hits`/`get_misses`, the pool's hits), a PUT a `set`, a
//! DELETE a `delete`, through [`super::kv`]. Admin routes need the bearer token when one is
//! configured, compared in constant time. Every answer is JSON but the metrics (Prometheus
//! text) and the page (HTML).
//!
//! Never: parse HTTP (the server's `http` module hands over a parsed request) or do I/O.

use base64::Engine as _;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{kv, report, Context};
use crate::metrics::latency::{Ending, Proto, Timer};
use ferrocache_protocol::memcache::{Exptime, StoreMode};

/// The dashboard: one self-contained page (no external script, style or font).
const DASHBOARD: &str = include_str!("dashboard.html");

/// Every name [`handle`] counts a request under (the latency registry's HTTP part).
pub(super) const ROUTE_NAMES: &[&str] = &[
    "get",
    "put",
    "delete",
    "cache",
    "dashboard",
    "healthz",
    "metrics",
    "admin_stats",
    "unknown",
];

/// A parsed request, borrowed from the connection's buffer.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// Path and query as sent (`/v1/cache/k?ttl=5`).
    pub target: &'a str,
    /// The `X-Pool` header.
    pub pool: Option<&'a [u8]>,
    /// The `Authorization` header.
    pub authorization: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const JSON: &str = "application/json";

impl HttpResponse {
    fn json(status: u16, value: serde_json::Value) -> HttpResponse {
        HttpResponse {
            status,
            content_type: JSON,
            body: value.to_string().into_bytes(),
        }
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> HttpResponse {
        HttpResponse::json(status, json!({ "error": message }))
    }

    fn no_content() -> HttpResponse {
        HttpResponse {
            status: 204,
            content_type: JSON,
            body: Vec::new(),
        }
    }
}

/// The admin bearer token (`None`: admin routes are open).
pub struct AdminToken(pub Option<Vec<u8>>);

impl AdminToken {
    /// `None` when allowed, else the refusal: 401 without credentials, 403 with wrong ones.
    fn refuse(&self, authorization: Option<&[u8]>) -> Option<HttpResponse> {
        let expected = self.0.as_deref()?;
        let Some(given) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return Some(HttpResponse::error(401, "a bearer token is required"));
        };
        if bool::from(given.ct_eq(expected)) {
            None
        } else {
            Some(HttpResponse::error(403, "wrong token"))
        }
    }
}

/// Answers one request, counting it under the HTTP protocol (latency from here to the
/// response built).
pub fn handle(request: &HttpRequest<'_>, ctx: &Context<'_>, token: &AdminToken) -> HttpResponse {
    let timer = Timer::start();
    let (name, response) = route(request, ctx, token);
    let pool = cfg!(feature = "latency")
        .then_some(request.target)
        .and_then(|target| target.split('?').next())
        .and_then(|path| path.strip_prefix("/v1/cache/"))
        .and_then(|raw| store_key(ctx, request, raw).ok())
        .map(|key| ctx.shared.pool_of(&key));
    let ending = if response.status >= 400 && response.status != 404 {
        Ending::Failed
    } else {
        Ending::Answered
    };
    ctx.shared.latency[ctx.worker].record(Proto::Http, name, pool, timer.elapsed(), ending);
    response
}

fn route(
    request: &HttpRequest<'_>,
    ctx: &Context<'_>,
    token: &AdminToken,
) -> (&'static str, HttpResponse) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target, ""));
    if let Some(key) = path.strip_prefix("/v1/cache/") {
        if matches!(request.method, "PUT" | "DELETE") {
            // Writes are refused as over the other protocols, with the same words.
            if let Some(refusal) = ctx.shared.write_refusal() {
                let message = match refusal {
                    crate::replication::WriteRefusal::ReadOnly => {
                        "You can't write against a read only replica."
                    }
                    crate::replication::WriteRefusal::NoReplicas => {
                        "Not enough good replicas to write."
                    }
                };
                let name = if request.method == "PUT" {
                    "put"
                } else {
                    "delete"
                };
                return (name, HttpResponse::error(503, message));
            }
        }
        return match request.method {
            "GET" => ("get", cache_get(ctx, request, key)),
            "PUT" => ("put", cache_put(ctx, request, key, query)),
            "DELETE" => ("delete", cache_delete(ctx, request, key)),
            _ => ("cache", HttpResponse::error(405, "method not allowed")),
        };
    }
    let (name, admin) = match path {
        "/" => ("dashboard", false),
        "/healthz" => ("healthz", false),
        "/metrics" => ("metrics", true),
        "/v1/admin/stats" => ("admin_stats", true),
        _ => return ("unknown", HttpResponse::error(404, "not found")),
    };
    if request.method != "GET" {
        return (name, HttpResponse::error(405, "method not allowed"));
    }
    if admin {
        if let Some(refusal) = token.refuse(request.authorization) {
            return (name, refusal);
        }
    }
    let response = match path {
        "/" => HttpResponse {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: DASHBOARD.as_bytes().to_vec(),
        },
        "/healthz" => health(ctx),
        "/metrics" => HttpResponse {
            status: 200,
            content_type: crate::metrics::prometheus::CONTENT_TYPE,
            body: crate::metrics::prometheus::render(&report::build(ctx.shared, ctx.now_ms))
                .into_bytes(),
        },
        _ => HttpResponse {
            status: 200,
            content_type: JSON,
            body: serde_json::to_vec(&report::build(ctx.shared, ctx.now_ms)).unwrap_or_default(),
        },
    };
    (name, response)
}

fn health(ctx: &Context<'_>) -> HttpResponse {
    if ctx.shared.is_shutting_down() {
        HttpResponse::json(503, json!({ "status": "shutting down" }))
    } else if !ctx
        .shared
        .serving
        .load(std::sync::atomic::Ordering::Acquire)
    {
        HttpResponse::json(503, json!({ "status": "loading" }))
    } else {
        HttpResponse::json(200, json!({ "status": "serving" }))
    }
}

/// The store key: the pool's prefix (from `X-Pool`), then the percent-decoded path segment.
fn store_key(
    ctx: &Context<'_>,
    request: &HttpRequest<'_>,
    raw: &str,
) -> Result<Vec<u8>, HttpResponse> {
    let mut key = match request.pool {
        None => Vec::new(),
        Some(name) => match ctx
            .shared
            .config
            .pool
            .iter()
            .find(|p| p.name.as_bytes() == name)
        {
            Some(pool) => pool.prefix.as_bytes().to_vec(),
            None => return Err(HttpResponse::error(400, "unknown pool")),
        },
    };
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
    if decoded.is_empty() {
        return Err(HttpResponse::error(400, "empty key"));
    }
    key.extend_from_slice(&decoded);
    if key.len() > ctx.shared.store.max_key_len() {
        return Err(HttpResponse::error(400, "key too long"));
    }
    Ok(key)
}

fn cache_get(ctx: &Context<'_>, request: &HttpRequest<'_>, raw: &str) -> HttpResponse {
    let key = match store_key(ctx, request, raw) {
        Ok(key) => key,
        Err(refusal) => return refusal,
    };
    let _gate = ctx.shared.gates.shared(ctx.worker);
    let value = kv::get(ctx, &key, None, |view| {
        view.map(|item| item.value().to_vec())
    });
    match value {
        None => HttpResponse::error(404, "miss"),
        Some(bytes) => match String::from_utf8(bytes) {
            Ok(text) => HttpResponse::json(200, json!({ "value": text })),
            Err(e) => HttpResponse::json(
                200,
                json!({
                    "value": base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                    "encoding": "base64",
                }),
            ),
        },
    }
}

/// The `ttl` query parameter in seconds (0 or absent: no expiry).
fn ttl_secs(query: &str) -> Result<u64, HttpResponse> {
    let mut ttl = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "ttl" {
            ttl = value
                .parse()
                .map_err(|_| HttpResponse::error(400, "ttl must be a whole number of seconds"))?;
        }
    }
    Ok(ttl)
}

fn cache_put(ctx: &Context<'_>, request: &HttpRequest<'_>, raw: &str, query: &str) -> HttpResponse {
    let key = match store_key(ctx, request, raw) {
        Ok(key) => key,
        Err(refusal) => return refusal,
    };
    let ttl = match ttl_secs(query) {
        Ok(ttl) => ttl,
        Err(refusal) => return refusal,
    };
    if request.body.len() > ctx.shared.store.item_size_max() {
        kv::refused_too_large(ctx, None);
        return HttpResponse::error(413, "value larger than the item size limit");
    }
    // memcached reads an exptime over 30 days as a unix time: make a long ttl one.
    let exptime = if ttl > 30 * 24 * 3600 {
        (ctx.now_ms / 1000).saturating_add(ttl)
    } else {
        ttl
    };
    let args = kv::StoreArgs {
        mode: StoreMode::Set,
        key: &key,
        flags: 0,
        exptime: Exptime(i64::try_from(exptime).unwrap_or(i64::MAX)),
        value: request.body,
        cas_unique: None,
    };
    let _gate = ctx.shared.gates.shared(ctx.worker);
    match kv::store(ctx, args) {
        crate::store::Outcome::Stored { .. } => HttpResponse::no_content(),
        crate::store::Outcome::TooLarge => {
            HttpResponse::error(413, "value larger than the item size limit")
        }
        crate::store::Outcome::OutOfMemory => HttpResponse::error(507, "out of memory"),
        other => HttpResponse::error(500, &format!("not stored: {other:?}")),
    }
}

fn cache_delete(ctx: &Context<'_>, request: &HttpRequest<'_>, raw: &str) -> HttpResponse {
    let key = match store_key(ctx, request, raw) {
        Ok(key) => key,
        Err(refusal) => return refusal,
    };
    let _gate = ctx.shared.gates.shared(ctx.worker);
    kv::delete(ctx, &key, None);
    HttpResponse::no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_read_from_the_query() {
        assert_eq!(ttl_secs(""), Ok(0));
        assert_eq!(ttl_secs("a=1&ttl=30"), Ok(30));
        assert_eq!(ttl_secs("ttl=-1").unwrap_err().status, 400);
        assert_eq!(ttl_secs("ttl=x").unwrap_err().status, 400);
    }

    #[test]
    fn the_token_refuses_missing_and_wrong_credentials() {
        let token = AdminToken(Some(b"s3cret".to_vec()));
        assert_eq!(token.refuse(None).unwrap().status, 401);
        assert_eq!(token.refuse(Some(b"Basic abc")).unwrap().status, 401);
        assert_eq!(token.refuse(Some(b"Bearer nope")).unwrap().status, 403);
        assert_eq!(token.refuse(Some(b"Bearer s3cret")), None);
        assert_eq!(AdminToken(None).refuse(None), None);
    }
}
