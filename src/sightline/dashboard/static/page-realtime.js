// Realtime: the four live cards, a per-minute chart and the event stream, pushed by SSE.
import { h, replace, number, percent, timeOnly, flag, loading, errorBox } from "./dom.js";
import { api, apiUrl } from "./api.js";
import { today } from "./state.js";
import { lineChart } from "./chart.js";
import { pageHeader } from "./controls.js";

const MINUTES = 30;
const CARDS = [
  ["activeUsers", "Active users (5 min)", number],
  ["pageViewsLastMinute", "Page views, last minute", number],
  ["clicksLastMinute", "Clicks, last minute", number],
  ["conversionRate", "Conversion rate today", percent],
];

export async function render(root, ctx) {
  const status = h("span", { class: "subtitle", id: "live-status", role: "status" }, "Connecting…");
  root.append(pageHeader("Realtime", status));
  const values = {};
  const cards = h(
    "section",
    { class: "kpis", "aria-label": "Live figures" },
    CARDS.map(([key, label]) => {
      values[key] = h("div", { class: "kpi-value", "data-live": key }, "–");
      return h("div", { class: "card kpi", "data-kpi": key }, h("div", { class: "kpi-label" }, label), values[key]);
    }),
  );
  const chartBox = h("div", {}, loading("Loading chart…"));
  const stream = h("ol", { class: "stream", "aria-live": "polite", "aria-label": "Latest events" });
  root.append(
    cards,
    h(
      "div",
      { class: "live" },
      h("section", { class: "card" }, h("h2", {}, "Page views per minute"), chartBox),
      h("section", { class: "card" }, h("h2", {}, h("span", { class: "pulse", "aria-hidden": "true" }), "Live events"), stream),
    ),
  );

  // per-minute page views, keyed by the minute's start (ms)
  const perMinute = new Map();
  const minuteOf = (ms) => Math.floor(ms / 60000) * 60000;
  const drawChart = () => {
    const now = minuteOf(Date.now());
    const minutes = Array.from({ length: MINUTES }, (_, i) => now - (MINUTES - 1 - i) * 60000);
    replace(
      chartBox,
      lineChart({
        labels: minutes.map((m) => new Date(m).toTimeString().slice(0, 5)),
        series: [{ name: "Page views", values: minutes.map((m) => perMinute.get(m) || 0) }],
        label: "Page views per minute, last 30 minutes",
        bars: true,
      }),
    );
  };
  try {
    const day = today(ctx.site.timezone);
    const answer = await api("/api/v1/analytics/timeseries", {
      params: { site: ctx.site.id, startDate: day, endDate: day, granularity: "minute", metrics: "pageViews" },
    });
    for (const point of answer.series) perMinute.set(minuteOf(Date.parse(point.bucket)), point.pageViews);
  } catch (error) {
    replace(chartBox, errorBox(error));
  }
  if (!ctx.isCurrent()) return;
  drawChart();

  const showStats = (stats) => {
    for (const [key, , format] of CARDS) values[key].textContent = format(stats[key]);
  };
  const showEvents = (events) => {
    for (const event of events) {
      if (event.eventType === "page_view") {
        const m = minuteOf(event.receivedAt || Date.now());
        perMinute.set(m, (perMinute.get(m) || 0) + 1);
      }
      const where = event.pageTitle || event.pagePath || "";
      stream.prepend(
        h(
          "li",
          {},
          h("time", { class: "muted" }, timeOnly(event.receivedAt || event.timestamp)),
          h("span", { class: "type" }, event.eventType),
          h("span", { class: "meta" }, [where, event.pagePath && event.pageTitle ? `(${event.pagePath})` : "", event.country ? `${flag(event.country)} ${event.country}` : "", event.browser].filter(Boolean).join(" · ")),
        ),
      );
    }
    while (stream.children.length > 100) stream.lastElementChild.remove();
    drawChart();
  };

  const source = new EventSource(apiUrl("/api/v1/analytics/realtime/stream", { site: ctx.site.id }));
  source.addEventListener("open", () => {
    status.textContent = "Live";
  });
  source.addEventListener("error", () => {
    status.textContent = "Reconnecting…";
  });
  source.addEventListener("stats", (message) => showStats(JSON.parse(message.data)));
  source.addEventListener("events", (message) => showEvents(JSON.parse(message.data)));
  const timer = setInterval(drawChart, 15000);
  ctx.onCleanup(() => {
    source.close();
    clearInterval(timer);
  });
}
