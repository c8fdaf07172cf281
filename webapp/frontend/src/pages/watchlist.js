// `/watchlist`: the user's watched symbols with their market figures; the same list and size
// rule as the bot's /watch and /unwatch (the API uses db.watchlists, as the bot does).
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, status } from "../lib/dom.js";
import { change, price, ratio } from "../lib/format.js";
import { haptic, mainAction } from "../lib/telegram.js";
import { t } from "../lib/texts.js";
import { setWatched } from "../lib/watch.js";

const list = $("#watch-rows");
let markets = new Map();

function render(watch) {
  const { symbols, limit } = watch;
  $("#watch-count").textContent = limit === null ? t("countUnlimited", { count: symbols.length }) : t("countLimited", { count: symbols.length, size: limit });
  $("#watch-empty").hidden = symbols.length > 0;
  list.replaceChildren(
    ...symbols.map((symbol) => {
      const market = markets.get(symbol);
      return el(
        "div",
        { class: "w-row", dataset: { symbol } },
        el(
          "a",
          { class: "w-link", href: `/chart/${symbol}` },
          el("span", { class: "c-symbol" }, el("b", { text: market ? market.asset : symbol }), el("small", { text: symbol })),
          el("span", { class: "c-num", text: market ? price(market.price) : "–" }),
          el("span", { class: `c-num ${market && market.change24h < 0 ? "down" : "up"}`, text: market ? change(market.change24h) : "–" }),
          el("span", { class: "c-num", text: market ? ratio(market.ratio) : "–" }),
        ),
        el("button", { class: "remove", type: "button", "aria-label": t("remove"), dataset: { symbol }, text: "✕" }),
      );
    }),
  );
}

async function load() {
  const [watch, page] = await Promise.all([api("/api/watchlist"), api("/api/markets")]);
  markets = new Map(page.markets.map((m) => [m.symbol, m]));
  render(watch);
}

async function main() {
  const user = await boot();
  if (!user) {
    $("#watch-public").hidden = false;
    return;
  }
  mainAction($("#add-symbols"), () => {
    window.location.href = "/markets";
  });
  list.addEventListener("click", async (event) => {
    const button = event.target.closest(".remove");
    if (!button) return;
    haptic();
    try {
      render(await setWatched(button.dataset.symbol, false));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status(t("error"), "error");
    }
  });
  try {
    await load();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
  }
}

main();
