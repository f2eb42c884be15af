//! Which servers we are: the versions ferrocache reports, the ones its behaviour was checked
//! against, and each deliberate difference. Every module that prints a version takes it here.
//!
//! # memcached
//! - We report **1.6.21** (`version`, binary Version, `stats version`).
//! - Replies and errors were checked byte for byte against **memcached 1.6.18** (Debian 12),
//!   in `tests/interop/differential.py` and `protocol/tools/diff_memcached.py`.
//! - Meta flags `E` (new cas) and `x` (md: drop the value) follow **1.6.28**, which added them
//!   with the same error texts; 1.6.18 answers `CLIENT_ERROR invalid flag` to both.
//! - Deliberate differences (README, "Known differences from memcached"): a value of exactly
//!   `-I` bytes is accepted; no slab classes; SASL PLAIN only; keys with control bytes are
//!   refused; a multi-get past the output limit closes the connection where memcached streams.
//!
//! # Redis
//! - We report **7.2.4** (`HELLO`, `INFO server`).
//! - Replies were checked against **redis-server 7.0.15** (Debian 12), with these 7.2 and 7.4
//!   behaviours on purpose: a RESP3 client's own pub/sub messages follow its command's reply
//!   (7.2); `ZRANK`/`ZREVRANK ... WITHSCORE` (7.2); `CLIENT LIST` fields and `CLIENT NO-TOUCH`
//!   (7.2); hash field TTLs (`HEXPIRE` family) and `HSCAN ... NOVALUES` (7.4); a huge negative
//!   `HRANDFIELD` count is refused as 7.2 does (7.0 builds the reply and may die).
//! - Sorted-set scores print as 7.0 does (`%.17g`), not 7.2's shortest form.
//! - Deliberate differences: one database; every connection has an output limit (Redis's
//!   normal clients have none); `INCRBYFLOAT` in 64-bit doubles.

/// The memcached release whose behaviour we follow, as `version` reports it.
pub const MEMCACHED_VERSION: &str = "1.6.21";

/// The Redis release we report in `HELLO` and `INFO`.
pub const REDIS_VERSION: &str = "7.2.4";
