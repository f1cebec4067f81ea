#!/usr/bin/env bash
# Node benchmarks (issue 5), as root:
#   1. pod startup latency: 50 pods created at 5 pods/s (image present), create → Running seen
#      by a watch, p50/p99; next to it `runc run -d` of the same rootfs and command, the floor;
#   2. node overhead: RSS and CPU of `skiff server` idle: fresh with 0 pods, and with 20 running
#      pods after the latency run.
#
#   bench/node/run.sh            # about 3 minutes after the build
# Environment: CARGO_TARGET_DIR, BENCH_TMPDIR (default /var/tmp), PODS (50), RATE (5).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
pods=${PODS:-50}; rate=${RATE:-5}
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
cd "$root"
cargo build --release --quiet -p skiff
skiff=$CARGO_TARGET_DIR/release/skiff
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/skiff-node-bench.XXXXXX")
server=
cleanup() {
    [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    "$skiff" reset --data-dir "$work/data" >/dev/null 2>&1 || true
    for i in $(seq 0 $((pods - 1))); do runc delete -f "bench-$$-$i" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

python3 bench/node/mkimage.py "$work/busybox.tar" "$work/layer.tar"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$skiff" server --data-dir "$work/data" --bind-address 127.0.0.1 --https-listen-port "$port" \
    --write-kubeconfig "$work/kc" --cluster-cidr 10.42.250.0/24 --kubelet-port 0 >"$work/server.log" 2>&1 &
server=$!
export KUBECONFIG=$work/kc
for _ in $(seq 100); do "$kubectl" get nodes 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
"$skiff" image --data-dir "$work/data" import "$work/busybox.tar" >/dev/null 2>&1
"$kubectl" get serviceaccount default >/dev/null 2>&1 || sleep 2

# Overhead: CPU (utime+stime over 30 s) and RSS of the server process.
measure() {
    local t0 t1 c0 c1 hz
    hz=$(getconf CLK_TCK)
    sleep 10
    c0=$(awk '{print $14 + $15}' "/proc/$server/stat"); t0=$(date +%s%N)
    sleep 30
    c1=$(awk '{print $14 + $15}' "/proc/$server/stat"); t1=$(date +%s%N)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
    cpu=$(awk -v c="$((c1 - c0))" -v hz="$hz" -v ns="$((t1 - t0))" 'BEGIN {printf "%.2f", 100 * c / hz / (ns / 1e9)}')
    echo "| server idle, $1 pods | RSS $((rss / 1024)) MB | CPU ${cpu} % of a core |"
}
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((NR*p+99)/100); if(i<1)i=1; printf "%.1f", a[i]}'; }

# 2 (first, on a fresh server): overhead with no pods.
idle0=$(measure 0)

# 1. skiff: create → Running.
python3 bench/node/startup.py "$work/kc" "$pods" "$rate" lat >"$work/skiff.ms"
"$kubectl" delete pods -l bench=lat --wait=true >/dev/null
# The floor: runc run -d of the same rootfs and command (no network, no API, no status).
mkdir -p "$work/bundle/rootfs"
tar -xf "$work/layer.tar" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "3600"]
json.dump(c, open("config.json", "w"))
PY
)
: >"$work/runc.ms"
for i in $(seq 0 $((pods - 1))); do
    t0=$(date +%s%N)
    (cd "$work/bundle" && runc run -d "bench-$$-$i" >/dev/null 2>&1 </dev/null)
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) / 1e6}' >>"$work/runc.ms"
    sleep "$(awk -v r="$rate" 'BEGIN {printf "%.3f", 1 / r}')"
done
for i in $(seq 0 $((pods - 1))); do runc delete -f "bench-$$-$i" >/dev/null 2>&1 || true; done

s50=$(pct 50 <"$work/skiff.ms"); s99=$(pct 99 <"$work/skiff.ms")
r50=$(pct 50 <"$work/runc.ms"); r99=$(pct 99 <"$work/runc.ms")
echo "| measurement | skiff | runc run -d (floor) | ratio |"
echo "|---|---|---|---|"
echo "| pod startup p50, $pods pods at $rate/s (ms) | $s50 | $r50 | $(awk -v a="$s50" -v b="$r50" 'BEGIN {printf "%.2f", a / b}') |"
echo "| pod startup p99 (ms) | $s99 | $r99 | $(awk -v a="$s99" -v b="$r99" 'BEGIN {printf "%.2f", a / b}') |"

echo
echo "| node overhead | memory | CPU |"
echo "|---|---|---|"
echo "$idle0"
python3 bench/node/startup.py "$work/kc" 20 "$rate" idle >/dev/null
measure "20 (after the latency run)"
