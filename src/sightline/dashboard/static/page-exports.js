// Exports: the range's events as CSV, JSON, NDJSON or Parquet (admins).
import { h } from "./dom.js";
import { apiUrl } from "./api.js";
import { rangePicker, filterChips, pageHeader } from "./controls.js";

const FORMATS = [
  ["csv", "CSV", "spreadsheets"],
  ["json", "JSON", "one array"],
  ["ndjson", "NDJSON", "one event per line"],
  ["parquet", "Parquet", "data tools (DuckDB, pandas, Spark)"],
];

export async function render(root, ctx) {
  root.append(pageHeader("Exports"), h("div", { class: "toolbar" }, rangePicker(ctx.range)), filterChips());
  root.append(
    h(
      "section",
      { class: "card" },
      h("h2", {}, `Events from ${ctx.range.startDate} to ${ctx.range.endDate}`),
      h("p", { class: "muted" }, "Every stored event of the range with the active filters, in time order. Needs the admin role on the site."),
      h(
        "ul",
        { class: "actions" },
        FORMATS.map(([format, label, hint]) =>
          h("li", {}, h("a", { class: "button", href: apiUrl("/api/v1/analytics/export", { ...ctx.query, format }), download: "", "data-format": format }, `Download ${label}`), h("span", { class: "muted" }, ` ${hint}`)),
        ),
      ),
    ),
  );
}
