// `/`: the alert feed with the tier's delay and history; elite users get new alerts live.
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, lang, status } from "../lib/dom.js";
import { change, funding, price, ratio, usd, when } from "../lib/format.js";
import { connectLive } from "../lib/live.js";
import { startSymbol } from "../lib/telegram.js";
import { t } from "../lib/texts.js";

const TYPE_LABEL = { SPIKE: "typeSpike", HALF_UPDATE: "typeHalf", FULL_UPDATE: "typeFull" };
const list = $("#alerts");
const filters = { type: "", symbol: "", typed: "" };
let shown = new Set();
let historyLimit = 10;
let loads = 0; // the newest load's number: an older answer arriving late is dropped

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

export function alertCard(alert, fresh = false) {
  return el(
    "a",
    { class: `alert-card${fresh ? " fresh" : ""}`, href: `/chart/${alert.symbol}`, dataset: { id: alert.id, type: alert.type } },
    el(
      "div",
      { class: "alert-head" },
      el("span", { class: "asset", text: alert.asset }),
      el("span", { class: `badge badge-${alert.type.toLowerCase()}`, text: t(TYPE_LABEL[alert.type]) }),
      el("time", { class: "when", datetime: alert.detectedAt, text: when(alert.detectedAt, lang()) }),
    ),
    el(
      "div",
      { class: "alert-figures" },
      el("span", { class: "figure" }, el("small", { text: t("hourVolume") }), usd(alert.currentVolume)),
      el("span", { class: "figure ratio" }, el("small", { text: t("ratio") }), ratio(alert.ratio)),
      el("span", { class: "figure" }, el("small", { text: t("price") }), price(alert.price)),
      el("span", { class: "figure" }, el("small", { text: t("funding") }), funding(alert.fundingRate)),
    ),
    // the context as the bot writes it, in the reader's language (server-rendered: one rule)
    ...(alert.contextLines || []).map((line) => el("div", { class: "alert-context", text: line })),
    outcomeLine(alert.outcome),
  );
}

function render(alerts) {
  shown = new Set(alerts.map((a) => a.id));
  list.replaceChildren(...alerts.map((a) => alertCard(a)));
  const empty = $("#empty");
  empty.hidden = alerts.length > 0;
  empty.textContent = filters.symbol ? t("noMatch", { text: filters.typed }) : t("noAlerts");
}

async function load() {
  const params = new URLSearchParams();
  if (filters.type) params.set("type", filters.type);
  if (filters.symbol) params.set("search", filters.symbol);
  list.setAttribute("aria-busy", "true");
  const mine = ++loads;
  try {
    const page = await api(`/api/alerts${params.size ? `?${params}` : ""}`);
    if (mine !== loads) return page;
    historyLimit = page.historyLimit || historyLimit;
    const note = $("#delay-note");
    note.hidden = !page.delayMinutes;
    note.textContent = page.delayMinutes ? t("delayNote", { minutes: page.delayMinutes }) : "";
    $("#live-dot").hidden = !page.live;
    render(page.alerts);
    status("");
    return page;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
    return null;
  } finally {
    list.removeAttribute("aria-busy");
  }
}

function matches(alert) {
  return (!filters.type || alert.type === filters.type) && (!filters.symbol || alert.symbol.includes(filters.symbol));
}

function slideIn(alert) {
  if (shown.has(alert.id) || !matches(alert)) return;
  shown.add(alert.id);
  list.prepend(alertCard(alert, true));
  while (list.children.length > historyLimit) list.lastElementChild.remove();
  $("#empty").hidden = true;
}

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
    connectLive([{ channel: "alerts" }], (message) => {
      if (message.type === "alert") slideIn(message.alert);
    });
  }
}

main();
