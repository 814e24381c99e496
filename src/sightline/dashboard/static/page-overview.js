// Overview: KPI cards with change, the time series, and breakdown panels (click to filter).
import { h, replace, number, percent, duration, money, flag, countryName, loading, errorBox, empty } from "./dom.js";
import { api } from "./api.js";
import { daysIn } from "./state.js";
import { lineChart } from "./chart.js";
import { rangePicker, filterChips, panel, pageHeader, granularityPicker } from "./controls.js";

const KPIS = [
  ["uniqueVisitors", "Visitors", number, false],
  ["pageViews", "Page views", number, false],
  ["sessions", "Sessions", number, false],
  ["bounceRate", "Bounce rate", percent, true],
  ["avgSessionDuration", "Session duration", duration, false],
  ["conversions", "Conversions", number, false],
  ["revenue", "Revenue", money, false],
];

/** The period of the same length just before (as the API's compare=previous). */
function previousRange({ startDate, endDate }) {
  const day = 86400000;
  const length = Math.round((Date.parse(endDate) - Date.parse(startDate)) / day) + 1;
  const iso = (ms) => new Date(ms).toISOString().slice(0, 10);
  return { startDate: iso(Date.parse(startDate) - length * day), endDate: iso(Date.parse(startDate) - day) };
}

/** Relative change in percent, one decimal; null when there was nothing before. */
function relativeChange(current, previous) {
  if (!previous) return null;
  return Math.round((1000 * (current - previous)) / previous) / 10;
}

function changeBadge([key, , , lowerIsBetter], change) {
  const delta = change ? change[key] : undefined;
  if (delta === undefined) return h("span", { class: "change flat" }, "\u00a0");
  if (delta !== null) {
    const good = lowerIsBetter ? delta < 0 : delta > 0;
    const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "■";
    return h(
      "span",
      { class: `change ${delta === 0 ? "flat" : good ? "up" : "down"}`, title: "Change vs the previous period" },
      `${arrow} ${Math.abs(delta).toFixed(1)}%`,
      h("span", { class: "sr-only" }, " vs the previous period"),
    );
  }
  return h("span", { class: "change flat" }, "new");
}

function kpiCard(kpi, totals, change) {
  const [key, label, format] = kpi;
  return h(
    "div",
    { class: "card kpi", "data-kpi": key },
    h("div", { class: "kpi-label" }, label),
    h("div", { class: "kpi-value" }, format(totals[key])),
    changeBadge(kpi, change),
  );
}

function bucketLabel(bucket, granularity) {
  if (granularity === "minute" || granularity === "hour") return bucket.slice(11, 16);
  if (granularity === "month") return bucket.slice(0, 7);
  return bucket.slice(5, 10);
}

const VITAL_NAMES = {
  lcp: "Largest Contentful Paint",
  inp: "Interaction to Next Paint",
  cls: "Cumulative Layout Shift",
  fcp: "First Contentful Paint",
  ttfb: "Time to First Byte",
  fid: "First Input Delay",
};
const RATINGS = { good: "Good", needs_improvement: "Needs improvement", poor: "Poor" };

/** The p75 of each Core Web Vital with its rating. */
function vitalsCard(query) {
  const body = h("div", {}, loading());
  api("/api/v1/analytics/vitals", { params: query })
    .then((answer) => {
      const measured = answer.vitals.filter((v) => v.samples);
      if (!measured.length) return replace(body, empty("No web vitals in this period"));
      replace(
        body,
        h("div", { class: "rows-head" }, h("span", {}, "Vital (75th percentile)"), h("span", {}, "Rating")),
        h(
          "ul",
          { class: "rows" },
          measured.map((v) =>
            h(
              "li",
              { class: "row static vital", "data-vital": v.name },
              h("span", { class: "row-label" }, h("abbr", { title: VITAL_NAMES[v.name] || v.name }, v.name.toUpperCase()), " ", v.unit === "ms" ? `${number(v.p75)} ms` : String(v.p75)),
              h("span", { class: `rating ${v.rating}` }, RATINGS[v.rating] || "–"),
            ),
          ),
        ),
      );
    })
    .catch((error) => replace(body, errorBox(error)));
  return h("section", { class: "card panel", "data-panel": "vitals" }, h("div", { class: "panel-head" }, h("h2", {}, "Web vitals")), body);
}

