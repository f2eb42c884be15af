//! The CLIENT command family (ID, SETNAME, GETNAME, LIST, INFO, KILL, SETINFO, NO-EVICT,
//! NO-TOUCH, REPLY), and keeping [`ClientShown`](crate::conn_info::ClientShown), what other
//! connections can see of a RESP session, current.
//!
//! A session publishes its state (protocol, MULTI queue, subscriptions, flags, last command)
//! into its [`ConnInfo`] after each command, so CLIENT LIST on any worker prints the truth
//! without reaching into another worker's session. Nothing here closes a socket: KILL marks
//! victims and wakes their workers, which close them (or asks its own connection to close
//! after the reply).

use std::sync::atomic::Ordering;

use ferrocache_protocol::resp::{Encoder, RespVersion};

use super::error::RespError;
use super::{err, is, parse_i64, Call, ReplyMode, RespSession};
use crate::command::Flow;
use crate::conn_info::{ConnInfo, ReadsTouch};
use crate::store::{ReadOptions, Recency};

/// Container commands whose CLIENT LIST `cmd=` names the subcommand too (`client|list`).
const CONTAINERS: &[&str] = &["acl", "client", "command", "config", "object", "pubsub"];

/// Appends `name` lower-cased to `command`, at most 64 characters in all (a client cannot make
/// every CLIENT LIST line huge); bytes outside ASCII show as `?`.
fn push_lowercase(command: &mut String, name: &[u8]) {
    for &byte in name.iter().take(64usize.saturating_sub(command.len())) {
        command.push(if byte.is_ascii() {
            byte.to_ascii_lowercase() as char
        } else {
            '?'
        });
    }
}

impl RespSession {
    /// Copies the state CLIENT LIST shows into the shared [`ConnInfo`]; `args` is the command
    /// just run (its name becomes `cmd=`; nothing for an empty command).
    pub fn publish_client_state(&self, args: &[impl AsRef<[u8]>]) {
        let shown = &self.info.client;
        let resp = if self.version == RespVersion::Resp3 {
            3
        } else {
            2
        };
        shown.resp.store(resp, Ordering::Relaxed);
        let multi = self.queued.as_ref().map_or(-1, |q| q.len() as i64);
        shown.multi.store(multi, Ordering::Relaxed);
        shown.channels.store(self.channels.len(), Ordering::Relaxed);
        shown.patterns.store(self.patterns.len(), Ordering::Relaxed);
        shown
            .shard_channels
            .store(self.shard_channels.len(), Ordering::Relaxed);
        if let Some(name) = args.first() {
            // Written in place, with no allocation: this runs after every command.
            let mut command = shown.last_command.lock();
            command.clear();
            push_lowercase(&mut command, name.as_ref());
            if let (true, Some(sub)) = (CONTAINERS.contains(&command.as_str()), args.get(1)) {
                command.push('|');
                push_lowercase(&mut command, sub.as_ref());
            }
        }
    }
}

impl Call<'_, '_> {
    /// The read options of a plain read by this client: it bumps the key's LRU/LFU data
    /// unless the client turned CLIENT NO-TOUCH on.
    pub fn read_options(&self) -> ReadOptions {
        let recency = match self.session.info.client.reads_touch() {
            ReadsTouch::Yes => Recency::Bump,
            ReadsTouch::No => Recency::Keep,
        };
        ReadOptions {
            recency,
            ..ReadOptions::plain()
        }
    }
}

