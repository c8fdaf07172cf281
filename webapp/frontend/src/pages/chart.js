// `/chart/{symbol}`: TradingView Lightweight Charts 5 with candles, a volume pane and alert
// markers; timeframes 1m…1d from /api/candles, older candles loaded when scrolled back, the
// forming candle (and the hour's volume ratio) updated live from the 1m candles on /ws.
// Times read in the device's time zone and the page's language, as the feed writes them; every
// price with the decimals of the symbol's tick size; the OHLC and volume of the candle under the
// crosshair (a tap, a drag, a mouse) above the chart, of the newest candle otherwise.
import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  TickMarkType,
} from "lightweight-charts";
import { api, ApiError, takeInline } from "../lib/api.js";
import { boot } from "../lib/boot.js";
import { $, lang, status } from "../lib/dom.js";
import { change, ratio, tickPrice, usd, when } from "../lib/format.js";
import { connectLive } from "../lib/live.js";
import { haptic, holdVerticalSwipes, onScheme } from "../lib/telegram.js";
import { t } from "../lib/texts.js";
import { setWatched } from "../lib/watch.js";

const SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 };
const PAGE = 300;
const MARKER = { SPIKE: ["S", "#f5a623"], HALF_UPDATE: ["½", "#7b61ff"], FULL_UPDATE: ["U", "#2e86de"], EARLY: ["E", "#8a8f98"] };
const TYPE_LABEL = { SPIKE: "typeSpike", HALF_UPDATE: "typeHalf", FULL_UPDATE: "typeFull", EARLY: "typeEarly" };
// A delayed tier's alert becomes visible at its own second: the markers of the last hour or two
// (two hourly candles: past every tier's delay) are asked for this often, an answer the server
// shares between every viewer of the symbol on that tier for a few seconds.
const MARKER_POLL_MS = 10_000;
const DAY = 86400;
const RIGHT_OFFSET = 4; // bars of room right of the newest candle

const root = $("#chart-page");
const symbol = root.dataset.symbol;
let interval = root.dataset.interval || "1h";
const decimals = root.dataset.decimals === "" || root.dataset.decimals === undefined ? null : Number(root.dataset.decimals);
const priceText = (value) => tickPrice(value, decimals);
let pointed = null; // the time of the candle under the crosshair; null: the newest candle
let dayOpen = null; // the price 24 hours ago (the open of that minute's candle)
let candles = []; // ascending by t
let markers = [];
let exhausted = false;
let loadingOlder = false;
let generation = 0;

/**
 * One bucket being formed from live 1m candles: the candle the API returned for it (closed
 * minutes up to `lastMinute`) plus every live minute after that.
 */
class FormingBucket {
  constructor(seconds) {
    this.seconds = seconds;
    this.base = null;
    this.lastMinute = -1;
    this.minutes = new Map();
  }

  reset(base, lastMinute) {
    this.base = base;
    this.lastMinute = lastMinute;
    this.minutes.clear();
  }

  /** Fold a live minute in; returns the bucket's candle, or null for a minute already counted. */
  add(minute) {
    if (minute.t <= this.lastMinute) return null;
    const start = Math.floor(minute.t / this.seconds) * this.seconds;
    if (!this.base || start > this.base.t) {
      this.base = { t: start, o: minute.o, h: minute.h, l: minute.l, c: minute.c, v: 0 };
      this.minutes.clear();
    } else if (start < this.base.t) {
      return null;
    }
    this.minutes.set(minute.t, minute);
    let { o, h, l } = this.base;
    let v = this.base.v;
    let c = this.base.c;
    let latest = -1;
    for (const m of this.minutes.values()) {
      h = Math.max(h, m.h);
      l = Math.min(l, m.l);
      v += m.v;
      if (m.t > latest) {
        latest = m.t;
        c = m.c;
      }
    }
    return { t: start, o, h, l, c, v };
  }
}

const forming = new FormingBucket(SECONDS[interval]);
const hour = new FormingBucket(3600);
let previousHourVolume = null;
let hourStart = null;
let hourVolume = 0;

/** Times in the user's zone (their settings', from /api/me; the device's until then or when they
 * kept the default) and the page's language, as the feed's `when` writes times. */
