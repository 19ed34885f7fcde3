#!/usr/bin/env bash
# Coinop against one nginx proxy hop, side by side in one run on one machine (all real processes on loopback):
#   direct  - the simulator itself
#   nginx   - one nginx proxy hop (Debian's nginx-light, keepalive upstream) to the same simulator
#   coinop  - a --free market node and a provider agent in front of the same simulator
# 1. Saturation: wrk (closed loop, CONNECTIONS connections, a Lua script posts the chat completion) against each,
#    ROUNDS rounds interleaved; requests/s, the ratio coinop/nginx, and CPU per request for every process.
# 2. Latency at RATE req/s (open loop, bench/Coinop.LoadTest): p50/p99 for each and what nginx and Coinop add.
# 3. Streaming at SRATE req/s: time to the first `data:` event (the simulator answers at once), and the gaps between
#    events when the simulator paces its tokens 2 ms apart ([[sim:slow=2]]).
# 4. Sequential (closed loop, one request at a time, LAT_SECONDS per target): whole answer and time to the first
#    `data:` event with no other request in flight - the issue's definition of added time to first token;
#    then the same with tokens paced 2 ms apart, so the first event travels alone and the processes spend most of
#    each request waiting (as in front of a real model).
# Usage: bench/throughput.sh [SECONDS=10] [CONNECTIONS=32] [RATE=1000] [LAT_SECONDS=15] [ROUNDS=3] [SRATE=200]
# PARTS="saturation latency streaming sequential" (the default) picks which parts run; their summaries print.
# With BASELINE_CLI=DIR (a directory holding another build's coinop.dll, e.g. of main) a fourth target, "before",
# runs that build's market + provider on the same simulator: before/after side by side in the same run.
# TARGETS="direct nginx coinop" (the default) picks the targets; direct and nginx always run (the figures are against
# them). Three more measure the floor under one .NET hop (bench/Coinop.ProxyFloor, the coinop command's runtime
# settings), e.g. TARGETS="direct nginx coinop yarp yarp2 kestrel":
#   yarp    - one minimal YARP reverse proxy (Yarp.ReverseProxy, defaults, keep-alive upstream) to the same simulator
#   yarp2   - two YARP hops chained in two processes: Coinop's two hops without any market logic
#   kestrel - a bare Kestrel endpoint answering the simulator's bytes (fetched once at start) with no upstream: one
#             HTTP exchange in ASP.NET Core alone
# Installs wrk and nginx-light with apt-get when they are missing (needs root). Reports go to bench/results/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-10}"; conns="${2:-32}"; rate="${3:-1000}"; lat_seconds="${4:-15}"; rounds="${5:-3}"; srate="${6:-200}"
out="$root/bench/results"; mkdir -p "$out"
work=$(mktemp -d /tmp/coinop-throughput-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt-get install -y --no-install-recommends wrk nginx-light >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

wanted=" direct nginx ${TARGETS:-coinop} "
want() { [[ "$wanted" == *" $1 "* ]]; }
for t in $wanted; do case $t in direct|nginx|coinop|yarp|yarp2|kestrel) ;; *) echo "unknown target in TARGETS: $t" >&2; exit 2;; esac; done
dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet >/dev/null
dotnet build "$root/bench/Coinop.LoadTest" -c Release -o "$work/load" --nologo -v quiet >/dev/null
if want yarp || want yarp2 || want kestrel; then
  dotnet build "$root/bench/Coinop.ProxyFloor" -c Release -o "$work/floor" --nologo -v quiet >/dev/null
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -fsS "$1" 2>/dev/null | grep -q "$2" && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }

