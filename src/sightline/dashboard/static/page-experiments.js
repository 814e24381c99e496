// Experiments (A/B tests): the site's experiments, a form to define one, start and stop,
// and each experiment's results. Shows "not available" on a server without the API.
import { h, replace, number, loading, errorBox, empty, field, toast } from "./dom.js";
import { api } from "./api.js";
import { get } from "./state.js";
import { lineChart } from "./chart.js";
import { pageHeader, link } from "./controls.js";

const pct = (x, digits = 1) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`);
const interval = (ci) => (Array.isArray(ci) ? `${pct(ci[0])} … ${pct(ci[1])}` : "–");

export async function render(root, ctx) {
  const key = get("experiment");
  if (key) return results(root, ctx, key);
  root.append(pageHeader("Experiments"));
  const box = h("section", { class: "card table-wrap", "aria-label": "Experiments" }, loading());
  root.append(box);
  let list;
  try {
    list = await api("/api/v1/experiments", { params: { site: ctx.site.id } });
  } catch (error) {
    if (error.status === 404 && error.code === "not_found") {
      return replace(box, h("p", { class: "empty", id: "not-available" }, "Experiments are not available on this server."));
    }
    return replace(box, errorBox(error));
  }
  const reload = async () => {
    replace(root);
    await render(root, ctx);
  };
  const change = async (path, done) => {
    try {
      await api(path, { method: "POST", params: { site: ctx.site.id } });
      toast(done);
      await reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  if (!list.length) {
    replace(box, empty("No experiments yet: define one below."));
  } else {
    replace(
      box,
      h(
        "table",
        { class: "data" },
        h("thead", {}, h("tr", {}, ["Experiment", "Status", "Variants", "Goal", "Started", ""].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          list.map((e) =>
            h(
              "tr",
              { "data-experiment": e.key },
              h("td", {}, link("experiments", { experiment: e.key }, e.name || e.key), h("div", { class: "muted" }, e.key)),
              h("td", {}, h("span", { class: `status ${e.status}` }, e.status)),
              h("td", {}, e.variants.map((v) => v.key).join(", ")),
              h("td", {}, e.goal ? e.goal.eventType : "–"),
              h("td", { class: "when" }, e.startedAt ? e.startedAt.slice(0, 16).replace("T", " ") : "–"),
              h(
                "td",
                {},
                e.status === "draft"
                  ? h("button", { type: "button", class: "button", onclick: () => change(`/api/v1/experiments/${encodeURIComponent(e.key)}/start`, `Started ${e.key}`) }, "Start")
                  : e.status === "running"
                    ? h("button", { type: "button", class: "button danger", onclick: () => change(`/api/v1/experiments/${encodeURIComponent(e.key)}/stop`, `Stopped ${e.key}`) }, "Stop")
                    : null,
              ),
            ),
          ),
        ),
      ),
    );
  }
  root.append(createForm(ctx, reload));
}

function createForm(ctx, done) {
  const key = h("input", { name: "key", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}", placeholder: "checkout-cta" });
  const name = h("input", { name: "name", placeholder: "Green buy button" });
  const variants = h("input", { name: "variants", required: true, value: "control, variant" });
  const goal = h("input", { name: "goal", required: true, value: "affiliate_click" });
  const pages = h("input", { name: "pages", placeholder: "/products/* (empty: every page)" });
  const status = h("div", { class: "form-status", role: "status" });
  return h(
    "form",
    {
      class: "card stack",
      "aria-label": "Define an experiment",
      onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = "";
        const body = {
          key: key.value.trim(),
          name: name.value.trim(),
          variants: variants.value.split(",").map((v) => v.trim()).filter(Boolean).map((v) => ({ key: v, weight: 1 })),
          goal: { eventType: goal.value.trim() },
          targeting: { pages: pages.value.split(/[\s,]+/).filter(Boolean) },
        };
        try {
          await api("/api/v1/experiments", { method: "POST", params: { site: ctx.site.id }, body });
          toast(`Defined ${body.key}; start it when ready`);
          await done();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    h("h2", {}, "Define an experiment"),
    field("Key", key, "Letters, digits, _ . -; the tracker's getVariant() uses it."),
    field("Name", name),
    field("Variants", variants, "Comma-separated, equal weights; the first is the control."),
    field("Goal event", goal),
    field("Pages", pages),
    status,
    h("button", { type: "submit", class: "button primary" }, "Save as draft"),
  );
}

async function results(root, ctx, key) {
  root.append(pageHeader(`Experiment ${key}`, link("experiments", { experiment: null }, "← All experiments")));
  const box = h("div", {}, loading());
  root.append(box);
  let answer;
  try {
    answer = await api(`/api/v1/experiments/${encodeURIComponent(key)}/results`, { params: { site: ctx.site.id } });
  } catch (error) {
    return replace(box, errorBox(error));
  }
  const parts = [];
  for (const warning of answer.warnings || []) {
    parts.push(h("div", { class: warning.code === "sample_ratio_mismatch" ? "error-box" : "notice-box", role: "status" }, warning.message));
  }
  const rows = answer.variants.map((v) =>
    h(
      "tr",
      { "data-variant": v.key },
      h("th", { scope: "row" }, v.name || v.key, v.isControl ? h("span", { class: "muted" }, " (control)") : null),
      h("td", { class: "num" }, number(v.exposures)),
      h("td", { class: "num" }, number(v.conversions)),
      h("td", { class: "num" }, pct(v.conversionRate, 2)),
      h("td", { class: "num" }, interval(v.conversionRateCi)),
      h("td", { class: "num" }, v.uplift ? `${v.uplift.relative >= 0 ? "+" : ""}${pct(v.uplift.relative)}` : "–"),
      h("td", { class: "num" }, v.uplift ? v.uplift.pValue.toFixed(3) : "–"),
      h("td", { class: "num" }, pct(v.probabilityBest)),
    ),
  );
  parts.push(
    h(
      "section",
      { class: "card table-wrap", "aria-label": "Results per variant" },
      h("h2", {}, `${answer.experiment.name || key} · ${answer.experiment.status}`),
      h(
        "table",
        { class: "data" },
        h(
          "thead",
          {},
          h("tr", {}, ["Variant", "Exposures", "Conversions", "Rate", "95% interval", "Uplift", "p-value", "P(best)"].map((t, i) => h("th", { scope: "col", class: i ? "num" : null }, t))),
        ),
        h("tbody", {}, rows),
      ),
      answer.srm && answer.srm.pValue !== null && answer.srm.pValue !== undefined && answer.totals && answer.totals.exposures
        ? h("p", { class: "muted" }, `Sample ratio check: p = ${Number(answer.srm.pValue).toFixed(3)}${answer.srm.mismatch ? " — mismatch, do not trust these results" : ""}`)
        : null,
    ),
  );
  const series = answer.series;
  if (series && series.dates && series.dates.length) {
    const names = Object.keys(series.variants);
    parts.push(
      h(
        "section",
        { class: "card chart-card", "aria-label": "Cumulative conversion rate per day" },
        h("h2", {}, "Cumulative conversion rate"),
        lineChart({
          labels: series.dates.map((d) => d.slice(5)),
          series: names.slice(0, 2).map((name) => ({ name, values: series.variants[name].conversionRate.map((x) => (x || 0) * 100) })),
          label: "Cumulative conversion rate per variant",
          format: (x) => `${x.toFixed(1)}%`,
        }),
      ),
    );
  }
  replace(box, ...parts);
}