let zone;
const formats = new Map();
function formatTime(seconds, options) {
  const key = JSON.stringify(options);
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(lang(), { ...options, timeZone: zone }));
  return formats.get(key).format(new Date(seconds * 1000));
}

/** Whether a moment is midnight in the user's zone (where the axis writes the date). */
function atMidnight(seconds) {
  const parts = new Intl.DateTimeFormat("en", { hour: "numeric", minute: "numeric", hourCycle: "h23", timeZone: zone })
    .formatToParts(new Date(seconds * 1000));
  const value = (type) => Number(parts.find((part) => part.type === type)?.value);
  return value("hour") === 0 && value("minute") === 0;
}

/** Follow the user's zone once known; a name this browser does not know keeps the device's. */
function useZone(name) {
  if (!name) return;
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
  } catch {
    return;
  }
  zone = name;
  formats.clear();
  if (chart) chart.applyOptions({ localization: { locale: lang(), timeFormatter: candleTime }, timeScale: { tickMarkFormatter: axisTime } });
  const shown = $("#readout").dataset.t;
  if (shown) $("#ro-time").textContent = candleTime(Number(shown));
}
const HOUR_MINUTE = { hour: "2-digit", minute: "2-digit" };
const DAY_MONTH = { day: "numeric", month: "short" };

/**
 * A label on the time axis. The library places its marks on UTC boundaries; a date is written
 * only where the device's day begins (elsewhere the local time), so no label names a day at a
 * moment that belongs to another one. Daily candles are dates.
 */
function axisTime(time, kind) {
  if (interval === "1d") {
    if (kind === TickMarkType.Year) return formatTime(time, { year: "numeric" });
    if (kind === TickMarkType.Month) return formatTime(time, { month: "short" });
    return formatTime(time, DAY_MONTH);
  }
  if (atMidnight(time)) return formatTime(time, DAY_MONTH);
  return formatTime(time, HOUR_MINUTE);
}

/** A candle's time in full: the crosshair's label on the axis and the readout. */
function candleTime(time) {
  return interval === "1d"
    ? formatTime(time, { ...DAY_MONTH, year: "numeric" })
    : formatTime(time, { ...DAY_MONTH, ...HOUR_MINUTE });
}

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// The chart is made when the first candles are here: its first frame already has them (one
// paint of the whole chart instead of an empty one and then a full one).
let chart = null;
let candleSeries = null;
let volumeSeries = null;
let markerPlugin = null;

function makeChart() {
  chart = createChart($("#chart"), {
    autoSize: true,
    // The attribution is the page's own line under the chart (a 44 px link), not the logo.
    layout: { attributionLogo: false, panes: { separatorColor: "transparent" } },
    localization: { locale: lang(), timeFormatter: candleTime },
    rightPriceScale: { borderVisible: false },
    timeScale: {
      borderVisible: false,
      timeVisible: true,
      secondsVisible: false,
      rightOffset: RIGHT_OFFSET,
      tickMarkFormatter: axisTime,
    },
    crosshair: { mode: 0 },
    handleScroll: { vertTouchDrag: false },
  });
  candleSeries = chart.addSeries(CandlestickSeries, {
    upColor: "#26a69a",
    downColor: "#ef5350",
    borderVisible: false,
    wickUpColor: "#26a69a",
    wickDownColor: "#ef5350",
    priceFormat: {
      type: "custom",
      formatter: (p) => priceText(p).slice(1),
      minMove: decimals === null ? 1e-8 : 10 ** -decimals,
    },
  });
  volumeSeries = chart.addSeries(
    HistogramSeries,
    { priceFormat: { type: "custom", formatter: (v) => usd(v) }, priceLineVisible: false, lastValueVisible: false },
    1,
  );
  chart.panes()[1].setStretchFactor(0.25);
  markerPlugin = createSeriesMarkers(candleSeries, []);
  onScheme(paint);
  chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (range && range.from < 20) loadOlder();
    showBackToNow();
  });
  chart.subscribeCrosshairMove(point);
  chart.subscribeClick(tapped);
}

