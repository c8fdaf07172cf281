# The Mini App's browser side: npm dependencies, the esbuild bundle, and Debian's Chromium for
# the browser tests. Sourced by scripts/lib.sh (functions only; nothing runs on source).

FRONTEND="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}/webapp/frontend"
DIST="$FRONTEND/../static/dist"

_frontend_inputs_hash() {
  (cd "$FRONTEND" && find package.json package-lock.json build.mjs src -type f -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1
}

build_assets() {  # npm ci + esbuild into webapp/static/dist/, skipped when the inputs are unchanged
  if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed: the Mini App's pages need it (apt-get install -y nodejs npm)"
    return 1
  fi
  local stamp="$DIST/.inputs" hash
  hash="$(_frontend_inputs_hash)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -d "$FRONTEND/node_modules" ]; then
    return 0
  fi
  say "building the Mini App's browser modules (npm ci + esbuild)"
  (cd "$FRONTEND" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
  printf '%s\n' "$hash" >"$stamp"
}

ensure_chromium() {  # Debian's Chromium for the browser tests (Playwright drives it)
  if [ -x /usr/bin/chromium ]; then return 0; fi
  say "installing Chromium for the browser tests (apt-get install -y chromium)"
  if ! apt-get install -y chromium >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1
  fi
  [ -x /usr/bin/chromium ] || { say "Chromium could not be installed: browser tests will be skipped"; return 1; }
}
