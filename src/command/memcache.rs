//! memcached text commands: each request becomes store calls and memcached's exact replies.
//!
//! Meta commands are in [`super::meta`], `stats` rendering in [`super::stats`]. Counters are
//! the worker's own ([`WorkerStats`]); replies follow `doc/protocol.txt` and what memcached
//! 1.6 answers on the wire.

use ferrocache_protocol::memcache::{
    self as proto, reply, ArithDirection, ParseError, Request, StoreMode,
};

use super::{memcached_expiry, meta, stats, Context, Flow, Served};
use crate::metrics::WorkerStats;
use crate::store::{Arith, Delete, Mutation, Outcome, ReadOptions, Write, WriteMode};

/// The version we report: the memcached release whose behaviour we match.
pub const MEMCACHED_VERSION: &str = "1.6.21";

/// Executes one request, appending its reply to `out`.
pub fn execute(request: Request<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) -> Flow {
    let stats = ctx.stats;
    match request {
        Request::Get { keys, cas, touch } => {
            let expiry = touch.map(|t| memcached_expiry(t.0, ctx.now_ms));
            for key in keys.iter() {
                WorkerStats::incr(&stats.cmd_get);
                if expiry.is_some() {
                    WorkerStats::incr(&stats.cmd_touch);
                }
                let options = ReadOptions {
                    touch: expiry,
                    ..ReadOptions::plain()
                };
                let hit = ctx.shared.store.get(key, ctx.now_ms, options, |view| {
                    // Typed values (RESP hashes) have no memcached form: a miss here.
                    view.filter(|item| item.object().is_none())
                        .map(|item| {
                            proto::write_value(
                                out,
                                key,
                                item.flags(),
                                item.value(),
                                cas.then(|| item.cas()),
                            )
                        })
                        .is_some()
                });
                let counter = match (hit, expiry.is_some()) {
                    (true, false) => &stats.get_hits,
                    (false, false) => &stats.get_misses,
                    (true, true) => &stats.touch_hits,
                    (false, true) => &stats.touch_misses,
                };
                WorkerStats::incr(counter);
            }
            out.extend_from_slice(reply::END);
            Flow::Continue
        }
        Request::Store {
            mode,
            key,
            flags,
            exptime,
            value,
            cas_unique,
            reply: wanted,
        } => {
            WorkerStats::incr(&stats.cmd_set);
            let write = Write {
                key,
                value,
                flags,
                expiry: memcached_expiry(exptime.0, ctx.now_ms),
                mode: write_mode(mode),
                compare_cas: cas_unique,
                new_cas: None,
                invalidate: false,
            };
            let outcome = ctx.shared.store.apply(Mutation::Write(write), ctx.now_ms);
            if mode == StoreMode::Cas {
                let counter = match outcome {
                    Outcome::Stored { .. } => Some(&stats.cas_hits),
                    Outcome::Exists => Some(&stats.cas_badval),
                    Outcome::NotFound => Some(&stats.cas_misses),
                    _ => None,
                };
                if let Some(counter) = counter {
                    WorkerStats::incr(counter);
                }
            }
            let line = match outcome {
                Outcome::Stored { .. } => reply::STORED,
                Outcome::Exists => reply::EXISTS,
                Outcome::NotFound => reply::NOT_FOUND,
                // memcached answers an append that would outgrow the item limit with NOT_STORED.
                Outcome::TooLarge => reply::NOT_STORED,
                Outcome::OutOfMemory => {
                    WorkerStats::incr(&stats.store_no_memory);
                    reply::OUT_OF_MEMORY
                }
                _ => reply::NOT_STORED,
            };
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::Delete { key, reply: wanted } => {
            let delete = Delete {
                key,
                compare_cas: None,
                new_cas: None,
                invalidate: None,
            };
            let outcome = ctx.shared.store.apply(Mutation::Delete(delete), ctx.now_ms);
            let (counter, line) = match outcome {
                Outcome::Deleted => (&stats.delete_hits, reply::DELETED),
                _ => (&stats.delete_misses, reply::NOT_FOUND),
            };
            WorkerStats::incr(counter);
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::Arith {
            direction,
            key,
            delta,
            reply: wanted,
        } => {
            let incr = direction == ArithDirection::Incr;
            let arith = Arith {
                key,
                incr,
                delta,
                compare_cas: None,
                new_cas: None,
                vivify: None,
                expiry: None,
            };
            let outcome = ctx.shared.store.apply(Mutation::Arith(arith), ctx.now_ms);
            let (hits, misses) = if incr {
                (&stats.incr_hits, &stats.incr_misses)
            } else {
                (&stats.decr_hits, &stats.decr_misses)
            };
            match outcome {
                Outcome::Counter { value, .. } => {
                    WorkerStats::incr(hits);
                    if wanted.wanted() {
                        proto::write_number_line(out, value);
                    }
                }
                Outcome::NotNumeric => {
                    WorkerStats::incr(hits);
                    if wanted.wanted() {
                        out.extend_from_slice(reply::NON_NUMERIC);
                    }
                }
                _ => {
                    WorkerStats::incr(misses);
                    if wanted.wanted() {
                        out.extend_from_slice(reply::NOT_FOUND);
                    }
                }
            }
            Flow::Continue
        }
        Request::Touch {
            key,
            exptime,
            reply: wanted,
        } => {
            WorkerStats::incr(&stats.cmd_touch);
            let expiry = memcached_expiry(exptime.0, ctx.now_ms);
            let outcome = ctx
                .shared
                .store
                .apply(Mutation::Touch { key, expiry }, ctx.now_ms);
            let (counter, line) = match outcome {
                Outcome::Touched => (&stats.touch_hits, reply::TOUCHED),
                _ => (&stats.touch_misses, reply::NOT_FOUND),
            };
            WorkerStats::incr(counter);
            if wanted.wanted() {
                out.extend_from_slice(line);
            }
            Flow::Continue
        }
        Request::FlushAll {
            delay,
            reply: wanted,
        } => {
            if !ctx.shared.config.server.enable_flush {
                out.extend_from_slice(reply::FLUSH_DISABLED);
                return Flow::Continue;
            }
            WorkerStats::incr(&stats.cmd_flush);
            let at_ms = match delay {
                Some(delay) if delay.0 > 0 => match memcached_expiry(delay.0, ctx.now_ms) {
                    crate::store::Expiry::AtMs(at) => Some(at),
                    crate::store::Expiry::Never => None,
                },
                _ => None,
            };
            ctx.shared
                .store
                .apply(Mutation::FlushAll { at_ms }, ctx.now_ms);
            if wanted.wanted() {
                out.extend_from_slice(reply::OK);
            }
            Flow::Continue
        }
        Request::Version => {
            proto::write_version(out, MEMCACHED_VERSION);
            Flow::Continue
        }
        Request::Verbosity {
            level,
            reply: wanted,
        } => {
            let level = level as usize;
            ctx.shared
                .verbosity
                .store(level, std::sync::atomic::Ordering::Relaxed);
            log::set_max_level(crate::server::log_level(level));
            if wanted.wanted() {
                out.extend_from_slice(reply::OK);
            }
            Flow::Continue
        }
        Request::Quit => Flow::Close,
        Request::Shutdown { .. } => {
            if ctx.shared.config.server.enable_shutdown {
                log::warn!("shutdown requested by a client");
                Flow::Shutdown
            } else {
                out.extend_from_slice(reply::SHUTDOWN_DISABLED);
                Flow::Continue
            }
        }
        Request::Stats(group) => {
            stats::render(group, ctx, out);
            Flow::Continue
        }
        Request::CacheMemlimit {
            megabytes,
            reply: wanted,
        } => {
            if megabytes < 8 {
                out.extend_from_slice(
                    b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
                );
                return Flow::Continue;
            }
            let bytes =
                usize::try_from(megabytes.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
            ctx.shared.store.set_memory_limit(bytes);
            if wanted.wanted() {
                out.extend_from_slice(reply::OK);
            }
            Flow::Continue
        }
        Request::MetaGet(m) => meta::get(&m, ctx, out),
        Request::MetaSet { meta: m, value } => meta::set(&m, value, ctx, out),
        Request::MetaDelete(m) => meta::delete(&m, ctx, out),
        Request::MetaArith(m) => meta::arith(&m, ctx, out),
        Request::MetaDebug(m) => meta::debug(&m, ctx, out),
        Request::MetaNoop => {
            WorkerStats::incr(&stats.cmd_meta);
            out.extend_from_slice(reply::META_NOOP);
            Flow::Continue
        }
    }
}

/// Parses and executes the request at the front of `input`; `None` until one is complete.
pub fn serve_one(input: &[u8], ctx: &Context<'_>, out: &mut Vec<u8>) -> Option<Served> {
    match proto::parse(input, &ctx.shared.limits) {
        Ok(Some((request, consumed))) => {
            let flow = execute(request, ctx, out);
            Some(Served {
                consumed,
                swallow: 0,
                flow,
            })
        }
        Ok(None) => None,
        Err(error) if error.closes_connection() => {
            log::debug!("closing a connection: {error}");
            Some(Served {
                consumed: 0,
                swallow: 0,
                flow: Flow::Close,
            })
        }
        Err(error) => {
            rejected(&error, ctx, out);
            Some(Served {
                consumed: error.consumed(),
                swallow: error.swallow(),
                flow: Flow::Continue,
            })
        }
    }
}

/// Answers a request the parser refused, with memcached's side effects.
fn rejected(error: &ParseError<'_>, ctx: &Context<'_>, out: &mut Vec<u8>) {
    if matches!(error, ParseError::TooLarge { .. }) {
        WorkerStats::incr(&ctx.stats.store_too_large);
    }
    let mut scratch = [0u8; proto::MAX_KEY_LEN];
    if let Some(key) = error.unlink_key(&mut scratch) {
        // memcached unlinks the old item after a refused set, so no stale value survives it.
        ctx.shared.store.apply(Mutation::Unlink { key }, ctx.now_ms);
    }
    error.write_reply(out);
}

fn write_mode(mode: StoreMode) -> WriteMode {
    match mode {
        StoreMode::Set | StoreMode::Cas => WriteMode::Set,
        StoreMode::Add => WriteMode::Add,
        StoreMode::Replace => WriteMode::Replace,
        StoreMode::Append => WriteMode::Append,
        StoreMode::Prepend => WriteMode::Prepend,
    }
}
