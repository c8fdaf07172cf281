#!/usr/bin/env bash
# Set up everything and run VolSpike on local defaults (`volspike run`).
# When Binance cannot be reached, it starts the built-in exchange simulator and says so.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

setup_venv
ensure_postgres
ensure_redis

say "migrating the database"
"$VENV/bin/volspike" migrate

SIM_PID=""
cleanup() { if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

if [ -z "${BINANCE_REST_URL:-}" ] && ! grep -qs '^BINANCE_REST_URL=.\+' .env; then
  if ! "$PY" - <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen("https://fapi.binance.com/fapi/v1/ping", timeout=5).read()
except Exception:
    sys.exit(1)
PY
  then
    SIM_PORT="${SIM_PORT:-9900}"
    say "Binance (fapi.binance.com) is not reachable: using the built-in exchange simulator on 127.0.0.1:$SIM_PORT"
    "$VENV/bin/volspike" sim --port "$SIM_PORT" &
    SIM_PID=$!
    wait_port 127.0.0.1 "$SIM_PORT" 30 || { say "the simulator did not start"; exit 1; }
    export BINANCE_REST_URL="http://127.0.0.1:$SIM_PORT" BINANCE_WS_URL="ws://127.0.0.1:$SIM_PORT"
  fi
fi

say "starting volspike run (Ctrl-C stops it)"
"$VENV/bin/volspike" run --no-migrate "$@" &
RUN_PID=$!
trap 'kill -TERM "$RUN_PID" 2>/dev/null || true' INT TERM
wait "$RUN_PID" || true
wait "$RUN_PID" 2>/dev/null || true
