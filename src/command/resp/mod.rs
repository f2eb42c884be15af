//! RESP commands: the Redis side of ferrocache, on the same store as memcached.
//!
//! [`serve_one`] parses one command, checks it against the static [`table`] (name, arity,
//! flags), handles authentication and MULTI queueing, and dispatches to the family modules
//! (`strings`, `keys`, `hash`, `list`, `blocking`, `set`, `zset`, `zset_ops`, `zset_range`, `server`, `tx`). Error replies use Redis's words.
//!
//! Atomicity: every command runs while holding its worker's gate for reading; commands that
//! touch several keys at once (MSET, RENAME, EXEC, ...) take every worker's gate for writing,
//! so no other client on any worker runs in between (see [`crate::shared::Gates`]).

mod acl;
mod blocking;
mod client;
mod connection;
mod dump;
mod error;
mod events;
mod functions;
mod hash;
mod keys;
mod list;
mod list_ops;
mod observe;
mod persist;
mod pubsub;
mod random;
mod replication;
mod scripting;
mod server;
mod set;
mod settings;
mod sort;
mod spec;
mod stream;
mod stream_common;
mod stream_group;
mod stream_info;
mod stream_read;
mod strings;
pub mod table;
mod tx;
mod zset;
mod zset_ops;
mod zset_pop;
mod zset_range;

use std::borrow::Cow;
use std::sync::Arc;

use ferrocache_protocol::resp::{self, Command, Encoder, RespVersion};

use super::{Context, Flow, Served};
use crate::conn_info::ConnInfo;
use crate::hashing::HashSet;
use crate::metrics::latency::{Ending, Proto, Timer};
use crate::metrics::WorkerStats;
use crate::replication::WriteRefusal;
use spec::Flags;

pub use acl::authenticate_by_certificate;
pub use random::restart_random_sequence;

/// Per-connection RESP state.
#[derive(Debug)]
pub struct RespSession {
    /// The connection as others see it (CLIENT LIST, KILL): id, address, name.
    pub info: Arc<ConnInfo>,
    pub version: RespVersion,
    pub authenticated: bool,
    /// The ACL user commands run as (`default` until AUTH names another).
    pub user_name: String,
    /// That user as of ACL generation `acl_generation` (looked up again when it moves on).
    pub user: Option<Arc<crate::acl::User>>,
    pub acl_generation: u64,
    pub lib_name: Option<Vec<u8>>,
    pub lib_version: Option<Vec<u8>>,
    /// Commands queued since MULTI (`None` outside a transaction).
    pub queued: Option<Vec<Vec<Vec<u8>>>>,
    /// Bytes the queued commands hold (arguments and their vectors), while `queued` is Some.
    pub queued_bytes: usize,
    /// A queued command was refused: EXEC aborts.
    pub queue_failed: bool,
    /// WATCHed keys and the cas unique each had (None = absent) when watched.
    pub watched: Vec<(Vec<u8>, Option<u64>)>,
    /// SUBSCRIBEd channels, PSUBSCRIBEd patterns, SSUBSCRIBEd shard channels.
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    pub shard_channels: HashSet<Vec<u8>>,
    /// How far the parser got into an incomplete request (resumed when more bytes arrive).
    pub parse_progress: resp::Progress,
    /// EXEC is running the queued commands (blocking pops answer at once).
    pub in_exec: bool,
    /// Streams written inside the running EXEC: their blocked readers are served once it
    /// ends, seeing the transaction's outcome (as Redis's `signalKeyAsReady` defers them).
    pub ready_streams: Vec<Vec<u8>>,
    /// The blocking pop this connection is parked in, if any.
    pub parked: Option<crate::blocking::Parked>,
    /// CLIENT REPLY: whether this command's reply is sent.
    pub reply_mode: ReplyMode,
    /// Keys written inside EXEC whose blocked clients are served once it ends.
    pub ready_keys: std::cell::RefCell<Vec<Vec<u8>>>,
    /// What a replica said in `REPLCONF` before its `PSYNC`.
    pub replica_hello: crate::replication::primary::Hello,
    /// The `PSYNC` it sent: the connection becomes a replica link.
    pub psync: Option<crate::replication::primary::Psync>,
}

