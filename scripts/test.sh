#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint, format check, types, tests.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if git rev-parse --git-dir >/dev/null 2>&1; then
  check_no_build_output
fi
setup_venv
ensure_chromium || say "the browser tests will be skipped"
ensure_promtool || say "the promtool checks of deploy/prometheus will be skipped"
ensure_postgres
ensure_redis

say "ruff check"
"$VENV/bin/ruff" check .
say "ruff format --check"
"$VENV/bin/ruff" format --check .
say "mypy (strict for volspike/, core/ and db/)"
"$VENV/bin/mypy"
say "lint-imports (the layers and no import cycles: [tool.importlinter] in pyproject.toml)"
"$VENV/bin/lint-imports"
say "pytest"
set +e
"$PY" -m pytest -p no:cacheprovider "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  say "pytest collected no tests: that is a failure"
  exit 1
fi
exit "$code"
