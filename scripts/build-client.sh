#!/usr/bin/env bash
# Builds the browser client into dist/ (trunk, release, size profile), then
# writes .br and .gz beside every text and wasm file so arena-server can
# send them precompressed. Prints the wasm's raw and compressed sizes.
#
# A second run with nothing changed does nothing: dist/ is rebuilt only when
# a file under client/, shared/ or web/ (or Trunk.toml, Cargo.toml,
# Cargo.lock) is newer than the last build, and a file's compressed forms
# come from a cache keyed by its contents (target/precompressed/), so
# brotli at quality 11 runs once per distinct wasm. ARENA_FORCE_CLIENT=1
# rebuilds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
# Beside dist/ (each checkout has its own), not in target/ (which may be shared).
stamp=.dist-built
inputs=(client shared web Trunk.toml Cargo.toml Cargo.lock)
if [ "${ARENA_FORCE_CLIENT:-0}" != 1 ] && [ -e "$stamp" ] && [ -e dist/index.html ] &&
  [ -z "$(find "${inputs[@]}" -newer "$stamp" -print -quit)" ]; then
  echo "==> dist/ is up to date (nothing under ${inputs[*]} changed since it was built)" >&2
  exit 0
fi

echo "==> trunk build --release (first build of Bevy for wasm takes a while on 2 cores)" >&2
# The stamp's time is the build's start: a change made during the build
# makes the next run build again.
mkdir -p target
touch "$stamp.next"
trunk build --release --offline

echo "==> precompressing dist/" >&2
cache=target/precompressed
mkdir -p "$cache"
for file in dist/*.wasm dist/*.js dist/*.mjs dist/*.css dist/*.html dist/*.svg; do
  [ -e "$file" ] || continue
  sum=$(sha256sum "$file" | cut -c1-40)
  [ -e "$cache/$sum.gz" ] || { gzip -9 -c "$file" >"$cache/$sum.gz.tmp" && mv "$cache/$sum.gz.tmp" "$cache/$sum.gz"; }
  [ -e "$cache/$sum.br" ] || { brotli -q 11 -c "$file" >"$cache/$sum.br.tmp" && mv "$cache/$sum.br.tmp" "$cache/$sum.br"; }
  cp "$cache/$sum.gz" "$file.gz"
  cp "$cache/$sum.br" "$file.br"
  touch "$cache/$sum.gz" "$cache/$sum.br"
done
# Forms no build has used for a week go.
find "$cache" -type f -mtime +7 -delete
mv "$stamp.next" "$stamp"

wasm=$(ls dist/*.wasm | head -1)
size() { stat -c %s "$1"; }
printf '==> %s: %s bytes raw, %s gzip, %s brotli (built in %ss)\n' "$wasm" "$(size "$wasm")" \
  "$(size "$wasm.gz")" "$(size "$wasm.br")" "$(( $(date +%s) - started ))" >&2
