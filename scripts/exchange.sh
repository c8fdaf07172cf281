# Which exchange `make run` follows (sourced by scripts/run.sh after scripts/lib.sh).
#
# Local defaults must never reach real users by accident, so the simulator is used only when
# asked for, or when nobody could receive its alerts:
#   SIM=1 (`make run SIM=1`)                 the built-in simulator, always;
#   USE_SIMULATOR=true (environment or .env) the simulator (the one at BINANCE_REST_URL if set);
#   BINANCE_REST_URL set                     that exchange, as configured;
#   Binance reachable                        Binance;
#   Binance unreachable, no BOT_TOKEN        the simulator: the bot is off, nobody gets its alerts;
#   Binance unreachable, BOT_TOKEN set       stop with exit code 1 and say how to ask for it.
# Whenever the simulator is followed, USE_SIMULATOR=true is exported: every alert says [SIMULATED].

SIM_PID=""

# `use_simulator bot_token binance_rest_url_set`, each 0 or 1, read by VolSpike's own settings
# loader (environment and .env alike); a malformed setting stops here with its one-line message.
exchange_facts() {
  "$PY" - <<'PY'
import sys

from core.errors import ConfigError
from core.settings import load_settings

try:
    s = load_settings()
except ConfigError as exc:
    print(f"volspike: {exc}", file=sys.stderr)
    sys.exit(2)
print(int(s.use_simulator), int(s.bot_token is not None), int("binance_rest_url" in s.model_fields_set))
PY
}

binance_reachable() {
  "$PY" - "${BINANCE_PING_URL:-https://fapi.binance.com/fapi/v1/ping}" <<'PY'
import sys
import urllib.request

try:
    urllib.request.urlopen(sys.argv[1], timeout=5).read()
except OSError:
    sys.exit(1)
PY
}

start_simulator() {  # why
  local port="${SIM_PORT:-9900}"
  say "$1: using the built-in exchange simulator on 127.0.0.1:$port (every alert says [SIMULATED])"
  "$VENV/bin/volspike" sim --port "$port" &
  SIM_PID=$!
  wait_port 127.0.0.1 "$port" 30 || { say "the simulator did not start"; exit 1; }
  export BINANCE_REST_URL="http://127.0.0.1:$port" BINANCE_WS_URL="ws://127.0.0.1:$port" USE_SIMULATOR=true
}

stop_simulator() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
}

choose_exchange() {
  local facts use_sim has_token url_set
  facts="$(exchange_facts)" || exit 2
  read -r use_sim has_token url_set <<<"$facts"
  if [ "${SIM:-0}" = "1" ]; then
    start_simulator "SIM=1"
  elif [ "$use_sim" = "1" ]; then
    if [ "$url_set" = "1" ]; then
      say "USE_SIMULATOR=true: following the simulator at the configured BINANCE_REST_URL"
      export USE_SIMULATOR=true
    else
      start_simulator "USE_SIMULATOR=true"
    fi
  elif [ "$url_set" = "1" ]; then
    return 0
  elif binance_reachable; then
    return 0
  elif [ "$has_token" = "1" ]; then
    say "Binance (fapi.binance.com) is not reachable and BOT_TOKEN is set: not falling back to the" \
      "simulator, whose made-up alerts would reach real Telegram users. Fix the connection, or ask" \
      "for the simulator explicitly: make run SIM=1 (or USE_SIMULATOR=true); its alerts say [SIMULATED]."
    exit 1
  else
    start_simulator "Binance (fapi.binance.com) is not reachable and BOT_TOKEN is not set"
  fi
}
