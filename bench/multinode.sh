#!/usr/bin/env bash
# Several market nodes on one PostgreSQL, every part a real process on loopback:
#  1. latency: a provider linked to node 1; the same open-loop load to node 1 (served there) and to node 2 (forwarded to
#     node 1), interleaved round by round in one run; CPU per request of each process.
#  2. throughput with 1, 2 and 3 nodes behind HAProxy (one provider per node, all on one simulator): the same load
#     through the balancer; CPU per request of each node, forwarding included.
#  3. takeover with default settings: kill -9 of the node holding a provider and the duties; time until the provider is
#     served again through another node and until every duty is held by a live node.
# Usage: bench/multinode.sh [RATE] [SECONDS] [ROUNDS]
# Needs a PostgreSQL server: COINOP_BENCH_POSTGRES or COINOP_TEST_POSTGRES (an Npgsql connection string; a database is
# created and dropped), and haproxy.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rate="${1:-200}"; seconds="${2:-15}"; rounds="${3:-3}"
pg="${COINOP_BENCH_POSTGRES:-${COINOP_TEST_POSTGRES:?set COINOP_BENCH_POSTGRES or COINOP_TEST_POSTGRES}}"
out="$root/bench/results"; mkdir -p "$out"
work=$(mktemp -d /tmp/coinop-mn-XXXXXX)
field() { echo "$pg" | tr ';' '\n' | sed -n "s/^$1=//Ip" | head -1; }
psql_admin() { PGPASSWORD="$(field Password)" psql -q -h "$(field Host)" -p "$(field Port)" -U "$(field Username)" -d postgres "$@"; }
db="bench_mn_$RANDOM$RANDOM"
conn="Host=$(field Host);Port=$(field Port);Username=$(field Username);Password=$(field Password);Database=$db"
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() { stop_all; psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet >/dev/null
dotnet build "$root/bench/Coinop.LoadTest" -c Release -o "$work/load" --nologo -v quiet >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }
# Started with `&` straight from dotnet (not through a shell function): $! is then the process itself, whose CPU is
# measured and which kill -9 kills (a function's subshell would be measured and killed instead, leaving the node up).
coinop=(dotnet "$work/cli/coinop.dll")
load() { dotnet "$work/load/Coinop.LoadTest.dll" --rate "$rate" --seconds "$seconds" "$@"; }
export COINOP_LOG_LEVEL=Warning

fresh_db() { psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; psql_admin -c "CREATE DATABASE $db" >/dev/null; }
# start_node NAME PORT PUBLIC_URL: starts a node (prints its pid)
start_node() {
  "${coinop[@]}" market --urls "http://127.0.0.1:$2" --node-url "http://127.0.0.1:$2" --public-url "$3" --data "$work/$1" --postgres "$conn" --free \
    >"$work/$1.log" 2>&1 & echo $!
}
start_provider() { # NAME MARKET_URLS
  "${coinop[@]}" provider --market "$2" --backend "openai=http://127.0.0.1:$sim" --data "$work/$1" --name "$1" --max-concurrent 4096 >"$work/$1.log" 2>&1 & echo $!
}
routable() { for _ in $(seq 1 300); do curl -fsS "$1/v1/models" 2>/dev/null | grep -q sim-small && return 0; sleep 0.1; done; echo "no provider at $1" >&2; exit 1; }

sim=$(free_port)
"${coinop[@]}" sim-backend --urls "http://127.0.0.1:$sim" --latency 0 --tokens-per-second 0 >"$work/sim.log" 2>&1 & simpid=$!; pids+=($simpid)
wait_http "http://127.0.0.1:$sim/v1/models"

echo "== 1. forwarded vs local latency ($rate req/s, ${seconds}s, $rounds rounds)"
fresh_db
p1=$(free_port); p2=$(free_port)
n1=$(start_node n1 "$p1" "http://127.0.0.1:$p1"); pids+=($n1); wait_http "http://127.0.0.1:$p1/healthz"
n2=$(start_node n2 "$p2" "http://127.0.0.1:$p1"); pids+=($n2); wait_http "http://127.0.0.1:$p2/healthz"
pa=$(start_provider pa "http://127.0.0.1:$p1"); pids+=($pa)
routable "http://127.0.0.1:$p1"; routable "http://127.0.0.1:$p2"
for r in $(seq 1 "$rounds"); do
  load --label "local-r$r" --url "http://127.0.0.1:$p1" --pids "$n1,$n2,$pa,$simpid" --json "$out/multinode-local-r$r.json" | grep -E '"(label|p50_ms|p99_ms|errors)"|"[0-9]+": ' | tr -d '\n'; echo
  load --label "forwarded-r$r" --url "http://127.0.0.1:$p2" --pids "$n1,$n2,$pa,$simpid" --json "$out/multinode-forwarded-r$r.json" | grep -E '"(label|p50_ms|p99_ms|errors)"|"[0-9]+": ' | tr -d '\n'; echo
