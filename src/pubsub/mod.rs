//! Publish/subscribe: who listens to which channel, and delivery to their workers.
//!
//! The [`Registry`] maps channels (and shard channels) to subscribers in shards of read/write
//! locks chosen by channel hash, so PUBLISH takes one shard's lock for reading and never a
//! global lock; patterns live in their own lock (they change rarely). A subscriber is a
//! connection id on a worker. Delivery encodes the message once per protocol version and
//! hands it to each subscriber's worker through the [`Deliver`] sink (a channel plus a
//! `mio::Waker`, see `server::worker`), so a publisher never touches another worker's
//! connections. Messages from one publisher reach a subscriber in publishing order: each
//! worker's queue is FIFO.
//!
//! Invariant: a connection's entries are removed when it unsubscribes or closes
//! ([`Registry::forget`]); the registry never holds a lock while sending.

pub mod outbox;

use crate::hashing::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use ferrocache_protocol::resp::{Encoder, RespVersion};
use parking_lot::RwLock;

use crate::glob;

const SHARDS: usize = 16;

/// One subscribed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriber {
    pub worker: usize,
    pub conn_id: u64,
    pub version: RespVersion,
}

/// Which namespace a channel lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// SUBSCRIBE / PUBLISH.
    Global,
    /// SSUBSCRIBE / SPUBLISH (shard channels).
    Shard,
}

/// Where encoded messages go: implemented by the server (worker queues).
pub trait Deliver: Send + Sync {
    /// Queues one publish's messages for connections on `worker` (`(conn_id, frame)` pairs)
    /// and wakes that worker, once for the whole batch.
    fn deliver(&self, worker: usize, batch: Batch);
}

type Channels = HashMap<Vec<u8>, Vec<Subscriber>>;

/// Messages for one worker: `(conn_id, encoded frame)` pairs.
pub type Batch = Vec<(u64, Arc<[u8]>)>;

/// Encoded pattern messages of one publish, by (pattern, protocol version).
type PatternFrames<'p> = Vec<(&'p [u8], RespVersion, Arc<[u8]>)>;

