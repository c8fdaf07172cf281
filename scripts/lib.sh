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

UV_VERSION="0.13.9"

ensure_uv() {  # uv installs the locked requirements (fast, hash-checked); bootstrapped with pip once
  if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    say "installing uv $UV_VERSION (pip install --user)"
    python3 -m pip install --quiet --user "uv==$UV_VERSION"
    PATH="$(python3 -m site --user-base)/bin:$PATH"
  fi
}

setup_venv() {  # .venv with exactly requirements/dev.lock, plus volspike itself as an editable install
  ensure_uv
  export UV_PYTHON_DOWNLOADS=never
  if [ ! -x "$PY" ]; then
    say "creating virtualenv .venv"
    uv venv --quiet --python python3 "$VENV"
  fi
  local stamp="$VENV/.volspike-installed"
  if [ ! -f "$stamp" ] || [ -n "$(find "$ROOT/requirements/dev.lock" "$ROOT/pyproject.toml" "$ROOT/hatch_build.py" \
      "$ROOT"/locales/*/LC_MESSAGES/messages.po -newer "$stamp" 2>/dev/null)" ]; then
    say "installing the locked dependencies (requirements/dev.lock) and volspike into .venv"
    uv pip sync --quiet --compile-bytecode --python "$PY" "$ROOT/requirements/dev.lock"
    # The editable build runs hatch_build.py, which compiles the translation catalogs in place.
    uv pip install --quiet --compile-bytecode --python "$PY" --no-deps --reinstall-package volspike -e "$ROOT"
    touch "$stamp"
  fi
  build_assets
}

# Paths that are build output and never belong in git.
BUILD_OUTPUT_RE='(^|/)(\.venv|venv|node_modules|__pycache__|\.mypy_cache|\.ruff_cache|\.pytest_cache|build|dist)/|\.(pyc|mo|whl)$|\.egg-info/|^webapp/static/dist/'

check_no_build_output() {  # fails with one clear line per tracked build-output path (first 10)
  local tracked
  tracked=$(git -C "${1:-$ROOT}" ls-files | grep -E "$BUILD_OUTPUT_RE" || true)
  if [ -n "$tracked" ]; then
    say "build output is tracked in git ($(printf '%s\n' "$tracked" | wc -l) path(s)); untrack with 'git rm -r --cached PATH':"
    printf '%s\n' "$tracked" | head -n 10 | sed 's/^/    tracked build output: /' >&2
    return 1
  fi
}

ensure_promtool() {  # Debian's prometheus package, for `promtool check/test rules` on deploy/prometheus
  if command -v promtool >/dev/null 2>&1; then return 0; fi
  say "installing promtool (apt-get install -y prometheus)"
  if ! apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1
  fi
  command -v promtool >/dev/null 2>&1
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
