#!/usr/bin/env bash
# Measures the market's added latency and CPU per request: the same load against the simulator directly, then
# through a market node and a provider agent (all real processes on loopback). Prints JSON reports.
# Usage: bench/latency.sh [RATE] [SECONDS] [extra load-test args...]
# e.g. `bench/latency.sh 0 10 --sequential --stream`: one request at a time (RATE unused), time to first event.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rate="${1:-1000}"; seconds="${2:-20}"; shift $(( $# > 2 ? 2 : $# )) || true
out="$root/bench/results"; mkdir -p "$out"
work=$(mktemp -d /tmp/coinop-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet >/dev/null
dotnet build "$root/bench/Coinop.LoadTest" -c Release -o "$work/load" --nologo -v quiet >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }

sim=$(free_port); market=$(free_port)
export COINOP_LOG_LEVEL=Warning
dotnet "$work/cli/coinop.dll" sim-backend --urls "http://127.0.0.1:$sim" --latency 0 --tokens-per-second 0 >"$work/sim.log" 2>&1 & pids+=($!); simpid=$!
dotnet "$work/cli/coinop.dll" market --urls "http://127.0.0.1:$market" --data "$work/market" --free >"$work/market.log" 2>&1 & pids+=($!); marketpid=$!
wait_http "http://127.0.0.1:$sim/v1/models"; wait_http "http://127.0.0.1:$market/healthz"
dotnet "$work/cli/coinop.dll" provider --market "http://127.0.0.1:$market" --backend "openai=http://127.0.0.1:$sim" --data "$work/provider" --max-concurrent 4096 >"$work/provider.log" 2>&1 & pids+=($!); provpid=$!
for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$market/v1/models" 2>/dev/null | grep -q sim-small && break; sleep 0.1; done

load() { dotnet "$work/load/Coinop.LoadTest.dll" --rate "$rate" --seconds "$seconds" "$@"; }
echo "== direct to the simulator"
load --label direct --url "http://127.0.0.1:$sim" --pids "$simpid" --json "$out/latency-direct.json" "$@"
echo "== through the market and a provider"
load --label market --url "http://127.0.0.1:$market" --pids "$marketpid,$provpid,$simpid" --json "$out/latency-market.json" "$@"