/// CLIENT REPLY's state, as Redis keeps it in its client flags (`networking.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// Replies are sent.
    #[default]
    On,
    /// No reply is sent until CLIENT REPLY ON.
    Off,
    /// CLIENT REPLY SKIP just ran: the next command's reply is dropped.
    SkipNext,
    /// This command's reply is dropped; the one after is sent.
    Skip,
}

impl ReplyMode {
    /// Whether the reply of the command that just ran is dropped.
    fn silences(self) -> bool {
        matches!(self, ReplyMode::Off | ReplyMode::Skip)
    }

    /// The mode once a command has run (Redis's `resetClient`).
    fn after_command(self) -> ReplyMode {
        match self {
            ReplyMode::Skip => ReplyMode::On,
            ReplyMode::SkipNext => ReplyMode::Skip,
            other => other,
        }
    }
}

impl RespSession {
    pub fn new(info: Arc<ConnInfo>) -> RespSession {
        RespSession {
            info,
            version: RespVersion::Resp2,
            authenticated: false,
            user_name: "default".into(),
            user: None,
            acl_generation: 0,
            lib_name: None,
            lib_version: None,
            queued: None,
            queued_bytes: 0,
            queue_failed: false,
            watched: Vec::new(),
            channels: HashSet::default(),
            patterns: HashSet::default(),
            shard_channels: HashSet::default(),
            parse_progress: resp::Progress::default(),
            in_exec: false,
            ready_streams: Vec::new(),
            parked: None,
            reply_mode: ReplyMode::On,
            ready_keys: std::cell::RefCell::new(Vec::new()),
            replica_hello: Default::default(),
            psync: None,
        }
    }

    /// Channels plus patterns: the count (un)subscribe replies carry.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the client listens to anything (RESP2 then allows only pub/sub commands).
    pub fn subscribed(&self) -> bool {
        self.subscription_count() + self.shard_channels.len() > 0
    }

    /// Drops every subscription from the shared registry (the connection is closing).
    pub fn forget_subscriptions(&mut self, registry: &crate::pubsub::Registry) {
        if !self.subscribed() {
            return;
        }
        let channels: Vec<Vec<u8>> = self.channels.drain().collect();
        let shard: Vec<Vec<u8>> = self.shard_channels.drain().collect();
        let had_patterns = !self.patterns.is_empty();
        self.patterns.clear();
        registry.forget(self.info.id, &channels, &shard, had_patterns);
    }

    /// Sets the name CLIENT LIST and GETNAME show (empty = none).
    pub fn set_name(&mut self, name: Vec<u8>) {
        *self.info.name.lock() = name;
    }
}

/// What a handler needs: the context, the session, the arguments.
pub struct Call<'c, 'a> {
    pub ctx: &'c Context<'c>,
    /// Every command, for the commands that look up others (ACL, COMMAND, EXEC, scripts).
    pub commands: &'static spec::Registry,
    pub session: &'c mut RespSession,
    pub args: &'c [Cow<'a, [u8]>],
}

impl Call<'_, '_> {
    pub fn arg(&self, i: usize) -> &[u8] {
        &self.args[i]
    }

    /// The lower-cased command name, for error messages.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_lowercase()
    }
}

/// Redis's errors, in its words.
pub mod err {
    pub const SYNTAX: &str = "ERR syntax error";
    pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
    pub const TOO_LARGE: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
}

/// What a client from beyond loopback reads, then the connection closes, while protected
/// mode is on and no password is set: Redis 7.2's text (networking.c
/// `clientAcceptHandler`), written raw at accept. Debian's 7.0.15 says "Setup a an
/// authentication password" in step 4; 7.2 fixed the typo and we report 7.2.
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because \
    protected mode is enabled and no password is set for the default user. In this mode \
    connections are only accepted from the loopback interface. If you want to connect from \
    external computers to Redis you may adopt one of the following solutions: 1) Just disable \
    protected mode sending the command 'CONFIG SET protected-mode no' from the loopback \
    interface by connecting to Redis from the same host the server is running, however MAKE \
    SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to \
    make this change permanent. 2) Alternatively you can just disable the protected mode by \
    editing the Redis configuration file, and setting the protected mode option to 'no', and \
    then restarting the server. 3) If you started the server manually just for testing, \
    restart it with the '--protected-mode no' option. 4) Set up an authentication password \
    for the default user. NOTE: You only need to do one of the above things in order for the \
    server to start accepting connections from the outside.\r\n";

