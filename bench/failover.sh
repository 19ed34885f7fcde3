#!/usr/bin/env bash
# Failover time of a warm-standby workload: kill -9 of the primary's provider agent until the standby's copy runs,
# both read from the process table (/proc), with real processes on loopback: a market, two providers (bubblewrap or
# plain process sandbox), one workload with one standby.
# Usage: bench/failover.sh [RUNS] [MARKET FLAGS...]
#   with no flags the market runs on its defaults (a silent copy is replaced 7.06 s after its last heartbeat);
#   e.g. bench/failover.sh 3 --workload-stop-after 30s to compare another stop-after.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"; shift || true
timings=("$@")
work=$(mktemp -d /tmp/cwb-XXXXXX); chmod 755 "$work" # copies run as an unprivileged user and must reach their folders
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

dotnet build "$root/src/Coinop.Cli" -c Release -o "$work/cli" --nologo -v quiet >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timeout waiting for $1" >&2; exit 1; }
export COINOP_LOG_LEVEL=Warning

for run in $(seq 1 "$runs"); do
  port=$(free_port); url="http://127.0.0.1:$port"; dir="$work/r$run"
  dotnet "$work/cli/coinop.dll" market --urls "$url" --data "$dir/m" --free ${timings[@]+"${timings[@]}"} >"$dir.market.log" 2>&1 & pids+=($!)
  wait_http "$url/healthz"
  dotnet "$work/cli/coinop.dll" provider --market "$url" --data "$dir/a" --name a --workloads process --cpu 1 --memory 512 >"$dir.a.log" 2>&1 & apid=$!; pids+=($apid); disown "$apid" # killed on purpose: no job notice
  dotnet "$work/cli/coinop.dll" provider --market "$url" --data "$dir/b" --name b --workloads process --cpu 1 --memory 512 >"$dir.b.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 300); do [ "$(curl -fsS "$url/api/providers" | grep -o '"sealing_key"' | wc -l)" = 2 ] && break; sleep 0.1; done
  marker="fo-$run-$RANDOM$RANDOM"
  script='while :; do sleep 1; done'
  curl -fsS -XPOST "$url/api/workloads" -H 'content-type: application/json' \
    -d "{\"command\":\"sh\",\"args\":[\"-c\",\"$script\",\"$marker\"],\"cpu\":0.2,\"memory_mb\":64,\"standbys\":1,\"provider\":\"a\"}" >/dev/null
  python3 - "$apid" "$marker" "$script" <<'PY'
import os, sys, time, signal
agent, marker, script = int(sys.argv[1]), sys.argv[2], sys.argv[3]
want = ["sh", "-c", script, marker]
def copies():
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit(): continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\0").split(b"\0")
            if [a.decode() for a in argv] != want: continue
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            epoch = next((int(e.split(b"=", 1)[1]) for e in env if e.startswith(b"COINOP_EPOCH=")), None)
            found[int(pid)] = (ppid, epoch)
        except (OSError, ValueError):
            pass
    return [e for p, (pp, e) in found.items() if pp not in found]
deadline = time.monotonic() + 60
while copies() != [1]:
    if time.monotonic() > deadline: sys.exit("the first copy never ran")
    time.sleep(0.01)
os.kill(agent, signal.SIGKILL)
killed = time.monotonic()
most = 0
while True:
    c = copies(); most = max(most, len(c))
    if c == [2]: break
    if time.monotonic() - killed > 900: sys.exit("the standby's copy never ran")
    time.sleep(0.005)
print(f"failover {time.monotonic() - killed:.2f} s (most copies at once: {most})")
PY
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=()
done
