#!/usr/bin/env bash
# Over real HTTP: GET /me (the KvixiUser extractor) against GET /account (the route-group
# guard, a handler without extractor) on each release example with its embedded Kvixi
# emulator, logged in as alice; wrk alternates the two pages, three rounds each, and the
# app's VmRSS is read before and after. A cross-check of the guard's cost over loopback,
# not a target: the two pages differ (JSON profile, HTML page).
#
#   bench/wrk-guard.sh            # needs wrk and curl (apt-get install wrk curl)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p kvixi-bench --bin load
load=target/release/load
app=127.0.0.1:3900
for fw in axum actix rocket; do
  RUST_LOG=error ROCKET_LOG_LEVEL=off KVIXI_EXAMPLE_ADDR=$app KVIXI_PUBLIC_URL=http://$app \
    KVIXI_MOCK_ADDR=127.0.0.1:3901 env -u KVIXI_APP_ID -u KVIXI_BASE_URL -u KVIXI_REDIS_URL \
    "$load" serve "$fw" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://$app/" && break; sleep 0.2; done
  jar=$(mktemp)
  # Login start -> the emulator's page (approving alice at once) -> the callback.
  kvixi=$(curl -s -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "http://$app/auth/kvixi/login?return_to=/me")
  callback=$(curl -s -o /dev/null -w '%{redirect_url}' "$kvixi&mock_user=alice")
  curl -s -c "$jar" -b "$jar" -o /dev/null "$callback"
  cookie=$(awk '$6=="kvixi_session"{print $6"="$7}' "$jar")
  echo "== $fw: /account answers $(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "http://$app/account")"
  rss_before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  for round in 1 2 3; do
    for path in /me /account; do
      rate=$(wrk -t1 -c16 -d8s -H "Cookie: $cookie" -H 'Accept: application/json' "http://$app$path" \
        | awk '/Requests\/sec/{print $2}')
      echo "$fw $path round $round: $rate req/s"
    done
  done
  echo "$fw VmRSS: $rss_before kB after login, $(awk '/VmRSS/{print $2}' "/proc/$pid/status") kB after the rounds"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -f "$jar"
done