/// Parses and executes the command at the front of `input`.
pub fn serve_one(
    session: &mut RespSession,
    input: &[u8],
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) -> Option<Served> {
    let limits = resp::Limits {
        max_bulk_len: ctx.shared.clients.proto_max_bulk_len(),
        ..resp::Limits::default()
    };
    match resp::parse_resumable(input, &limits, &mut session.parse_progress) {
        Ok(None) => None,
        Err(error) => {
            out.extend_from_slice(&error.reply());
            log::debug!("closing a RESP connection: {error}");
            Some(Served {
                consumed: 0,
                swallow: 0,
                flow: Flow::Close,
            })
        }
        Ok(Some((command, consumed))) => {
            let start = out.len();
            let flow = if command.is_empty() {
                Flow::Continue
            } else {
                let flow = run(session, &command, ctx, out);
                session.publish_client_state(&command.args);
                flow
            };
            // CLIENT REPLY OFF / SKIP: the command ran, its reply is dropped. Pub/sub
            // messages travel apart, in the outbox, and (un)subscribe confirmations are pushes:
            // both are still sent, as Redis 7.0 sends them (its CLIENT_PUSHING).
            if session.reply_mode.silences() && !confirms_subscription(&command.args) {
                out.truncate(start);
                crate::zerocopy::discard_from(start);
            }
            session.reply_mode = session.reply_mode.after_command();
            Some(Served {
                consumed,
                swallow: 0,
                flow,
            })
        }
    }
}

