<?php
// phpredis (Debian's php-redis) against the real ferrocache binary, as a PHP app would use it.
// Usage: php phpredis_smoke.php PATH_TO_FERROCACHE
$binary = $argv[1];
function free_port() {
    $s = stream_socket_server("tcp://127.0.0.1:0");
    $name = stream_socket_get_name($s, false);
    fclose($s);
    return (int) substr($name, strrpos($name, ':') + 1);
}
$port = free_port();
$resp = free_port();
$proc = proc_open([$binary, "-l", "127.0.0.1", "-p", (string) $port, "--resp-port", (string) $resp], [], $pipes);
$r = new Redis();
$deadline = microtime(true) + 10;
while (true) {
    try {
        if (@$r->connect("127.0.0.1", $resp, 1.0)) {
            break;
        }
    } catch (RedisException $e) {
    }
    if (microtime(true) > $deadline) {
        fwrite(STDERR, "ferrocache did not start\n");
        exit(1);
    }
    usleep(20000);
}
$passed = 0;
function check($got, $want, $what) {
    global $passed, $proc;
    if ($got !== $want) {
        fwrite(STDERR, "FAIL $what: got " . var_export($got, true) . ", want " . var_export($want, true) . "\n");
        proc_terminate($proc);
        exit(1);
    }
    $passed++;
}
check($r->ping(), true, "ping");
check($r->set("page:home", "<html>", ["ex" => 60]), true, "set ex");
check($r->get("page:home"), "<html>", "get");
check($r->get("missing"), false, "get miss");
check($r->incrBy("visits", 3), 3, "incrby");
check($r->hMSet("user:7", ["name" => "ada", "lang" => "php"]), true, "hmset");
check($r->hGetAll("user:7"), ["name" => "ada", "lang" => "php"], "hgetall");
check($r->expire("user:7", 30), true, "expire");
check($r->ttl("user:7") > 0, true, "ttl");
check($r->mGet(["page:home", "missing"]), ["<html>", false], "mget");
$tx = $r->multi()->incr("visits")->get("visits")->exec();
check($tx, [4, "4"], "multi/exec");
check($r->del("page:home", "missing"), 1, "del");
check($r->exists("page:home"), 0, "exists");
check($r->dbSize(), 2, "dbsize");
$r->close();
proc_terminate($proc);
proc_close($proc);
echo "phpredis interop: $passed passed, 0 failed\n";
