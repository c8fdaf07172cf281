// `/settings`: the same settings as the bot's /settings, saved with PUT /api/settings (the
// API validates with the bot's rule). Locked items say which plan unlocks them.
import { api, ApiError } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, el, status } from "../lib/dom.js";
import { ratio, usd } from "../lib/format.js";
import { haptic, mainAction } from "../lib/telegram.js";
import { t } from "../lib/texts.js";

const form = $("#settings-form");
let action = null;

const hhmm = (value) => (value ? String(value).slice(0, 5) : "");

/**
 * Show a threshold in its select: the option of the same number (the API answers `5.0` as 5,
 * the option may read "5.0"), "Default" for null. A value set elsewhere that no option holds
 * gets an option of its own, so the next save sends it back unchanged instead of a blank.
 */
function choose(select, value) {
  if (value === null || value === undefined) {
    select.value = "";
    return;
  }
  let option = [...select.options].find((o) => o.value !== "" && Number(o.value) === value);
  if (!option) {
    option = el("option", { value: String(value), text: select === form.spikeMultiple ? ratio(value).replace(/\.?0+×$/, "×") : usd(value) });
    select.append(option);
  }
  select.value = option.value;
}

function fill(settings) {
  choose(form.spikeMultiple, settings.spikeMultiple);
  choose(form.minQuoteVolume, settings.minQuoteVolume);
  for (const box of form.querySelectorAll("[name=alertTypes]")) box.checked = settings.alertTypes.includes(box.value);
  form.watchlistOnly.checked = settings.watchlistOnly;
  form.quietStart.value = hhmm(settings.quietStart);
  form.quietEnd.value = hhmm(settings.quietEnd);
  form.timezone.value = settings.timezone;
  form.paused.checked = settings.paused;
  form.dailyCap.value = settings.dailyCap === null || settings.dailyCap === undefined ? "" : String(settings.dailyCap);
}

function read() {
  const number = (value) => (value === "" ? null : Number(value));
  return {
    spikeMultiple: number(form.spikeMultiple.value),
    minQuoteVolume: number(form.minQuoteVolume.value),
    alertTypes: [...form.querySelectorAll("[name=alertTypes]:checked")].map((box) => box.value),
    watchlistOnly: form.watchlistOnly.checked,
    quietStart: form.quietStart.value || null,
    quietEnd: form.quietEnd.value || null,
    timezone: form.timezone.value.trim(),
    paused: form.paused.checked,
    dailyCap: number(form.dailyCap.value),
  };
}

function lock(user) {
  const paid = user && user.tier !== "free";
  $(".lock-note").hidden = Boolean(paid);
  for (const field of form.querySelectorAll("[data-paid]")) {
    field.disabled = !paid;
    field.closest(".field, .check").classList.toggle("locked", !paid);
  }
  const elite = user && user.tier === "elite";
  for (const box of form.querySelectorAll("[data-elite]")) {
    box.disabled = !elite;
    box.closest(".check").classList.toggle("locked", !elite);
  }
}

let asked = 0;

/** "With these thresholds you would have had N alerts a day over the last 30 days; median move
 * after 1 h: X" for the thresholds on screen (GET /api/what-if; empty select: the default). */
async function whatIf() {
  const params = new URLSearchParams();
  if (form.spikeMultiple.value) params.set("multiple", form.spikeMultiple.value);
  if (form.minQuoteVolume.value) params.set("minVolume", form.minQuoteVolume.value);
  const ticket = ++asked;
  const node = $("#what-if");
  try {
    const answer = await api(`/api/what-if${params.size ? `?${params}` : ""}`);
    if (ticket !== asked) return; // a newer choice is being asked
    node.textContent = answer.text;
    node.hidden = false;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    node.hidden = true;
  }
}

async function save() {
  action.progress(true);
  try {
    fill(await api("/api/settings", { method: "PUT", body: read() }));
    haptic("success");
    status(t("saved"), "ok");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    haptic("error");
    const text = error.error === "tier_required" ? t("tierRequired") : typeof error.detail === "string" ? error.detail : t("invalid");
    status(text, "error");
  } finally {
    action.progress(false);
  }
}

async function main() {
  const user = await boot({ inner: true });
  if (!user) {
    $("#settings-public").hidden = false;
    form.hidden = true;
    return;
  }
  form.addEventListener("change", (event) => {
    if (event.target.type === "checkbox") haptic();
    if (event.target === form.spikeMultiple || event.target === form.minQuoteVolume) whatIf();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  action = mainAction($("#save-settings"), save);
  try {
    fill(await api("/api/settings"));
    lock(user);
    whatIf();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
  }
}

main();
