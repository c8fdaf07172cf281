// `/`: the alert feed with the tier's delay and history; elite users get new alerts and prices
// live. A card is one spike with its HALF/FULL updates grouped under it (same symbol and hour).
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, lang, status } from "../lib/dom.js";
import { change, funding, percentChange, price, ratio, usd } from "../lib/format.js";
import { connectLive } from "../lib/live.js";
import { haptic, startSymbol } from "../lib/telegram.js";
import { t } from "../lib/texts.js";

const TYPE_LABEL = { SPIKE: "typeSpike", HALF_UPDATE: "typeHalf", FULL_UPDATE: "typeFull", EARLY: "typeEarly" };
const SVG = "http://www.w3.org/2000/svg";
const MAX_LIVE_SYMBOLS = 20; // the socket's candle subscriptions (webapp/ws.py MAX_SYMBOLS)
const list = $("#alerts");
const filters = { type: "", symbol: "", typed: "" };
const state = {
  alerts: new Map(), // id → alert, as the API (or the socket) gave it
  prices: {}, // symbol → price now (the tier's table; live candles for elite)
  pricesAt: null, // when the table was taken, for a tier that sees a snapshot; null: live
  timeZone: null,
  historyLimit: 10,
  refreshSeconds: 60,
  absolute: new Set(), // ids whose time the reader tapped to read in full
  live: null, // the socket, elite only
  liveSymbols: new Set(),
};
let loads = 0; // the newest load's number: an older answer arriving late is dropped
let refreshTimer = null;
let failures = 0;

const HORIZONS = [
  [240, "change4h", "vsBtc4h", "h240"],
  [60, "change1h", "vsBtc1h", "h60"],
  [15, "change15m", "vsBtc15m", "h15"],
];

/** "+3.10% after 1 h · vs BTC +1.20%": the longest horizon computed so far; null before +15 min. */
function outcomeLine(outcome) {
  if (!outcome) return null;
  const [, field, vsBtc, name] = HORIZONS.find(([minutes]) => minutes <= outcome.horizonMinutes);
  const horizon = t(name);
  const value = outcome[field];
  if (value === null || value === undefined) {
    return el("div", { class: "alert-outcome", dataset: { outcome: "unknown" }, text: t("outcomeUnknown", { horizon }) });
  }
  const line = el(
    "div",
    { class: "alert-outcome", dataset: { outcome: String(outcome.horizonMinutes) } },
    el("b", { class: value > 0 ? "up" : value < 0 ? "down" : "", text: change(value) }),
    ` ${t("outcomeAfter", { horizon })}`,
  );
  if (outcome[vsBtc] !== null && outcome[vsBtc] !== undefined) line.append(` · ${t("vsBtc", { change: change(outcome[vsBtc]) })}`);
  return line;
}

// --- time ------------------------------------------------------------------------------------

const UNITS = [
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];

