#!/usr/bin/env bash
# Builds the browser client into dist/ (trunk, release, size profile), then
# writes .br and .gz beside every text and wasm file so arena-server can
# send them precompressed. Prints the wasm's raw and compressed sizes.
#
# A second run with nothing changed does nothing: dist/ is rebuilt unless
# no file under client/, client-core/, shared/ or web/ (or Trunk.toml,
# Cargo.toml, Cargo.lock) is newer than the last release build AND dist/ still holds
# exactly what that build made: every file's checksum is in the stamp, so
# a `trunk build` or `trunk serve` (the dev loop, which writes a debug
# build without compressed forms into dist/) is noticed and rebuilt. A
# file's compressed forms come from a cache keyed by its contents
# (target/precompressed/), so brotli at quality 11 runs once per distinct
# wasm. ARENA_FORCE_CLIENT=1 rebuilds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
# Beside dist/ (each checkout has its own), not in target/ (which may be
# shared): the release build's files and their checksums.
stamp=.dist-built
inputs=(client client-core shared web Trunk.toml Cargo.toml Cargo.lock)
# What the server needs of dist/: the page and the wasm, each with its brotli form.
complete() {
  [ -e dist/index.html.br ] && compgen -G 'dist/*.wasm.br' >/dev/null && [ -s "$stamp" ] &&
    sha256sum --quiet --check "$stamp" >/dev/null 2>&1 &&
    [ "$(find dist -type f | wc -l)" = "$(wc -l <"$stamp")" ]
}
if [ "${ARENA_FORCE_CLIENT:-0}" != 1 ] && complete &&
  [ -z "$(find "${inputs[@]}" -newer "$stamp" -print -quit)" ]; then
  echo "==> dist/ is up to date (the release build's files, unchanged; nothing under ${inputs[*]} changed since)" >&2
  exit 0
fi

echo "==> trunk build --release (first build of Bevy for wasm takes a while on 2 cores)" >&2
# The stamp's time is the build's start: a change made during the build
# makes the next run build again.
mkdir -p target
touch "$stamp.started"
rm -f "$stamp"
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
[ -e dist/index.html.br ] && compgen -G 'dist/*.wasm.br' >/dev/null || {
  echo "error: trunk left no page or wasm in dist/ (see its output above)" >&2
  exit 1
}
# The stamp's time is the build's start; its contents, what the build made.
find dist -type f -print0 | sort -z | xargs -0 sha256sum >"$stamp.next"
touch -r "$stamp.started" "$stamp.next"
mv "$stamp.next" "$stamp"
rm -f "$stamp.started"

wasm=$(ls dist/*.wasm | head -1)
size() { stat -c %s "$1"; }
printf '==> %s: %s bytes raw, %s gzip, %s brotli (built in %ss)\n' "$wasm" "$(size "$wasm")" \
  "$(size "$wasm.gz")" "$(size "$wasm.br")" "$(( $(date +%s) - started ))" >&2
