// `/plans`: the tier table (rendered by the server from core/tiers.py), the user's tier
// and expiry, and a Stars button per paid tier.
// Inside Telegram only Stars are offered (never a card link); the invoice comes from
// POST /api/plans/{tier}/invoice and opens in Telegram's own sheet. A plan the entitlement rule
// does not sell to this user (GET /api/plans `onSale`) has its button disabled, the reason below.
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, lang, status } from "../lib/dom.js";
import { haptic, inTelegram, openInvoice } from "../lib/telegram.js";
import { t } from "../lib/texts.js";

function showCurrent(current) {
  const node = $("#current-plan");
  const name = node.dataset[`tier${current.tier[0].toUpperCase()}${current.tier.slice(1)}`] || current.tier;
  let text = t("yourPlan", { tier: name });
  if (current.tierExpiresAt) {
    const date = new Date(current.tierExpiresAt).toLocaleDateString(lang(), { day: "numeric", month: "long", year: "numeric" });
    text += ` · ${t("validUntil", { date })}`;
  }
  node.textContent = text;
  node.hidden = false;
  for (const column of document.querySelectorAll("[data-column]")) column.classList.toggle("current", column.dataset.column === current.tier);
}

async function buy(button) {
  const tier = button.dataset.buy;
  haptic("light");
  button.disabled = true;
  try {
    const invoice = await api(`/api/plans/${tier}/invoice`, { method: "POST" });
    const url = invoice.url || invoice.invoiceLink || invoice.link;
    openInvoice(url, (state) => {
      if (state === "paid") window.location.reload();
    });
    button.disabled = false;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 404 || error.status === 501) {
      button.textContent = t("starsSoon");
      button.classList.add("unavailable");
    } else if (error.status === 409) {
      // The entitlement rule sells upgrades and renewals only: this plan would add nothing.
      button.disabled = false;
      status(t("planCovered"));
    } else {
      button.disabled = false;
      status(t("error"), "error");
    }
  }
}

// Why the entitlement rule (core/entitlements.py, through GET /api/plans) does not sell a plan.
const REFUSED = { lower: "offerLower", forever: "offerForever", subscribed: "offerSubscribed" };

/** Each plan's button as the API says it is offered: on sale, or disabled with the reason. */
function showOffers(plans) {
  for (const plan of plans) {
    const button = document.querySelector(`[data-buy="${plan.tier}"]`);
    const why = document.querySelector(`[data-why="${plan.tier}"]`);
    if (!button || !why) continue;
    button.disabled = !plan.onSale;
    button.dataset.offer = plan.offer;
    why.textContent = plan.onSale ? "" : t(REFUSED[plan.offer] || "planCovered");
    why.hidden = plan.onSale || !inTelegram;
  }
}

async function main() {
  await boot({ inner: true });
  for (const button of document.querySelectorAll("[data-buy]")) {
    button.hidden = !inTelegram;
    button.addEventListener("click", () => buy(button));
  }
  $("#plans-public").hidden = inTelegram;
  try {
    const page = await api("/api/plans");
    if (inTelegram && page.current) showCurrent(page.current);
    if (inTelegram) showOffers(page.plans);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
  }
}

main();
