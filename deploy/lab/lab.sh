#!/usr/bin/env bash
# A small internet on one machine, built from network namespaces, for p2pd's NAT tests.
#
#   lab.sh up ID [cone|symmetric-b]     build lab ID (replacing any old one)
#   lab.sh down ID                      tear it down
#   lab.sh ns ID ROLE                   print the namespace name of ROLE
#
# Topology (every address lives only inside the lab's namespaces; documentation
# ranges, so nothing can be mistaken for a real network):
#
#   pub  198.51.100.10 ─┐
#                       ├─ br0 (namespace "net": the public segment 198.51.100.0/24)
#   ra   198.51.100.21 ─┤          rb  198.51.100.22 ─┘
#    │ NAT (masquerade)             │ NAT (masquerade; random ports if symmetric-b)
#   ha   192.0.2.2/25 (home A)     hb  192.0.2.130/25 (home B)
#
# Each router forwards home → public freely, and public → home only for connections
# the home side opened (conntrack ESTABLISHED,RELATED); it drops everything else
# addressed to itself, like a home router. "cone" keeps source ports where it can
# (endpoint-independent mapping, hole punching works); "symmetric-b" gives router B
# a random source port per connection (hole punching cannot work there).
# Needs root, iproute2 and iptables.
set -euo pipefail

cmd=${1:?usage: lab.sh up|down|ns ID [mode]}
id=${2:?lab id}
prefix="p2l${id}"
NET="$prefix-net" PUB="$prefix-pub" RA="$prefix-ra" HA="$prefix-ha" RB="$prefix-rb" HB="$prefix-hb"

down() {
  for ns in "$HA" "$HB" "$RA" "$RB" "$PUB" "$NET"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

router() { # router HOME-NS ROUTER-NS WAN-IP LAN-IP HOST-IP RANDOM-PORTS
  local home=$1 r=$2 wan_ip=$3 lan_ip=$4 host_ip=$5 random=$6
  ip -n "$NET" link add "to-$r" type veth peer name wan netns "$r"
  ip -n "$NET" link set "to-$r" master br0 up
  ip -n "$r" addr add "$wan_ip/24" dev wan
  ip -n "$r" link set wan up
  ip -n "$r" link add lan type veth peer name eth0 netns "$home"
  ip -n "$r" addr add "$lan_ip/25" dev lan
  ip -n "$r" link set lan up
  ip -n "$home" addr add "$host_ip/25" dev eth0
  ip -n "$home" link set eth0 up
  ip -n "$home" route add default via "$lan_ip"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  local masq=(-t nat -A POSTROUTING -o wan -j MASQUERADE)
  [ "$random" = yes ] && masq+=(--random-fully)
  ip netns exec "$r" iptables "${masq[@]}"
  ip netns exec "$r" iptables -P FORWARD DROP
  ip netns exec "$r" iptables -A FORWARD -i lan -o wan -j ACCEPT
  ip netns exec "$r" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ip netns exec "$r" iptables -A INPUT -i wan -j DROP
}

up() {
  local mode=${1:-cone}
  down
  for ns in "$NET" "$PUB" "$RA" "$HA" "$RB" "$HB"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$NET" link add br0 type bridge
  ip -n "$NET" link set br0 up
  ip -n "$NET" link add to-pub type veth peer name eth0 netns "$PUB"
  ip -n "$NET" link set to-pub master br0 up
  ip -n "$PUB" addr add 198.51.100.10/24 dev eth0
  ip -n "$PUB" link set eth0 up
  router "$HA" "$RA" 198.51.100.21 192.0.2.1 192.0.2.2 no
  local random_b=no
  [ "$mode" = symmetric-b ] && random_b=yes
  router "$HB" "$RB" 198.51.100.22 192.0.2.129 192.0.2.130 "$random_b"
}

case "$cmd" in
  up) up "${3:-cone}" ;;
  down) down ;;
  ns)
    case "${3:?role}" in
      net) echo "$NET" ;; pub) echo "$PUB" ;; ra) echo "$RA" ;; ha) echo "$HA" ;;
      rb) echo "$RB" ;; hb) echo "$HB" ;; *) echo "unknown role $3" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: lab.sh up|down|ns ID [mode]" >&2; exit 2 ;;
esac
