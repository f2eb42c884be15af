//! ACL users on RESP against the real binary: users from the config and by ACL SETUSER,
//! AUTH and HELLO AUTH, per-command, per-key (with %R~/%W~) and per-channel denials with
//! redis-server 7.0.15's errors, ACL LOG entries, wrong passwords, a user deleted while
//! connected, and ACL SAVE/LOAD through an ACL file.

mod common;

use common::{Conn, TestServer};

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn start_with_users(users: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    let quoted: Vec<String> = users.iter().map(|u| format!("{u:?}")).collect();
    std::fs::write(&path, format!("[acl]\nusers = [{}]\n", quoted.join(", "))).unwrap();
    let server = TestServer::start_with_resp(&["--config", path.to_str().unwrap()]);
    (server, dir)
}

/// Reads until what arrived contains `needle` (the read timeout bounds the wait); returns all
/// of it.
fn read_containing(conn: &mut Conn, needle: &str) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&out).contains(needle) {
        let n = conn.stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed before {needle:?}");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `args` and asserts the reply is `expected`.
fn expect(conn: &mut Conn, args: &[&str], expected: &str) {
    conn.roundtrip(&resp(args), expected.as_bytes());
}

const APP1: &str = "user app1 on >secret ~app1:* &notify:* +@read +@write -@admin";

#[test]
fn per_command_key_and_channel_denials_use_redis_errors_and_are_logged() {
    let (server, _dir) = start_with_users(&[APP1]);
    let mut app = server.connect_resp();
    expect(&mut app, &["AUTH", "app1", "secret"], "+OK\r\n");
    expect(&mut app, &["SET", "app1:a", "1"], "+OK\r\n");
    expect(&mut app, &["GET", "app1:a"], "$1\r\n1\r\n");
    expect(
        &mut app,
        &["GET", "app2:a"],
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );
    expect(
        &mut app,
        &["MSET", "app1:b", "1", "other", "2"],
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );
    expect(
        &mut app,
        &["CONFIG", "GET", "maxmemory"],
        "-NOPERM this user has no permissions to run the 'config' command\r\n",
    );
    expect(
        &mut app,
        &["ACL", "SETUSER", "x"],
        "-NOPERM this user has no permissions to run the 'acl|setuser' command\r\n",
    );
    expect(
        &mut app,
        &["SUBSCRIBE", "other"],
        "-NOPERM this user has no permissions to run the 'subscribe' command\r\n",
    );

    let mut admin = server.connect_resp();
    let log = {
        admin.send(&resp(&["ACL", "LOG"]));
        read_containing(&mut admin, "client-info")
    };
    // Newest first: the SUBSCRIBE refused as a command.
    assert!(
        log.starts_with("*5\r\n*14\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$7\r\ncommand\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$9\r\nsubscribe\r\n$8\r\nusername\r\n$4\r\napp1\r\n"),
        "{log}"
    );
    let mut admin = server.connect_resp();
    admin.send(&resp(&["ACL", "LOG", "10"]));
    let all = read_containing(&mut admin, "object\r\n$6\r\napp2:a");
    assert!(all.contains("$6\r\nobject\r\n$6\r\napp2:a\r\n"), "{all}");
    expect(&mut admin, &["ACL", "LOG", "RESET"], "+OK\r\n");

    // A channel pattern the user has, and one it has not.
    expect(
        &mut admin,
        &["ACL", "SETUSER", "app1", "+@pubsub"],
        "+OK\r\n",
    );
    expect(&mut app, &["PUBLISH", "notify:x", "hi"], ":0\r\n");
    expect(
        &mut app,
        &["PUBLISH", "other", "hi"],
        "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n",
    );
}

#[test]
fn read_and_write_selectors_split_access() {
    let (server, _dir) = start_with_users(&["user rw on nopass %R~r:* %W~w:* +@all"]);
    let mut conn = server.connect_resp();
    expect(&mut conn, &["AUTH", "rw", "anything"], "+OK\r\n");
    expect(&mut conn, &["GET", "r:1"], "$-1\r\n");
    expect(
        &mut conn,
        &["SET", "r:1", "x"],
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );
    expect(&mut conn, &["SET", "w:1", "x"], "+OK\r\n");
    expect(
        &mut conn,
        &["GET", "w:1"],
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "DRYRUN", "rw", "SET", "r:1", "x"],
        "$52\r\nThis user has no permissions to access the 'r:1' key\r\n",
    );
    expect(&mut conn, &["ACL", "DRYRUN", "rw", "GET", "r:1"], "+OK\r\n");
    expect(
        &mut conn,
        &["ACL", "DRYRUN", "nobody", "GET", "r:1"],
        "-ERR User 'nobody' not found\r\n",
    );
}

