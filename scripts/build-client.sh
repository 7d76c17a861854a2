#!/usr/bin/env bash
# Builds the browser client into dist/ (trunk, release, size profile), then
# writes .br and .gz beside every text and wasm file so arena-server can
# send them precompressed. Prints the wasm's raw and compressed sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
echo "==> trunk build --release (first build of Bevy for wasm takes a while on 2 cores)" >&2
trunk build --release --offline

echo "==> precompressing dist/" >&2
for file in dist/*.wasm dist/*.js dist/*.css dist/*.html dist/*.svg; do
  [ -e "$file" ] || continue
  gzip -9 -k -f "$file"
  brotli -q 11 -f -k "$file"
done

wasm=$(ls dist/*.wasm | head -1)
size() { stat -c %s "$1"; }
printf '==> %s: %s bytes raw, %s gzip, %s brotli (built in %ss)\n' "$wasm" "$(size "$wasm")" \
  "$(size "$wasm.gz")" "$(size "$wasm.br")" "$(( $(date +%s) - started ))" >&2
