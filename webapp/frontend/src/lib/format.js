// Number formats of the alert text (volspike/alerts.py), for figures the browser renders.

export function usd(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const magnitude = Math.abs(value);
  for (const [bound, suffix] of [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ]) {
    if (magnitude >= bound) return `$${(value / bound).toFixed(2)}${suffix}`;
  }
  return `$${value.toFixed(2)}`;
}

export function price(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 1000) return `$${value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  if (value >= 1) return `$${value.toFixed(4).replace(/0+$/, "").replace(/\.$/, "")}`;
  if (value === 0) return "$0";
  return `$${value.toFixed(8).replace(/0+$/, "").replace(/\.$/, "")}`;
}

export function ratio(value) {
  if (value === null || value === undefined) return "–";
  return `${value.toFixed(2)}×`;
}

export function funding(rate) {
  if (rate === null || rate === undefined) return "n/a";
  const pct = rate * 100;
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(4)}%`;
}

export function change(pct) {
  if (pct === null || pct === undefined) return "–";
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`;
}

/** 14:05 today, or 1 Dec 14:05, in the device's time zone. */
export function when(iso, locale) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const options = sameDay ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString(locale || undefined, options);
}
