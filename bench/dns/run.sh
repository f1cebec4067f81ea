#!/usr/bin/env bash
# Cluster DNS benchmark (issue 7), as root: queries/s and latency of skiff's cluster DNS
# against dnsmasq serving the same records, both driven by `dnsperf` in the same run.
#   - skiff: a one-node `skiff server` with 100 Services; the node's DNS on its bridge address;
#   - dnsmasq: `--host-record` for the same 100 names, on 127.0.0.1:5353, no upstream;
#   - dnsperf: 100 names × 100 passes (10,000 A queries), 20 clients, from the host.
#   bench/dns/run.sh      (needs dnsperf and dnsmasq-base; about a minute after the build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
services=${SERVICES:-100}
cd "$root"
for b in dnsperf dnsmasq; do command -v $b >/dev/null || { echo "$b is needed (apt-get install dnsperf dnsmasq-base)" >&2; exit 1; }; done
cargo build --release --quiet -p skiff
skiff=$CARGO_TARGET_DIR/release/skiff
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/skiff-dns-bench.XXXXXX")
server= dnsmasq=
cleanup() {
    [ -n "$dnsmasq" ] && kill "$dnsmasq" 2>/dev/null || true
    [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    "$skiff" reset --data-dir "$work/data" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$skiff" server --data-dir "$work/data" --bind-address 127.0.0.1 --https-listen-port "$port" \
    --write-kubeconfig "$work/kc" --cluster-cidr 10.42.252.0/24 --service-cidr 10.46.0.0/16 \
    --kubelet-port 0 >"$work/server.log" 2>&1 &
server=$!
export KUBECONFIG=$work/kc
for _ in $(seq 100); do "$kubectl" get nodes 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
for i in $(seq 1 "$services"); do
    printf '{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-%d"},"spec":{"selector":{"app":"x"},"ports":[{"port":80}]}}\n' "$i"
done | "$kubectl" apply -f - >/dev/null
"$kubectl" get svc -o jsonpath='{range .items[*]}{.metadata.name} {.spec.clusterIP}{"\n"}{end}' | grep '^svc-' >"$work/ips"
dns_ip=10.42.252.1
: >"$work/queries"; args=()
while read -r name ip; do
    echo "$name.default.svc.cluster.local A" >>"$work/queries"
    args+=("--host-record=$name.default.svc.cluster.local,$ip")
done <"$work/ips"
dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=5353 --listen-address=127.0.0.1 --bind-interfaces \
    --cache-size=0 "${args[@]}" >"$work/dnsmasq.log" 2>&1 &
dnsmasq=$!
# Wait until skiff's DNS knows the last Service.
last=$(tail -1 "$work/queries" | cut -d' ' -f1)
for _ in $(seq 100); do dnsperf -s "$dns_ip" -d <(echo "$last A") -n 1 2>/dev/null | grep -q 'NOERROR 1' && break; sleep 0.1; done
run() { # server port → "qps avg_ms"
    dnsperf -s "$1" -p "$2" -d "$work/queries" -n 100 -c 20 -q 100 2>/dev/null |
        awk '/Queries per second/ {q=$4} /Average Latency/ {a=$4 * 1000} /Latency StdDev/ {s=$4 * 1000} END {printf "%.0f %.3f %.3f\n", q, a, s}'
}
read -r sq sa ss < <(run "$dns_ip" 53)
read -r dq da ds < <(run 127.0.0.1 5353)
echo "| server | queries/s | avg latency | latency stddev |"
echo "|---|---|---|---|"
echo "| skiff cluster DNS | $sq | $sa ms | $ss ms |"
echo "| dnsmasq (same records) | $dq | $da ms | $ds ms |"
awk -v s="$sq" -v d="$dq" 'BEGIN {printf "ratio skiff/dnsmasq: %.2f×\n", s / d}'
