// Building the page: every string goes in as text (textContent / text nodes), never as markup.

/**
 * h("a", {href: "/x", class: "nav", onclick: fn}, "text", childNode, [more])
 * Attribute values are set with setAttribute (never "on…" strings: listeners are functions).
 */
export function h(tag, attrs = {}, ...children) {
  const svg = attrs && attrs.svg;
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false || key === "svg") continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && !svg) {
      el.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

const numberFormat = new Intl.NumberFormat("en");
const compactFormat = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

export function number(n) {
  if (n === null || n === undefined) return "–";
  return Math.abs(n) >= 100000 ? compactFormat.format(n) : numberFormat.format(n);
}

export function percent(n) {
  return n === null || n === undefined ? "–" : `${Number(n).toFixed(1)}%`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function money(cents) {
  if (cents === null || cents === undefined) return "–";
  return new Intl.NumberFormat("en", { style: "currency", currency: "EUR" }).format(cents / 100);
}

/** A country's flag from its ISO code (regional indicator letters), or a globe. */
export function flag(code) {
  // no symbol for an unknown country (a globe drew as an empty box without emoji fonts)
  if (!/^[A-Za-z]{2}$/.test(code || "")) return "";
  const base = 0x1f1e6 - 65;
  const upper = code.toUpperCase();
  return String.fromCodePoint(base + upper.charCodeAt(0), base + upper.charCodeAt(1));
}

let regionNames = null;
export function countryName(code) {
  if (!code) return "(unknown)";
  try {
    regionNames = regionNames || new Intl.DisplayNames(["en"], { type: "region" });
    return regionNames.of(code.toUpperCase()) || code;
  } catch {
    return code;
  }
}

export function dateTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

export function shortDateTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

export function timeOnly(ms) {
  return new Date(ms).toLocaleTimeString("en-GB");
}

/** Announce a message to screen readers and show it briefly. */
export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = h("div", { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}

export function loading(label = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
}

export function empty(label = "No data for this period") {
  return h("div", { class: "empty" }, label);
}

export function errorBox(error) {
  const text = error && error.message ? error.message : String(error);
  return h("div", { class: "error-box", role: "alert" }, text);
}

let ids = 0;
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: label + control (+ optional hint). */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  return h(
    "div",
    { class: "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null,
  );
}
