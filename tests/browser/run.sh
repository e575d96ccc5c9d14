#!/usr/bin/env bash
# Real-browser test of the live dashboard, end to end on loopback:
#   1. builds the relay (Release),
#   2. starts a deferring SMTP sink in Node (451 to every RCPT until told to accept),
#   3. starts the relay with the sink as its smarthost, retry-intervals = [1h] and an admin token,
#   4. sends COUNT messages to remote recipients,
#   5. drives Debian's Chromium with playwright-core (lib/e2e.mjs): checks the numbers on the
#      page, flips the sink to accept, clicks "Retry destination", checks that the queue drains
#      and that the sink got every message, and takes screenshots into ARTIFACTS.
# Everything it starts is stopped by pid on exit. Exit status 0 only when every check passed.
#
# Usage: tests/browser/run.sh
# Environment (all optional):
#   COUNT=5            messages to send
#   TIMEOUT=180        seconds allowed for everything after the build
#   BUILD_TIMEOUT=900  seconds allowed for npm and the build
#   SKIP_BUILD=1       use the build already in src/RelayMta/bin/Release (the dashboard files are
#                      embedded at build time: after editing them, build again)
#   ARTIFACTS=DIR      screenshots and logs (default tests/browser/artifacts)
#   CHROMIUM=PATH      the browser (default /usr/bin/chromium; installed with apt-get when missing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
COUNT="${COUNT:-5}"
TIMEOUT="${TIMEOUT:-180}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-900}"
SKIP_BUILD="${SKIP_BUILD:-0}"
ARTIFACTS="${ARTIFACTS:-$HERE/artifacts}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
RELAY_DLL="$ROOT/src/RelayMta/bin/Release/net10.0/RelayMta.dll"

log() { printf '%s run.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaymta-browser.XXXXXX")"
PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop on SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  mkdir -p "$ARTIFACTS"
  for f in relay.log sink.log relay.hocon; do if [ -f "$WORK/$f" ]; then cp "$WORK/$f" "$ARTIFACTS/$f"; fi; done
  rm -rf "$WORK"
  if [ "$rc" -eq 0 ]; then log "passed; screenshots and logs in $ARTIFACTS"
  else log "failed (exit $rc); screenshots and logs in $ARTIFACTS"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a command in the background, logging to a file, and remembers its pid for cleanup.
start() {
  local out="$1"; shift
  "$@" >"$out" 2>&1 &
  PIDS+=("$!")
}

# ---------------------------------------------------------------- prerequisites (bounded by BUILD_TIMEOUT)
command -v node >/dev/null || fail "node is not installed"
command -v dotnet >/dev/null || fail "dotnet is not installed"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium"
    timeout "$BUILD_TIMEOUT" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout "$BUILD_TIMEOUT" apt-get install -y -qq chromium >/dev/null
  fi
  [ -x "$CHROMIUM" ] || fail "no browser at $CHROMIUM (apt-get install -y chromium)"
fi

if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  log "npm ci"
  (cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout "$BUILD_TIMEOUT" npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$SKIP_BUILD" != 1 ]; then
  log "dotnet build RelayMta.sln -c Release"
  (cd "$ROOT" && timeout "$BUILD_TIMEOUT" dotnet build RelayMta.sln -c Release -nologo -v quiet) >"$WORK/build.log" 2>&1 \
    || { tail -n 40 "$WORK/build.log" >&2; fail "the build failed"; }
fi
[ -f "$RELAY_DLL" ] || fail "no $RELAY_DLL: build first"

# ---------------------------------------------------------------- the test itself (bounded by TIMEOUT)
DEADLINE=$(( $(date +%s) + TIMEOUT ))
left() { echo $(( DEADLINE - $(date +%s) )); }
in_time() { [ "$(left)" -gt 0 ] || fail "overall time-out (${TIMEOUT}s)"; }

# The deferring SMTP sink: picks its own free ports and writes them to sink.json.
start "$WORK/sink.log" node "$HERE/lib/smtp-sink.mjs" "$WORK/sink.json"
SINK_PID="${PIDS[-1]}"
until [ -f "$WORK/sink.json" ]; do
  kill -0 "$SINK_PID" 2>/dev/null || { cat "$WORK/sink.log" >&2; fail "the SMTP sink exited"; }
  in_time; sleep 0.1
done
SINK_PORT="$(node -p 'require(process.argv[1]).smtpPort' "$WORK/sink.json")"
CONTROL_PORT="$(node -p 'require(process.argv[1]).controlPort' "$WORK/sink.json")"
log "SMTP sink on 127.0.0.1:$SINK_PORT (control 127.0.0.1:$CONTROL_PORT)"

# The relay: free loopback ports for SMTP and admin, everything else in the temp dir.
{ read -r SMTP_PORT; read -r ADMIN_PORT; } < <(node "$HERE/lib/free-ports.mjs" 2)
TOKEN="$(node -e 'process.stdout.write(require("crypto").randomBytes(18).toString("base64url"))')"
printf '%s\n' "$TOKEN" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
cat >"$WORK/relay.hocon" <<EOF
relay-mta {
  hostname = "relay.test"
  listen = ["127.0.0.1:$SMTP_PORT"]
  spool-dir = "$WORK/spool"
  local {
    domains = ["localhost"]
    mailbox-root = "$WORK/mail"
  }
  relay {
    smarthost = "127.0.0.1:$SINK_PORT"
    smarthost-tls = none
  }
  outbound {
    # One attempt on arrival, the next an hour later: only the dashboard's Retry tries again.
    retry-intervals = [1h]
  }
  admin {
    listen = "127.0.0.1:$ADMIN_PORT"
    token-file = "$WORK/admin.token"
  }
  shutdown.drain-timeout = 2s
}
EOF
cd "$WORK"   # relative paths the relay might use land in the temp dir
start "$WORK/relay.log" dotnet "$RELAY_DLL" --config "$WORK/relay.hocon"
cd "$ROOT"
RELAY_PID="${PIDS[-1]}"
until grep -q "listening for SMTP" "$WORK/relay.log" 2>/dev/null; do
  kill -0 "$RELAY_PID" 2>/dev/null || { cat "$WORK/relay.log" >&2; fail "the relay exited"; }
  in_time; sleep 0.2
done
log "relay up: SMTP 127.0.0.1:$SMTP_PORT, admin http://127.0.0.1:$ADMIN_PORT/ (pid $RELAY_PID)"

in_time
timeout "$(left)" node "$HERE/lib/smtp-send.mjs" "$SMTP_PORT" "$COUNT" remote.example || fail "sending the messages failed"

in_time
rm -f "$ARTIFACTS"/dashboard-*.png "$ARTIFACTS"/dashboard-failure.html
ADMIN_URL="http://127.0.0.1:$ADMIN_PORT/" TOKEN="$TOKEN" CONTROL_URL="http://127.0.0.1:$CONTROL_PORT" SINK_PORT="$SINK_PORT" \
  COUNT="$COUNT" ARTIFACTS="$ARTIFACTS" CHROMIUM="$CHROMIUM" \
  timeout -k 10 "$(left)" node "$HERE/lib/e2e.mjs" || fail "the browser checks failed"
