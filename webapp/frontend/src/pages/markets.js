// `/markets`: every tracked perpetual; sort by any column, search, star to watch. Rows are
// built once per symbol and reused across refreshes. For a smooth scroll of 600 rows on a phone
// (bench/miniapp_page.py, 4x CPU throttle) the rows are laid out once, in full, each contained
// (`contain: layout paint style`), and the table does not clip its rounded corners: with
// `content-visibility: auto` every row coming into view cost main-thread rendering mid-fling
// (6% of frames on time), and the clip cost paint on every frame.
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, status } from "../lib/dom.js";
import { change, funding, price, ratio, usd } from "../lib/format.js";
import { haptic } from "../lib/telegram.js";
import { t } from "../lib/texts.js";
import { setWatched } from "../lib/watch.js";

const body = $("#market-rows");
const rows = new Map(); // symbol -> { market, node }
const sort = { key: "hourQuoteVolume", dir: -1 };
let query = "";
let timer = null;

function cells(market) {
  return [
    el("span", { class: "c-symbol" }, el("b", { text: market.asset }), el("small", { text: market.symbol })),
    el("span", { class: "c-num", text: price(market.price) }),
    el("span", { class: `c-num ${market.change24h >= 0 ? "up" : "down"}`, text: change(market.change24h) }),
    el("span", { class: "c-num", text: usd(market.hourQuoteVolume) }),
    el("span", { class: `c-num${market.ratio >= 3 ? " hot" : ""}`, text: ratio(market.ratio) }),
    el("span", { class: "c-num", text: funding(market.fundingRate) }),
  ];
}

let signedIn = false; // stars need a user: Telegram's initData or the web session

function starButton(market) {
  if (!signedIn) return el("span", { class: "star-space" });
  return el("button", {
    class: "star",
    type: "button",
    "aria-pressed": String(market.watched),
    "aria-label": market.watched ? t("unwatch") : t("watch"),
    dataset: { symbol: market.symbol },
  });
}

function rowNode(market) {
  const link = el("a", { class: "m-link", href: `/chart/${market.symbol}` }, ...cells(market));
  return el("div", { class: "m-row", dataset: { symbol: market.symbol } }, starButton(market), link);
}

function update(markets) {
  const seen = new Set();
  for (const market of markets) {
    seen.add(market.symbol);
    const known = rows.get(market.symbol);
    if (known) {
      known.market = market;
      known.node.querySelector(".m-link").replaceChildren(...cells(market));
      const star = known.node.querySelector(".star");
      if (star) star.setAttribute("aria-pressed", String(market.watched));
    } else {
      rows.set(market.symbol, { market, node: rowNode(market) });
    }
  }
  for (const symbol of [...rows.keys()]) if (!seen.has(symbol)) rows.delete(symbol);
  arrange();
}

function compare(a, b) {
  const x = a.market[sort.key];
  const y = b.market[sort.key];
  if (typeof x === "string") return sort.dir * x.localeCompare(y);
  return sort.dir * ((x ?? -Infinity) - (y ?? -Infinity));
}

function arrange() {
  const visible = [...rows.values()]
    .filter(({ market }) => !query || market.symbol.includes(query) || market.asset.includes(query))
    .sort(compare);
  const fragment = document.createDocumentFragment();
  for (const row of visible) fragment.append(row.node);
  body.replaceChildren(fragment);
  $("#no-match").hidden = visible.length > 0;
  for (const head of document.querySelectorAll("[data-sort]")) {
    head.dataset.order = head.dataset.sort === sort.key ? (sort.dir > 0 ? "ascending" : "descending") : "none";
  }
}

async function refresh() {
  try {
    const page = await api("/api/markets");
    update(page.markets);
    const every = page.refreshSeconds;
    $("#refresh-note").textContent = every ? t("refreshEvery", { minutes: Math.round(every / 60) }) : t("live");
    status("");
    schedule(every ? every * 1000 : 5000);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
    schedule(30000);
  }
}

function schedule(ms) {
  window.clearTimeout(timer);
  timer = window.setTimeout(refresh, ms);
}

async function toggleStar(button) {
  const symbol = button.dataset.symbol;
  const row = rows.get(symbol);
  const watched = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(watched));
  haptic();
  try {
    await setWatched(symbol, watched);
    if (row) row.market = { ...row.market, watched };
    button.setAttribute("aria-label", watched ? t("unwatch") : t("watch"));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    button.setAttribute("aria-pressed", String(!watched));
    haptic("error");
    status(error.error === "watchlist_full" ? t("watchlistFull") : t("error"), "error");
  }
}

function wire() {
  body.addEventListener("click", (event) => {
    const star = event.target.closest(".star");
    if (star) {
      event.preventDefault();
      toggleStar(star);
    }
  });
  for (const head of document.querySelectorAll("[data-sort]")) {
    head.addEventListener("click", () => {
      const key = head.dataset.sort;
      sort.dir = sort.key === key ? -sort.dir : key === "symbol" ? 1 : -1;
      sort.key = key;
      arrange();
    });
  }
  let debounce = null;
  $("#market-search").addEventListener("input", (event) => {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => {
      query = event.target.value.trim().toUpperCase();
      arrange();
    }, 120);
  });
}

async function main() {
  signedIn = (await boot()) !== null;
  wire();
  await refresh();
}

main();
