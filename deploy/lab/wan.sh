#!/usr/bin/env bash
# The WAN mode of the netns lab: hosts behind emulated access links, for measuring p2pd
# over links with real round-trip times, loss and rates (issue 17).
#
#   wan.sh up ID N                          build lab ID with hosts h1…hN (replacing any old one)
#   wan.sh link ID HOST UP DOWN [QUEUE]     send HOST's traffic through emulated links
#   wan.sh down ID                          tear it down
#   wan.sh ns ID ROLE                       print the namespace name of ROLE (core, h1, …)
#   wan.sh addr ID HOST                     print the address of HOST (h1, …)
#
# Topology (addresses from 198.18.0.0/15, the range set aside for benchmarking network
# devices; they live only inside the lab's namespaces):
#
#   h1 198.18.1.2 ─┐
#   h2 198.18.2.2 ─┼─ core (router: 198.18.I.1 faces host I)
#   …             ─┘
#
# Every host starts directly linked to the core (no delay, no limit). `link` gives a
# host an emulated access link: two TUN devices in the core, HOSTup (everything the
# host sends) and HOSTdn (everything sent to it), each with a tbf qdisc when UP or DOWN
# is a rate (tc's units: 20mbit, 1gbit; "-" for none) holding at most QUEUE bytes
# (default 256k) like a router's buffer. Policy routing in the core makes a packet
# from host A to host B cross A's up device, then B's down device. The kernel here has
# no netem, so delay and loss come from the link emulator (deploy/lab/linkem), which
# must run in the core on those devices:
#
#   sleep infinity | linkem --netns "$(wan.sh ns 1 core)" --realtime 10 \
#     --link h1up,delay=20ms --link h1dn,delay=20ms
#
# Until it runs, packets routed into a TUN device are dropped. Needs root and iproute2.
set -euo pipefail

cmd=${1:?usage: wan.sh up|link|down|ns|addr ID ...}
id=${2:?lab id}
prefix="p2w${id}"
CORE="$prefix-core"

usage() {
  echo "usage: wan.sh up ID N | link ID HOST UP DOWN [QUEUE] | down ID | ns ID ROLE | addr ID HOST" >&2
  exit 2
}

# The host number of hI, or a usage error.
host_number() {
  [[ $1 =~ ^h([1-9][0-9]?)$ ]] || { echo "error: bad host $1 (h1…h99)" >&2; exit 2; }
  echo "${BASH_REMATCH[1]}"
}

down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-(core|h[0-9]+)$" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

up() {
  local n=$1 i host
  [[ $n =~ ^[1-9][0-9]?$ ]] || { echo "error: bad host count $n (1…99)" >&2; exit 2; }
  down
  ip netns add "$CORE"
  ip -n "$CORE" link set lo up
  ip netns exec "$CORE" sysctl -qw net.ipv4.ip_forward=1
  # Packets come back out of the TUN devices with addresses that, seen from there, do
  # not belong on that interface; strict reverse-path filtering would drop them.
  ip netns exec "$CORE" sysctl -qw net.ipv4.conf.all.rp_filter=0
  ip netns exec "$CORE" sysctl -qw net.ipv4.conf.default.rp_filter=0
  for ((i = 1; i <= n; i++)); do
    host="$prefix-h$i"
    ip netns add "$host"
    ip -n "$host" link set lo up
    ip -n "$CORE" link add "h$i" type veth peer name eth0 netns "$host"
    ip -n "$CORE" addr add "198.18.$i.1/24" dev "h$i"
    ip -n "$CORE" link set "h$i" up
    ip -n "$host" addr add "198.18.$i.2/24" dev eth0
    ip -n "$host" link set eth0 up
    ip -n "$host" route add default via "198.18.$i.1"
    # Let a TCP send buffer grow as far as a receive buffer may (32 MiB here) so that a
    # long fat path, not the sender's buffer, limits one connection: at this kernel's
    # default (4 MiB) one iperf3 connection stopped at about 260 Mbit/s over 80 ms.
    ip netns exec "$host" sysctl -qw net.ipv4.tcp_wmem="4096 16384 $(cut -f3 /proc/sys/net/ipv4/tcp_rmem)"
  done
}

# shape DEVICE RATE QUEUE: a tbf qdisc on a TUN device of the core, so that packets
# enter the emulator no faster than RATE; up to QUEUE bytes wait, the rest is dropped.
shape() {
  local dev=$1 rate=$2 queue=$3 bits burst
  [ "$rate" = - ] && return 0
  bits=$(rate_bits "$rate")
  # One millisecond of the rate, and at least two full packets.
  burst=$((bits / 8 / 1000))
  [ "$burst" -lt 3028 ] && burst=3028
  ip netns exec "$CORE" tc qdisc replace dev "$dev" root tbf rate "$rate" burst "$burst" limit "$queue"
}

# rate_bits 20mbit → 20000000
rate_bits() {
  [[ $1 =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] || { echo "error: bad rate $1 (e.g. 20mbit, 1gbit, -)" >&2; exit 2; }
  local n=${BASH_REMATCH[1]}
  case ${BASH_REMATCH[2]} in
    bit) echo "$n" ;; kbit) echo $((n * 1000)) ;; mbit) echo $((n * 1000000)) ;; gbit) echo $((n * 1000000000)) ;;
  esac
}

link() {
  local host=$1 up_rate=$2 down_rate=$3 queue=${4:-262144} i
  i=$(host_number "$host")
  [[ $queue =~ ^[0-9]+$ ]] || { echo "error: bad queue $queue (bytes)" >&2; exit 2; }
  ip -n "$CORE" link show "h$i" >/dev/null 2>&1 || { echo "error: lab $id has no host h$i" >&2; exit 2; }
  for dir in up dn; do
    ip -n "$CORE" tuntap add dev "h$i$dir" mode tun
    # Room for the emulator's scheduling gaps on a busy machine (drops here show in
    # `ip -s link` as TX drops of the device).
    ip -n "$CORE" link set "h$i$dir" txqueuelen 4096 up
  done
  # Everything host i sends goes into its up device…
  ip -n "$CORE" route add default dev "h${i}up" table $((1000 + i))
  ip -n "$CORE" rule add pref 200 iif "h$i" lookup $((1000 + i))
  # …everything sent to it goes into its down device, except what comes out of that
  # device, which goes to the host (the main table's connected route).
  ip -n "$CORE" route add "198.18.$i.0/24" dev "h${i}dn" table $((2000 + i))
  ip -n "$CORE" rule add pref 100 iif "h${i}dn" lookup main
  ip -n "$CORE" rule add pref 300 to "198.18.$i.0/24" lookup $((2000 + i))
  shape "h${i}up" "$up_rate" "$queue"
  shape "h${i}dn" "$down_rate" "$queue"
}

case "$cmd" in
  up) up "${3:?host count}" ;;
  link) [ $# -ge 5 ] || usage; link "$3" "$4" "$5" "${6:-262144}" ;;
  down) down ;;
  ns)
    case "${3:?role}" in
      core) echo "$CORE" ;;
      h*) echo "$prefix-h$(host_number "$3")" ;;
      *) echo "error: unknown role $3" >&2; exit 2 ;;
    esac ;;
  addr) echo "198.18.$(host_number "${3:?host}").2" ;;
  *) usage ;;
esac
