// Controls shared by pages: date range picker, filter chips, panels with clickable rows.
import { h, replace, number, loading, empty, errorBox, field, uid } from "./dom.js";
import { PRESETS, get, filters, update, parseFilter, makeFilter, href, navigate } from "./state.js";
import { meter } from "./chart.js";

export const DIMENSION_LABELS = {
  page: "Page",
  entryPage: "Entry page",
  exitPage: "Exit page",
  referrerSource: "Source",
  channel: "Channel",
  utmSource: "UTM source",
  utmMedium: "UTM medium",
  utmCampaign: "UTM campaign",
  utmTerm: "UTM term",
  utmContent: "UTM content",
  country: "Country",
  region: "Region",
  city: "City",
  deviceType: "Device",
  browser: "Browser",
  os: "OS",
  eventType: "Event",
  product: "Product",
};

const OP_LABELS = { is: "is", is_not: "is not", contains: "contains", matches: "matches" };

export function dimensionLabel(dimension) {
  if (DIMENSION_LABELS[dimension]) return DIMENSION_LABELS[dimension];
  if (dimension.startsWith("prop:")) return `Property ${dimension.slice(5)}`;
  if (dimension.startsWith("variant:")) return `Variant of ${dimension.slice(8)}`;
  return dimension;
}

/** The date range picker: a preset select, and two date inputs for a custom range. */
export function rangePicker(range) {
  const select = h(
    "select",
    {
      id: uid("range"),
      onchange: (event) => {
        const value = event.target.value;
        if (value === "custom") update({ period: "custom", from: range.startDate, to: range.endDate, page: null });
        else update({ period: value, from: null, to: null, page: null });
      },
    },
    PRESETS.map(([value, label]) => h("option", { value, selected: value === range.period }, label)),
  );
  const box = h("div", { class: "range" }, field("Date range", select));
  if (range.period === "custom") {
    const from = h("input", { type: "date", value: range.startDate, name: "from" });
    const to = h("input", { type: "date", value: range.endDate, name: "to" });
    const apply = h("button", { type: "submit", class: "button" }, "Apply");
    const form = h(
      "form",
      {
        class: "custom-range",
        onsubmit: (event) => {
          event.preventDefault();
          if (from.value && to.value) update({ period: "custom", from: from.value, to: to.value, page: null });
        },
      },
      field("From", from),
      field("To", to),
      apply,
    );
    box.append(form);
  }
  return box;
}

/** The active filters as removable chips (each a button: "Remove filter …"). */
export function filterChips() {
  const active = filters();
  if (!active.length) return h("div", { class: "chips", hidden: true });
  const chips = active.map((text, index) => {
    const { dimension, op, value } = parseFilter(text);
    const rest = active.filter((_, i) => i !== index);
    const label = `${dimensionLabel(dimension)} ${OP_LABELS[op]} ${value || "(none)"}`;
    return h(
      "button",
      {
        type: "button",
        class: "chip",
        "aria-label": `Remove filter: ${label}`,
        title: "Remove this filter",
        onclick: () => update({ filter: rest, page: null }),
      },
      h("span", {}, label),
      h("span", { class: "chip-x", "aria-hidden": "true" }, "×"),
    );
  });
  const clearAll = h(
    "button",
    { type: "button", class: "link-button", onclick: () => update({ filter: null, page: null }) },
    "Clear all",
  );
  return h("div", { class: "chips", role: "group", "aria-label": "Active filters" }, chips, clearAll);
}

/** Add a filter to the URL (replacing one on the same dimension). */
export function addFilter(dimension, value, op = "is") {
  const kept = filters().filter((f) => parseFilter(f).dimension !== dimension);
  update({ filter: [...kept, makeFilter(dimension, value, op)], page: null });
}

/**
 * A card listing rows of one breakdown with tabs:
 * panel({title, tabs: [{label, load: async () => rows, dimension, metric, metricLabel, display, clickable}]})
 * Each row: {value, [metric]: n}. Clicking a row filters the whole dashboard by its value.
 */