/// Whether the command's reply is a (un)subscribe confirmation, which CLIENT REPLY never
/// silences.
fn confirms_subscription(args: &[Cow<'_, [u8]>]) -> bool {
    args.first().is_some_and(|name| {
        [
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "SSUBSCRIBE",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
        ]
        .iter()
        .any(|word| is(name, word))
    })
}

/// What became of a command, for its counters.
enum Ran {
    /// It ran (its reply may be an error).
    Executed(&'static spec::CommandSpec),
    /// Refused before running: arity, authentication, subscribed mode.
    Rejected(&'static str),
    /// Not a command, or queued by MULTI (counted when EXEC runs it).
    Uncounted,
}

/// Runs one parsed command and counts it: calls, errors and latency (on the worker's lap
/// clock: from the request parsed, or the turn's previous reply queued, to the reply written
/// into `out`), and the slow log.
fn run(
    session: &mut RespSession,
    command: &Command<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) -> Flow {
    WorkerStats::incr(&ctx.stats.resp_commands);
    let table = &ctx.shared.latency[ctx.worker];
    let lap = table.lap_start();
    let start = out.len();
    let (flow, ran) = dispatch(session, command, ctx, out);
    // Read for every command, timed or not, so the next one's lap starts here.
    let elapsed = table.lap_stop(lap);
    count_error(ctx, &out[start..]);
    match ran {
        Ran::Executed(spec) => {
            let name = spec.name;
            let pool = key_pool(spec, &command.args, ctx);
            // An error reply starts with `-` (RESP2 and 3) or `!` (a RESP3 blob error).
            let ending = match out.get(start) {
                Some(b'-' | b'!') => Ending::Failed,
                _ => Ending::Answered,
            };
            table.record(Proto::Resp, name, pool, elapsed, ending);
            let micros = elapsed.0.as_micros() as u64;
            if cfg!(feature = "latency") && ctx.shared.slowlog.is_slow(micros) {
                let name = session.info.name.lock().clone();
                ctx.shared.slowlog.push(
                    &command.args,
                    micros,
                    ctx.now_ms / 1000,
                    &session.info.peer,
                    &name,
                );
            }
        }
        Ran::Rejected(name) => table.reject(Proto::Resp, name),
        Ran::Uncounted => {}
    }
    flow
}

fn dispatch(
    session: &mut RespSession,
    command: &Command<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<u8>,
) -> (Flow, Ran) {
    let mut enc = Encoder::new(out, session.version);
    enc.output_limit = ctx.shared.clients.output_buffer_limit();
    let mut scratch = [0u8; 32];
    let spec = command.name_lowercase(&mut scratch).and_then(table::lookup);
    let Some(spec) = spec else {
        let message = unknown_command(&command.args);
        if session.queued.is_some() {
            session.queue_failed = true;
        }
        enc.error(&message);
        return (Flow::Continue, Ran::Uncounted);
    };
    if !spec.arity_ok(command.len()) {
        if session.queued.is_some() {
            session.queue_failed = true;
        }
        enc.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        ));
        return (Flow::Continue, Ran::Rejected(spec.name));
    }
    if !spec.flags.contains(Flags::NO_AUTH) {
        if !session.authenticated {
            enc.error(err::NOAUTH);
            return (Flow::Continue, Ran::Rejected(spec.name));
        }
        match acl::check(session, ctx, spec, &command.args) {
            acl::Verdict::Allowed => {}
            acl::Verdict::Denied(message) => {
                if session.queued.is_some() {
                    session.queue_failed = true;
                }
                enc.error(&message);
                return (Flow::Continue, Ran::Rejected(spec.name));
            }
            acl::Verdict::UserGone => return (Flow::Close, Ran::Rejected(spec.name)),
        }
    }
    if session.version == RespVersion::Resp2
        && session.subscribed()
        && !pubsub::allowed_while_subscribed(spec.name)
    {
        enc.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ));
        return (Flow::Continue, Ran::Rejected(spec.name));
    }
    if ctx.shared.persistence.is_loading() && !persist::allowed_while_loading(spec.name) {
        if session.queued.is_some() {
            session.queue_failed = true;
        }
        enc.error(err::LOADING);
        return (Flow::Continue, Ran::Rejected(spec.name));
    }
    if let (Some(queue), false) = (
        session.queued.as_mut(),
        spec.flags.contains(Flags::NOT_QUEUED),
    ) {
        queue.push(command.args.iter().map(|a| a.to_vec()).collect());
        // Counted with the connection's buffers (CLIENT LIST `multi-mem`, maxmemory-clients).
        session.queued_bytes += command.args.iter().map(|a| a.len() + 24).sum::<usize>() + 24;
        enc.simple("QUEUED");
        return (Flow::Continue, Ran::Uncounted);
    }
    if let Some(refusal) = spec
        .flags
        .contains(Flags::WRITE)
        .then(|| ctx.shared.write_refusal())
        .flatten()
    {
        if session.queued.is_some() {
            session.queue_failed = true;
        }
        enc.error(match refusal {
            WriteRefusal::ReadOnly => replication::READONLY,
            WriteRefusal::NoReplicas => replication::NOREPLICAS,
        });
        return (Flow::Continue, Ran::Rejected(spec.name));
    }
    let mut call = Call {
        ctx,
        commands: table::registry(),
        session,
        args: &command.args,
    };
    let flow = if spec.flags.contains(Flags::EXCLUSIVE) {
        let _all = match gate_or_busy(ctx, |wait| ctx.shared.gates.try_exclusive_for(wait)) {
            Ok(all) => all,
            Err(busy) => {
                enc.error(&busy);
                return (Flow::Continue, Ran::Rejected(spec.name));
            }
        };
        spec.run(&mut call, &mut enc)
    } else if spec.flags.contains(Flags::NO_GATE) {
        spec.run(&mut call, &mut enc)
    } else {
        let _mine = match gate_or_busy(ctx, |wait| {
            ctx.shared.gates.try_shared_for(ctx.worker, wait)
        }) {
            Ok(mine) => mine,
            Err(busy) => {
                enc.error(&busy);
                return (Flow::Continue, Ran::Rejected(spec.name));
            }
        };
        spec.run(&mut call, &mut enc)
    };
    (flow, Ran::Executed(spec))
}