sim=$(free_port); market=$(free_port); proxy=$(free_port)
export COINOP_LOG_LEVEL=Warning
dotnet "$work/cli/coinop.dll" sim-backend --urls "http://127.0.0.1:$sim" --latency 0 --tokens-per-second 0 >"$work/sim.log" 2>&1 & pids+=($!); simpid=$!
wait_http "http://127.0.0.1:$sim/v1/models" sim-small
if want coinop; then
  dotnet "$work/cli/coinop.dll" market --urls "http://127.0.0.1:$market" --data "$work/market" --free >"$work/market.log" 2>&1 & pids+=($!); marketpid=$!
  wait_http "http://127.0.0.1:$market/healthz" ""
  dotnet "$work/cli/coinop.dll" provider --market "http://127.0.0.1:$market" --backend "openai=http://127.0.0.1:$sim" --data "$work/provider" --max-concurrent 4096 >"$work/provider.log" 2>&1 & pids+=($!); provpid=$!
fi

# nginx: one worker per core, as its default config does; keepalive connections to the simulator; no buffering of
# the answer (a streaming proxy's setting, and what Coinop does).
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream sim { server 127.0.0.1:$sim; keepalive 256; }
  server {
    listen 127.0.0.1:$proxy;
    location / {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$nginx_bin" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" & pids+=($!); nginxpid=$!
wait_http "http://127.0.0.1:$proxy/v1/models" sim-small
targets=(direct nginx)
if want coinop; then
  wait_http "http://127.0.0.1:$market/v1/models" sim-small
  targets+=(coinop)
fi
if [ -n "${BASELINE_CLI:-}" ]; then
  before=$(free_port)
  dotnet "$BASELINE_CLI/coinop.dll" market --urls "http://127.0.0.1:$before" --data "$work/before" --free >"$work/before.log" 2>&1 & pids+=($!); beforepid=$!
  wait_http "http://127.0.0.1:$before/healthz" ""
  dotnet "$BASELINE_CLI/coinop.dll" provider --market "http://127.0.0.1:$before" --backend "openai=http://127.0.0.1:$sim" --data "$work/before-provider" --max-concurrent 4096 >"$work/before-provider.log" 2>&1 & pids+=($!); beforeprov=$!
  wait_http "http://127.0.0.1:$before/v1/models" sim-small
  targets+=(before)
fi
fl="$work/floor/Coinop.ProxyFloor.dll"
if want yarp; then
  yarp=$(free_port)
  dotnet "$fl" yarp --urls "http://127.0.0.1:$yarp" --upstream "http://127.0.0.1:$sim" >"$work/yarp.log" 2>&1 & pids+=($!); yarppid=$!
  wait_http "http://127.0.0.1:$yarp/v1/models" sim-small
  targets+=(yarp)
fi
if want yarp2; then
  yarp2=$(free_port); yarp2b=$(free_port)
  dotnet "$fl" yarp --urls "http://127.0.0.1:$yarp2b" --upstream "http://127.0.0.1:$sim" >"$work/yarp2b.log" 2>&1 & pids+=($!); yarp2bpid=$!
  dotnet "$fl" yarp --urls "http://127.0.0.1:$yarp2" --upstream "http://127.0.0.1:$yarp2b" >"$work/yarp2.log" 2>&1 & pids+=($!); yarp2pid=$!
  wait_http "http://127.0.0.1:$yarp2/v1/models" sim-small
  targets+=(yarp2)
fi
if want kestrel; then
  kestrel=$(free_port)
  dotnet "$fl" kestrel --urls "http://127.0.0.1:$kestrel" --answers-from "http://127.0.0.1:$sim" >"$work/kestrel.log" 2>&1 & pids+=($!); kestrelpid=$!
  wait_http "http://127.0.0.1:$kestrel/v1/models" sim-small
  targets+=(kestrel)
fi

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"sim-small","messages":[{"role":"user","content":"Say something short."}],"max_tokens":16,"stream":false}'
wrk.headers["Content-Type"] = "application/json"
EOF

# CPU seconds (utime + stime) of a process and all its descendants, from /proc.
cpu() {
  python3 - "$@" <<'PY'
import os, sys
stats = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        stats[int(d)] = (int(f[1]), int(f[11]) + int(f[12]))
def tree(p):
    return stats.get(p, (0, 0))[1] + sum(tree(c) for c, (pp, _) in stats.items() if pp == p)
print(" ".join(str(tree(int(p)) / os.sysconf("SC_CLK_TCK")) for p in sys.argv[1:]))
PY
}

declare -A url=([direct]="http://127.0.0.1:$sim" [nginx]="http://127.0.0.1:$proxy" [coinop]="http://127.0.0.1:$market" [before]="http://127.0.0.1:${before:-0}"
  [yarp]="http://127.0.0.1:${yarp:-0}" [yarp2]="http://127.0.0.1:${yarp2:-0}" [kestrel]="http://127.0.0.1:${kestrel:-0}")
# The load test reads one process's CPU (not its children): nginx's workers are left to the saturation figures.
declare -A lpids=([direct]="$simpid" [nginx]="$simpid" [coinop]="${marketpid:-0},${provpid:-0},$simpid" [before]="${beforepid:-0},${beforeprov:-0},$simpid"
  [yarp]="${yarppid:-0},$simpid" [yarp2]="${yarp2pid:-0},${yarp2bpid:-0},$simpid" [kestrel]="${kestrelpid:-0}")
declare -A procs=([direct]="$simpid" [nginx]="$nginxpid $simpid" [coinop]="${marketpid:-0} ${provpid:-0} $simpid" [before]="${beforepid:-0} ${beforeprov:-0} $simpid"
  [yarp]="${yarppid:-0} $simpid" [yarp2]="${yarp2pid:-0} ${yarp2bpid:-0} $simpid" [kestrel]="${kestrelpid:-0}")

saturate() { # target round
  local t=$1 r=$2 before after wrkcpu
  before=$(cpu ${procs[$t]})
  # wrk's own CPU: run it in the foreground and read it from the shell's children times afterwards.
  /usr/bin/time -f "%U %S" -o "$work/wrk-time" wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$work/post.lua" "${url[$t]}/v1/chat/completions" >"$work/wrk-$t-$r.txt"
  after=$(cpu ${procs[$t]})
  python3 - "$t" "$r" "$work/wrk-$t-$r.txt" "$work/wrk-time" "${procs[$t]}" "$before" "$after" "$out/throughput-$t-$r.json" <<'PY'
import json, re, sys
t, r, wrkout, wrktime, pids, before, after, path = sys.argv[1:]
text = open(wrkout).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errs = re.search(r"Socket errors: (.*)", text)
names = {"direct": ["simulator"], "nginx": ["nginx", "simulator"], "coinop": ["market", "provider", "simulator"], "before": ["market", "provider", "simulator"],
         "yarp": ["yarp", "simulator"], "yarp2": ["yarp-front", "yarp-back", "simulator"], "kestrel": ["kestrel"]}[t]
cpu = {n: round((float(a) - float(b)) * 1000 / total, 4) for n, b, a in zip(names, before.split(), after.split())}
u, s = open(wrktime).read().split()[-2:]
cpu["wrk"] = round((float(u) + float(s)) * 1000 / total, 4)
rep = {"target": t, "round": int(r), "requests": total, "rps": rps, "non_2xx": int(bad.group(1)) if bad else 0,
       "socket_errors": errs.group(1) if errs else None, "cpu_ms_per_request": cpu}
json.dump(rep, open(path, "w"), indent=1)
print(f"{t:7} round {r}: {rps:9.0f} req/s  non-2xx {rep['non_2xx']}  CPU ms/request {cpu}")
PY
}

parts=" ${PARTS:-saturation latency streaming sequential} "
part() { [[ "$parts" == *" $1 "* ]]; }
if part saturation; then
echo "== saturation: wrk -t1 -c$conns, ${seconds}s per target, $rounds rounds interleaved"
# A short warm-up of each path first (JIT, connection pools).
for t in "${targets[@]}"; do wrk -t1 -c"$conns" -d3s -s "$work/post.lua" "${url[$t]}/v1/chat/completions" >/dev/null; done
for r in $(seq 1 "$rounds"); do for t in "${targets[@]}"; do saturate "$t" "$r"; done; done
fi

load() { dotnet "$work/load/Coinop.LoadTest.dll" "$@" >/dev/null; }
if part latency; then
echo "== latency: open loop at $rate req/s, ${lat_seconds}s per target, $rounds rounds interleaved"
for r in $(seq 1 "$rounds"); do for t in "${targets[@]}"; do
  load --label "$t" --url "${url[$t]}" --rate "$rate" --seconds "$lat_seconds" --pids "${lpids[$t]}" --json "$out/latency1k-$t-$r.json"
done; done
fi
if part streaming; then
echo "== streaming at $srate req/s: whole answers, then time to first event (the simulator answers at once), then event gaps (2 ms pacing)"
for r in $(seq 1 "$rounds"); do for t in "${targets[@]}"; do
  load --label "$t" --url "${url[$t]}" --rate "$srate" --seconds "$lat_seconds" --json "$out/whole-$t-$r.json"
  load --label "$t" --url "${url[$t]}" --rate "$srate" --seconds "$lat_seconds" --stream --json "$out/ttft-$t-$r.json"
  load --label "$t" --url "${url[$t]}" --rate "$srate" --seconds "$lat_seconds" --stream --prompt "[[sim:slow=2]] Say something short." --json "$out/gaps-$t-$r.json"
done; done
fi
if part sequential; then
echo "== sequential (one request at a time): whole answers, time to first event, and time to first event when tokens are paced 2 ms apart, ${lat_seconds}s each per target"
for r in $(seq 1 "$rounds"); do for t in "${targets[@]}"; do
  load --label "$t" --url "${url[$t]}" --sequential --warmup 2 --seconds "$lat_seconds" --json "$out/seqwhole-$t-$r.json"
  load --label "$t" --url "${url[$t]}" --sequential --warmup 2 --seconds "$lat_seconds" --stream --json "$out/seqttft-$t-$r.json"
  load --label "$t" --url "${url[$t]}" --sequential --warmup 1 --seconds "$lat_seconds" --stream --prompt "[[sim:slow=2]] Say something short." --json "$out/seqpaced-$t-$r.json"
done; done
fi

python3 - "$out" "$rounds" "$parts" "${targets[@]}" <<'PY'
import json, statistics, sys
d, rounds, parts, T = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
R = range(1, rounds + 1)
med = statistics.median
rng = lambda xs, f="{:.0f}": f"{f.format(min(xs))}..{f.format(max(xs))}" if len(xs) > 1 else f.format(xs[0])
per = lambda xs: ", ".join(f"{x:+.3f}" for x in xs)
def runs(kind):
    return {t: [json.load(open(f"{d}/{kind}-{t}-{r}.json")) for r in R] for t in T}
def added(rs, key, base):
    return [a[key] - b[key] for a, b in zip(rs, base)]
if "saturation" in parts:
    sat = {t: [json.load(open(f"{d}/throughput-{t}-{r}.json")) for r in R] for t in T}
    print(f"\nsaturation requests/s (range over {rounds} rounds), median CPU ms per request per process")
    for t in T:
        rps = [x["rps"] for x in sat[t]]
        cpu = {p: round(med(x["cpu_ms_per_request"][p] for x in sat[t]), 4) for p in sat[t][0]["cpu_ms_per_request"]}
        print(f"  {t:7} {rng(rps):>13} req/s   non-2xx {sum(x['non_2xx'] for x in sat[t])}   {cpu}")
    for t in [x for x in T if x not in ("direct", "nginx")]:
        ratios = [c["rps"] / n["rps"] for c, n in zip(sat[t], sat["nginx"])]
        goal = " (target >= 0.5)" if t in ("coinop", "before") else ""
        print(f"  {t} / nginx requests/s per round: {', '.join(f'{x:.2f}' for x in ratios)}{goal}")
if "latency" in parts:
    lat = runs("latency1k")
    print(f"\nopen loop at {lat['direct'][0]['rate']} req/s: p50 / p99 ms per round; added vs direct and vs nginx (median of rounds, range)")
    for t in T:
        print(f"  {t:7} p50 {rng([x['p50_ms'] for x in lat[t]], '{:.3f}')}  p99 {rng([x['p99_ms'] for x in lat[t]], '{:.3f}')}  errors {sum(x['errors'] for x in lat[t])}  CPU ms/request {lat[t][0]['cpu_ms_per_request']}")
    for t in T[1:]:
        for base in ("direct", "nginx"):
            if base == t: continue
            p50, p99 = added(lat[t], "p50_ms", lat[base]), added(lat[t], "p99_ms", lat[base])
            print(f"  {t} adds p50 {med(p50):+.3f} ({rng(p50, '{:+.3f}')}), p99 {med(p99):+.3f} ({rng(p99, '{:+.3f}')}) vs {base}")
    print("  targets (coinop vs direct): p50 <= +0.15 ms, p99 <= +0.5 ms")
# Streaming, open loop and sequential side by side: whole answer p50, time to first event p50 / p99, per round, and
# what each proxy adds to them against the simulator directly and against nginx (median of rounds, then each round).
def streaming(title, wh, tt, gp=None):
    print(f"\n{title}: whole answer p50, time to first event p50 / p99, streamed answer's end p50 (ms, range over rounds)")
    for t in T:
        gaps = f"  gaps at 2 ms pacing {rng([x['event_gap_p50_ms'] for x in gp[t]], '{:.3f}')} / {rng([x['event_gap_p99_ms'] for x in gp[t]], '{:.3f}')}" if gp else ""
        errors = sum(x["errors"] for x in wh[t] + tt[t] + (gp[t] if gp else []))
        print(f"  {t:7} whole {rng([x['p50_ms'] for x in wh[t]], '{:.3f}')}  TTFT {rng([x['ttft_p50_ms'] for x in tt[t]], '{:.3f}')} / {rng([x['ttft_p99_ms'] for x in tt[t]], '{:.3f}')}"
              f"  stream end {rng([x['p50_ms'] for x in tt[t]], '{:.3f}')}{gaps}"
              f"  requests {sum(x['requests'] for x in tt[t])}  errors {errors}")
    for t in T[1:]:
        for base in ("direct", "nginx"):
            if base == t: continue
            w = added(wh[t], "p50_ms", wh[base]); f = added(tt[t], "ttft_p50_ms", tt[base]); e = added(tt[t], "p50_ms", tt[base])
            g = f", gap p99 {med(added(gp[t], 'event_gap_p99_ms', gp[base])):+.3f}" if gp else ""
            print(f"  {t:7} adds vs {base:6}: whole p50 {med(w):+.3f} ({per(w)}), TTFT p50 {med(f):+.3f} ({per(f)}), stream end p50 {med(e):+.3f} ({per(e)}){g}")
    print("  target (coinop vs direct): TTFT p50 <= +0.3 ms")
if "streaming" in parts:
    streaming(f"open loop at {runs('ttft')['direct'][0]['rate']} req/s", runs("whole"), runs("ttft"), runs("gaps"))
if "sequential" in parts:
    streaming("sequential (one request at a time)", runs("seqwhole"), runs("seqttft"))
    sp = runs("seqpaced")
    print("  paced 2 ms apart (the first event alone): time to first event p50 / p99 per round")
    for t in T:
        p50 = ", ".join(f"{x['ttft_p50_ms']:.3f}" for x in sp[t]); p99 = ", ".join(f"{x['ttft_p99_ms']:.3f}" for x in sp[t])
        print(f"  {t:7} TTFT {p50} / {p99}  requests {sum(x['requests'] for x in sp[t])}  errors {sum(x['errors'] for x in sp[t])}")
    for t in T[1:]:
        for base in ("direct", "nginx"):
            if base == t: continue
            f = added(sp[t], "ttft_p50_ms", sp[base])
            print(f"  {t:7} adds vs {base:6}: paced TTFT p50 {med(f):+.3f} ({per(f)})")
PY
