#!/usr/bin/env bash
# Runs every test. On a fresh machine it first installs what the suite needs (root: Debian packages,
# NuGet and npm packages), starts a throwaway PostgreSQL on a loopback port, builds, then tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
config="${COINOP_TEST_CONFIGURATION:-Release}"

log() { printf '\n== %s\n' "$*"; }

# 1. System packages.
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v flock >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3) # a workload test serves HTTP through the port bridge
[ -x /usr/bin/chromium ] || need+=(chromium)        # the web pages' browser tests (Playwright drives Debian's chromium)
command -v systemd-analyze >/dev/null || need+=(systemd) # install-service tests verify the units they write
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy) # several market nodes behind a balancer
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# 2. npm packages used by interop tests (an independent Cashu wallet, the official OpenAI and Anthropic SDKs).
if [ -f tests/interop/package.json ]; then
  log "npm packages"
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi

# 3. PostgreSQL on a loopback port, in a temp dir, as the postgres user (it refuses to run as root).
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgdir=$(mktemp -d /tmp/coinop-pg-XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
pguser=postgres
id -u postgres >/dev/null 2>&1 || pguser="$(id -un)"
chown "$pguser" "$pgdir"
as_pg() { if [ "$(id -un)" = "$pguser" ]; then "$@"; else runuser -u "$pguser" -- "$@"; fi; }
stop_pg() { as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap stop_pg EXIT
log "postgresql on 127.0.0.1:$pgport"
as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" -l "$pgdir/log" -w start >/dev/null
export COINOP_TEST_POSTGRES="Host=127.0.0.1;Port=$pgport;Username=postgres;Database=postgres;Pooling=true;Maximum Pool Size=50"

# Playwright drives /usr/bin/chromium; it must never try to download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

# 4. Build once, then run every test project.
log "build ($config)"
dotnet build Coinop.slnx -c "$config" --nologo -v quiet --tl:off -clp:ErrorsOnly

log "test"
dotnet test --solution Coinop.slnx -c "$config" --no-build --no-progress \
  --timeout 40m "$@"
