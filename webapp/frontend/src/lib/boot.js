// What every page does first: Telegram set-up, the signed-in user, the page language.
import { me, webSession } from "./api.js";
import { askWriteAccess, inTelegram, start } from "./telegram.js";

const LANG_COOKIE = "volspike_lang";

/** Render the next pages in the user's bot language: a cookie, and one reload if this page is not. */
function followLanguage(user) {
  const wanted = user && user.language;
  if (!wanted || wanted === document.documentElement.lang) return false;
  document.cookie = `${LANG_COOKIE}=${encodeURIComponent(wanted)}; path=/; max-age=31536000; SameSite=Lax`;
  const guard = `volspike:lang-reload:${wanted}`;
  try {
    if (window.sessionStorage.getItem(guard)) return false;
    window.sessionStorage.setItem(guard, "1");
  } catch {
    return false;
  }
  window.location.reload();
  return true;
}

function showUser(user) {
  const chip = document.getElementById("tier-chip");
  if (!chip || !user) return;
  chip.textContent = chip.dataset[`tier${user.tier[0].toUpperCase()}${user.tier.slice(1)}`] || user.tier;
  chip.dataset.tier = user.tier;
  chip.hidden = false;
}

/** Set the page up; resolves to the user from /api/me: signed in through Telegram's initData, or
 * through the web session on a desktop browser; null in the public view. */
export async function boot({ inner = false } = {}) {
  start({ inner });
  if (!inTelegram && !webSession) return null;
  const user = await me();
  if (followLanguage(user)) return new Promise(() => {}); // the page reloads
  showUser(user);
  askWriteAccess(user);
  return user;
}