pub struct Registry {
    channels: Box<[RwLock<Channels>]>,
    shard_channels: Box<[RwLock<Channels>]>,
    patterns: RwLock<Vec<(Vec<u8>, Subscriber)>>,
    hasher: crate::hashing::IndexHasher,
    sink: std::sync::OnceLock<Box<dyn Deliver>>,
    /// `notify-keyspace-events` as [`notify`] bits (live: CONFIG SET changes it).
    notify_flags: std::sync::atomic::AtomicU32,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        let shards = || {
            (0..SHARDS)
                .map(|_| RwLock::new(Channels::default()))
                .collect()
        };
        Registry {
            channels: shards(),
            shard_channels: shards(),
            patterns: RwLock::new(Vec::new()),
            hasher: crate::hashing::IndexHasher::default(),
            sink: std::sync::OnceLock::new(),
            notify_flags: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn notify_flags(&self) -> u32 {
        self.notify_flags.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_notify_flags(&self, flags: u32) {
        self.notify_flags
            .store(flags, std::sync::atomic::Ordering::Relaxed);
    }

    /// Connects the registry to the workers (once, at server start).
    pub fn set_sink(&self, sink: Box<dyn Deliver>) {
        let _ = self.sink.set(sink);
    }

    fn shard(&self, space: Space, channel: &[u8]) -> &RwLock<Channels> {
        let index = self.hasher.hash_one(channel) as usize % SHARDS;
        match space {
            Space::Global => &self.channels[index],
            Space::Shard => &self.shard_channels[index],
        }
    }

    pub fn subscribe(&self, space: Space, channel: &[u8], subscriber: Subscriber) {
        let mut map = self.shard(space, channel).write();
        let list = map.entry(channel.to_vec()).or_default();
        if !list.iter().any(|s| s.conn_id == subscriber.conn_id) {
            list.push(subscriber);
        }
    }

    pub fn unsubscribe(&self, space: Space, channel: &[u8], conn_id: u64) {
        let mut map = self.shard(space, channel).write();
        if let Some(list) = map.get_mut(channel) {
            list.retain(|s| s.conn_id != conn_id);
            if list.is_empty() {
                map.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, pattern: &[u8], subscriber: Subscriber) {
        let mut patterns = self.patterns.write();
        if !patterns
            .iter()
            .any(|(p, s)| p == pattern && s.conn_id == subscriber.conn_id)
        {
            patterns.push((pattern.to_vec(), subscriber));
        }
    }

    pub fn punsubscribe(&self, pattern: &[u8], conn_id: u64) {
        self.patterns
            .write()
            .retain(|(p, s)| !(p == pattern && s.conn_id == conn_id));
    }

    /// Removes every subscription of a closing connection.
    pub fn forget(
        &self,
        conn_id: u64,
        channels: &[Vec<u8>],
        shard_channels: &[Vec<u8>],
        has_patterns: bool,
    ) {
        for channel in channels {
            self.unsubscribe(Space::Global, channel, conn_id);
        }
        for channel in shard_channels {
            self.unsubscribe(Space::Shard, channel, conn_id);
        }
        if has_patterns {
            self.patterns.write().retain(|(_, s)| s.conn_id != conn_id);
        }
    }

    /// Publishes `message` on `channel`; returns how many subscriptions received it.
    pub fn publish(&self, space: Space, channel: &[u8], message: &[u8]) -> usize {
        let kind: &[u8] = if space == Space::Shard {
            b"smessage"
        } else {
            b"message"
        };
        // One batch per worker, so a publish costs one queue hand-off and one wake-up per
        // worker however many of its connections subscribe; frames are encoded once per
        // (pattern, protocol version) and shared.
        let mut batches: Vec<(usize, Batch)> = Vec::new();
        let mut add = |worker: usize, conn_id: u64, frame: Arc<[u8]>| match batches
            .iter_mut()
            .find(|(w, _)| *w == worker)
        {
            Some((_, batch)) => batch.push((conn_id, frame)),
            None => batches.push((worker, vec![(conn_id, frame)])),
        };
        let mut receivers = 0;
        {
            let map = self.shard(space, channel).read();
            if let Some(subscribers) = map.get(channel) {
                let mut frames: [Option<Arc<[u8]>>; 2] = [None, None];
                for subscriber in subscribers {
                    let slot = &mut frames[usize::from(subscriber.version == RespVersion::Resp3)];
                    let frame = slot.get_or_insert_with(|| {
                        encode(subscriber.version, &[kind, channel, message])
                    });
                    add(subscriber.worker, subscriber.conn_id, frame.clone());
                    receivers += 1;
                }
            }
        }
        if space == Space::Global {
            let patterns = self.patterns.read();
            let mut frames: PatternFrames<'_> = Vec::new();
            for (pattern, subscriber) in patterns.iter() {
                if !glob::matches(pattern, channel) {
                    continue;
                }
                let cached = frames
                    .iter()
                    .find(|(p, v, _)| *p == pattern.as_slice() && *v == subscriber.version);
                let frame = match cached {
                    Some((_, _, frame)) => frame.clone(),
                    None => {
                        let frame = encode(
                            subscriber.version,
                            &[b"pmessage", pattern, channel, message],
                        );
                        frames.push((pattern, subscriber.version, frame.clone()));
                        frame
                    }
                };
                add(subscriber.worker, subscriber.conn_id, frame);
                receivers += 1;
            }
        }
        if let Some(sink) = self.sink.get() {
            for (worker, batch) in batches {
                sink.deliver(worker, batch);
            }
        }
        receivers
    }

    /// Channels with at least one subscriber, optionally matching a pattern.
    pub fn channels(&self, space: Space, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let shards = match space {
            Space::Global => &self.channels,
            Space::Shard => &self.shard_channels,
        };
        let mut names = Vec::new();
        for shard in shards.iter() {
            for name in shard.read().keys() {
                if pattern.is_none_or(|p| glob::matches(p, name)) {
                    names.push(name.clone());
                }
            }
        }
        names.sort();
        names
    }

    /// Subscribers of one channel.
    pub fn numsub(&self, space: Space, channel: &[u8]) -> usize {
        self.shard(space, channel)
            .read()
            .get(channel)
            .map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed to (PUBSUB NUMPAT: Redis counts a pattern once however
    /// many clients hold it).
    pub fn numpat(&self) -> usize {
        let patterns = self.patterns.read();
        let distinct: std::collections::HashSet<&[u8]> =
            patterns.iter().map(|(pattern, _)| &pattern[..]).collect();
        distinct.len()
    }
}

/// A pub/sub message as an array (RESP2) or push frame (RESP3) of bulk strings.
pub fn encode(version: RespVersion, parts: &[&[u8]]) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8);
    let mut enc = Encoder::new(&mut out, version);
    enc.push(parts.len());
    for part in parts {
        enc.bulk(part);
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(usize, u64, Vec<u8>)>>);

    impl Deliver for Arc<Collect> {
        fn deliver(&self, worker: usize, batch: Batch) {
            let mut seen = self.0.lock();
            for (conn_id, frame) in batch {
                seen.push((worker, conn_id, frame.to_vec()));
            }
        }
    }

    fn sub(worker: usize, conn_id: u64, version: RespVersion) -> Subscriber {
        Subscriber {
            worker,
            conn_id,
            version,
        }
    }

    #[test]
    fn numpat_counts_each_pattern_once() {
        let registry = Registry::new();
        registry.psubscribe(b"foo*", sub(0, 1, RespVersion::Resp2));
        registry.psubscribe(b"foo*", sub(0, 2, RespVersion::Resp2));
        registry.psubscribe(b"bar*", sub(0, 1, RespVersion::Resp2));
        assert_eq!(registry.numpat(), 2);
    }

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers() {
        let registry = Registry::new();
        let sink = Arc::new(Collect::default());
        registry.set_sink(Box::new(sink.clone()));
        registry.subscribe(Space::Global, b"news", sub(0, 1, RespVersion::Resp2));
        registry.subscribe(Space::Global, b"news", sub(1, 2, RespVersion::Resp3));
        registry.psubscribe(b"n*", sub(1, 3, RespVersion::Resp2));
        assert_eq!(registry.publish(Space::Global, b"news", b"hi"), 3);
        let got = sink.0.lock().clone();
        assert_eq!(
            got[0],
            (
                0,
                1,
                b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n".to_vec()
            )
        );
        assert_eq!(
            got[1],
            (
                1,
                2,
                b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n".to_vec()
            )
        );
        assert_eq!(
            got[2].2,
            b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n".to_vec()
        );
        assert_eq!(
            registry.publish(Space::Shard, b"news", b"x"),
            0,
            "shard channels are separate"
        );
        assert_eq!(
            registry.channels(Space::Global, None),
            vec![b"news".to_vec()]
        );
        assert_eq!(
            (registry.numsub(Space::Global, b"news"), registry.numpat()),
            (2, 1)
        );
        registry.forget(2, &[b"news".to_vec()], &[], false);
        registry.forget(3, &[], &[], true);
        assert_eq!(registry.publish(Space::Global, b"news", b"again"), 1);
        registry.unsubscribe(Space::Global, b"news", 1);
        assert!(registry.channels(Space::Global, None).is_empty());
    }
}

/// Redis's `notify-keyspace-events` classes (`notify.c`), as bits.
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    /// `A`: every class but m and n.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    const LETTERS: [(char, u32); 13] = [
        ('g', GENERIC),
        ('$', STRING),
        ('l', LIST),
        ('s', SET),
        ('h', HASH),
        ('z', ZSET),
        ('x', EXPIRED),
        ('e', EVICTED),
        ('t', STREAM),
        ('m', KEY_MISS),
        ('d', MODULE),
        ('n', NEW),
        ('K', KEYSPACE),
    ];

    /// Parses a flag string such as `"KEA"` or `"Kx"`; `None` on an unknown character.
    pub fn parse(text: &str) -> Option<u32> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => ALL,
                'E' => KEYEVENT,
                c => LETTERS.iter().find(|(l, _)| *l == c)?.1,
            };
        }
        Some(flags)
    }

    /// The canonical string CONFIG GET shows (classes, then K, then E).
    pub fn to_string(flags: u32) -> String {
        let mut text = String::new();
        if flags & ALL == ALL {
            text.push('A');
        } else {
            for (letter, bit) in LETTERS.iter().filter(|(l, _)| *l != 'K') {
                if flags & bit != 0 && !(*letter == 'm' || *letter == 'n') {
                    text.push(*letter);
                }
            }
        }
        for (letter, bit) in [
            ('m', KEY_MISS),
            ('n', NEW),
            ('K', KEYSPACE),
            ('E', KEYEVENT),
        ] {
            if flags & bit != 0 {
                text.push(letter);
            }
        }
        text
    }
}