#[test]
fn wrong_passwords_hello_auth_and_disabled_users() {
    let (server, _dir) = start_with_users(&[APP1, "user off1 off >pw +@all ~*"]);
    let mut conn = server.connect_resp();
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    expect(&mut conn, &["AUTH", "app1", "nope"], wrongpass);
    expect(&mut conn, &["AUTH", "nobody", "secret"], wrongpass);
    expect(&mut conn, &["AUTH", "off1", "pw"], wrongpass);
    expect(&mut conn, &["ACL", "WHOAMI"], "$7\r\ndefault\r\n");
    conn.send(&resp(&["HELLO", "3", "AUTH", "app1", "secret"]));
    let hello = read_containing(&mut conn, "modules\r\n*0\r\n");
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    expect(
        &mut conn,
        &["ACL", "WHOAMI"],
        "-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n",
    );
    let mut other = server.connect_resp();
    other.send(&resp(&["ACL", "LOG", "2"]));
    let log = read_containing(&mut other, "client-info");
    assert!(log.contains("$6\r\nreason\r\n$4\r\nauth\r\n"), "{log}");
    assert!(log.contains("$6\r\nobject\r\n$4\r\nAUTH\r\n"), "{log}");
    assert!(log.contains("$8\r\nusername\r\n$4\r\noff1\r\n"), "{log}");
    // The newest entry is the ACL WHOAMI refused to app1, whose CLIENT LIST line it carries.
    assert!(log.contains("cmd=acl|whoami user=app1 "), "{log}");
}

#[test]
fn acl_setuser_getuser_list_users_cat_genpass_and_errors() {
    let (server, _dir) = start_with_users(&[]);
    let mut conn = server.connect_resp();
    expect(
        &mut conn,
        &[
            "ACL",
            "SETUSER",
            "app1",
            "on",
            ">password",
            "~app1:*",
            "&notify:*",
            "+@read",
        ],
        "+OK\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "SETUSER", "app2", "bogus"],
        "-ERR Error in ACL SETUSER modifier 'bogus': Syntax error\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "SETUSER", "app2", "+@nosuch"],
        "-ERR Error in ACL SETUSER modifier '+@nosuch': Unknown command or category name in ACL\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "USERS"],
        "*2\r\n$4\r\napp1\r\n$7\r\ndefault\r\n",
    );
    let hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let line = format!("user app1 on #{hash} ~app1:* resetchannels &notify:* -@all +@read");
    let default = "user default on nopass ~* &* +@all";
    expect(
        &mut conn,
        &["ACL", "LIST"],
        &format!(
            "*2\r\n${}\r\n{line}\r\n${}\r\n{default}\r\n",
            line.len(),
            default.len()
        ),
    );
    expect(
        &mut conn,
        &["ACL", "GETUSER", "app1"],
        &format!(
            "*12\r\n$5\r\nflags\r\n*1\r\n$2\r\non\r\n$9\r\npasswords\r\n*1\r\n$64\r\n{hash}\r\n\
             $8\r\ncommands\r\n$12\r\n-@all +@read\r\n$4\r\nkeys\r\n$7\r\n~app1:*\r\n\
             $8\r\nchannels\r\n$9\r\n&notify:*\r\n$9\r\nselectors\r\n*0\r\n"
        ),
    );
    expect(&mut conn, &["ACL", "GETUSER", "nobody"], "$-1\r\n");
    expect(
        &mut conn,
        &["ACL", "DELUSER", "default"],
        "-ERR The 'default' user cannot be removed\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "CAT", "nosuch"],
        "-ERR Unknown category 'nosuch'\r\n",
    );
    conn.send(&resp(&["ACL", "CAT"]));
    assert!(conn
        .read_until(b"scripting\r\n")
        .starts_with(b"*21\r\n$8\r\nkeyspace\r\n"));
    conn.send(&resp(&["ACL", "GENPASS"]));
    let pass = conn.read_exact(5 + 64 + 2);
    assert!(pass.starts_with(b"$64\r\n"));
    assert!(pass[5..69].iter().all(u8::is_ascii_hexdigit));
    expect(&mut conn, &["ACL", "GENPASS", "5"], "$2\r\n");
    conn.read_exact(4);
    expect(
        &mut conn,
        &["ACL", "GENPASS", "0"],
        "-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "SAVE"],
        "-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.\r\n",
    );
    expect(&mut conn, &["ACL", "DELUSER", "app1", "nobody"], ":1\r\n");
}

