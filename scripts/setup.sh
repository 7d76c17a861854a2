#!/usr/bin/env bash
# Installs what building and testing arena needs, skipping what is already
# there: the wasm32 target, trunk, the wasm-bindgen CLI matching Cargo.lock,
# cargo-deny,
# Debian's redis-server for the cluster tests (they start their own on a
# free port), and Debian's chromium and nginx for the browser and proxy
# tests. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

TRUNK_VERSION=0.21.14
# Checks licences, duplicate versions and sources against deny.toml.
CARGO_DENY_VERSION=0.20.2
# Finds dependencies no code uses.
CARGO_MACHETE_VERSION=0.9.2
# The CLI must equal the wasm-bindgen crate in Cargo.lock, or trunk fails.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)

TRUNK_PIN=$(sed -n 's/^wasm_bindgen = "\(.*\)"/\1/p' Trunk.toml)
if [ "$TRUNK_PIN" != "$WASM_BINDGEN_VERSION" ]; then
  echo "Trunk.toml pins wasm_bindgen = \"$TRUNK_PIN\" but Cargo.lock has wasm-bindgen $WASM_BINDGEN_VERSION;" \
    "set Trunk.toml's [tools] wasm_bindgen to $WASM_BINDGEN_VERSION" >&2
  exit 1
fi

debian_packages() {
  # Debian packages: brotli precompresses dist/; redis-server and
  # redis-sentinel back the cluster tests; chromium runs the browser tests and nginx the
  # reverse-proxy test.
  packages=()
  command -v brotli >/dev/null || packages+=(brotli)
  command -v redis-server >/dev/null || packages+=(redis-server)
  command -v redis-sentinel >/dev/null || packages+=(redis-sentinel)
  if [ "${ARENA_SKIP_BROWSER:-0}" != 1 ]; then
    command -v chromium >/dev/null || packages+=(chromium)
    [ -x /usr/sbin/nginx ] || packages+=(nginx)
  fi
  if [ ${#packages[@]} -gt 0 ]; then
    say "installing ${packages[*]} from Debian"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
    # The package starts a default site on :80; the test runs its own nginx.
    if [[ " ${packages[*]} " == *" nginx "* ]]; then
      $sudo /usr/sbin/nginx -s stop 2>/dev/null || true
    fi
    # Likewise the package's own Redis on :6379: the tests start theirs.
    if [[ " ${packages[*]} " == *" redis-server "* ]]; then
      $sudo service redis-server stop >/dev/null 2>&1 || $sudo pkill -x redis-server 2>/dev/null || true
    fi
    if [[ " ${packages[*]} " == *" redis-sentinel "* ]]; then
      $sudo service redis-sentinel stop >/dev/null 2>&1 || $sudo pkill -x redis-sentinel 2>/dev/null || true
    fi
  fi
}
# apt downloads and unpacks while cargo compiles.
debian_packages &
apt=$!

# The tools are built to run checks on this machine, not to ship: without
# their release profiles' LTO, with 16 codegen units and opt-level 1 they
# build in about 60 % of the time (trunk 292 s instead of about 480 s on 2
# cores), and share one target folder so a crate two tools use at one
# version is built once. They run as fast as the checks need.
tool() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
    CARGO_TARGET_DIR="$PWD/target/tools" cargo install "$@"
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  say "installing trunk $TRUNK_VERSION (about 5 minutes on 2 cores)"
  tool trunk --version "$TRUNK_VERSION" --locked
fi

if [ -n "$WASM_BINDGEN_VERSION" ] && ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  tool wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if [ "${ARENA_SKIP_DENY:-0}" != 1 ] && ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  say "installing cargo-deny $CARGO_DENY_VERSION (about 2 minutes)"
  tool cargo-deny --version "$CARGO_DENY_VERSION" --locked
fi

if [ "${ARENA_SKIP_DENY:-0}" != 1 ] && ! cargo machete --version 2>/dev/null | grep -q "$CARGO_MACHETE_VERSION"; then
  say "installing cargo-machete $CARGO_MACHETE_VERSION (about 1 minute)"
  tool cargo-machete --version "$CARGO_MACHETE_VERSION" --locked
fi

wait "$apt" || { echo "installing the Debian packages failed" >&2; exit 1; }
