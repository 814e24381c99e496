// The URL is the state: page (path), site, range, filters, granularity and page-specific keys.
// Every view can be shared by copying the address bar.

export const PRESETS = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["90d", "Last 90 days"],
  ["month", "This month"],
  ["lastmonth", "Last month"],
  ["12mo", "Last 12 months"],
  ["custom", "Custom range"],
];

export const OPERATORS = ["is_not", "contains", "matches", "is"];

export function currentView() {
  const first = location.pathname.split("/").filter(Boolean)[0];
  return first || "overview";
}

export function params() {
  return new URLSearchParams(location.search);
}

export function get(name, fallback = "") {
  const value = params().get(name);
  return value === null ? fallback : value;
}

export function filters() {
  return params().getAll("filter");
}

/** A URL for `view` with the current query changed by `changes` (null removes a key,
 * an array sets a repeated key). `keep: false` starts from the shared keys only. */
export function href(view, changes = {}, { keep = true } = {}) {
  const current = params();
  const next = new URLSearchParams();
  const shared = ["site", "period", "from", "to", "filter"];
  for (const [key, value] of current) {
    if (keep || shared.includes(key)) next.append(key, value);
  }
  for (const [key, value] of Object.entries(changes)) {
    next.delete(key);
    if (value === null || value === undefined || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) next.append(key, item);
  }
  const path = view === "overview" ? "/" : `/${view}`;
  const query = next.toString();
  return query ? `${path}?${query}` : path;
}

let onChange = () => {};
export function listen(callback) {
  onChange = callback;
  window.addEventListener("popstate", () => onChange());
}

export function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  onChange();
}

export function update(changes, options) {
  navigate(href(currentView(), changes), options);
}

// -- dates in the site's time zone -------------------------------------------------------

export function today(timeZone) {
  // en-CA formats as YYYY-MM-DD
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

function shift(iso, days) {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function monthStart(iso, months = 0) {
  const d = new Date(`${iso.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.toISOString().slice(0, 10);
}

/** {startDate, endDate} of the URL's range in the site's time zone. */
export function range(timeZone) {
  const period = get("period", "30d");
  const now = today(timeZone || "UTC");
  switch (period) {
    case "today":
      return { startDate: now, endDate: now, period };
    case "yesterday":
      return { startDate: shift(now, -1), endDate: shift(now, -1), period };
    case "7d":
      return { startDate: shift(now, -6), endDate: now, period };
    case "90d":
      return { startDate: shift(now, -89), endDate: now, period };
    case "month":
      return { startDate: monthStart(now), endDate: now, period };
    case "lastmonth":
      return { startDate: monthStart(now, -1), endDate: shift(monthStart(now), -1), period };
    case "12mo":
      return { startDate: shift(monthStart(now, -11), 0), endDate: now, period };
    case "custom": {
      const from = get("from", shift(now, -29));
      const to = get("to", now);
      return from <= to ? { startDate: from, endDate: to, period } : { startDate: to, endDate: from, period };
    }
    default:
      return { startDate: shift(now, -29), endDate: now, period: "30d" };
  }
}

export function daysIn({ startDate, endDate }) {
  return Math.round((Date.parse(endDate) - Date.parse(startDate)) / 86400000) + 1;
}

// -- filters -------------------------------------------------------------------------------

/** One filter value as the API reads it: "," and "\" escaped. */
export function escapeValue(value) {
  return String(value).replace(/\\/g, "\\\\").replace(/,/g, "\\,");
}

export function makeFilter(dimension, value, op = "is") {
  return `${dimension}:${op}:${escapeValue(value)}`;
}

/** "country:is:DE" -> {dimension, op, value}; dimensions may hold colons (prop:plan). */
export function parseFilter(text) {
  for (const op of OPERATORS) {
    const marker = `:${op}:`;
    const at = text.indexOf(marker);
    if (at > 0) {
      const raw = text.slice(at + marker.length);
      return { dimension: text.slice(0, at), op, value: raw.replace(/\\,/g, ",").replace(/\\\\/g, "\\") };
    }
  }
  return { dimension: text, op: "is", value: "" };
}
