#!/usr/bin/env bash
# Cluster DNS benchmark (issue 7), as root: queries/s and latency of skiff's cluster DNS
# against dnsmasq serving the same records, both driven by `dnsperf` in the same run.
#   - skiff: a one-node `skiff server` with 100 Services; the node's DNS on its bridge address;
#   - dnsmasq: `--host-record` for the same 100 names, on 127.0.0.1:5353, no upstream;
#   - dnsperf: the 100 names over and over for DURATION seconds (default 5), 20 clients, up to
#     100 queries outstanding, from the host; skiff, dnsmasq, then skiff and dnsmasq again,
#     and the better run of each is reported, with the CPU time (user + system) the server
#     process spent per query answered in that run: less sensitive to other load on the
#     machine than queries/s.
#   bench/dns/run.sh      (needs dnsperf and dnsmasq-base; about a minute after the build)
# Environment: CARGO_TARGET_DIR, BENCH_TMPDIR (default /var/tmp), SERVICES (100), DURATION
# (seconds per dnsperf run, 5), SKIFF (a skiff binary to use instead of building one).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
services=${SERVICES:-100}
duration=${DURATION:-5}
cd "$root"
for b in dnsperf dnsmasq; do command -v $b >/dev/null || { echo "$b is needed (apt-get install dnsperf dnsmasq-base)" >&2; exit 1; }; done
[ -n "${SKIFF:-}" ] || cargo build --release --quiet -p skiff
skiff=${SKIFF:-$CARGO_TARGET_DIR/release/skiff}
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
cpu_ticks() { # pid → user+system clock ticks of the whole process so far
    awk '{print $14 + $15}' "/proc/$1/stat"
}
run() { # server port pid → "qps avg_ms stddev_ms cpu_us_per_query"
    local before after
    before=$(cpu_ticks "$3")
    dnsperf -s "$1" -p "$2" -d "$work/queries" -l "$duration" -c 20 -q 100 2>/dev/null >"$work/dnsperf.out"
    after=$(cpu_ticks "$3")
    awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /Queries completed/ {n=$3} /Queries per second/ {q=$4}
        /Average Latency/ {a=$4 * 1000} /Latency StdDev/ {s=$4 * 1000}
        END {printf "%.0f %.3f %.3f %.1f\n", q, a, s, ticks / hz * 1e6 / n}' "$work/dnsperf.out"
}
best() { # "qps avg stddev cpu" lines → the one with the most queries/s
    sort -n -r | head -1
}
# Alternate so that a burst of load from elsewhere on the machine hits both, and keep the best
# run of each.
: >"$work/skiff.runs"; : >"$work/dnsmasq.runs"
for _ in 1 2; do
    run "$dns_ip" 53 "$server" >>"$work/skiff.runs"
    run 127.0.0.1 5353 "$dnsmasq" >>"$work/dnsmasq.runs"
done
read -r sq sa ss sc < <(best <"$work/skiff.runs")
read -r dq da ds dc < <(best <"$work/dnsmasq.runs")
echo "| server | queries/s | avg latency | latency stddev | server CPU per query |"
echo "|---|---|---|---|---|"
echo "| skiff cluster DNS | $sq | $sa ms | $ss ms | $sc µs |"
echo "| dnsmasq (same records) | $dq | $da ms | $ds ms | $dc µs |"
awk -v s="$sq" -v d="$dq" 'BEGIN {printf "ratio skiff/dnsmasq: %.2f×\n", s / d}'
echo "every run (queries/s, avg ms, stddev ms, CPU µs/query): skiff $(paste -sd'/' "$work/skiff.runs"); dnsmasq $(paste -sd'/' "$work/dnsmasq.runs")"
