// Watchlist changes from any page (the markets star, the chart star, the watchlist page).
import { api } from "./api.js";

export async function setWatched(symbol, watched) {
  if (watched) return api("/api/watchlist", { method: "POST", body: { symbol } });
  return api(`/api/watchlist/${encodeURIComponent(symbol)}`, { method: "DELETE" });
}