/** "4 min ago", "2 hours ago", "now" in the page's language. */
export function relative(iso, now = Date.now()) {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const format = new Intl.RelativeTimeFormat(lang(), { numeric: "auto", style: "short" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return format.format(Math.trunc(seconds / size), unit);
  }
  return format.format(0, "minute");
}

/** "6 Dec, 14:05 (Europe/Berlin)" in the user's zone (their settings'; the device's otherwise). */
export function absolute(iso) {
  const options = { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  let zone = state.timeZone;
  let text;
  try {
    text = new Date(iso).toLocaleString(lang(), { ...options, timeZone: zone || undefined });
  } catch {
    zone = null; // a zone this browser does not know
    text = new Date(iso).toLocaleString(lang(), options);
  }
  return zone ? `${text} (${zone})` : text;
}

/** "14:05" in the user's zone. */
function clock(iso) {
  const options = { hour: "2-digit", minute: "2-digit" };
  try {
    return new Date(iso).toLocaleTimeString(lang(), { ...options, timeZone: state.timeZone || undefined });
  } catch {
    return new Date(iso).toLocaleTimeString(lang(), options);
  }
}

function timeButton(alert) {
  const full = state.absolute.has(alert.id);
  return el("button", {
    type: "button",
    class: "when",
    dataset: { at: alert.detectedAt, id: alert.id },
    "aria-pressed": String(full),
    title: absolute(alert.detectedAt),
    text: full ? absolute(alert.detectedAt) : relative(alert.detectedAt),
    onclick: (event) => {
      const button = event.currentTarget;
      if (state.absolute.has(alert.id)) state.absolute.delete(alert.id);
      else state.absolute.add(alert.id);
      button.setAttribute("aria-pressed", String(state.absolute.has(alert.id)));
      button.textContent = state.absolute.has(alert.id) ? absolute(alert.detectedAt) : relative(alert.detectedAt);
      haptic("selection");
    },
  });
}

function tickTimes() {
  for (const button of list.querySelectorAll(".when[aria-pressed='false']")) button.textContent = relative(button.dataset.at);
}

// --- grouping --------------------------------------------------------------------------------

// an early warning is a card of its own: a projection, not a figure of the spike's hour
const groupKey = (alert) => `${alert.symbol}|${new Date(alert.hour).getTime()}${alert.type === "EARLY" ? "|early" : ""}`;

/** The alerts as cards: each spike with the updates of its symbol and hour, oldest first; a
 * group's place is its first alert's (the spike's) time, newest first, so updates never bury
 * a newer spike. */
export function groups(alerts) {
  const byKey = new Map();
  for (const alert of alerts) {
    const key = groupKey(alert);
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(alert);
  }
  const at = (alert) => new Date(alert.detectedAt).getTime();
  const out = [...byKey.entries()].map(([key, members]) => {
    members.sort((a, b) => (a.type === "SPIKE" ? -1 : b.type === "SPIKE" ? 1 : at(a) - at(b)) || a.id - b.id);
    return { key, head: members[0], updates: members.slice(1) };
  });
  return out.sort((a, b) => at(b.head) - at(a.head) || b.head.id - a.head.id);
}

// --- the card --------------------------------------------------------------------------------

function sparkline(alert) {
  const line = alert.sparkline;
  if (!line || line.closes.length < 2) return null;
  const low = Math.min(...line.closes);
  const high = Math.max(...line.closes);
  const span = high - low || 1;
  const y = (close) => (18 - ((close - low) / span) * 16).toFixed(2);
  const points = line.minutes.map((minute, i) => `${minute},${y(line.closes[i])}`).join(" ");
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", `spark ${line.closes[line.closes.length - 1] >= line.closes[0] ? "up" : "down"}`);
  svg.setAttribute("viewBox", "0 0 59 20");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("sparkLabel"));
  svg.dataset.points = String(line.closes.length);
  const path = document.createElementNS(SVG, "polyline");
  path.setAttribute("points", points);
  path.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(path);
  // The alert's own minute: where the spike fired.
  const fired = Math.floor((new Date(alert.detectedAt) - new Date(alert.hour)) / 60000);
  const mark = document.createElementNS(SVG, "line");
  mark.setAttribute("x1", String(fired));
  mark.setAttribute("x2", String(fired));
  mark.setAttribute("y1", "0");
  mark.setAttribute("y2", "20");
  mark.setAttribute("class", "spark-fired");
  mark.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(mark);
  return svg;
}

/** "+1.23% since the alert" against the price now, or null while the price now is unknown. */
function moveLine(alert) {
  const now = state.prices[alert.symbol];
  const pct = percentChange(now, alert.price);
  const node = el("div", { class: "alert-move", dataset: { symbol: alert.symbol, price: alert.price } });
  fillMove(node, pct, now);
  return node;
}

function fillMove(node, pct, now) {
  node.hidden = pct === null;
  if (pct === null) return;
  node.replaceChildren(
    el("b", { class: pct > 0 ? "up" : pct < 0 ? "down" : "", text: t("sinceAlert", { change: change(pct) }) }),
    el("span", {
      class: "move-now",
      text: ` · ${state.pricesAt ? t("priceAt", { price: price(now), time: clock(state.pricesAt) }) : t("priceNow", { price: price(now) })}`,
    }),
  );
  node.dataset.change = change(pct);
}

function updatesBlock(group) {
  if (!group.updates.length) return null;
  const path = [group.head, ...group.updates].map((a) => ratio(a.ratio)).join(" → ");
  return el(
    "div",
    { class: "alert-updates" },
    el("div", { class: "ratio-path", text: path }),
    ...group.updates.map((update) =>
      el(
        "div",
        { class: "update-row", dataset: { id: update.id, type: update.type } },
        el("span", { class: `badge badge-${update.type.toLowerCase()}`, text: t(TYPE_LABEL[update.type]) }),
        el("span", { class: "update-figures", text: `${ratio(update.ratio)} · ${usd(update.currentVolume)}` }),
        timeButton(update),
      ),
    ),
  );
}

export function alertCard(group, fresh = false) {
  const alert = group.head;
  return el(
    "article",
    {
      class: `alert-card${fresh ? " fresh" : ""}`,
      dataset: { id: alert.id, type: alert.type, symbol: alert.symbol, key: group.key, updates: group.updates.length },
    },
    el(
      "div",
      { class: "alert-head" },
      el("a", { class: "asset card-link", href: `/chart/${alert.symbol}`, text: alert.asset }),
      alert.simulated ? el("span", { class: "badge badge-sim", text: "[SIMULATED]" }) : null,
      el("span", { class: `badge badge-${alert.type.toLowerCase()}`, text: t(TYPE_LABEL[alert.type]) }),
      timeButton(alert),
    ),
    el("div", { class: "alert-spark" }, sparkline(alert), moveLine(alert)),
    el(
      "div",
      { class: "alert-figures" },
      el("span", { class: "figure", dataset: { figure: "volume" } }, el("small", { text: t("hourVolume") }), usd(alert.currentVolume)),
      el("span", { class: "figure prev", dataset: { figure: "previous" } }, el("small", { text: t("prevHour") }), usd(alert.previousVolume)),
      el("span", { class: "figure ratio", dataset: { figure: "ratio" } }, el("small", { text: t("ratio") }), ratio(alert.ratio)),
      el("span", { class: "figure", dataset: { figure: "price" } }, el("small", { text: t("price") }), price(alert.price)),
      el("span", { class: "figure", dataset: { figure: "funding" } }, el("small", { text: t("funding") }), funding(alert.fundingRate)),
    ),
    // an early warning says plainly that its figure is a projection
    alert.type === "EARLY" && alert.projectedVolume
      ? el("div", {
          class: "alert-projection",
          dataset: { projection: "true" },
          text: t("earlyNote", { volume: usd(alert.projectedVolume), ratio: ratio(alert.projectedRatio) }),
        })
      : null,
    updatesBlock(group),
    // the context as the bot writes it, in the reader's language (server-rendered: one rule)
    ...(alert.contextLines || []).map((line) => el("div", { class: "alert-context", text: line })),
    outcomeLine(alert.outcome),
  );
}

function render(freshKeys = new Set()) {
  const all = groups([...state.alerts.values()]);
  list.replaceChildren(...all.map((group) => alertCard(group, freshKeys.has(group.key))));
  const empty = $("#empty");
  empty.hidden = all.length > 0;
  empty.textContent = filters.symbol ? t("noMatch", { text: filters.typed }) : t("noAlerts");
  followPrices(all);
}

// --- loading ---------------------------------------------------------------------------------

function schedule(seconds) {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(() => load({ quiet: true }), seconds * 1000);
}

/** The page's alerts; null when the API or the network failed (the error is shown, with Try
 * again, and the page asks again by itself: soon at first, then at the tier's pace). */
async function fetchPage(mine) {
  const params = new URLSearchParams();
  if (filters.type) params.set("type", filters.type);
  if (filters.symbol) params.set("search", filters.symbol);
  try {
    return await api(`/api/alerts${params.size ? `?${params}` : ""}`);
  } catch (error) {
    // ApiError: an answer that is not 2xx; TypeError: fetch found no server (offline)
    if (!(error instanceof ApiError) && !(error instanceof TypeError)) throw error;
    if (mine !== loads) return null;
    failures += 1;
    status(t("loadError"), "error");
    $("#retry").hidden = false;
    if (!state.alerts.size) list.replaceChildren();
    schedule(Math.min(state.refreshSeconds, 5 * 2 ** (failures - 1)));
    return null;
  }
}

async function load({ quiet = false } = {}) {
  if (!quiet) list.setAttribute("aria-busy", "true");
  const mine = ++loads;
  const page = await fetchPage(mine);
  if (mine !== loads) return page; // a newer load is under way: it shows its answer
  list.removeAttribute("aria-busy");
  if (page === null) return null;
  failures = 0;
  state.historyLimit = page.historyLimit || state.historyLimit;
  state.refreshSeconds = page.refreshSeconds || state.refreshSeconds;
  state.timeZone = page.timeZone || null;
  const known = new Set(state.alerts.keys());
  state.alerts = new Map(page.alerts.map((a) => [a.id, a]));
  // Live prices (elite) are newer than the table's: keep them for the symbols they cover.
  const live = Object.fromEntries([...state.liveSymbols].filter((s) => s in state.prices).map((s) => [s, state.prices[s]]));
  state.prices = { ...page.prices, ...live };
  state.pricesAt = page.live ? null : page.pricesAt;
  const note = $("#delay-note");
  note.hidden = !page.delayMinutes;
  note.textContent = page.delayMinutes ? t("delayNote", { minutes: page.delayMinutes }) : "";
  $("#live-dot").hidden = !page.live;
  // On a refresh, a card that is new (or has a new update) slides in as a live one does.
  render(new Set(quiet ? page.alerts.filter((a) => !known.has(a.id)).map(groupKey) : []));
  $("#retry").hidden = true;
  status("");
  schedule(state.refreshSeconds);
  return page;
}

function matches(alert) {
  return (!filters.type || alert.type === filters.type) && (!filters.symbol || alert.symbol.includes(filters.symbol));
}

function slideIn(alert) {
  if (state.alerts.has(alert.id) || !matches(alert)) return;
  // The socket's alert carries the hour's stored minutes (none when PostgreSQL was slow): live
  // minutes extend it from here on.
  state.alerts.set(alert.id, { ...alert, sparkline: alert.sparkline || { minutes: [], closes: [] } });
  // At most the tier's history: the oldest alerts go first.
  const newest = [...state.alerts.values()].sort((a, b) => new Date(b.detectedAt) - new Date(a.detectedAt));
  for (const old of newest.slice(state.historyLimit)) state.alerts.delete(old.id);
  render(new Set([groupKey(alert)]));
}

// --- live prices (elite) ---------------------------------------------------------------------

function followPrices(all) {
  if (!state.live) return;
  for (const group of all) {
    if (state.liveSymbols.size >= MAX_LIVE_SYMBOLS) break;
    if (state.liveSymbols.has(group.head.symbol)) continue;
    state.liveSymbols.add(group.head.symbol);
    state.live.subscribe({ channel: "candles", symbol: group.head.symbol });
  }
}

function livePrice(symbol, candle) {
  state.prices[symbol] = candle.c;
  for (const node of list.querySelectorAll(`.alert-move[data-symbol="${CSS.escape(symbol)}"]`)) {
    fillMove(node, percentChange(candle.c, Number(node.dataset.price)), candle.c);
  }
  // The forming minute joins the sparkline of a card of this hour.
  for (const alert of state.alerts.values()) {
    if (alert.symbol !== symbol || !alert.sparkline) continue;
    const minute = Math.floor((candle.t * 1000 - new Date(alert.hour).getTime()) / 60000);
    if (minute < 0 || minute > 59) continue;
    const line = alert.sparkline;
    const at = line.minutes.indexOf(minute);
    if (at >= 0) line.closes[at] = candle.c;
    else if (!line.minutes.length || minute > line.minutes[line.minutes.length - 1]) {
      line.minutes.push(minute);
      line.closes.push(candle.c);
    } else continue;
    const card = list.querySelector(`.alert-card[data-id="${alert.id}"] .alert-spark`);
    const svg = card && sparkline(alert);
    if (card && svg) {
      const old = card.querySelector(".spark");
      if (old) old.replaceWith(svg);
      else card.prepend(svg);
    }
  }
}

// --- wiring ----------------------------------------------------------------------------------

function wireFilters() {
  for (const chip of document.querySelectorAll("[data-filter-type]")) {
    chip.addEventListener("click", () => {
      filters.type = chip.dataset.filterType;
      for (const other of document.querySelectorAll("[data-filter-type]")) other.setAttribute("aria-pressed", String(other === chip));
      load();
    });
  }
  let timer = null;
  $("#symbol-filter").addEventListener("input", (event) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      // Part of a symbol in any case and script ("eth", "pepe", "bt", "我踏"), as the API matches it.
      filters.typed = event.target.value.trim();
      filters.symbol = event.target.value.replace(/\s+/g, "").replace(/^[$#]+/, "").toUpperCase().slice(0, 48);
      load();
    }, 250);
  });
  $("#retry").addEventListener("click", () => {
    haptic("selection");
    load();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load({ quiet: true });
  });
  window.setInterval(tickTimes, 30_000);
}

async function main() {
  const symbol = startSymbol();
  if (symbol) {
    window.location.replace(`/chart/${symbol}`);
    return;
  }
  await boot();
  wireFilters();
  const page = await load();
  if (page && page.live) {
    state.live = connectLive([{ channel: "alerts" }], (message) => {
      if (message.type === "alert") slideIn(message.alert);
      else if (message.type === "candle") livePrice(message.symbol, message.candle);
    });
    followPrices(groups([...state.alerts.values()]));
  }
}

main();