/// Publishes keyspace notifications (`__keyspace@0__:<key>` / `__keyevent@0__:<event>`) for
/// the store's key events, as Redis's `notify-keyspace-events` selects them. Because it
/// listens to the store, writes from memcached clients notify RESP subscribers too.
pub struct KeyspaceNotifier {
    pub registry: Arc<Registry>,
    /// Only keys with one of these prefixes notify (empty = all keys).
    pub prefixes: Vec<Vec<u8>>,
}

/// The `notify-keyspace-events` class of a Redis event name (`notify.c` callers): what a
/// command labelled its change with. Names not listed (del, expire, persist, rename_from,
/// rename_to, copy_to, restore...) are generic.
fn class_of(event: &str) -> u32 {
    match event {
        "set" | "setrange" | "incrby" | "incrbyfloat" | "append" => notify::STRING,
        "lpush" | "rpush" | "lpop" | "rpop" | "linsert" | "lset" | "lrem" | "ltrim"
        | "sortstore" => notify::LIST,
        "sadd" | "srem" | "spop" | "sinterstore" | "sunionstore" | "sdiffstore" => notify::SET,
        "hset" | "hdel" | "hincrby" | "hincrbyfloat" | "hexpire" | "hpersist" | "hexpired" => {
            notify::HASH
        }
        "zadd" | "zincr" | "zrem" | "zremrangebyscore" | "zremrangebyrank" | "zremrangebylex"
        | "zpopmin" | "zpopmax" | "zunionstore" | "zinterstore" | "zdiffstore" | "zrangestore" => {
            notify::ZSET
        }
        "xadd"
        | "xtrim"
        | "xdel"
        | "xsetid"
        | "xgroup-create"
        | "xgroup-setid"
        | "xgroup-destroy"
        | "xgroup-createconsumer"
        | "xgroup-delconsumer" => notify::STREAM,
        "expired" => notify::EXPIRED,
        "evicted" => notify::EVICTED,
        "new" => notify::NEW,
        _ => notify::GENERIC,
    }
}