#[test]
fn a_user_deleted_while_connected_is_disconnected() {
    let (server, _dir) = start_with_users(&[APP1]);
    let mut app = server.connect_resp();
    expect(&mut app, &["AUTH", "app1", "secret"], "+OK\r\n");
    expect(&mut app, &["GET", "app1:a"], "$-1\r\n");
    let mut admin = server.connect_resp();
    expect(&mut admin, &["ACL", "DELUSER", "app1"], ":1\r\n");
    app.send(&resp(&["GET", "app1:a"]));
    assert!(app.is_closed(), "the deleted user's connection stays open");
    // A changed user's new rules apply to its open connections at once.
    expect(
        &mut admin,
        &["ACL", "SETUSER", "app1", "on", ">secret", "~*", "+get"],
        "+OK\r\n",
    );
    let mut app = server.connect_resp();
    expect(&mut app, &["AUTH", "app1", "secret"], "+OK\r\n");
    expect(&mut app, &["GET", "k"], "$-1\r\n");
    expect(&mut admin, &["ACL", "SETUSER", "app1", "-get"], "+OK\r\n");
    expect(
        &mut app,
        &["GET", "k"],
        "-NOPERM this user has no permissions to run the 'get' command\r\n",
    );
}

#[test]
fn acl_save_and_load_go_through_the_acl_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.acl");
    std::fs::write(&file, "user app1 on >secret ~app1:* +@read\n").unwrap();
    let config = dir.path().join("ferrocache.toml");
    std::fs::write(
        &config,
        format!("[acl]\nfile = {:?}\n", file.to_str().unwrap()),
    )
    .unwrap();
    let server = TestServer::start_with_resp(&["--config", config.to_str().unwrap()]);
    let mut conn = server.connect_resp();
    expect(
        &mut conn,
        &["ACL", "USERS"],
        "*2\r\n$4\r\napp1\r\n$7\r\ndefault\r\n",
    );
    expect(
        &mut conn,
        &["ACL", "SETUSER", "app2", "on", "nopass"],
        "+OK\r\n",
    );
    expect(&mut conn, &["ACL", "SAVE"], "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains("user app2 on nopass resetchannels -@all"),
        "{saved}"
    );
    std::fs::write(&file, "user app3 on nopass\nuser bad bogus\n").unwrap();
    conn.send(&resp(&["ACL", "LOAD"]));
    let refused = String::from_utf8_lossy(&conn.read_until(b"\r\n")).into_owned();
    assert!(
        refused.contains("users.acl:2: Error in applying operation 'bogus': Syntax error"),
        "{refused}"
    );
    expect(
        &mut conn,
        &["ACL", "USERS"],
        "*3\r\n$4\r\napp1\r\n$4\r\napp2\r\n$7\r\ndefault\r\n",
    );
    std::fs::write(&file, "user app3 on nopass\n").unwrap();
    expect(&mut conn, &["ACL", "LOAD"], "+OK\r\n");
    expect(
        &mut conn,
        &["ACL", "USERS"],
        "*2\r\n$4\r\napp3\r\n$7\r\ndefault\r\n",
    );
}

