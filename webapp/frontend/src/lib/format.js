// The figures' formats, read from the one spec the bot and the API format with
// (core/number_formats.json, used by core/number_format.py): a figure the browser
// computes (a live candle, the hour's ratio) reads exactly as the bot writes it.
import spec from "../../../../core/number_formats.json";

const missing = (value) => value === null || value === undefined || Number.isNaN(value);
const signed = (text) => (text.startsWith("-") ? text : `+${text}`);

/**
 * `x.toFixed(digits)` rounded as Python's format() rounds: both round the exact binary value,
 * but on an exact tie (1.625 to 2 places) toFixed goes away from zero and Python to even.
 */
export function fixed(x, digits) {
  const text = x.toFixed(digits);
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 40)); // every digit of the double
  const point = exact.indexOf(".");
  if (!/^50*$/.test(exact.slice(point + 1 + digits))) return text; // not a tie
  const truncated = exact.slice(0, digits ? point + 1 + digits : point);
  if (Number(truncated[truncated.length - 1]) % 2) return text; // the tie's even side is up
  return x < 0 ? `-${truncated}` : truncated;
}

const grouped = (text) => text.replace(/^(\d+)/, (whole) => whole.replace(/\B(?=(\d{3})+$)/g, ","));

export function usd(value) {
  if (missing(value)) return "–";
  const rule = spec.usd;
  for (const [bound, suffix] of rule.steps) {
    if (Math.abs(value) >= bound) return `${rule.prefix}${fixed(value / bound, rule.decimals)}${suffix}`;
  }
  return `${rule.prefix}${fixed(value, rule.decimals)}`;
}

export function price(value) {
  if (missing(value)) return "–";
  const rule = spec.price;
  if (value >= rule.grouped_from) {
    return `${rule.prefix}${grouped(fixed(value, rule.grouped_decimals))}`;
  }
  const decimals = value >= rule.plain_from ? rule.plain_decimals : rule.small_decimals;
  return `${rule.prefix}${fixed(value, decimals).replace(/0+$/, "").replace(/\.$/, "") || "0"}`;
}

/**
 * A price with the decimals of its symbol's tick size (every price of one chart alike, `$97,000.1`),
 * or as `price()` writes it when the symbol's tick size is not known (`decimals` null).
 */
export function tickPrice(value, decimals) {
  if (decimals === null || decimals === undefined) return price(value);
  if (missing(value)) return "–";
  return `${spec.price.prefix}${grouped(fixed(value, decimals))}`;
}

export function ratio(value) {
  if (missing(value)) return "–";
  return `${fixed(value, spec.ratio.decimals)}${spec.ratio.suffix}`;
}

export function funding(rate) {
  const rule = spec.funding;
  if (missing(rate)) return rule.missing;
  return `${signed(fixed(rate * rule.scale, rule.decimals))}${rule.suffix}`;
}

export function change(pct) {
  if (missing(pct)) return "–";
  return `${signed(fixed(pct, spec.change.decimals))}${spec.change.suffix}`;
}

/** The percent change from `then` to `now` (core/alert_context.py percent_change's rule), or
 * null when either is unknown or not positive. */
export function percentChange(now, then) {
  if (missing(now) || missing(then) || then <= 0 || now <= 0) return null;
  return (now / then - 1) * 100;
}

/** 14:05 today, or 1 Dec 14:05, in the device's time zone. */
export function when(iso, locale) {
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const options = sameDay ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString(locale || undefined, options);
}
