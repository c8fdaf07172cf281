#!/usr/bin/env bash
# Set up everything and run VolSpike on local defaults (`volspike run`).
# The built-in exchange simulator is used only when asked for (`make run SIM=1`, USE_SIMULATOR=true),
# or when Binance cannot be reached and no BOT_TOKEN is set: see scripts/exchange.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/exchange.sh"
cd "$ROOT"

setup_venv
trap stop_simulator EXIT
choose_exchange
ensure_postgres
ensure_redis

say "migrating the database"
"$VENV/bin/volspike" migrate

say "starting volspike run (Ctrl-C stops it)"
"$VENV/bin/volspike" run --no-migrate "$@" &
RUN_PID=$!
trap 'kill -TERM "$RUN_PID" 2>/dev/null || true' INT TERM
wait "$RUN_PID" || true
wait "$RUN_PID" 2>/dev/null || true