/** A tap reads the candle and shows the crosshair on it (a finger only draws one on a long press). */
function tapped(param) {
  point(param);
  const bar = param.time === undefined ? undefined : param.seriesData.get(candleSeries);
  if (bar) chart.setCrosshairPosition(bar.close, bar.time, candleSeries);
}

/** The crosshair moved (or the chart was tapped): the readout follows it, or the newest candle. */
function point(param) {
  const bar = param.time === undefined ? undefined : param.seriesData.get(candleSeries);
  if (!bar) {
    pointed = null;
    showReadout(candles[candles.length - 1] || null);
    return;
  }
  pointed = bar.time;
  const volume = param.seriesData.get(volumeSeries);
  showReadout({ t: bar.time, o: bar.open, h: bar.high, l: bar.low, c: bar.close, v: volume ? volume.value : null });
}

function showReadout(bar) {
  const readout = $("#readout");
  const at = $("#ro-time");
  if (!bar) {
    delete readout.dataset.t;
    for (const id of ["#ro-time", "#ro-open", "#ro-high", "#ro-low", "#ro-close", "#ro-volume"]) $(id).textContent = "–";
    return;
  }
  readout.dataset.t = String(bar.t);
  readout.classList.toggle("pointed", pointed !== null);
  at.textContent = candleTime(bar.t);
  at.dateTime = new Date(bar.t * 1000).toISOString();
  const figure = (value) => priceText(value).slice(1); // the price axis' figures: no "$"
  $("#ro-open").textContent = figure(bar.o);
  $("#ro-high").textContent = figure(bar.h);
  $("#ro-low").textContent = figure(bar.l);
  const close = $("#ro-close");
  close.textContent = figure(bar.c);
  close.className = bar.c > bar.o ? "up" : bar.c < bar.o ? "down" : "";
  $("#ro-volume").textContent = usd(bar.v);
}

/** "Back to now" shows while the newest candle is scrolled off the right edge. */
function showBackToNow() {
  $("#back-to-now").hidden = !(chart.timeScale().scrollPosition() < -0.5);
}

function wireBackToNow() {
  $("#back-to-now").addEventListener("click", () => {
    if (!chart) return;
    haptic();
    // At once, not scrollToRealTime's animation: a drag's end or older candles arriving meanwhile
    // stopped that halfway (seen in about one run in four).
    chart.timeScale().scrollToPosition(RIGHT_OFFSET, false);
  });
}

/** The 24-hour change: the last price against the open of the minute 24 hours ago. */
async function loadDayOpen() {
  const since = Math.floor(Date.now() / 60000) * 60 - DAY;
  const page = await api(candlesUrl({ interval: "1m", from: since, to: since + 60, limit: 1 }));
  dayOpen = page.candles.length ? page.candles[0].o : null;
  $("#change-24h").dataset.since = String(since);
  showChange();
}

function showChange() {
  const last = candles[candles.length - 1];
  const pct = dayOpen && last ? (last.c / dayOpen - 1) * 100 : null;
  const node = $("#change-24h");
  node.textContent = change(pct);
  node.classList.toggle("up", pct > 0);
  node.classList.toggle("down", pct < 0);
}

function paint(scheme) {
  const text = css("--text") || (scheme === "dark" ? "#e6e6e6" : "#222");
  const grid = scheme === "dark" ? "rgba(255,255,255,0.06)" : "rgba(0,0,0,0.06)";
  chart.applyOptions({
    layout: { background: { color: css("--bg") || (scheme === "dark" ? "#17212b" : "#ffffff") }, textColor: text },
    grid: { vertLines: { color: grid }, horzLines: { color: grid } },
  });
}

