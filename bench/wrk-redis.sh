#!/usr/bin/env bash
# Over real HTTP, sessions on Redis (issue 22): each release example with KVIXI_REDIS_URL on
# a fresh redis-server of its own (a free loopback port, nothing saved, stopped at the end)
# and a KVIXI_COOKIE_KEY, alice logged in through the embedded Kvixi emulator, then
# `wrk -t2 -c16 -d10s` on GET /me (the KvixiUser extractor) with her cookie and
# `Accept: application/json`. Redis commands per request are the growth of the calls in
# `INFO commandstats` (INFO itself left out) over wrk's run, divided by wrk's requests.
# The same wrk on the memory store (no KVIXI_REDIS_URL) gives the comparison.
#
#   bench/wrk-redis.sh [axum] [actix] [rocket]   # needs wrk, curl, redis-server, redis-cli
#
# Targets: at most 1 Redis command per authenticated request on every framework; actix's
# req/s at least 0.8 times axum's on Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
frameworks=("$@")
[ ${#frameworks[@]} -gt 0 ] || frameworks=(axum actix rocket)
for tool in wrk curl redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "wrk-redis: $tool is not installed" >&2; exit 1; }
done
cargo build --release --quiet -p kvixi-bench --bin load
load=target/release/load

# A port nothing listens on, on 127.0.0.1.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
# Sum of every command's calls (INFO's own excluded) in `INFO commandstats`.
redis_calls() {
  redis-cli -h 127.0.0.1 -p "$1" INFO commandstats | tr -d '\r' \
    | awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" {sum += $3} END {print sum + 0}'
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

declare -A rate requests per_request memory_rate
for fw in "${frameworks[@]}"; do
  for store in memory redis; do
    redis_env=(-u KVIXI_REDIS_URL -u KVIXI_COOKIE_KEY)
    if [ "$store" = redis ]; then
      redis_port=$(free_port)
      redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "${TMPDIR:-/tmp}" >/dev/null 2>&1 &
      pids+=($!)
      for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
      redis_env=(KVIXI_REDIS_URL="redis://127.0.0.1:$redis_port"
        KVIXI_COOKIE_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')")
    fi
    app=127.0.0.1:$(free_port)
    env -u KVIXI_APP_ID -u KVIXI_BASE_URL "${redis_env[@]}" RUST_LOG=error ROCKET_LOG_LEVEL=off \
      KVIXI_EXAMPLE_ADDR=$app KVIXI_PUBLIC_URL=http://$app KVIXI_MOCK_ADDR=127.0.0.1:$(free_port) \
      "$load" serve "$fw" >/dev/null 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "http://$app/" && break; sleep 0.2; done
    jar=$(mktemp)
    # Login start -> the emulator's page (approving alice at once) -> the callback.
    kvixi=$(curl -s --max-time 5 -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "http://$app/auth/kvixi/login?return_to=/me")
    callback=$(curl -s --max-time 5 -o /dev/null -w '%{redirect_url}' "$kvixi&mock_user=alice")
    curl -s --max-time 5 -c "$jar" -b "$jar" -o /dev/null "$callback"
    cookie=$(awk '$6=="kvixi_session"{print $6"="$7}' "$jar")
    rm -f "$jar"
    status=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" -H 'Accept: application/json' "http://$app/me")
    if [ "$status" != 200 ]; then
      echo "wrk-redis: $fw on $store: /me answers $status to alice's cookie" >&2
      exit 1
    fi
    [ "$store" = redis ] && calls_before=$(redis_calls "$redis_port")
    out=$(timeout 40 wrk -t2 -c16 -d10s --timeout 5s -H "Cookie: $cookie" -H 'Accept: application/json' "http://$app/me")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    r=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    bad=$(awk -F: '/Non-2xx/{gsub(/ /, "", $2); print $2}' <<<"$out")
    if [ "$store" = redis ]; then
      calls=$(( $(redis_calls "$redis_port") - calls_before ))
      rate[$fw]=$r; requests[$fw]=$n
      per_request[$fw]=$(awk -v c="$calls" -v n="$n" 'BEGIN {printf "%.3f", c / n}')
      echo "$fw, Redis store: $r req/s, $n requests, $calls Redis commands (${per_request[$fw]} per request)${bad:+, $bad not 2xx}"
      echo "  Redis commandstats over the whole run (startup and login included):"
      redis-cli -h 127.0.0.1 -p "$redis_port" INFO commandstats | tr -d '\r' | grep '^cmdstat_' | sed 's/^/    /'
    else
      memory_rate[$fw]=$r
      echo "$fw, memory store: $r req/s, $n requests${bad:+, $bad not 2xx}"
    fi
    cleanup
  done
done

echo
echo "GET /me logged in, wrk -t2 -c16 -d10s, one process per framework and store"
printf '%-7s %14s %14s %18s\n' server "memory req/s" "Redis req/s" "Redis cmds/request"
for fw in "${frameworks[@]}"; do
  printf '%-7s %14s %14s %18s\n' "$fw" "${memory_rate[$fw]}" "${rate[$fw]}" "${per_request[$fw]}"
done
if [ -n "${rate[actix]:-}" ] && [ -n "${rate[axum]:-}" ]; then
  echo "actix/axum req/s on Redis: $(awk -v a="${rate[actix]}" -v b="${rate[axum]}" 'BEGIN {printf "%.3f", a / b}')"
  echo "actix/axum req/s in memory: $(awk -v a="${memory_rate[actix]}" -v b="${memory_rate[axum]}" 'BEGIN {printf "%.3f", a / b}')"
fi
echo "targets: <= 1 Redis command per request on every framework; actix/axum >= 0.8 on Redis"