done
echo "(pids: node1 $n1, node2 $n2, provider $pa, simulator $simpid)"
kill "$n1" "$n2" "$pa" 2>/dev/null || true; wait "$n1" "$n2" "$pa" 2>/dev/null || true; pids=($simpid)

echo "== 2. throughput through HAProxy with 1, 2 and 3 nodes ($rate req/s offered, ${seconds}s)"
for n in 1 2 3; do
  fresh_db
  lb=$(free_port); ports=(); nodes=()
  for i in $(seq 1 "$n"); do ports+=("$(free_port)"); done
  for i in $(seq 0 $((n - 1))); do
    nodes+=("$(start_node "t$n-n$i" "${ports[$i]}" "http://127.0.0.1:$lb")"); pids+=("${nodes[-1]}")
    wait_http "http://127.0.0.1:${ports[$i]}/healthz"
  done
  provs=()
  for i in $(seq 0 $((n - 1))); do provs+=("$(start_provider "t$n-p$i" "http://127.0.0.1:${ports[$i]}")"); pids+=("${provs[-1]}"); done
  { printf 'defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind 127.0.0.1:%s\n  default_backend b\nbackend b\n  balance roundrobin\n' "$lb"
    for i in $(seq 0 $((n - 1))); do printf '  server n%s 127.0.0.1:%s\n' "$i" "${ports[$i]}"; done; } >"$work/haproxy-$n.cfg"
  haproxy -f "$work/haproxy-$n.cfg" -db >"$work/haproxy-$n.log" 2>&1 & hp=$!; pids+=($hp)
  for i in $(seq 0 $((n - 1))); do routable "http://127.0.0.1:${ports[$i]}"; done
  sleep 2 # every node has read every provider's figures
  load --label "nodes-$n" --url "http://127.0.0.1:$lb" --pids "$(IFS=,; echo "${nodes[*]}"),$(IFS=,; echo "${provs[*]}"),$hp,$simpid" --json "$out/multinode-throughput-$n.json" \
    | grep -E '"(label|achieved_rps|p50_ms|p99_ms|errors)"|"[0-9]+": ' | tr -d '\n'; echo
  echo "(nodes ${nodes[*]}; providers ${provs[*]}; haproxy $hp; simulator $simpid)"
  for p in "${nodes[@]}" "${provs[@]}" "$hp"; do kill "$p" 2>/dev/null || true; done; wait "${nodes[@]}" "${provs[@]}" "$hp" 2>/dev/null || true
  pids=($simpid)
done

echo "== 3. takeover after kill -9 (default settings)"
fresh_db
p1=$(free_port); p2=$(free_port); p3=$(free_port)
n1=$(start_node k1 "$p1" "http://127.0.0.1:$p1"); pids+=($n1); wait_http "http://127.0.0.1:$p1/healthz"
sleep 1 # node 1 takes the duties first
n2=$(start_node k2 "$p2" "http://127.0.0.1:$p1"); pids+=($n2)
n3=$(start_node k3 "$p3" "http://127.0.0.1:$p1"); pids+=($n3)
wait_http "http://127.0.0.1:$p2/healthz"; wait_http "http://127.0.0.1:$p3/healthz"
pk=$(start_provider pk "http://127.0.0.1:$p1,http://127.0.0.1:$p2,http://127.0.0.1:$p3"); pids+=($pk)
routable "http://127.0.0.1:$p3"
token=$(cat "$work/k1/admin.token")
python3 - "$n1" "http://127.0.0.1:$p1" "http://127.0.0.1:$p3" "$token" <<'PY'
import json, os, signal, sys, time, urllib.request
victim, dead, url, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def nodes():
    req = urllib.request.Request(url + "/api/nodes", headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req, timeout=5))["nodes"]
def holder_of_duties():
    held = {}
    for n in nodes():
        for d in n["duties"]:
            held[d] = n["node_url"]
    return held
def served():
    body = json.dumps({"model": "sim-small", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except Exception:
        return False
before = holder_of_duties()
assert all(h == dead for h in before.values()) and before, f"node 1 should hold the duties first: {before}"
assert any(dead == n["node_url"] and n["providers"] for n in nodes()), "node 1 should hold the provider"
os.kill(victim, signal.SIGKILL)
killed = time.monotonic()
provider_at = duties_at = None
while provider_at is None or duties_at is None:
    if time.monotonic() - killed > 120:
        sys.exit(f"no takeover within 120 s (provider served again: {provider_at}; duties: {holder_of_duties()})")
    if provider_at is None and served():
        provider_at = time.monotonic() - killed
    if duties_at is None:
        try:
            held = holder_of_duties()
            if set(held) == set(before) and all(h != dead for h in held.values()):
                duties_at = time.monotonic() - killed
        except Exception:
            pass
    time.sleep(0.05)
print(f"provider served again after {provider_at:.2f} s; duties ({', '.join(sorted(before))}) taken over after {duties_at:.2f} s")
PY