export async function render(root, ctx) {
  const { range, query } = ctx;
  const days = daysIn(range);
  const granularity = granularityPicker(range, days);
  root.append(
    pageHeader("Overview", h("span", { class: "subtitle" }, `${ctx.site.domain} · ${range.startDate} – ${range.endDate}`)),
    h("div", { class: "toolbar" }, rangePicker(range), granularity.control),
    filterChips(),
  );
  const kpis = h("section", { class: "kpis", "aria-label": "Key figures" }, loading());
  const chart = h("section", { class: "card chart-card", "aria-label": "Visitors and page views over time" }, loading("Loading chart…"));
  root.append(kpis, chart);

  const breakdown = (dimension, metric = "visitors", extra = {}) => async () => {
    const answer = await api("/api/v1/analytics/breakdown", {
      params: { ...query, dimension, metrics: metric, limit: extra.limit || 10, filter: [...(query.filter || []), ...(extra.filter || [])] },
    });
    return answer.rows;
  };
  const tab = (label, dimension, metric = "visitors", more = {}) => ({
    label,
    dimension,
    metric,
    metricLabel: more.metricLabel || { visitors: "Visitors", pageViews: "Views", sessions: "Sessions", events: "Events" }[metric],
    load: breakdown(dimension, metric, more),
    ...more,
  });

  const grid = h("div", { class: "panels" });
  root.append(grid);

  // the figures first; the previous period (for the change badges) right after
  const dashboard = api("/api/v1/analytics/dashboard", { params: query });
  // the dashboard's daily series serves a daily chart; other granularities ask for theirs
  const series =
    granularity.value === "day"
      ? dashboard.then((answer) => ({
          granularity: "day",
          series: answer.series.map((d) => ({ bucket: d.date, visitors: d.uniqueVisitors, pageViews: d.pageViews })),
        }))
      : api("/api/v1/analytics/timeseries", {
          params: { ...query, metrics: "visitors,pageViews", granularity: granularity.value },
        });
  const figures = Promise.allSettled([dashboard, series]);

  grid.append(
    panel({ after: figures, title: "Pages", id: "pages", tabs: [tab("Top pages", "page", "pageViews"), tab("Entry pages", "entryPage", "sessions"), tab("Exit pages", "exitPage", "sessions")] }),
    panel({
      after: figures,
      title: "Sources",
      id: "sources",
      tabs: [
        tab("Sources", "referrerSource", "visitors", { display: (v) => v || "Direct / none" }),
        tab("Channels", "channel"),
        tab("Campaigns", "utmCampaign"),
        tab("UTM source", "utmSource"),
        tab("UTM medium", "utmMedium"),
      ],
    }),
    panel({
      after: figures,
      title: "Countries",
      id: "countries",
      tabs: [tab("Countries", "country", "visitors", { display: (v) => [flag(v), countryName(v)].filter(Boolean).join(" ") }), tab("Cities", "city")],
    }),
    panel({ after: figures, title: "Devices", id: "devices", tabs: [tab("Devices", "deviceType"), tab("Browsers", "browser"), tab("OS", "os")] }),
    panel({ after: figures, title: "Events", id: "events", tabs: [tab("Custom events", "eventType", "events", { metricLabel: "Events" })] }),
  );

  let visitorsTotal = 1;
  try {
    const answer = await dashboard;
    if (!ctx.isCurrent()) return;
    visitorsTotal = answer.totals.uniqueVisitors || 1;
    replace(kpis, KPIS.map((kpi) => kpiCard(kpi, answer.totals, undefined)));
    api("/api/v1/analytics/dashboard", { params: { ...query, ...previousRange(range) } })
      .then((before) => {
        if (!ctx.isCurrent()) return;
        const change = Object.fromEntries(KPIS.map(([key]) => [key, relativeChange(answer.totals[key], before.totals[key])]));
        for (const kpi of KPIS) {
          const card = kpis.querySelector(`[data-kpi="${kpi[0]}"]`);
          if (card) card.lastElementChild.replaceWith(changeBadge(kpi, change));
        }
      })
      .catch(() => {});
  } catch (error) {
    replace(kpis, errorBox(error));
  }
  grid.append(
    panel({
      title: "Scroll depth",
      id: "scroll",
      tabs: [
        tab("Visitors reaching", "prop:depth", "visitors", {
          filter: ["eventType:is:scroll_depth"],
          clickable: false,
          percentOfTotal: true,
          total: visitorsTotal,
          valueLabel: "Depth",
          metricLabel: "of visitors",
          display: (v) => `${v}%`,
        }),
      ],
    }),
    vitalsCard(query),
    panel({
      title: "Errors and slow pages",
      id: "problems",
      tabs: [
        tab("JS errors", "page", "events", { filter: ["eventType:is:js_error"], metricLabel: "Errors", valueLabel: "Page" }),
        tab("Slow pages", "page", "events", { filter: ["eventType:is:slow_page"], metricLabel: "Slow loads", valueLabel: "Page" }),
      ],
    }),
  );
  try {
    const answer = await series;
    if (!ctx.isCurrent()) return;
    const points = answer.series;
    if (!points.some((p) => p.visitors || p.pageViews)) {
      replace(chart, empty("No visits in this period"));
    } else {
      replace(
        chart,
        lineChart({
          labels: points.map((p) => bucketLabel(p.bucket, answer.granularity)),
          series: [
            { name: "Visitors", values: points.map((p) => p.visitors) },
            { name: "Page views", values: points.map((p) => p.pageViews) },
          ],
          label: `Visitors and page views per ${answer.granularity}`,
        }),
      );
    }
  } catch (error) {
    replace(chart, errorBox(error));
  }
}
