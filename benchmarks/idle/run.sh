#!/usr/bin/env bash
# Idle-session cost: start RelayMta (Release) on a free loopback port, hold SESSIONS idle SMTP
# sessions open against it (idle_clients.py), report its RSS per session and how fast a new client
# is answered meanwhile. Stops the relay it started, by pid.
#
# Usage: benchmarks/idle/run.sh            (SESSIONS=10000 HOLD=5 SKIP_BUILD=1 DOTNET_gcServer=0 ...)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SESSIONS="${SESSIONS:-10000}"
HOLD="${HOLD:-5}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaymta-idle.XXXXXX")"
RELAY_PID=""
cleanup() {
  if [[ -n "$RELAY_PID" ]] && kill -0 "$RELAY_PID" 2>/dev/null; then
    kill -TERM "$RELAY_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$RELAY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RELAY_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need=$((SESSIONS + 200))
if (( $(ulimit -n) < need )); then ulimit -n "$need" || { echo "ulimit -n $need refused; raise the open-files limit" >&2; exit 2; }; fi
[[ "${SKIP_BUILD:-0}" == 1 ]] || dotnet build "$ROOT/src/RelayMta" -c Release -v quiet -nologo >/dev/null

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$WORK/relay.hocon" <<EOC
relay-mta {
  listen = ["127.0.0.1:$PORT"]
  spool-dir = "$WORK/spool"
  local.mailbox-root = "$WORK/mail"
  admin.listen = ""
  limits {
    max-sessions = $((SESSIONS + 100))
    max-sessions-per-ip = $((SESSIONS + 100))
    connections-per-ip-per-minute = $((SESSIONS * 2 + 100))
  }
}
EOC
dotnet "$ROOT/src/RelayMta/bin/Release/net10.0/RelayMta.dll" --config "$WORK/relay.hocon" > "$WORK/relay.log" 2>&1 &
RELAY_PID=$!
for _ in $(seq 1 100); do grep -q "listening for SMTP" "$WORK/relay.log" && break; sleep 0.1; done
grep -q "listening for SMTP" "$WORK/relay.log" || { cat "$WORK/relay.log"; exit 1; }
echo "relay pid $RELAY_PID on 127.0.0.1:$PORT; DOTNET_gcServer=${DOTNET_gcServer:-default}"
timeout 600 python3 "$HERE/idle_clients.py" --port "$PORT" --pid "$RELAY_PID" --sessions "$SESSIONS" --hold "$HOLD"
