#!/usr/bin/env bash
# Control-plane benchmarks (issue 2, scope item 6): builds release binaries of skiff and the
# benchmark driver, runs every measurement against `skiff server` and against a single-member
# etcd 3.4 in the same run, and prints a Markdown results table with ratios and goals.
#
#   bench/run.sh                 # the full run (about 2.5 minutes after the build, on 2 cores)
#   bench/run.sh --quick         # a smoke run of a few seconds; its numbers mean nothing
#   bench/run.sh --only a,d      # some measurements only (a … h as in docs/benchmarks.md;
#                                # f, g and h, on simulated nodes, are not in the default set)
#   bench/run.sh --only f --shapes basic   # one scheduler_perf workload of (f)
#
# Environment: ETCD (default /usr/bin/etcd), BENCH_TMPDIR (where data dirs go; default
# /var/tmp, which must be a real disk, not tmpfs), CARGO_TARGET_DIR.
# Everything the run creates lives in one temporary directory, removed on exit; servers that
# a crashed run left behind are killed by the pid files they registered there.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
etcd=${ETCD:-/usr/bin/etcd}
if [ ! -x "$etcd" ]; then
    echo "etcd not found at $etcd (apt-get install etcd-server, or set ETCD)" >&2
    exit 1
fi

cd "$root"
# Two builds, not one: building skiff on its own keeps its features exactly what users get
# (the driver turns on hyper's client side).
cargo build --release --quiet -p skiff
cargo build --release --quiet -p skiff-bench

work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/skiff-bench.XXXXXX")
driver=
cleanup() {
    local rc=$? f pid
    if [ -n "$driver" ]; then
        kill -TERM "$driver" 2>/dev/null || true
        wait "$driver" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        # The logs are about to be removed with the work dir: show their ends.
        for f in "$work"/*/server.log; do
            [ -e "$f" ] || continue
            echo "== ${f#"$work"/} (last lines)" >&2
            tail -n 20 "$f" >&2
        done
    fi
    for f in "$work"/pids/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        # Only a process that is still one of ours: pids are reused.
        if [ -r "/proc/$pid/comm" ] && grep -qxE 'skiff|etcd' "/proc/$pid/comm"; then
            kill -KILL "$pid" 2>/dev/null || true
            # Wait (briefly) until it is really gone, so nothing is left when we return; a
            # zombie has released everything and only waits for init to reap it.
            for _ in $(seq 50); do
                [ -r "/proc/$pid/stat" ] || break
                [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
                sleep 0.1
            done
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fs=$(df --output=fstype "$work" | tail -1)
if [ "$fs" = tmpfs ]; then
    echo "warning: $work is on tmpfs: fsync is free there, so write numbers will be meaningless" >&2
fi

echo "## skiff control-plane benchmarks"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- skiff: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (uncommitted changes)'), release build"
echo "- etcd: $("$etcd" --version | head -1)"
echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "- data dirs on: $(df --output=source "$work" | tail -1) ($fs)"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# In the background and waited for, so that a signal to this script runs the cleanup at once
# (bash defers traps while a foreground command runs).
"$CARGO_TARGET_DIR/release/skiff-bench" \
    --skiff-bin "$CARGO_TARGET_DIR/release/skiff" \
    --etcd-bin "$etcd" \
    --work-dir "$work" \
    "$@" &
driver=$!
wait "$driver"
driver=

echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
