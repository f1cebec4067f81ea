#!/usr/bin/env bash
# Run every test of the workspace, the way CI does. Installs what the tests need first.
#
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh e2e        # extra arguments go to `cargo test` (a test-name filter)
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "test.sh: installing system packages needs root" >&2; exit 1; }; }

# System packages the tests use (see docs/architecture.md, "Tests").
packages=(ca-certificates busybox-static docker-registry skopeo apache2-utils runc containernetworking-plugins iproute2 util-linux nftables conntrack)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The e2e tests drive the real kubectl 1.32 (installed with the machine image; no apt source
# provides it). Fail loudly rather than skip.
KUBECTL="${SKIFF_TEST_KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}"
if [ ! -x "$KUBECTL" ]; then
  echo "test.sh: $KUBECTL not found; set SKIFF_TEST_KUBECTL to a kubectl 1.32 binary" >&2
  exit 1
fi
export SKIFF_TEST_KUBECTL="$KUBECTL"

# The e2e tests run the built binary.
cargo build -p skiff
cargo test --workspace "$@"
