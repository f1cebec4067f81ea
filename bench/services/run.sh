#!/usr/bin/env bash
# Service data path benchmarks (issue 7), as root, for each proxy mode (nftables, userspace):
#   1. network programming latency: a Service is created (its pods already run) → its
#      ClusterIP answers from the host; p50/p99 over 30 Services;
#   2. HTTP requests/s and p99 through a ClusterIP against the same pod's IP directly, in the
#      same run (`ab`, 8 concurrent clients, busybox httpd behind), and their ratio.
#
#   bench/services/run.sh        # about 2 minutes after the build
# Environment: CARGO_TARGET_DIR, BENCH_TMPDIR (default /var/tmp), REQUESTS (4000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
requests=${REQUESTS:-4000}
cd "$root"
cargo build --release --quiet -p skiff
skiff=$CARGO_TARGET_DIR/release/skiff
command -v ab >/dev/null || { echo "ab (apache2-utils) is needed" >&2; exit 1; }
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/skiff-svc-bench.XXXXXX")
server=
stop_server() {
    [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    server=
    "$skiff" reset --data-dir "$work/data" >/dev/null 2>&1 || true
}
trap 'stop_server; rm -rf "$work"' EXIT
python3 bench/node/mkimage.py "$work/busybox.tar" "$work/layer.tar"

run_mode() {
    local mode=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$skiff" server --data-dir "$work/data" --bind-address 127.0.0.1 --https-listen-port "$port" \
        --write-kubeconfig "$work/kc" --cluster-cidr 10.42.251.0/24 --service-cidr 10.45.0.0/16 \
        --kubelet-port 0 --proxy-mode "$mode" >"$work/server-$mode.log" 2>&1 &
    server=$!
    export KUBECONFIG=$work/kc
    for _ in $(seq 100); do "$kubectl" get nodes 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
    "$skiff" image --data-dir "$work/data" import "$work/busybox.tar" >/dev/null 2>&1
    "$kubectl" get serviceaccount default >/dev/null 2>&1 || sleep 2
    "$kubectl" create deployment web --image=busybox:bench -- httpd -f -p 8080 -h /etc >/dev/null
    "$kubectl" rollout status deploy/web --timeout=60s >/dev/null
    python3 bench/services/measure.py "$work/kc" "$mode" "$requests"
    stop_server
}
echo "| mode | programming p50 | p99 | direct req/s | ClusterIP req/s | ratio | direct p99 | ClusterIP p99 |"
echo "|---|---|---|---|---|---|---|---|"
run_mode auto
run_mode userspace