impl KeyspaceNotifier {
    /// Publishes one event on `key` if its class is selected.
    fn publish(&self, flags: u32, name: &str, key: &[u8]) {
        if flags & class_of(name) == 0 {
            return;
        }
        if flags & notify::KEYSPACE != 0 {
            let channel = [b"__keyspace@0__:".as_slice(), key].concat();
            self.registry
                .publish(Space::Global, &channel, name.as_bytes());
        }
        if flags & notify::KEYEVENT != 0 {
            let channel = [b"__keyevent@0__:".as_slice(), name.as_bytes()].concat();
            self.registry.publish(Space::Global, &channel, key);
        }
    }
}

impl crate::store::Observer for KeyspaceNotifier {
    /// An effect's events are the names its command labelled it with, in order (a removal
    /// by a client adds `del` after them, as Redis notifies an emptied collection); an
    /// unlabelled write is named after the type it leaves (memcached writes notify `set`).
    fn effect(&self, effect: &crate::store::Effect<'_>) {
        use crate::store::{Effect, KeyKind, KeyPresence, PutCause, Removal};
        let flags = self.registry.notify_flags();
        if flags & (notify::KEYSPACE | notify::KEYEVENT) == 0 {
            return;
        }
        let key = match effect {
            Effect::Put { item, .. } => item.key(),
            Effect::Removed { key, .. } => key,
            Effect::Flushed => return,
        };
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|p| key.starts_with(p)) {
            return;
        }
        // A key added by the change: `new` first, as Redis's dbAdd notifies before the
        // command names its change.
        if let Effect::Put {
            presence: KeyPresence::Added,
            ..
        } = effect
        {
            self.publish(flags, "new", key);
        }
        match effect {
            Effect::Put {
                labels: Some(names),
                ..
            } => {
                for name in names.iter() {
                    self.publish(flags, name, key);
                }
            }
            Effect::Put {
                item,
                cause: PutCause::Written,
                labels: None,
                ..
            } => {
                let name = match item.kind() {
                    KeyKind::String => "set",
                    KeyKind::Hash => "hset",
                    KeyKind::ZSet => "zadd",
                    KeyKind::List => "lpush",
                    KeyKind::Set => "sadd",
                    // Stream commands name their edits (`resp::stream_common::write_stream`).
                    KeyKind::Stream => "xadd",
                };
                self.publish(flags, name, key);
            }
            Effect::Put {
                cause: PutCause::Restamped,
                labels: None,
                ..
            } => {}
            Effect::Removed { cause, labels, .. } => {
                let names = labels.unwrap_or(&[]);
                for name in names.iter() {
                    self.publish(flags, name, key);
                }
                match cause {
                    Removal::Deleted if !names.contains(&"del") => self.publish(flags, "del", key),
                    Removal::Expired => self.publish(flags, "expired", key),
                    Removal::Evicted => self.publish(flags, "evicted", key),
                    // A moved key is named by its command (RENAME's rename_from).
                    Removal::Deleted | Removal::Moved | Removal::Flushed => {}
                }
            }
            Effect::Flushed => {}
        }
    }
}