/// Runs `read` on the value of type `pick` at `key` (`None` if absent), counting the lookup
/// as a keyspace hit or miss; `Err` if the key holds another type.
pub fn with_object<T, R>(
    call: &Call<'_, '_>,
    key: &[u8],
    pick: impl FnOnce(&crate::store::Object) -> Option<&T>,
    read: impl FnOnce(Option<&T>) -> R,
) -> Result<R, crate::store::StoreError> {
    let ctx = call.ctx;
    let (hit, result) =
        ctx.shared
            .store
            .get(key, ctx.now_ms, call.read_options(), |view| match view {
                None => (false, Ok(read(None))),
                Some(item) => match item.object().and_then(pick) {
                    Some(object) => (true, Ok(read(Some(object)))),
                    None => (true, Err(crate::store::StoreError::WrongType)),
                },
            });
    strings::count_lookup(ctx, hit);
    result
}

/// Writes a subcommand's HELP reply: one simple string per line, as Redis's `addReplyHelp`.
pub fn reply_help(enc: &mut Encoder<'_>, lines: &[&str]) {
    enc.array(lines.len());
    for line in lines {
        enc.simple(line);
    }
}

/// Counts `reply` in `INFO errorstats` when it is an error (`-CODE text`, or RESP3's
/// `!len` blob error): a command's reply, or the one a blocked client is woken with.
/// True when it was one.
pub fn count_error(ctx: &Context<'_>, reply: &[u8]) -> bool {
    let text = match reply.first() {
        Some(b'-') => &reply[1..],
        Some(b'!') => match reply.iter().position(|&b| b == b'\n') {
            Some(newline) => &reply[newline + 1..],
            None => return false,
        },
        _ => return false,
    };
    ctx.shared.errors[ctx.worker].count(text);
    true
}

/// The gate `take` gives (it waits up to the given time), waiting as long as it takes, unless
/// a script has run past `busy-reply-threshold` meanwhile: then Redis's `-BUSY` error text,
/// so a worker never blocks behind a long script (it holds every gate) and SCRIPT KILL, which
/// takes none, can reach it.
fn gate_or_busy<G>(
    ctx: &Context<'_>,
    mut take: impl FnMut(std::time::Duration) -> Option<G>,
) -> Result<G, String> {
    const WAIT: std::time::Duration = std::time::Duration::from_millis(20);
    loop {
        if let Some(gate) = take(WAIT) {
            return Ok(gate);
        }
        if let Some(busy) = ctx.shared.scripting.busy(crate::shared::unix_millis()) {
            return Err(busy.to_string());
        }
    }
}

/// The pool of the command's first key, for commands that name one.
fn key_pool(spec: &spec::CommandSpec, args: &[Cow<'_, [u8]>], ctx: &Context<'_>) -> Option<usize> {
    if !cfg!(feature = "latency") {
        return None;
    }
    usize::try_from(spec.first_key)
        .ok()
        .filter(|&first| first > 0)
        .and_then(|first| args.get(first))
        .map(|key| ctx.shared.pool_of(key))
}

/// Runs an already-checked command with the gates held by the caller (EXEC).
fn run_queued(call: &mut Call<'_, '_>, enc: &mut Encoder<'_>) -> Flow {
    let mut scratch = [0u8; 32];
    let name = call.args[0].to_ascii_lowercase();
    let len = name.len().min(32);
    scratch[..len].copy_from_slice(&name[..len]);
    match table::lookup(&scratch[..len]) {
        Some(spec) => {
            // Counted as Redis counts a queued command: when EXEC runs it.
            let timer = Timer::start();
            let start = enc.out.len();
            let flow = spec.run(call, enc);
            count_error(call.ctx, &enc.out[start..]);
            let ending = match enc.out.get(start) {
                Some(b'-' | b'!') => Ending::Failed,
                _ => Ending::Answered,
            };
            let pool = key_pool(spec, call.args, call.ctx);
            call.ctx.shared.latency[call.ctx.worker].record(
                Proto::Resp,
                spec.name,
                pool,
                timer.elapsed(),
                ending,
            );
            flow
        }
        None => {
            enc.error(&unknown_command(call.args));
            Flow::Continue
        }
    }
}

/// `ERR unknown command 'name', with args beginning with: 'a' 'b' ` (Redis's exact form).
fn unknown_command(args: &[Cow<'_, [u8]>]) -> String {
    let mut message = format!(
        "ERR unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
    );
    for arg in &args[1..] {
        if message.len() > 256 {
            break;
        }
        message.push('\'');
        message.push_str(&String::from_utf8_lossy(&arg[..arg.len().min(128)]));
        message.push_str("' ");
    }
    message.retain(|c| c != '\r' && c != '\n');
    message
}

/// The optional count of LPOP/RPOP, SPOP and ZPOPMIN/ZPOPMAX (`key [count]`): `None` when
/// absent; Redis's errors for a negative or non-integer count and for extra arguments.
pub fn pop_count(call: &Call<'_, '_>) -> Result<Option<usize>, &'static str> {
    match call.args.len() {
        2 => Ok(None),
        3 => match parse_i64(call.arg(2)) {
            Some(n) if n >= 0 => Ok(Some(n as usize)),
            _ => Err(err::MUST_BE_POSITIVE),
        },
        _ => Err(err::SYNTAX),
    }
}

/// Redis's `string2ll`: an optional `-`, digits, no leading zeros, fits in i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// Redis's float parsing for arguments: finite or ±inf, no NaN, no spaces.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let value: f64 = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// The cursor and options of SCAN, HSCAN and ZSCAN.
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Vec<u8>>,
    pub count: usize,
    /// SCAN's TYPE filter, lower-cased.
    pub kind: Option<String>,
    /// HSCAN's NOVALUES.
    pub novalues: bool,
}