const volumeBar = (c) => ({ time: c.t, value: c.v, color: c.c >= c.o ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)" });
const candleBar = (c) => ({ time: c.t, open: c.o, high: c.h, low: c.l, close: c.c });

function drawMarkers() {
  const seconds = SECONDS[interval];
  const byTime = new Map();
  for (const m of markers) {
    const time = Math.floor(m.t / seconds) * seconds;
    const [text, color] = MARKER[m.type] || MARKER.SPIKE;
    if (!byTime.has(time) || m.type === "SPIKE") byTime.set(time, { time, position: "aboveBar", shape: "arrowDown", color, text });
  }
  markerPlugin.setMarkers([...byTime.values()].sort((a, b) => a.time - b.time));
  showLastAlert();
}

/** The newest alert on the chart, in words: what the newest marker stands for. */
function showLastAlert() {
  const node = $("#last-alert");
  const last = markers.reduce((newest, m) => (!newest || m.t > newest.t ? m : newest), null);
  node.textContent = last
    ? t("lastAlert", { type: t(TYPE_LABEL[last.type] || "typeSpike"), ratio: ratio(last.ratio), time: when(new Date(last.t * 1000).toISOString(), lang()) })
    : t("noAlerts");
}

function mergeMarkers(fresh) {
  const key = (m) => `${m.t}:${m.type}`;
  const known = new Set(markers.map(key));
  for (const m of fresh) if (!known.has(key(m))) markers.push(m);
}

const ascending = (list) => [...list].sort((a, b) => a.t - b.t);

/** The URL of a candles page; the first ones are inline in the page, keyed by this URL to the byte. */
function candlesUrl(params) {
  return `/api/candles?${new URLSearchParams({ symbol, ...params })}`;
}

/**
 * A candles page: the first from the page itself (rendered for the public view, so its markers
 * are the free tier's), the rest from the API with the user's credentials, whose markers follow
 * the user's tier.
 */
async function candlesGet(path) {
  const found = takeInline(path);
  return found !== undefined ? found : api(path);
}

/** The markers the user's tier may see now (the inline first page carried the public ones). */
async function refreshMarkers(recent = false) {
  if (!chart) return;
  const mine = generation;
  const page = await api(candlesUrl(recent ? { interval: "1h", limit: 2 } : { interval, limit: PAGE }));
  if (mine !== generation) return;
  mergeMarkers(page.markers || []);
  drawMarkers();
}

async function loadLatest() {
  const mine = ++generation;
  exhausted = false;
  const [page, lastMinute, hours] = await Promise.all([
    candlesGet(candlesUrl({ interval, limit: PAGE })),
    interval === "1m" ? null : candlesGet(candlesUrl({ interval: "1m", limit: 3 })), // the newest closed minute
    candlesGet(candlesUrl({ interval: "1h", limit: 2 })),
  ]);
  if (mine !== generation) return;
  if (!chart) makeChart();
  candles = ascending(page.candles);
  markers = page.markers || [];
  candleSeries.setData(candles.map(candleBar));
  volumeSeries.setData(candles.map(volumeBar));
  drawMarkers();
  chart.timeScale().scrollToRealTime();
  pointed = null;
  const last = candles[candles.length - 1] || null;
  showReadout(last);
  const minute = interval === "1m" ? (last ? last.t : -1) : lastMinute.candles.length ? Math.max(...lastMinute.candles.map((c) => c.t)) : -1;
  forming.seconds = SECONDS[interval];
  forming.reset(last, minute);
  const hourly = ascending(hours.candles);
  let [prev, current] = hourly.length === 2 ? hourly : [null, hourly[0] || null];
  const thisHour = Math.floor(Date.now() / 3600000) * 3600;
  if (current && current.t < thisHour) [prev, current] = [current.t === thisHour - 3600 ? current : null, null];
  previousHourVolume = prev ? prev.v : null;
  hour.reset(current, minute);
  hourStart = current ? current.t : null;
  hourVolume = current ? current.v : 0;
  showRatio(current);
  // The chart paints in its animation frame, queued by setData; this one runs right after it.
  window.requestAnimationFrame(() => {
    if (!performance.getEntriesByName("volspike:first-candles").length) performance.mark("volspike:first-candles");
    $("#chart").setAttribute("aria-busy", "false");
  });
}

function showRatio(current) {
  const volume = current ? current.v : 0;
  const value = previousHourVolume ? volume / previousHourVolume : 0;
  $("#hour-volume").textContent = usd(volume);
  const node = $("#hour-ratio");
  node.textContent = ratio(value);
  node.classList.toggle("hot", value >= 3);
  const last = candles[candles.length - 1];
  if (last) $("#last-price").textContent = priceText(last.c);
  showChange();
}

async function loadOlder() {
  if (loadingOlder || exhausted || !candles.length) return;
  loadingOlder = true;
  const mine = generation;
  const oldest = candles[0].t;
  try {
    const page = await candlesGet(candlesUrl({ interval, to: oldest, limit: PAGE }));
    if (mine !== generation) return;
    const older = ascending(page.candles).filter((c) => c.t < oldest);
    if (!older.length) {
      exhausted = true;
      return;
    }
    candles = [...older, ...candles];
    mergeMarkers(page.markers || []);
    // The view stays where it is, counted from the newest candle (which older ones do not move).
    const position = chart.timeScale().scrollPosition();
    candleSeries.setData(candles.map(candleBar));
    volumeSeries.setData(candles.map(volumeBar));
    drawMarkers();
    chart.timeScale().scrollToPosition(position, false);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    status(t("error"), "error");
  } finally {
    loadingOlder = false;
  }
}

function onLive(message) {
  if (message.type !== "candle" || message.symbol !== symbol || !chart) return;
  const bar = forming.add(message.candle);
  if (bar) {
    candleSeries.update(candleBar(bar));
    volumeSeries.update(volumeBar(bar));
    const last = candles[candles.length - 1];
    if (!last || bar.t > last.t) candles.push(bar);
    else candles[candles.length - 1] = bar;
    if (pointed === null) showReadout(bar);
  }
  const hourBar = hour.add(message.candle);
  if (hourBar) {
    if (hourStart !== null && hourBar.t > hourStart) previousHourVolume = hourVolume; // a new hour began
    hourStart = hourBar.t;
    hourVolume = hourBar.v;
    showRatio(hourBar);
  }
}

function wireTimeframes() {
  const buttons = [...document.querySelectorAll("#timeframes button")];
  for (const button of buttons) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === interval));
    button.addEventListener("click", async () => {
      if (button.dataset.interval === interval) return;
      interval = button.dataset.interval;
      haptic();
      for (const other of buttons) other.setAttribute("aria-pressed", String(other === button));
      const url = new URL(window.location.href);
      url.searchParams.set("interval", interval);
      window.history.replaceState(null, "", url);
      await loadLatest().catch(reportError);
    });
  }
}

