#!/usr/bin/env bash
# Soak: paid chat completions at a fixed rate with a balance key (Authorization: Bearer sk-...) through real processes
# on loopback (simulator, paid market node, provider agent) for a long run. Samples the market's and the provider's
# RSS every 10 s, and at the end checks: no request failed, memory flat after warm-up (the last third of the samples
# against the second third), and the ledger's equations (GET /api/admin/money) hold with nothing left held.
# Usage: bench/soak.sh [RATE=1000] [SECONDS=600]. Exits non-zero when a check fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rate="${1:-1000}"; seconds="${2:-600}"; sample=10
out="$root/bench/results"; mkdir -p "$out"
work=$(mktemp -d /tmp/coinop-soak-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

# BUILT=DIR reuses DIR/cli and DIR/load from an earlier run (KEEP=1 keeps them).
if [ -n "${BUILT:-}" ]; then ln -s "$BUILT/cli" "$work/cli"; ln -s "$BUILT/load" "$work/load"; else
  dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet
  dotnet build "$root/bench/Coinop.LoadTest" -c Release -o "$work/load" --nologo -v quiet
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
load() { dotnet "$work/load/Coinop.LoadTest.dll" "$@"; }

export COINOP_LOG_LEVEL=Warning
sim=$(free_port); port=$(free_port); market="http://127.0.0.1:$port"
dotnet "$work/cli/coinop.dll" sim-backend --urls "http://127.0.0.1:$sim" --latency 0 --tokens-per-second 0 >"$work/sim.log" 2>&1 & pids+=($!)
dotnet "$work/cli/coinop.dll" market --urls "$market" --data "$work/market" >"$work/market.log" 2>&1 & pids+=($!); marketpid=$!
for _ in $(seq 1 300); do curl -fsS "$market/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
dotnet "$work/cli/coinop.dll" provider --market "$market" --backend "openai=http://127.0.0.1:$sim" --data "$work/provider" --max-concurrent 4096 >"$work/provider.log" 2>&1 & pids+=($!); providerpid=$!
for _ in $(seq 1 300); do curl -fsS "$market/v1/models" 2>/dev/null | grep -q sim-small && break; sleep 0.1; done

# A balance that outlasts the run (a request reserves and spends well under a sat).
key=$(load balance --market "$market" --sats $((rate * seconds / 4 + 100000)))

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
: >"$work/rss.tsv"
( start=$(date +%s); while sleep "$sample"; do echo "$(( $(date +%s) - start ))	$(rss "$marketpid")	$(rss "$providerpid")" >>"$work/rss.tsv"; done ) & sampler=$!; pids+=($sampler)

echo "== soak: $rate requests/s for $seconds s with a balance key (market pid $marketpid, provider pid $providerpid)"
status=0
load --label soak --url "$market" --rate "$rate" --seconds "$seconds" --warmup 10 --pids "$marketpid,$providerpid" \
  --header "Authorization: Bearer $key" --json "$out/soak.json" >"$work/load.out" || status=$?
kill "$sampler" 2>/dev/null || true
cp "$work/rss.tsv" "$out/soak-rss.tsv"

token=$(cat "$work/market/admin.token")
curl -fsS -H "Authorization: Bearer $token" "$market/api/admin/money?window=1h" >"$out/soak-money.json"

python3 - "$out" "$status" <<'PY'
import json, sys
d, status = sys.argv[1], int(sys.argv[2])
r = json.load(open(f"{d}/soak.json"))
rows = [list(map(int, l.split("\t"))) for l in open(f"{d}/soak-rss.tsv") if l.strip()]
money = json.load(open(f"{d}/soak-money.json"))
ok = True
print(f"requests {r['requests']}, errors {r['errors']}, achieved {r.get('achieved_rps', r.get('rps', '?'))} req/s, "
      f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, CPU ms/request {r['cpu_ms_per_request']}")
if r["errors"] != 0 or status != 0:
    ok = False; print(f"FAIL: {r['errors']} requests failed (load exit {status})")
if len(rows) >= 6:
    third = len(rows) // 3
    for col, name in ((1, "market"), (2, "provider")):
        mid = max(x[col] for x in rows[third:2 * third]); last = max(x[col] for x in rows[2 * third:])
        growth = (last - mid) / mid if mid else 0
        print(f"{name} RSS: warm-up end {rows[third - 1][col] / 1024:.0f} MiB, middle third max {mid / 1024:.0f} MiB, last third max {last / 1024:.0f} MiB ({growth:+.1%})")
        if growth > 0.10:
            ok = False; print(f"FAIL: {name} memory grew by more than 10% after warm-up")
else:
    print(f"only {len(rows)} RSS samples: too short to judge memory")
for e in money["equations"]:
    print(f"ledger: {e['name']}: {e['left_msat']} = {e['right_msat']} -> {'holds' if e['holds'] else 'DOES NOT HOLD'}")
    ok &= bool(e["holds"])
held = money["summary"].get("held_msat", 0)
print(f"ledger: held at the end {held} msat")
if held != 0:
    ok = False; print("FAIL: money still held after the run")
print("soak: PASS" if ok else "soak: FAIL")
sys.exit(0 if ok else 1)
PY