/// Redis's rule for client names: printable ASCII without spaces.
pub(super) fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// CLIENT ID|SETNAME|GETNAME|LIST|INFO|KILL|SETINFO|NO-EVICT|NO-TOUCH|REPLY
pub fn client(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let sub = call.arg(1).to_ascii_uppercase();
    match (sub.as_slice(), call.args.len()) {
        (b"ID", 2) => enc.integer(call.session.info.id as i64),
        (b"SETNAME", 3) => {
            let name = call.arg(2).to_vec();
            if valid_client_name(&name) {
                call.session.set_name(name);
                enc.ok();
            } else {
                enc.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
        }
        (b"GETNAME", 2) => {
            let name = call.session.info.name.lock().clone();
            if name.is_empty() {
                enc.null();
            } else {
                enc.bulk(&name);
            }
        }
        (b"INFO", 2) => {
            call.session.publish_client_state(call.args);
            let line = client_line(call.ctx.now_ms, &call.session.info);
            enc.verbatim(line.as_bytes());
        }
        (b"LIST", _) => return list(call, enc),
        (b"KILL", n) if n >= 3 => return kill(call, enc),
        (b"SETINFO", 4) => setinfo(call, enc),
        // The dispatcher drops the replies the mode silences (`serve_one`).
        (b"REPLY", 3) => {
            let mode: &[u8] = &call.args[2];
            let session = &mut *call.session;
            if is(mode, "ON") {
                session.reply_mode = ReplyMode::On;
                enc.ok();
            } else if is(mode, "OFF") {
                session.reply_mode = ReplyMode::Off;
            } else if is(mode, "SKIP") {
                if session.reply_mode != ReplyMode::Off {
                    session.reply_mode = ReplyMode::SkipNext;
                }
            } else {
                enc.error(err::SYNTAX);
            }
        }
        (b"REPLY", _) => enc.error("ERR wrong number of arguments for 'client|reply' command"),
        (b"NO-EVICT" | b"NO-TOUCH", 3) => {
            let on = if is(call.arg(2), "ON") {
                true
            } else if is(call.arg(2), "OFF") {
                false
            } else {
                return Err(err::SYNTAX.into());
            };
            let shown = &call.session.info.client;
            let flag = if sub == b"NO-TOUCH" {
                &shown.no_touch
            } else {
                &shown.no_evict
            };
            flag.store(on, Ordering::Relaxed);
            enc.ok();
        }
        _ => enc.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(call.arg(1))
        )),
    }
    Ok(Flow::Continue)
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value
fn setinfo(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) {
    let value = call.arg(3).to_vec();
    // Redis refuses spaces and newlines in either (they would break CLIENT LIST).
    let shown_slot = if is(call.arg(2), "LIB-NAME") {
        &call.session.info.client.lib_name
    } else if is(call.arg(2), "LIB-VER") {
        &call.session.info.client.lib_version
    } else {
        enc.error(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(call.arg(2))
        ));
        return;
    };
    if !valid_client_name(&value) {
        enc.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(call.arg(2))
        ));
        return;
    }
    *shown_slot.lock() = String::from_utf8_lossy(&value).into_owned();
    if is(call.arg(2), "LIB-NAME") {
        call.session.lib_name = Some(value);
    } else {
        call.session.lib_version = Some(value);
    }
    enc.ok();
}

/// CLIENT LIST [TYPE type] [ID id ...]
fn list(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let mut kind = None;
    let mut ids: Vec<u64> = Vec::new();
    match call.args.get(2) {
        None => {}
        Some(word) if is(word, "TYPE") && call.args.len() == 4 => {
            match ClientType::from_name(call.arg(3)) {
                Some(wanted) => kind = Some(wanted),
                None => {
                    return Err(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(call.arg(3))
                    )
                    .into());
                }
            }
        }
        Some(word) if is(word, "ID") && call.args.len() > 3 => {
            for id in &call.args[3..] {
                match parse_i64(id) {
                    Some(id) if id > 0 => ids.push(id as u64),
                    _ => {
                        return Err("ERR Invalid client ID".into());
                    }
                }
            }
        }
        Some(_) => {
            return Err(err::SYNTAX.into());
        }
    }
    call.session.publish_client_state(call.args);
    let mut infos: Vec<_> = call
        .ctx
        .shared
        .connection_table
        .lock()
        .values()
        .filter(|info| info.resp)
        .filter(|info| kind.is_none_or(|kind| ClientType::of(info) == kind))
        .filter(|info| ids.is_empty() || ids.contains(&info.id))
        .cloned()
        .collect();
    infos.sort_by_key(|info| info.id);
    let mut text = String::new();
    for info in infos {
        text.push_str(&client_line(call.ctx.now_ms, &info));
    }
    enc.verbatim(text.as_bytes());
    Ok(Flow::Continue)
}

/// Redis's client types (`getClientType`). Connections in the table are normal or pub/sub;
/// the master and replica links live in the replication state (CLIENT KILL reaches them
/// there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    PubSub,
}

impl ClientType {
    fn from_name(name: &[u8]) -> Option<ClientType> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"slave" | b"replica" => Some(ClientType::Replica),
            b"master" => Some(ClientType::Master),
            b"pubsub" => Some(ClientType::PubSub),
            _ => None,
        }
    }

    fn of(info: &ConnInfo) -> ClientType {
        if info.client.subscribed() {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }
}

/// Which connections a CLIENT KILL picks (Redis `clientKillCommand`); every given filter
/// must match.
#[derive(Debug, Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    kind: Option<ClientType>,
    /// USER: only `default` exists, and every client is logged in as it.
    user: Option<()>,
    skip_me: bool,
}