function wireStar(user) {
  const star = $("#chart-star");
  if (!user) return;
  star.hidden = false;
  api("/api/watchlist")
    .then((list) => star.setAttribute("aria-pressed", String(list.symbols.includes(symbol))))
    .catch(reportError);
  star.addEventListener("click", async () => {
    const watched = star.getAttribute("aria-pressed") !== "true";
    star.setAttribute("aria-pressed", String(watched));
    haptic();
    try {
      await setWatched(symbol, watched);
    } catch (error) {
      star.setAttribute("aria-pressed", String(!watched));
      reportError(error);
    }
  });
}

function reportError(error) {
  if (!(error instanceof ApiError)) throw error;
  status(error.error === "watchlist_full" ? t("watchlistFull") : t("error"), "error");
}

function onAlert(message) {
  if (message.type !== "alert" || message.alert.symbol !== symbol || !chart) return;
  const alert = message.alert;
  mergeMarkers([{ t: Math.floor(Date.parse(alert.detectedAt) / 1000), type: alert.type, ratio: alert.ratio }]);
  drawMarkers();
}

async function main() {
  holdVerticalSwipes();
  const first = loadLatest().catch(reportError);
  wireTimeframes(); // before the user is known: a tap on a timeframe is never lost
  wireBackToNow();
  const user = await boot({ inner: true });
  useZone(user && user.timeZone);
  wireStar(user);
  await first;
  loadDayOpen().catch(reportError);
  window.setInterval(() => loadDayOpen().catch(reportError), 60_000); // the 24 hours move on
  const live = user && user.tier === "elite"; // alerts reach elite on /ws as they fire
  connectLive([{ channel: "candles", symbol }, ...(live ? [{ channel: "alerts" }] : [])], (message) => {
    onLive(message);
    onAlert(message);
  });
  if (user && user.tier !== "free") await refreshMarkers().catch(reportError);
  if (!live) {
    window.setInterval(() => {
      if (document.visibilityState === "visible") refreshMarkers(true).catch(reportError);
    }, MARKER_POLL_MS);
  }
}

main();