export function panel({ title, tabs, id, after }) {
  const body = h("div", { class: "panel-body" });
  const tabId = id || uid("panel");
  let current = 0;
  const tabButtons = tabs.map((tab, index) =>
    h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `${tabId}-tab-${index}`,
        "aria-selected": String(index === 0),
        "aria-controls": `${tabId}-body`,
        class: "tab",
        onclick: () => show(index),
      },
      tab.label,
    ),
  );
  const head = h(
    "div",
    { class: "panel-head" },
    h("h2", {}, title),
    tabs.length > 1 ? h("div", { role: "tablist", class: "tabs", "aria-label": title }, tabButtons) : null,
  );
  body.id = `${tabId}-body`;
  body.setAttribute("role", tabs.length > 1 ? "tabpanel" : "region");
  body.setAttribute("aria-label", title);

  async function show(index) {
    current = index;
    tabButtons.forEach((b, i) => b.setAttribute("aria-selected", String(i === index)));
    const tab = tabs[index];
    replace(body, loading());
    try {
      const rows = await tab.load();
      if (current !== index) return;
      replace(body, rowsTable(tab, rows));
    } catch (error) {
      replace(body, errorBox(error));
    }
  }
  replace(body, loading());
  // panels wait for the page's key figures, which the reader looks at first
  Promise.resolve(after).finally(() => show(0));
  return h("section", { class: "card panel", "data-panel": tabId }, head, body);
}

function rowsTable(tab, rows) {
  if (!rows.length) return empty();
  const metric = tab.metric;
  const top = Math.max(...rows.map((r) => r[metric] || 0), 1);
  const total = tab.total || top;
  const list = h("ul", { class: "rows" });
  for (const row of rows) {
    const value = row.value;
    const shown = tab.display ? tab.display(value) : value || "(none)";
    const amount = row[metric] || 0;
    const figure = tab.percentOfTotal ? `${((amount / Math.max(total, 1)) * 100).toFixed(1)}%` : number(amount);
    const clickable = tab.clickable !== false && value !== "" && tab.dimension;
    const content = [
      meter(amount / (tab.percentOfTotal ? Math.max(total, 1) : top)),
      h("span", { class: "row-label" }, shown),
      h("span", { class: "row-value" }, figure),
    ];
    const item = clickable
      ? h(
          "button",
          {
            type: "button",
            class: "row",
            title: `Filter by ${dimensionLabel(tab.dimension)}: ${value}`,
            onclick: () => addFilter(tab.dimension, value),
          },
          content,
        )
      : h("div", { class: "row static" }, content);
    list.append(h("li", {}, item));
  }
  return h(
    "div",
    {},
    h("div", { class: "rows-head" }, h("span", {}, tab.valueLabel || dimensionLabel(tab.dimension || "")), h("span", {}, tab.metricLabel || metric)),
    list,
  );
}

/** An <a> that navigates inside the dashboard without reloading. */
export function link(view, changes, text, attrs = {}) {
  const url = href(view, changes);
  return h(
    "a",
    {
      href: url,
      ...attrs,
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(url);
      },
    },
    text,
  );
}

export function pageHeader(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", {}, title), extra);
}

export function granularityPicker(range, days) {
  const allowed = days <= 2 ? ["minute", "hour"] : days <= 92 ? ["hour", "day", "week"] : ["day", "week", "month"];
  let chosen = get("granularity");
  if (!allowed.includes(chosen)) chosen = days <= 2 ? "hour" : days <= 92 ? "day" : "week";
  const select = h(
    "select",
    { onchange: (event) => update({ granularity: event.target.value }) },
    allowed.map((g) => h("option", { value: g, selected: g === chosen }, g[0].toUpperCase() + g.slice(1))),
  );
  return { control: field("Granularity", select), value: chosen };
}
