#!/usr/bin/env bash
# Measures what payment adds to a request: the same load through two identical setups (simulator, market node,
# provider agent; real processes on loopback), one market started with --free and one paid, paid first with a
# balance key (Authorization: Bearer sk-...) and then with one X-Cashu token per request (change issued on each).
# The three runs are repeated ROUNDS times, interleaved, so a machine whose speed drifts (a shared VM) affects all
# three alike; prints each round's p50 overheads and their medians. Usage: bench/paid-latency.sh [RATE] [SECONDS] [ROUNDS]
# With BASELINE_CLI=DIR (another build's coinop.dll, e.g. of main) the same three runs also go, in the same rounds,
# to a free and a paid market of that build ("before"), on the same simulator: before/after side by side.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rate="${1:-200}"; seconds="${2:-20}"; rounds="${3:-1}"; warmup=5
out="$root/bench/results"; mkdir -p "$out"
work=$(mktemp -d /tmp/coinop-paid-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet >/dev/null
dotnet build "$root/bench/Coinop.LoadTest" -c Release -o "$work/load" --nologo -v quiet >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_models() { for _ in $(seq 1 300); do curl -fsS "$1/v1/models" 2>/dev/null | grep -q sim-small && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }
load() { dotnet "$work/load/Coinop.LoadTest.dll" "$@"; }

export COINOP_LOG_LEVEL=Warning
sim=$(free_port); free=$(free_port); paid=$(free_port)
# dotnet directly (not through a shell function) so $! is the process whose CPU the load test reads.
dotnet "$work/cli/coinop.dll" sim-backend --urls "http://127.0.0.1:$sim" --latency 0 --tokens-per-second 0 >"$work/sim.log" 2>&1 & pids+=($!)
dotnet "$work/cli/coinop.dll" market --urls "http://127.0.0.1:$free" --data "$work/free" --free >"$work/free.log" 2>&1 & pids+=($!); freepid=$!
dotnet "$work/cli/coinop.dll" market --urls "http://127.0.0.1:$paid" --data "$work/paid" >"$work/paid.log" 2>&1 & pids+=($!); paidpid=$!
markets=("$free" "$paid")
if [ -n "${BASELINE_CLI:-}" ]; then
  bfree=$(free_port); bpaid=$(free_port)
  dotnet "$BASELINE_CLI/coinop.dll" market --urls "http://127.0.0.1:$bfree" --data "$work/bfree" --free >"$work/bfree.log" 2>&1 & pids+=($!); bfreepid=$!
  dotnet "$BASELINE_CLI/coinop.dll" market --urls "http://127.0.0.1:$bpaid" --data "$work/bpaid" >"$work/bpaid.log" 2>&1 & pids+=($!); bpaidpid=$!
  markets+=("$bfree" "$bpaid")
fi
for m in "${markets[@]}"; do
  for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$m/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  dotnet "$work/cli/coinop.dll" provider --market "http://127.0.0.1:$m" --backend "openai=http://127.0.0.1:$sim" --data "$work/provider-$m" --max-concurrent 4096 >"$work/provider-$m.log" 2>&1 & pids+=($!)
done
for m in "${markets[@]}"; do wait_models "http://127.0.0.1:$m"; done

# Money for the paid runs: a balance that outlasts the run, and one 4-sat token per request (1 sat reserved, 3 back).
count=$(python3 -c "print(int($rate * ($seconds + $warmup) * 1.1) + 100)")
key=$(load balance --market "http://127.0.0.1:$paid" --sats 1000000)
for r in $(seq 1 "$rounds"); do load tokens --market "http://127.0.0.1:$paid" --count "$count" --sats 4 --out "$work/tokens-$r.txt"; done
if [ -n "${BASELINE_CLI:-}" ]; then
  bkey=$(load balance --market "http://127.0.0.1:$bpaid" --sats 1000000)
  for r in $(seq 1 "$rounds"); do load tokens --market "http://127.0.0.1:$bpaid" --count "$count" --sats 4 --out "$work/btokens-$r.txt"; done
fi

run() { load --rate "$rate" --seconds "$seconds" --warmup "$warmup" "$@"; }
for r in $(seq 1 "$rounds"); do
  echo "== round $r: --free market"
  run --label free --url "http://127.0.0.1:$free" --pids "$freepid" --json "$out/paid-free-$r.json"
  echo "== round $r: paid market, balance key"
  run --label balance --url "http://127.0.0.1:$paid" --pids "$paidpid" --header "Authorization: Bearer $key" --json "$out/paid-balance-$r.json"
  echo "== round $r: paid market, X-Cashu token per request"
  run --label token --url "http://127.0.0.1:$paid" --pids "$paidpid" --x-cashu-file "$work/tokens-$r.txt" --json "$out/paid-token-$r.json"
  if [ -n "${BASELINE_CLI:-}" ]; then
    echo "== round $r: before (baseline build): --free, balance key, X-Cashu token"
    run --label free --url "http://127.0.0.1:$bfree" --pids "$bfreepid" --json "$out/paid-bfree-$r.json"
    run --label balance --url "http://127.0.0.1:$bpaid" --pids "$bpaidpid" --header "Authorization: Bearer $bkey" --json "$out/paid-bbalance-$r.json"
    run --label token --url "http://127.0.0.1:$bpaid" --pids "$bpaidpid" --x-cashu-file "$work/btokens-$r.txt" --json "$out/paid-btoken-$r.json"
  fi
done

python3 - "$out" "$rounds" "${BASELINE_CLI:+b}" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
cpu = lambda r: list(r["cpu_ms_per_request"].values())[0]
for prefix, name in [("", "this build")] + ([("b", "before (baseline build)")] if sys.argv[3:] and sys.argv[3] else []):
    over = {"balance": [], "token": []}
    cpus = {"free": [], "balance": [], "token": []}
    for n in range(1, rounds + 1):
        r = {k: json.load(open(f"{d}/paid-{prefix}{k}-{n}.json")) for k in ("free", "balance", "token")}
        for k in cpus:
            cpus[k].append(cpu(r[k]))
        for k in over:
            over[k].append(r[k]["p50_ms"] - r["free"]["p50_ms"])
            print(f"{name} round {n} {k}: p50 {r[k]['p50_ms']:.3f} ms vs free {r['free']['p50_ms']:.3f} ms -> overhead {over[k][-1]:+.3f} ms p50; "
                  f"market CPU {cpu(r[k]):.3f} vs {cpu(r['free']):.3f} ms/request; errors {r[k]['errors']}")
    for k, v in over.items():
        print(f"{name} {k}: median p50 overhead {statistics.median(v):+.3f} ms over {rounds} round(s) (range {min(v):+.3f}..{max(v):+.3f}); "
              f"median market CPU {statistics.median(cpus[k]):.3f} ms/request (free {statistics.median(cpus['free']):.3f})")
PY