/// A binary-protocol request frame (opaque 0, cas 0).
fn binary_frame(opcode: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, opcode];
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Sends a frame and returns the response's status and body.
fn binary_call(conn: &mut Conn, frame: &[u8]) -> (u16, Vec<u8>) {
    conn.send(frame);
    let header = conn.read_exact(24);
    let status = u16::from_be_bytes([header[6], header[7]]);
    let body = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    (status, conn.read_exact(body))
}

#[test]
fn memcached_binary_sasl_takes_acl_users_and_applies_their_keys_and_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(
        &path,
        format!(
            "[sasl]\nenabled = true\n[acl]\nusers = [{APP1:?}, \"user reader on >pw ~* +@read\", \
             \"user open on nopass ~* +@all\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start(&["--config", path.to_str().unwrap()]);
    let (get, set, delete, flush, sasl_auth) = (0x00, 0x01, 0x04, 0x08, 0x21);
    let set_extras = [0u8; 8];
    let plain = |user: &str, password: &str| {
        binary_frame(
            sasl_auth,
            &[],
            b"PLAIN",
            format!("\0{user}\0{password}").as_bytes(),
        )
    };

    let mut app = server.connect();
    assert_eq!(binary_call(&mut app, &plain("app1", "wrong")).0, 0x20);
    // A nopass ACL user would let any password in: SASL does not accept it.
    assert_eq!(binary_call(&mut app, &plain("open", "x")).0, 0x20);
    assert_eq!(
        binary_call(&mut app, &plain("app1", "secret")),
        (0, b"Authenticated".to_vec())
    );
    assert_eq!(
        binary_call(&mut app, &binary_frame(set, &set_extras, b"app1:k", b"v")).0,
        0
    );
    assert_eq!(
        binary_call(&mut app, &binary_frame(get, &[], b"app1:k", &[])),
        (0, [&[0u8; 4][..], b"v"].concat())
    );
    // Other keys, and a command outside the user's categories: Auth failure, still open.
    assert_eq!(
        binary_call(&mut app, &binary_frame(set, &set_extras, b"app2:k", b"v")),
        (0x20, b"Auth failure.".to_vec())
    );
    assert_eq!(
        binary_call(&mut app, &binary_frame(get, &[], b"app2:k", &[])).0,
        0x20
    );
    assert_eq!(
        binary_call(&mut app, &binary_frame(delete, &[], b"app1:k", &[])).0,
        0
    );

    let mut reader = server.connect();
    assert_eq!(binary_call(&mut reader, &plain("reader", "pw")).0, 0);
    assert_eq!(
        binary_call(&mut reader, &binary_frame(get, &[], b"any", &[])).0,
        1
    );
    assert_eq!(
        binary_call(&mut reader, &binary_frame(set, &set_extras, b"any", b"v")).0,
        0x20
    );
    assert_eq!(
        binary_call(&mut reader, &binary_frame(flush, &[], &[], &[])).0,
        0x20
    );
}

#[test]
fn exec_checks_queued_commands_again() {
    let (server, _dir) = start_with_users(&["user app1 on >secret ~* +@all"]);
    let mut app = server.connect_resp();
    expect(&mut app, &["AUTH", "app1", "secret"], "+OK\r\n");
    expect(&mut app, &["MULTI"], "+OK\r\n");
    expect(&mut app, &["SET", "a", "1"], "+QUEUED\r\n");
    expect(&mut app, &["GET", "a"], "+QUEUED\r\n");
    let mut admin = server.connect_resp();
    expect(&mut admin, &["ACL", "SETUSER", "app1", "-set"], "+OK\r\n");
    expect(
        &mut app,
        &["EXEC"],
        "*2\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n$-1\r\n",
    );
    admin.send(&resp(&["ACL", "LOG", "1"]));
    let log = read_containing(&mut admin, "client-info");
    assert!(log.contains("$7\r\ncontext\r\n$5\r\nmulti\r\n"), "{log}");
    // Refused at queue time: the transaction is aborted, as Redis does.
    expect(&mut app, &["MULTI"], "+OK\r\n");
    expect(
        &mut app,
        &["SET", "a", "1"],
        "-NOPERM this user has no permissions to run the 'set' command\r\n",
    );
    expect(
        &mut app,
        &["EXEC"],
        "-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
}

#[test]
fn memcached_text_auth_takes_file_and_acl_users_and_applies_acl_rules_to_text_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth");
    std::fs::write(&auth_file, "fileuser:filepass\n").unwrap();
    let path = dir.path().join("ferrocache.toml");
    std::fs::write(
        &path,
        format!(
            "[sasl]\nauth_file = {:?}\n[acl]\nusers = [{APP1:?}, \"user reader on >pw ~* +@read\", \
             \"user open on nopass ~* +@all\"]\n",
            auth_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = TestServer::start(&["--config", path.to_str().unwrap()]);

    // Before logging in, memcached 1.6's refusals; the connection stays open.
    let mut c = server.connect();
    c.roundtrip(b"get key\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    c.roundtrip(
        b"set k 0 0 4\r\nuser\r\n",
        b"CLIENT_ERROR bad authentication token format\r\n",
    );
    c.roundtrip(
        b"set k 0 0 16385\r\n",
        b"CLIENT_ERROR auth token too long\r\n",
    );
    c.roundtrip(
        b"set k 0 0 14\r\nfileuser wrong\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    // A nopass ACL user would let any password in: not accepted.
    c.roundtrip(
        b"set k 0 0 6\r\nopen x\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    c.roundtrip(b"set k 0 0 17\r\nfileuser filepass\r\n", b"STORED\r\n");
    // A password-file user may do everything.
    c.roundtrip(b"set other:k 0 0 1\r\nv\r\n", b"STORED\r\n");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    assert_eq!(c.stat("auth_cmds"), 3);
    assert_eq!(c.stat("auth_errors"), 2);

    // An ACL user: their key patterns and categories apply to text and meta commands.
    let mut app = server.connect();
    app.roundtrip(b"set x 0 0 11\r\napp1 secret\r\n", b"STORED\r\n");
    app.roundtrip(b"set app1:k 3 0 1\r\nv\r\n", b"STORED\r\n");
    app.roundtrip(b"get app1:k\r\n", b"VALUE app1:k 3 1\r\nv\r\nEND\r\n");
    app.roundtrip(
        b"set app2:k 0 0 1\r\nv\r\n",
        b"CLIENT_ERROR permission denied\r\n",
    );
    app.roundtrip(
        b"get app1:k app2:k\r\n",
        b"CLIENT_ERROR permission denied\r\n",
    );
    app.roundtrip(b"mg app2:k v\r\n", b"CLIENT_ERROR permission denied\r\n");
    // The same key, base64-encoded in a meta command, is the same key.
    app.roundtrip(
        b"mg YXBwMjpr b v\r\n",
        b"CLIENT_ERROR permission denied\r\n",
    );
    app.roundtrip(b"mg YXBwMTpr b v\r\n", b"VA 1\r\nv\r\n");
    app.roundtrip(b"delete app1:k\r\n", b"DELETED\r\n");

    let mut reader = server.connect();
    reader.roundtrip(b"set x 0 0 9\r\nreader pw\r\n", b"STORED\r\n");
    reader.roundtrip(b"get any\r\n", b"END\r\n");
    reader.roundtrip(
        b"set any 0 0 1\r\nv\r\n",
        b"CLIENT_ERROR permission denied\r\n",
    );
    reader.roundtrip(b"flush_all\r\n", b"CLIENT_ERROR permission denied\r\n");
    reader.roundtrip(b"ms any 1\r\nv\r\n", b"CLIENT_ERROR permission denied\r\n");

    // The port is text only: a binary frame is an unauthenticated text line, not served.
    let mut binary = server.connect();
    binary.send(&binary_frame(0x0b, &[], &[], &[]));
    binary.roundtrip(b"\r\n", b"CLIENT_ERROR unauthenticated\r\n");
}
