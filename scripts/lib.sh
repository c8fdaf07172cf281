# Shared by scripts/*.sh: the virtualenv and the local PostgreSQL/Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '==> %s\n' "$*" >&2; }

# shellcheck source=scripts/frontend.sh
source "$ROOT/scripts/frontend.sh"

port_open() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

wait_port() {  # host port seconds
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    port_open "$1" "$2" && return 0
    sleep 0.2
  done
  return 1
}

setup_venv() {
  if [ ! -x "$PY" ]; then
    say "creating virtualenv .venv"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.volspike-installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing volspike and its dev tools into .venv"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e "$ROOT[dev]"
    touch "$stamp"
  fi
  if compgen -G "$ROOT/locales/*/LC_MESSAGES/messages.po" >/dev/null; then
    say "compiling translations (pybabel compile)"
    "$VENV/bin/pybabel" compile -d "$ROOT/locales" -D messages >/dev/null
  fi
  build_assets
}

ensure_postgres() {
  if port_open 127.0.0.1 5432; then return 0; fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    say "PostgreSQL is not answering on 127.0.0.1:5432; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  wait_port 127.0.0.1 5432 20 || { say "PostgreSQL does not answer on 127.0.0.1:5432; install/start it"; exit 1; }
}

ensure_redis() {
  if port_open 127.0.0.1 6379; then return 0; fi
  if command -v redis-server >/dev/null 2>&1; then
    say "Redis is not answering on 127.0.0.1:6379; starting a local one"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  fi
  wait_port 127.0.0.1 6379 10 || { say "Redis does not answer on 127.0.0.1:6379; install/start it"; exit 1; }
}
