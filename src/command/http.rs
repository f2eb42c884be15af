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

/// Who a request runs as, for the ACL: the ACL user of `Authorization: Basic` credentials,
/// the user the admin token maps to (`[http] admin_token_user`), or nobody (the `default`
/// user's rules then apply to the cache API).
enum Who {
    Anonymous,
    User(Vec<u8>),
}

/// Reads the request's credentials: `Err` is the refusal (403) for wrong ones. A bearer
/// token is the admin token (when one is set); Basic is an ACL user's name and password (a
/// `nopass` or switched-off user is not accepted, as on the memcached port).
fn identify(
    ctx: &Context<'_>,
    request: &HttpRequest<'_>,
    token: &AdminToken,
) -> Result<Who, HttpResponse> {
    let Some(header) = request.authorization else {
        return Ok(Who::Anonymous);
    };
    if let Some(encoded) = header.strip_prefix(b"Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim_ascii())
            .map_err(|_| HttpResponse::error(400, "malformed basic credentials"))?;
        let colon = decoded.iter().position(|&b| b == b':');
        let Some(colon) = colon else {
            return Err(HttpResponse::error(400, "malformed basic credentials"));
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let known = ctx
            .shared
            .acl
            .user(&String::from_utf8_lossy(user))
            .is_some_and(|u| u.enabled && !u.nopass && u.password_ok(password));
        return if known {
            Ok(Who::User(user.to_vec()))
        } else {
            Err(HttpResponse::error(403, "wrong user or password"))
        };
    }
    if header.starts_with(b"Bearer ") && token.0.is_some() {
        if let Some(refusal) = token.refuse(Some(header)) {
            return Err(refusal);
        }
        let user = &ctx.shared.config.http.admin_token_user;
        return Ok(Who::User(user.as_bytes().to_vec()));
    }
    Ok(Who::Anonymous)
}

/// Whether the ACL lets `who` run the RESP twin `command` on `key` (`None` when it does, else
/// the refusal). Anonymous requests run as `default`, and need it to open without a password.
fn acl_refusal(
    ctx: &Context<'_>,
    who: &Who,
    command: &str,
    key: Option<&[u8]>,
    access: crate::acl::Access,
) -> Option<HttpResponse> {
    let user: &[u8] = match who {
        Who::User(name) => name,
        Who::Anonymous if ctx.shared.acl.default_opens_without_password() => b"default",
        Who::Anonymous => return Some(HttpResponse::error(401, "authentication required")),
    };
    super::mc_acl::denies(&ctx.shared.acl, user, true, command, key, access)
        .then(|| HttpResponse::error(403, "permission denied"))
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
    let who = match identify(ctx, request, token) {
        Ok(who) => who,
        Err(refusal) => return ("auth", refusal),
    };
    if let Some(raw) = path.strip_prefix("/v1/cache/") {
        use crate::acl::Access::{Read, Write};
        let (name, command, access) = match request.method {
            "GET" => ("get", "get", Read),
            "PUT" => ("put", "set", Write),
            "DELETE" => ("delete", "del", Write),
            _ => return ("cache", HttpResponse::error(405, "method not allowed")),
        };
        let key = match store_key(ctx, request, raw) {
            Ok(key) => key,
            Err(refusal) => return (name, refusal),
        };
        if let Some(refusal) = acl_refusal(ctx, &who, command, Some(&key), access) {
            return (name, refusal);
        }
        if access == Write {
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
                return (name, HttpResponse::error(503, message));
            }
        }
        let response = match request.method {
            "GET" => cache_get(ctx, &key),
            "PUT" => cache_put(ctx, request, &key, query),
            _ => cache_delete(ctx, &key),
        };
        return (name, response);
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
        // With a token set, an admin route needs credentials (the token or an ACL user's);
        // whoever they name must be allowed INFO, the RESP twin of reading the figures.
        if token.0.is_some() && matches!(who, Who::Anonymous) {
            return (name, HttpResponse::error(401, "a bearer token is required"));
        }
        if let Who::User(_) = who {
            if let Some(refusal) = acl_refusal(ctx, &who, "info", None, crate::acl::Access::Read) {
                return (name, refusal);
            }
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

fn cache_get(ctx: &Context<'_>, key: &[u8]) -> HttpResponse {
    let _gate = ctx.shared.gates.shared(ctx.worker);
    let value = kv::get(ctx, key, None, |view| {
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

fn cache_put(
    ctx: &Context<'_>,
    request: &HttpRequest<'_>,
    key: &[u8],
    query: &str,
) -> HttpResponse {
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
        key,
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

fn cache_delete(ctx: &Context<'_>, key: &[u8]) -> HttpResponse {
    let _gate = ctx.shared.gates.shared(ctx.worker);
    kv::delete(ctx, key, None);
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
