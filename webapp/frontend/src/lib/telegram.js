// The bridge to Telegram's Mini App client (Telegram's own WebApp script, from npm through
// @twa-dev/sdk). Inside Telegram the page has initData; outside it is the public view and
// every Telegram-only call is skipped, so a plain browser logs no warnings.
import sdk from "@twa-dev/sdk";

// The package is CommonJS (`exports.default = Telegram.WebApp`); in an ES-module build its
// default import is the whole `exports` object.
const WebApp = sdk.default || sdk;
export const tg = WebApp;
export const initData = WebApp.initData || "";
export const inTelegram = initData !== "";

const schemeListeners = [];

function prefersDark() {
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
}

/** light or dark: Telegram's colorScheme inside Telegram, the system's outside. */
export function colorScheme() {
  if (inTelegram) return WebApp.colorScheme === "dark" ? "dark" : "light";
  return prefersDark() ? "dark" : "light";
}

function applyScheme() {
  const scheme = colorScheme();
  document.documentElement.dataset.scheme = scheme;
  for (const listener of schemeListeners) listener(scheme);
}

/** Call `listener(scheme)` now and whenever the theme changes. */
export function onScheme(listener) {
  schemeListeners.push(listener);
  listener(colorScheme());
}

function supports(version) {
  return inTelegram && WebApp.isVersionAtLeast(version);
}

export function goBack() {
  if (window.history.length > 1 && document.referrer.startsWith(window.location.origin)) {
    window.history.back();
  } else {
    window.location.href = "/";
  }
}

/**
 * Set the page up: theme, ready(), expand(), the BackButton on inner pages.
 * Telegram's script maps themeParams to `--tg-theme-*` variables and the viewport and safe
 * areas to `--tg-viewport-stable-height`, `--tg-safe-area-inset-*` and
 * `--tg-content-safe-area-inset-*`; app.css builds the layout on them.
 */
export function start({ inner = false } = {}) {
  const root = document.documentElement;
  root.classList.add(inTelegram ? "in-telegram" : "public-view");
  applyScheme();
  if (!inTelegram) {
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyScheme);
    return;
  }
  WebApp.onEvent("themeChanged", applyScheme);
  WebApp.ready();
  WebApp.expand();
  if (supports("6.1")) {
    WebApp.setHeaderColor("bg_color");
    WebApp.setBackgroundColor("bg_color");
    if (inner) {
      WebApp.BackButton.onClick(goBack);
      WebApp.BackButton.show();
    } else {
      WebApp.BackButton.hide();
    }
  }
}

/** A light tap for toggles (star, switches). */
export function haptic(kind = "selection") {
  if (!supports("6.1")) return;
  if (kind === "selection") WebApp.HapticFeedback.selectionChanged();
  else if (kind === "success" || kind === "error" || kind === "warning") WebApp.HapticFeedback.notificationOccurred(kind);
  else WebApp.HapticFeedback.impactOccurred(kind);
}

/**
 * The page's one main action: Telegram's MainButton inside Telegram, the in-page `button`
 * outside it (CSS hides the in-page one in Telegram). Returns a handle to enable, relabel
 * and show progress.
 */
export function mainAction(button, onClick) {
  if (inTelegram) {
    const main = WebApp.MainButton;
    main.setText(button.textContent.trim());
    main.onClick(onClick);
    main.show();
    return {
      setText: (text) => main.setText(text),
      setEnabled: (on) => (on ? main.enable() : main.disable()),
      progress: (on) => (on ? main.showProgress(false) : main.hideProgress()),
    };
  }
  button.hidden = false;
  button.addEventListener("click", onClick);
  return {
    setText: (text) => {
      button.textContent = text;
    },
    setEnabled: (on) => {
      button.disabled = !on;
    },
    progress: (on) => button.classList.toggle("busy", on),
  };
}

/** Pan gestures on the chart must not close the app. */
export function holdVerticalSwipes() {
  if (supports("7.7")) WebApp.disableVerticalSwipes();
}

/** `startapp=BTCUSDT` in the link: the symbol whose chart the app should open, once. */
export function startSymbol() {
  const param = (WebApp.initDataUnsafe && WebApp.initDataUnsafe.start_param) || "";
  const symbol = param.toUpperCase();
  if (!/^[A-Z0-9]{2,30}$/.test(symbol)) return null;
  const key = `volspike:start:${symbol}`;
  try {
    if (window.sessionStorage.getItem(key)) return null;
    window.sessionStorage.setItem(key, "1");
  } catch {
    // storage disabled: open the chart anyway
  }
  return symbol;
}

/** Ask for permission to message a user who has never started the bot (alerts must reach them). */
export function askWriteAccess(me) {
  if (!supports("6.9") || !me || me.canWrite !== false) return;
  WebApp.requestWriteAccess();
}

/** Telegram's native invoice sheet (Stars). */
export function openInvoice(url, onClosed) {
  if (!supports("6.1")) return false;
  WebApp.openInvoice(url, onClosed);
  return true;
}