#[cfg(test)]
mod notify_tests {
    use super::notify;

    #[test]
    fn flags_parse_and_print_like_redis() {
        assert_eq!(notify::parse(""), Some(0));
        assert_eq!(notify::to_string(notify::parse("KEA").unwrap()), "AKE");
        assert_eq!(notify::to_string(notify::parse("Kx").unwrap()), "xK");
        assert_eq!(notify::to_string(notify::parse("E$g").unwrap()), "g$E");
        assert_eq!(notify::parse("Q"), None);
    }

    /// A key's creation is class `n` (Redis's NOTIFY_NEW), which `A` leaves out.
    #[test]
    fn new_key_events_are_class_n_and_not_in_a() {
        assert_eq!(super::class_of("new"), notify::NEW);
        assert_eq!(notify::parse("A").unwrap() & notify::NEW, 0);
        assert_ne!(notify::parse("n").unwrap() & notify::NEW, 0);
    }

    /// Stream events are class `t` (Redis's NOTIFY_STREAM), not generic `g`.
    #[test]
    fn stream_events_are_in_the_stream_class() {
        for event in [
            "xadd",
            "xtrim",
            "xdel",
            "xsetid",
            "xgroup-create",
            "xgroup-setid",
        ] {
            assert_eq!(super::class_of(event), notify::STREAM, "{event}");
        }
        for event in [
            "xgroup-destroy",
            "xgroup-createconsumer",
            "xgroup-delconsumer",
        ] {
            assert_eq!(super::class_of(event), notify::STREAM, "{event}");
        }
        assert_eq!(super::class_of("del"), notify::GENERIC);
    }
}
