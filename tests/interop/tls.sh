#!/usr/bin/env bash
# TLS with other implementations' clients (Debian's redis-cli is built with OpenSSL, and
# openssl s_client): RESP and the memcached text protocol over TLS 1.2 and 1.3, mutual TLS
# accepted with a CA-signed client certificate and refused without one, the HTTP port over
# TLS with curl (`--http-tls`: the cache API and /healthz, mutual TLS as on the other ports),
# and a SIGHUP reload that hands new connections the new certificate, HTTPS ones too.
# Certificates are made here with openssl.
# Usage: tls.sh PATH_TO_FERROCACHE
set -euo pipefail
binary=$1
dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

# A CA, a server certificate for 127.0.0.1/localhost, a client certificate; all throwaway.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=ferrocache test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
issue() { # name cn extension
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$dir/$1.key" \
        -out "$dir/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$dir/$1.ext"
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 1 -extfile "$dir/$1.ext" -out "$dir/$1.pem" 2>/dev/null
}
issue server first "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue client app1 "extendedKeyUsage=clientAuth"

mc_tls=$(free_port); resp_tls=$(free_port); https=$(free_port)
"$binary" -l 127.0.0.1 -p 0 --resp-port 0 -s "$dir/sock" --tls-port "$mc_tls" \
    --resp-tls-port "$resp_tls" --http-port "$https" --http-tls --tls-cert-file "$dir/server.pem" \
    --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.pem" &
pid=$!
tls_cli() { redis-cli --tls --cacert "$dir/ca.pem" --cert "$dir/client.pem" \
    --key "$dir/client.key" -h 127.0.0.1 -p "$resp_tls" "$@"; }
for _ in $(seq 1 500); do
    tls_cli ping >/dev/null 2>&1 && break
    sleep 0.02
done
passed=0
expect() { # want description got
    if [ "$2" != "$1" ]; then
        echo "FAIL: $3: got '$2', want '$1'"
        exit 1
    fi
    passed=$((passed + 1))
}
expect PONG "$(tls_cli ping)" "redis-cli --tls ping"
expect OK "$(tls_cli set greeting hello)" "redis-cli --tls set"
expect hello "$(tls_cli get greeting)" "redis-cli --tls get"

# No client certificate: refused, since tls-auth-clients defaults to yes.
if redis-cli --tls --cacert "$dir/ca.pem" -h 127.0.0.1 -p "$resp_tls" ping 2>/dev/null | grep -q PONG; then
    echo "FAIL: a client without a certificate was let in"
    exit 1
fi
passed=$((passed + 1))

# The memcached text protocol through openssl s_client, in TLS 1.2 and 1.3.
s_client() { # version
    timeout 10 openssl s_client -connect "127.0.0.1:$mc_tls" "$1" -quiet -ign_eof -verify_return_error \
        -CAfile "$dir/ca.pem" -cert "$dir/client.pem" -key "$dir/client.key" 2>/dev/null
}
for version in -tls1_2 -tls1_3; do
    reply=$(printf 'set k 0 0 5\r\nvalue\r\nget k\r\nget greeting\r\nquit\r\n' | s_client "$version" | tr -d '\r' || true)
    expect "STORED
VALUE k 0 5
value
END
VALUE greeting 0 5
hello
END" "$reply" "openssl s_client $version, memcached text"
done

# The HTTP port over TLS, with curl: the cache API shares the store, mutual TLS applies.
https_curl() { curl -sS --max-time 10 --cacert "$dir/ca.pem" --cert "$dir/client.pem" \
    --key "$dir/client.key" "$@"; }
expect 200 "$(https_curl -o /dev/null -w '%{http_code}' "https://localhost:$https/healthz")" \
    "curl https /healthz"
expect 204 "$(https_curl -o /dev/null -w '%{http_code}' -X PUT --data-binary world \
    "https://localhost:$https/v1/cache/hello")" "curl https PUT /v1/cache/hello"
expect '{"value":"hello"}' "$(https_curl "https://localhost:$https/v1/cache/greeting")" \
    "curl https GET of a key set over RESP/TLS"
expect world "$(tls_cli get hello)" "redis-cli --tls get of a key PUT over HTTPS"
if curl -sS --max-time 10 --cacert "$dir/ca.pem" "https://localhost:$https/healthz" >/dev/null 2>&1; then
    echo "FAIL: an HTTPS client without a certificate was let in"
    exit 1
fi
passed=$((passed + 1))
if curl -sS --max-time 10 "http://127.0.0.1:$https/healthz" 2>/dev/null | grep -q serving; then
    echo "FAIL: plain HTTP was answered on the TLS port"
    exit 1
fi
passed=$((passed + 1))

# SIGHUP: new connections get the new certificate (CN second), an open one keeps working.
coproc OLD { tls_cli; }
echo "ping" >&"${OLD[1]}"
read -r -t 10 line <&"${OLD[0]}"
expect PONG "$line" "redis-cli --tls interactive before reload"
issue server second "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
kill -HUP "$pid"
subject=
for _ in $(seq 1 500); do
    subject=$(timeout 10 openssl s_client -connect "127.0.0.1:$mc_tls" -CAfile "$dir/ca.pem" \
        -cert "$dir/client.pem" -key "$dir/client.key" </dev/null 2>/dev/null |
        sed -n 's/^subject=.*CN *= *//p')
    [ "$subject" = second ] && break
    sleep 0.02
done
expect second "$subject" "certificate CN after SIGHUP"
https_subject=$(timeout 10 openssl s_client -connect "127.0.0.1:$https" -CAfile "$dir/ca.pem" \
    -cert "$dir/client.pem" -key "$dir/client.key" </dev/null 2>/dev/null |
    sed -n 's/^subject=.*CN *= *//p')
expect second "$https_subject" "HTTPS certificate CN after SIGHUP"
echo "get greeting" >&"${OLD[1]}"
read -r -t 10 line <&"${OLD[0]}"
expect hello "$line" "the connection opened before the reload"
kill "$OLD_PID" 2>/dev/null || true

echo "tls interop: $passed checks passed"
