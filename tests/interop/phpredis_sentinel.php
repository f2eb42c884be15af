<?php
// phpredis's RedisSentinel (issue 23): asked by tests/interop/sentinel_redis_py.py before and
// after the failover it runs.
//
// Usage: php phpredis_sentinel.php SENTINEL_PORT MASTER_NAME EXPECTED_PRIMARY_PORT KEY
// Asks one stock redis-sentinel for the primary of MASTER_NAME (getMasterAddrByName, master,
// slaves) as a PHP application would, checks it is EXPECTED_PRIMARY_PORT, connects to it with
// phpredis's Redis class, checks ROLE, writes KEY and reads it back. Prints one "ok" line.
// Needs php-cli and php-redis (5.2 or later: RedisSentinel; Debian 12 has 5.3.7).

function fail($what) {
    fwrite(STDERR, "FAIL phpredis_sentinel: $what\n");
    exit(1);
}

[$_, $sentinel_port, $name, $want_port, $key] = $argv;
if (!class_exists('RedisSentinel')) {
    fail('this php-redis has no RedisSentinel (5.2 or later needed)');
}
$sentinel = new RedisSentinel('127.0.0.1', (int)$sentinel_port, 1.0);
if ($sentinel->ping() !== true) {
    fail('PING to the sentinel');
}
$addr = $sentinel->getMasterAddrByName($name);
if (!is_array($addr) || (int)$addr[1] !== (int)$want_port) {
    fail('getMasterAddrByName: ' . var_export($addr, true) . ", want port $want_port");
}
$master = $sentinel->master($name);
if (!is_array($master) || $master['flags'] !== 'master' || (int)$master['port'] !== (int)$want_port) {
    fail('master(): ' . var_export($master, true));
}
$slaves = $sentinel->slaves($name);
$up = array_filter($slaves, fn($s) => $s['flags'] === 'slave');
if (count($up) < 1) {
    fail('slaves(): no replica up: ' . var_export($slaves, true));
}
$redis = new Redis();
if (!$redis->connect($addr[0], (int)$addr[1], 1.0)) {
    fail("connect to $addr[0]:$addr[1]");
}
$role = $redis->rawCommand('ROLE');
if (!is_array($role) || $role[0] !== 'master') {
    fail('ROLE on the primary: ' . var_export($role, true));
}
$value = "php-" . getmypid();
if ($redis->set($key, $value) !== true || $redis->get($key) !== $value) {
    fail("SET/GET $key on the primary");
}
echo "phpredis_sentinel: ok: RedisSentinel found the primary at $addr[0]:$addr[1] with "
    . count($up) . " replica(s) up; SET/GET $key through phpredis\n";
