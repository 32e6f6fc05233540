#!/usr/bin/env bash
# Instructions per request of the extractor benchmarks, counted by callgrind: repeatable
# where wall-clock time on a shared machine is not.
#
#   bench/callgrind.sh                      # every benchmark
#   bench/callgrind.sh authenticated/actix  # those whose id starts so
#
# Each benchmark runs twice under `valgrind --tool=callgrind` with KVIXI_BENCH_ONLY (see
# benches/extractors/record.rs): with 0 and with $REQUESTS requests after the same
# setup; the difference divided by $REQUESTS is one request. Needs valgrind
# (`apt-get install valgrind`).
set -euo pipefail

REQUESTS=${REQUESTS:-2000}
cd "$(dirname "$0")/.."

bench=$(cargo bench -p kvixi-bench --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*extractors[^"]*\)".*/\1/p' | tail -1)
[ -x "$bench" ] || { echo "no benchmark executable; does cargo bench -p kvixi-bench --no-run build?" >&2; exit 1; }

ids=(
  authenticated/axum/floor authenticated/axum/kvixi authenticated/axum/axum-login
  authenticated/axum/guarded authenticated/actix/guarded authenticated/rocket/guarded
  authenticated/actix/floor authenticated/actix/kvixi
  authenticated/rocket/floor authenticated/rocket/kvixi
  authenticated/axum/kvixi-app authenticated/actix/kvixi-app authenticated/rocket/kvixi-app
  anonymous-json/axum/floor anonymous-json/axum/kvixi anonymous-json/axum/axum-login
  anonymous-json/actix/floor anonymous-json/actix/kvixi
  anonymous-json/rocket/floor anonymous-json/rocket/kvixi
  anonymous-browser/axum/floor anonymous-browser/axum/kvixi
  anonymous-browser/actix/floor anonymous-browser/actix/kvixi
  anonymous-browser/rocket/floor anonymous-browser/rocket/kvixi
)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Instructions of the main process when running `$1` with `$2` requests.
count() {
  KVIXI_BENCH_ONLY="$1:$2" valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" \
    "$bench" --bench 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p' | sort -n | tail -1
}

printf '%-36s %12s\n' benchmark instructions
for id in "${ids[@]}"; do
  [[ $id == ${1:-}* ]] || continue
  base=$(count "$id" 0)
  loaded=$(count "$id" "$REQUESTS")
  printf '%-36s %12d\n' "$id" $(( (loaded - base) / REQUESTS ))
done
