// Products: top products with views, clicks, CTR, conversions, revenue; one product's detail.
import { h, replace, number, percent, money, loading, errorBox, empty } from "./dom.js";
import { api } from "./api.js";
import { get, update } from "./state.js";
import { lineChart } from "./chart.js";
import { rangePicker, filterChips, panel, pageHeader, link } from "./controls.js";

const COLUMNS = [
  ["views", "Views", number],
  ["uniqueViews", "Unique views", number],
  ["clicks", "Clicks", number],
  ["ctr", "CTR", percent],
  ["conversions", "Conversions", number],
  ["revenue", "Revenue", money],
  ["conversionRate", "Conv. rate", percent],
];

export async function render(root, ctx) {
  const product = get("product");
  if (product) return detail(root, ctx, product);
  const sort = get("sort", "views:desc");
  root.append(pageHeader("Products"), h("div", { class: "toolbar" }, rangePicker(ctx.range)), filterChips());
  const box = h("section", { class: "card table-wrap", "aria-label": "Top products" }, loading());
  root.append(box);
  try {
    const answer = await api("/api/v1/analytics/products/top", { params: { ...ctx.query, sort, limit: 50 } });
    if (!answer.products.length) return replace(box, empty("No product views in this period"));
    const [sortKey, direction] = sort.split(":");
    const head = h(
      "tr",
      {},
      h("th", { scope: "col" }, "Product"),
      COLUMNS.map(([key, label]) =>
        h(
          "th",
          { scope: "col", class: "num", "aria-sort": key === sortKey ? (direction === "asc" ? "ascending" : "descending") : null },
          h("button", { type: "button", class: "link-button", onclick: () => update({ sort: `${key}:${key === sortKey && direction === "desc" ? "asc" : "desc"}` }) }, label),
        ),
      ),
    );
    const rows = answer.products.map((p) =>
      h(
        "tr",
        { "data-product": p.productId },
        h(
          "td",
          { class: "product-cell" },
          link("products", { product: p.productId }, p.productName || p.productId, { class: "product-name" }),
          p.productName ? h("span", { class: "product-id" }, p.productId) : null,
        ),
        COLUMNS.map(([key, , format]) => h("td", { class: "num" }, format(p[key]))),
      ),
    );
    replace(box, h("table", { class: "data" }, h("thead", {}, head), h("tbody", {}, rows)));
  } catch (error) {
    replace(box, errorBox(error));
  }
}

async function detail(root, ctx, product) {
  const filter = [...(ctx.query.filter || []), `product:is:${product.replace(/\\/g, "\\\\").replace(/,/g, "\\,")}`];
  const query = { ...ctx.query, filter };
  const title = h("span", { class: "subtitle", "data-product-name": "" });
  root.append(
    pageHeader(`Product ${product}`, title, link("products", { product: null }, "← All products")),
    h("div", { class: "toolbar" }, rangePicker(ctx.range)),
    filterChips(),
  );
  const kpis = h("section", { class: "kpis" }, loading());
  const chart = h("section", { class: "card chart-card", "aria-label": "Views and clicks per day" }, loading());
  root.append(kpis, chart);
  const breakdown = (dimension) => async () => (await api("/api/v1/analytics/breakdown", { params: { ...query, dimension, metrics: "visitors", limit: 10 } })).rows;
  root.append(
    h(
      "div",
      { class: "panels" },
      panel({ title: "Where viewers came from", id: "product-sources", tabs: [{ label: "Sources", dimension: "referrerSource", metric: "visitors", metricLabel: "Visitors", load: breakdown("referrerSource") }, { label: "Channels", dimension: "channel", metric: "visitors", metricLabel: "Visitors", load: breakdown("channel") }] }),
      panel({ title: "Devices", id: "product-devices", tabs: [{ label: "Devices", dimension: "deviceType", metric: "visitors", metricLabel: "Visitors", load: breakdown("deviceType") }, { label: "Pages", dimension: "page", metric: "visitors", metricLabel: "Visitors", load: breakdown("page") }] }),
    ),
  );
  try {
    const [top, daily] = await Promise.all([
      api("/api/v1/analytics/products/top", { params: { ...query, limit: 1 } }),
      api("/api/v1/analytics/dashboard", { params: query }),
    ]);
    const stats = top.products.find((p) => p.productId === product) || {};
    if (stats.productName) title.textContent = stats.productName;
    replace(kpis, COLUMNS.map(([key, label, format]) => h("div", { class: "card kpi", "data-kpi": key }, h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value" }, format(stats[key] || 0)))));
    replace(
      chart,
      lineChart({
        labels: daily.series.map((d) => d.date.slice(5)),
        series: [
          { name: "Product views", values: daily.series.map((d) => d.productViews) },
          { name: "Affiliate clicks", values: daily.series.map((d) => d.affiliateClicks) },
        ],
        label: `Views and clicks of ${product} per day`,
      }),
    );
  } catch (error) {
    replace(kpis, errorBox(error));
  }
}
