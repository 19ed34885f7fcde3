#!/usr/bin/env bash
# 10,000 idle providers on one market node: builds the CLI and the bench, starts a market (its own process, --free,
# default timings), links COUNT protocol-speaking providers to it over real WebSockets (each its own Ed25519 key, the
# real handshake, heartbeats every TTL/2) from several 127.0.0.x source addresses, and prints the market's memory per
# idle provider, its CPU over IDLE seconds of heartbeats, and /v1/models and /api/providers latency. Then the
# in-process router benchmark over the same count. Usage: bench/providers.sh [COUNT=10000] [IDLE=60] [ROUNDS=1]
# With BEFORE=<git ref> the market built from that ref runs too, in alternate rounds (before, this tree, before, ...),
# for a side-by-side comparison in one run; the router benchmark is then skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count="${1:-10000}"; idle="${2:-60}"; rounds="${3:-1}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open files limit: $(ulimit -n)"
work=$(mktemp -d /tmp/coinop-providers-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet
dotnet build "$root/bench/Coinop.Bench" -c Release -o "$work/bench" --nologo -v quiet
variants=(this)
if [ -n "${BEFORE:-}" ]; then
  mkdir -p "$work/before-src"
  git -C "$root" archive "$BEFORE" | tar -x -C "$work/before-src"
  dotnet build "$work/before-src/src/Coinop.Cli" -c Release -o "$work/before-cli" --nologo -v quiet
  variants=(before this)
fi

run() { # $1: variant
  local cli="$work/cli" port marketpid
  [ "$1" = before ] && cli="$work/before-cli"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$work/market"
  COINOP_LOG_LEVEL=Warning dotnet "$cli/coinop.dll" market --urls "http://127.0.0.1:$port" --data "$work/market" --free >"$work/market.log" 2>&1 & pids+=($!); marketpid=$!
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  dotnet "$work/bench/Coinop.Bench.dll" providers "http://127.0.0.1:$port" "$marketpid" "$count" "$idle"
  echo "market log (warnings and errors):"; tail -n 5 "$work/market.log"
  kill "$marketpid"; wait "$marketpid" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    if [ "$v" = before ]; then echo "=== round $r: market built from $BEFORE"; else echo "=== round $r: market built from this tree"; fi
    run "$v"
  done
done
[ -n "${BEFORE:-}" ] || dotnet "$work/bench/Coinop.Bench.dll" router "$count"
