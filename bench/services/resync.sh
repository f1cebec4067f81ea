#!/usr/bin/env bash
# Proxy resync benchmark (issue 7), as root: 10,000 Services × 5 endpoints through the nftables
# proxy's renderer and into the kernel, in a network namespace of its own.
#   1. render: `skiff_proxy::render` over the Services and EndpointSlices (the example
#      crates/proxy/examples/resync.rs builds them; median of REPEAT renders);
#   2. first apply: `nft -f` of the table into the fresh namespace, as the proxy's first sync;
#   3. resync: the same table again, replacing the one in place (one transaction: create if
#      missing, delete, re-create — what the proxy does on every sync and every 60 s);
#   4. change: a table with one endpoint moved, replacing the table again;
#   5. peer: the same endpoints loaded as one bare DNAT map (one element per endpoint, one
#      rule), the least nftables can be handed for them, into a second fresh table.
#   bench/services/resync.sh     # under a minute after the build
# Environment: CARGO_TARGET_DIR, SERVICES (10000), ENDPOINTS (5), NODEPORT_EVERY (4: every
# fourth Service is also a NodePort), REPEAT (5), RUNS (3: applies of each kind, best and
# median reported).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
services=${SERVICES:-10000}
endpoints=${ENDPOINTS:-5}
nodeport_every=${NODEPORT_EVERY:-4}
repeat=${REPEAT:-5}
runs=${RUNS:-3}
cd "$root"
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces, nft)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft is needed (apt-get install nftables)" >&2; exit 1; }
cargo build --release --quiet -p skiff-proxy --example resync
bin=$CARGO_TARGET_DIR/release/examples/resync
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/skiff-resync-bench.XXXXXX")
ns=skiff-bench-$$
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"

"$bin" --services "$services" --endpoints "$endpoints" --nodeport-every "$nodeport_every" \
    --repeat "$repeat" --table skiff-bench --out "$work/table.nft" --changed "$work/changed.nft" \
    --peer "$work/peer.nft" >"$work/render.txt"
get() { awk -v k="$1" '$1 == k {print $2}' "$work/render.txt"; }

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
apply() { # file → milliseconds for `nft -f` in the namespace
    local start end
    start=$(now_ms)
    ip netns exec "$ns" nft -f "$1"
    end=$(now_ms)
    awk -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", e - s}'
}
summary() { # milliseconds… → "best median"
    printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "%s %s", v[1], v[int((NR + 1) / 2)]}'
}
delete() { ip netns exec "$ns" nft delete table inet "$1"; }

# What `ip netns exec nft` costs with nothing to do, to read the others against.
empty=(); for _ in $(seq "$runs"); do
    start=$(now_ms); ip netns exec "$ns" nft list tables >/dev/null; end=$(now_ms)
    empty+=("$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", e - s}')")
done
first=() resync=() change=() peer=()
for _ in $(seq "$runs"); do
    first+=("$(apply "$work/table.nft")")
    resync+=("$(apply "$work/table.nft")")
    change+=("$(apply "$work/changed.nft")")
    delete skiff-bench
    peer+=("$(apply "$work/peer.nft")")
    delete skiff-bench-peer
done
apply "$work/table.nft" >/dev/null
listed=$(ip netns exec "$ns" nft list table inet skiff-bench | wc -l)
read -r empty_best empty_med <<<"$(summary "${empty[@]}")"
read -r first_best first_med <<<"$(summary "${first[@]}")"
read -r resync_best resync_med <<<"$(summary "${resync[@]}")"
read -r change_best change_med <<<"$(summary "${change[@]}")"
read -r peer_best peer_med <<<"$(summary "${peer[@]}")"

echo "$(get services) Services ($(get nodeports) also NodePorts) × $endpoints endpoints = $(get endpoints) endpoints"
echo "table: $(get table_lines) lines ($(get table_bytes) bytes), $(get table_chains) chains, $(get table_rules) rules, $(get table_elements) map/set elements; nft lists $listed lines"
echo
echo "| step | best | median |"
echo "|---|---|---|"
echo "| render (skiff_proxy::render) | $(get render_ms_best) ms | $(get render_ms_median) ms |"
echo "| first apply (nft -f, fresh namespace) | $first_best ms | $first_med ms |"
echo "| resync: the same table replacing itself | $resync_best ms | $resync_med ms |"
echo "| resync after one endpoint changed | $change_best ms | $change_med ms |"
echo "| peer: the endpoints as one DNAT map ($(get peer_lines) lines) | $peer_best ms | $peer_med ms |"
echo "| ip netns exec nft list tables (nothing to do) | $empty_best ms | $empty_med ms |"
awk -v r="$resync_med" -v p="$peer_med" -v rd="$(get render_ms_median)" \
    'BEGIN {printf "resync (render + apply) %.0f ms; apply against the bare map: %.1f×\n", rd + r, r / p}'
