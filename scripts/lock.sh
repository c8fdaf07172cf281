#!/usr/bin/env bash
# Re-lock the dependencies after a change to pyproject.toml (or to pick up new releases):
# requirements/main.lock (runtime: the wheel, the Docker image) and requirements/dev.lock
# (set-up, tests, CI), both hash-pinned, resolved for Python 3.11 on every platform.
# Pass --upgrade to move every pin to the newest release pyproject.toml allows.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_uv
export UV_PYTHON_DOWNLOADS=never
for spec in "main.lock:" "dev.lock:--extra=dev"; do
  out="requirements/${spec%%:*}" extra="${spec#*:}"
  say "locking $out"
  uv pip compile pyproject.toml ${extra:+"$extra"} --universal --python-version 3.11 --generate-hashes \
    --quiet --custom-compile-command "scripts/lock.sh" -o "$out" "$@"
done
