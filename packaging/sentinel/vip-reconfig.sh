#!/bin/sh
# Sentinel's client-reconfig-script for ferrocache: move a virtual IP to the new primary, so
# memcached clients (which cannot ask a sentinel) keep using one address across a failover.
#
# Sentinel runs it on every sentinel's host after a failover, as
#   vip-reconfig.sh <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>
# (role "leader" or "observer", state "start"). On the host that owns <to-ip> it adds the
# virtual IP and announces it with gratuitous ARP; on every other host it removes it. It can
# run any number of times with the same arguments (Sentinel may call it again).
#
# Settings, from the environment or from the file in FERROCACHE_VIP_CONF (default
# /etc/ferrocache/vip.conf, shell syntax):
#   VIP=10.0.0.100/24   the virtual address with its prefix length
#   VIP_DEV=eth0        the interface it lives on
# The sentinel user needs CAP_NET_ADMIN for "ip addr" (e.g. a sudo rule for this script).
# Exit status: 0 done; 2 misconfigured (Sentinel retries status 1 only, so 2 is not retried).
set -u

conf=${FERROCACHE_VIP_CONF:-/etc/ferrocache/vip.conf}
# shellcheck disable=SC1090
[ -r "$conf" ] && . "$conf"

if [ $# -ne 7 ]; then
    echo "usage: $0 <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>" >&2
    exit 2
fi
to_ip=$6
vip=${VIP:-}
dev=${VIP_DEV:-}
if [ -z "$vip" ] || [ -z "$dev" ]; then
    echo "$0: VIP and VIP_DEV must be set (in $conf or the environment)" >&2
    exit 2
fi
case $vip in */*) ;; *) vip="$vip/32" ;; esac
address=${vip%/*}

# Is the new primary's address one of this host's own (other than the virtual IP)?
is_local() {
    ip -o addr show | awk '{ split($4, a, "/"); print a[1] }' | grep -qxF "$1"
}

if [ "$to_ip" != "$address" ] && is_local "$to_ip"; then
    ip addr replace "$vip" dev "$dev" || exit 1
    # Tell the segment's hosts and switches at once instead of waiting for their ARP caches.
    if command -v arping >/dev/null 2>&1; then
        arping -q -c 3 -U -I "$dev" "$address" >/dev/null 2>&1 || true
    fi
    logger -t ferrocache-vip "$1: $address is here now (new primary $to_ip:$7)" 2>/dev/null || true
else
    if ip -o addr show dev "$dev" | grep -q " $address/"; then
        ip addr del "$vip" dev "$dev" || exit 1
        logger -t ferrocache-vip "$1: $address released (new primary $to_ip:$7)" 2>/dev/null || true
    fi
fi
exit 0
