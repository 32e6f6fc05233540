#!/usr/bin/env bash
# Over real HTTP, sessions in each store: each release example in memory
# (KVIXI_EXAMPLE_STORE=memory), on Redis (issue 22: KVIXI_REDIS_URL on a fresh redis-server
# of its own, nothing saved), in its default SQLite file (issue 28: a temporary
# KVIXI_EXAMPLE_DIR) and on Postgres (KVIXI_DATABASE_URL on a throwaway server run as the
# `postgres` user), each on a free loopback port and stopped at the end; alice logged in
# through the embedded Kvixi emulator, then `wrk -t2 -c16 -d10s` on GET /me (the KvixiUser
# extractor) with her cookie and `Accept: application/json`.
# Redis commands per request: the growth of the calls in `INFO commandstats` (INFO itself
# left out) over wrk's run, divided by wrk's requests. Postgres statements per request: the
# growth of the database's committed transactions (`pg_stat_database.xact_commit`; each
# statement outside a transaction is one) over wrk's run, read after the server's 10 s
# statistics flush, less the reading queries themselves, divided by wrk's requests.
#
#   bench/wrk-stores.sh [axum] [actix] [rocket]   # needs wrk, curl, redis-server, redis-cli, postgresql
#   STORES="sqlite postgres" bench/wrk-stores.sh  # some stores only
#
# Targets: at most 1 Redis command or SQL statement per authenticated request on every
# framework; actix's req/s at least 0.9 times axum's on Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
frameworks=("$@")
[ ${#frameworks[@]} -gt 0 ] || frameworks=(axum actix rocket)
stores=(${STORES:-memory redis sqlite postgres})
for tool in wrk curl redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "wrk-stores: $tool is not installed" >&2; exit 1; }
done
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/postgres" ] || { echo "wrk-stores: postgresql is not installed" >&2; exit 1; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
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
dirs=()
pg_dir=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  if [ -n "$pg_dir" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    dirs+=("$pg_dir"); pg_dir=""
  fi
  for dir in "${dirs[@]}"; do rm -rf "$dir"; done
  dirs=()
}
# A throwaway Postgres on a free port; sets pg_port and pg_dir.
start_postgres() {
  pg_dir=$(mktemp -d); chmod 755 "$pg_dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pg_dir"
  pg_port=$(free_port)
  as_postgres "$pg_bin/initdb" -A trust -U postgres --no-sync -D "$pg_dir/data" >/dev/null
  as_postgres "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w -o \
    "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}
pg_commits() {
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -At \
    -c "select xact_commit from pg_stat_database where datname = 'postgres'"
}
trap cleanup EXIT

declare -A rate per_request
key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
for fw in "${frameworks[@]}"; do
  for store in "${stores[@]}"; do
    redis_env=(-u KVIXI_REDIS_URL -u KVIXI_DATABASE_URL -u KVIXI_COOKIE_KEY)
    case "$store" in
      memory) redis_env+=(KVIXI_EXAMPLE_STORE=memory) ;;
      sqlite)
        dir=$(mktemp -d); dirs+=("$dir")
        redis_env+=(-u KVIXI_EXAMPLE_STORE KVIXI_EXAMPLE_DIR="$dir") ;;
      postgres)
        start_postgres
        redis_env+=(-u KVIXI_EXAMPLE_STORE KVIXI_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
          KVIXI_COOKIE_KEY="$key") ;;
    esac
    if [ "$store" = redis ]; then
      redis_port=$(free_port)
      redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "${TMPDIR:-/tmp}" >/dev/null 2>&1 &
      pids+=($!)
      for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$redis_port" PING >/dev/null 2>&1 && break; sleep 0.1; done
      redis_env=(-u KVIXI_DATABASE_URL -u KVIXI_EXAMPLE_STORE KVIXI_REDIS_URL="redis://127.0.0.1:$redis_port"
        KVIXI_COOKIE_KEY="$key")
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
      echo "wrk-stores: $fw on $store: /me answers $status to alice's cookie" >&2
      exit 1
    fi
    [ "$store" = redis ] && calls_before=$(redis_calls "$redis_port")
    if [ "$store" = postgres ]; then sleep 11; commits_before=$(pg_commits); fi
    out=$(timeout 40 wrk -t2 -c16 -d10s --timeout 5s -H "Cookie: $cookie" -H 'Accept: application/json' "http://$app/me")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    r=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    bad=$(awk -F: '/Non-2xx/{gsub(/ /, "", $2); print $2}' <<<"$out")
    rate[$fw,$store]=$r
    per_request[$fw,$store]=-
    case "$store" in
      redis)
        calls=$(( $(redis_calls "$redis_port") - calls_before ))
        per_request[$fw,$store]=$(awk -v c="$calls" -v n="$n" 'BEGIN {printf "%.3f", c / n}')
        echo "$fw, Redis: $r req/s, $n requests, $calls Redis commands (${per_request[$fw,$store]} per request)${bad:+, $bad not 2xx}" ;;
      postgres)
        sleep 11
        # Less the reading query of each pg_commits.
        statements=$(( $(pg_commits) - commits_before - 1 ))
        per_request[$fw,$store]=$(awk -v c="$statements" -v n="$n" 'BEGIN {printf "%.3f", c / n}')
        echo "$fw, Postgres: $r req/s, $n requests, $statements statements (${per_request[$fw,$store]} per request)${bad:+, $bad not 2xx}" ;;
      *) echo "$fw, $store: $r req/s, $n requests${bad:+, $bad not 2xx}" ;;
    esac
    cleanup
  done
done

echo
echo "GET /me logged in, wrk -t2 -c16 -d10s, one process per framework and store (req/s; commands or statements per request)"
printf '%-7s' server; for store in "${stores[@]}"; do printf ' %20s' "$store"; done; echo
for fw in "${frameworks[@]}"; do
  printf '%-7s' "$fw"
  for store in "${stores[@]}"; do printf ' %20s' "${rate[$fw,$store]:--} (${per_request[$fw,$store]:--})"; done
  echo
done
if [ -n "${rate[actix,redis]:-}" ] && [ -n "${rate[axum,redis]:-}" ]; then
  echo "actix/axum req/s on Redis: $(awk -v a="${rate[actix,redis]}" -v b="${rate[axum,redis]}" 'BEGIN {printf "%.3f", a / b}')"
fi
echo "targets: <= 1 Redis command or SQL statement per request on every framework; actix/axum >= 0.9 on Redis"