impl KillFilter {
    /// Parses the new-style `<filter> <value> ...` pairs, with Redis's errors.
    fn parse(args: &[std::borrow::Cow<'_, [u8]>]) -> Result<KillFilter, String> {
        let mut filter = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        let mut pairs = args.chunks(2);
        for pair in &mut pairs {
            let [name, value] = pair else {
                return Err(err::SYNTAX.into());
            };
            let text = || String::from_utf8_lossy(value).into_owned();
            if is(name, "ID") {
                match parse_i64(value) {
                    Some(id) if id > 0 => filter.id = Some(id as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                }
            } else if is(name, "TYPE") {
                match ClientType::from_name(value) {
                    Some(kind) => filter.kind = Some(kind),
                    None => return Err(format!("ERR Unknown client type '{}'", text())),
                }
            } else if is(name, "ADDR") {
                filter.addr = Some(value.to_vec());
            } else if is(name, "LADDR") {
                filter.laddr = Some(value.to_vec());
            } else if is(name, "USER") {
                if value.as_ref() != b"default" {
                    return Err(format!("ERR No such user '{}'", text()));
                }
                filter.user = Some(());
            } else if is(name, "SKIPME") {
                if is(value, "YES") {
                    filter.skip_me = true;
                } else if is(value, "NO") {
                    filter.skip_me = false;
                } else {
                    return Err(err::SYNTAX.into());
                }
            } else {
                return Err(err::SYNTAX.into());
            }
        }
        Ok(filter)
    }

    fn picks(&self, info: &ConnInfo, me: u64) -> bool {
        let _every_client_is_default = self.user;
        self.id.is_none_or(|id| info.id == id)
            && self
                .addr
                .as_deref()
                .is_none_or(|addr| shown_addr(&info.peer).as_bytes() == addr)
            && self
                .laddr
                .as_deref()
                .is_none_or(|laddr| shown_addr(&info.local).as_bytes() == laddr)
            && self.kind.is_none_or(|kind| ClientType::of(info) == kind)
            && !(self.skip_me && info.id == me)
    }
}

/// CLIENT KILL addr:port | CLIENT KILL <filter> <value> ...
fn kill(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Result<Flow, RespError> {
    let old_style = call.args.len() == 3;
    let filter = if old_style {
        KillFilter {
            addr: Some(call.arg(2).to_vec()),
            ..KillFilter::default()
        }
    } else {
        match KillFilter::parse(&call.args[2..]) {
            Ok(filter) => filter,
            Err(message) => {
                return Err(message.into());
            }
        }
    };
    // Replication links are not client connections here (each runs on a thread of its
    // own): TYPE master / TYPE replica reach them through the replication state. Redis
    // matches them by address and id too; here only TYPE (and USER, SKIPME) pick them.
    if let Some(kind @ (ClientType::Master | ClientType::Replica)) = filter.kind {
        let by_address_or_id =
            filter.id.is_some() || filter.addr.is_some() || filter.laddr.is_some();
        let killed = if by_address_or_id {
            0
        } else if kind == ClientType::Master {
            call.ctx.shared.replication.kill_upstream()
        } else {
            call.ctx.shared.replication.kill_replica_links()
        };
        enc.integer(killed as i64);
        return Ok(Flow::Continue);
    }
    let me = call.session.info.id;
    let victims: Vec<_> = call
        .ctx
        .shared
        .connection_table
        .lock()
        .values()
        .filter(|info| info.resp && filter.picks(info, me))
        .cloned()
        .collect();
    let mut killed_myself = false;
    for victim in &victims {
        if victim.id == me {
            // Redis closes the calling client after its reply (CLIENT_CLOSE_AFTER_REPLY).
            killed_myself = true;
        } else {
            victim.kill.store(true, Ordering::Relaxed);
        }
    }
    if victims.len() > usize::from(killed_myself) {
        call.ctx.shared.wake_workers();
    }
    match (old_style, victims.len()) {
        (true, 0) => enc.error("ERR No such client"),
        (true, _) => enc.ok(),
        (false, n) => enc.integer(n as i64),
    }
    if killed_myself {
        Ok(Flow::Close)
    } else {
        Ok(Flow::Continue)
    }
}

/// `tcp:1.2.3.4:5` as Redis prints addresses (`1.2.3.4:5`); a unix socket shows its path.
fn shown_addr(addr: &str) -> &str {
    addr.strip_prefix("tcp:")
        .or_else(|| addr.strip_prefix("unix:"))
        .unwrap_or(addr)
}

/// Redis's flag letters (`catClientInfoString`), `N` when none applies.
fn flag_letters(info: &ConnInfo) -> String {
    let shown = &info.client;
    let mut flags = String::new();
    if shown.subscribed() {
        flags.push('P');
    }
    if shown.multi.load(Ordering::Relaxed) >= 0 {
        flags.push('x');
    }
    if info.kill.load(Ordering::Relaxed) {
        flags.push('A');
    }
    if info.peer.starts_with("unix:") {
        flags.push('U');
    }
    if shown.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if shown.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    flags
}

/// One CLIENT LIST line, with Redis 7.2's fields in its order. The buffers are as the
/// connection left them at the end of its last turn; one output buffer stands for Redis's
/// static buffer and reply list, so `obl` and `oll` are 0 and `omem` is its size.
pub(super) fn client_line(now_ms: u64, info: &ConnInfo) -> String {
    let shown = &info.client;
    let idle = now_ms.saturating_sub(info.last_active_ms.load(Ordering::Relaxed)) / 1000;
    let age = now_ms.saturating_sub(info.opened_ms) / 1000;
    let name = String::from_utf8_lossy(&info.name.lock()).into_owned();
    let command = shown.last_command.lock().clone();
    let command = if command.is_empty() { "NULL" } else { &command };
    let user = shown.user.lock().clone();
    let user = if user.is_empty() { "default" } else { &user };
    let qbuf = shown.query_len.load(Ordering::Relaxed);
    let rbs = shown.query_capacity.load(Ordering::Relaxed);
    let omem = shown.output_capacity.load(Ordering::Relaxed);
    let multi_mem = shown.multi_mem.load(Ordering::Relaxed);
    format!(
        "id={} addr={} laddr={} fd={} name={name} age={age} idle={idle} flags={} db=0 \
         sub={} psub={} ssub={} multi={} qbuf={qbuf} qbuf-free={} argv-mem=0 multi-mem={multi_mem} \
         rbs={rbs} rbp=0 obl=0 oll=0 omem={omem} tot-mem={} events=r cmd={command} user={user} redir=-1 \
         resp={} lib-name={} lib-ver={}\n",
        info.id,
        shown_addr(&info.peer),
        shown_addr(&info.local),
        info.fd,
        flag_letters(info),
        shown.channels.load(Ordering::Relaxed),
        shown.patterns.load(Ordering::Relaxed),
        shown.shard_channels.load(Ordering::Relaxed),
        shown.multi.load(Ordering::Relaxed),
        rbs.saturating_sub(qbuf),
        rbs + omem + multi_mem,
        shown.resp.load(Ordering::Relaxed),
        shown.lib_name.lock(),
        shown.lib_version.lock(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::exec_tests::{Harness, NOW};

    const SECOND: u64 = 1000;

    #[test]
    fn no_touch_reads_leave_the_idle_time() {
        let mut h = Harness::new();
        h.run(&["CONFIG SET maxmemory-policy allkeys-lru", "SET k v"]);
        assert_eq!(h.run(&["CLIENT NO-TOUCH ON"]), "+OK\r\n");
        h.run_at(&["GET k", "STRLEN k", "GETRANGE k 0 1"], NOW + 10 * SECOND);
        h.run_at(&["MULTI", "GET k", "EXEC"], NOW + 15 * SECOND);
        assert_eq!(
            h.run_at(&["OBJECT IDLETIME k"], NOW + 20 * SECOND),
            ":20\r\n"
        );
        // TOUCH still touches under NO-TOUCH (Redis 7.2).
        h.run_at(&["TOUCH k"], NOW + 20 * SECOND);
        assert_eq!(
            h.run_at(&["OBJECT IDLETIME k"], NOW + 25 * SECOND),
            ":5\r\n"
        );
        assert_eq!(h.run(&["CLIENT NO-TOUCH OFF"]), "+OK\r\n");
        h.run_at(&["GET k"], NOW + 30 * SECOND);
        assert_eq!(
            h.run_at(&["OBJECT IDLETIME k"], NOW + 40 * SECOND),
            ":10\r\n"
        );
    }

    #[test]
    fn no_touch_reads_leave_the_frequency() {
        let mut h = Harness::new();
        h.run(&[
            "CONFIG SET maxmemory-policy allkeys-lfu",
            "SET s v",
            "HSET h f v",
            "ZADD z 1 m",
        ]);
        let freqs = |h: &mut Harness| h.run(&["OBJECT FREQ s", "OBJECT FREQ h", "OBJECT FREQ z"]);
        let before = freqs(&mut h);
        h.run(&["CLIENT NO-TOUCH ON"]);
        for _ in 0..50 {
            h.run(&["GET s", "HGET h f", "ZSCORE z m", "ZRANGE z 0 -1"]);
        }
        assert_eq!(
            freqs(&mut h),
            before,
            "NO-TOUCH ON: reads leave LFU counters"
        );
        h.run(&["RESET"]);
        for _ in 0..50 {
            h.run(&["GET s", "HGET h f", "ZSCORE z m"]);
        }
        let after = freqs(&mut h);
        for (old, new) in before.lines().zip(after.lines()) {
            let count = |line: &str| line.trim_start_matches(':').parse::<u32>().unwrap();
            assert!(count(new) > count(old), "{before:?} -> {after:?}");
        }
    }

    #[test]
    fn client_info_shows_the_session_as_it_is() {
        let mut h = Harness::new();
        let info = h.run(&["CLIENT INFO"]);
        assert!(info.contains(" flags=N "), "{info}");
        assert!(info.contains(" multi=-1 "), "{info}");
        assert!(info.contains(" resp=2 "), "{info}");
        assert!(info.contains(" cmd=client|info "), "{info}");
        h.run(&["HELLO 3", "CLIENT NO-TOUCH ON", "CLIENT NO-EVICT ON"]);
        h.run(&[
            "CLIENT SETINFO LIB-NAME redis-rs",
            "CLIENT SETINFO LIB-VER 1.2",
        ]);
        let info = h.run(&["CLIENT INFO"]);
        assert!(info.contains(" flags=eT "), "{info}");
        assert!(
            info.contains(" resp=3 lib-name=redis-rs lib-ver=1.2\n"),
            "{info}"
        );
        h.run(&["RESET"]);
        let info = h.run(&["CLIENT INFO"]);
        assert!(info.contains(" flags=N "), "{info}");
        assert!(info.contains(" resp=2 "), "{info}");
        assert_eq!(
            h.run(&["CLIENT SETINFO LIB-NAME \"a b\""]),
            "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"
        );
    }

    #[test]
    fn client_list_fields_are_redis_7_2_in_order() {
        let mut h = Harness::new();
        // The harness's connection is not in the server's table: CLIENT INFO shows it.
        let info = h.run(&["CLIENT INFO"]);
        let body = info.split("\r\n").nth(1).unwrap();
        let keys: Vec<&str> = body
            .split_whitespace()
            .map(|field| field.split('=').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp",
                "lib-name",
                "lib-ver"
            ]
        );
        assert_eq!(
            h.run(&[
                "CLIENT LIST TYPE bogus",
                "CLIENT LIST ID x",
                "CLIENT LIST ID"
            ]),
            "-ERR Unknown client type 'bogus'\r\n-ERR Invalid client ID\r\n-ERR syntax error\r\n"
        );
    }

    /// Replies as redis-server 7.0.15 sent them for the same lines on one connection.
    #[test]
    fn client_reply_off_and_skip_drop_replies_but_run_the_commands() {
        let mut h = Harness::new();
        let lines = [
            "SET a 1",
            "CLIENT REPLY OFF",
            "SET b 2",
            "GET a",
            "FOO",
            "CLIENT REPLY SKIP",
            "CLIENT REPLY ON",
            "GET b",
            "CLIENT REPLY SKIP",
            "GET a",
            "GET b",
            "CLIENT REPLY SKIP",
            "CLIENT REPLY SKIP",
            "GET a",
            "GET b",
            "CLIENT REPLY FOO",
            "CLIENT REPLY",
            "CLIENT REPLY SKIP",
            "",
            "GET a",
            "CLIENT REPLY SKIP",
            "MULTI",
            "INCR a",
            "EXEC",
            "GET a",
        ];
        assert_eq!(
            h.run(&lines),
            "+OK\r\n+OK\r\n$1\r\n2\r\n$1\r\n2\r\n$1\r\n2\r\n-ERR syntax error\r\n\
             -ERR wrong number of arguments for 'client|reply' command\r\n$1\r\n1\r\n\
             +QUEUED\r\n*1\r\n:2\r\n$1\r\n2\r\n"
        );
    }

    /// Subscription confirmations are pushes: CLIENT REPLY OFF does not silence them
    /// (redis-server 7.0.15's "PubSub messages with CLIENT REPLY OFF").
    #[test]
    fn client_reply_off_keeps_subscription_confirmations() {
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["CLIENT REPLY OFF", "SUBSCRIBE a", "PING"]),
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
        );
    }
}