/// Parses `cursor [MATCH pattern] [COUNT n] [TYPE type] [NOVALUES]` from `args[at..]`, with
/// TYPE and NOVALUES accepted only where the command has them. Errors are Redis's words.
pub fn parse_scan(
    args: &[Cow<'_, [u8]>],
    at: usize,
    allow_type: bool,
    allow_novalues: bool,
) -> Result<ScanArgs, &'static str> {
    let cursor = std::str::from_utf8(&args[at])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or("ERR invalid cursor")?;
    let mut scan = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        kind: None,
        novalues: false,
    };
    let mut i = at + 1;
    while i < args.len() {
        if allow_novalues && is(&args[i], "NOVALUES") {
            scan.novalues = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).ok_or(err::SYNTAX)?;
        if is(&args[i], "MATCH") {
            scan.pattern = Some(value.to_vec());
        } else if is(&args[i], "COUNT") {
            match parse_i64(value) {
                Some(n) if n >= 1 => scan.count = n as usize,
                Some(_) => return Err(err::SYNTAX),
                None => return Err(err::NOT_INTEGER),
            }
        } else if allow_type && is(&args[i], "TYPE") {
            scan.kind = Some(String::from_utf8_lossy(value).to_lowercase());
        } else {
            return Err(err::SYNTAX);
        }
        i += 2;
    }
    Ok(scan)
}

/// Redis's error for a store write that failed: WRONGTYPE, a string past the size limit, or
/// out of memory.
pub fn reply_store_error(enc: &mut Encoder<'_>, error: crate::store::StoreError) {
    use crate::store::StoreError;
    match error {
        StoreError::WrongType => enc.error(err::WRONGTYPE),
        StoreError::TooLarge => enc.error(err::TOO_LARGE),
        StoreError::OutOfMemory => enc.error(err::OOM),
    }
}

/// Case-insensitive comparison of an argument with an option name.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

#[cfg(test)]
mod exec_tests;
#[cfg(test)]
mod list_tests;
#[cfg(test)]
mod set_tests;
#[cfg(test)]
mod zset_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"-"), None);
    }

    #[test]
    fn floats_refuse_nan() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"1 "), None);
    }

    #[test]
    fn unknown_command_message_matches_redis() {
        let args: Vec<Cow<'_, [u8]>> = vec![
            Cow::Borrowed(b"foo"),
            Cow::Borrowed(b"a"),
            Cow::Borrowed(b"b"),
        ];
        assert_eq!(
            unknown_command(&args),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            unknown_command(&args[..1]),
            "ERR unknown command 'foo', with args beginning with: "
        );
    }
}
