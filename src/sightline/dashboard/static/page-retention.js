// Retention: cohorts by first visit, the share returning in each later day or week.
import { h, replace, number, loading, errorBox, empty, field } from "./dom.js";
import { api } from "./api.js";
import { get, update } from "./state.js";
import { rangePicker, filterChips, pageHeader } from "./controls.js";

export async function render(root, ctx) {
  const period = get("retention", "week");
  const select = h("select", { onchange: (e) => update({ retention: e.target.value }) }, [["day", "Daily"], ["week", "Weekly"]].map(([v, l]) => h("option", { value: v, selected: v === period }, l)));
  root.append(pageHeader("Retention"), h("div", { class: "toolbar" }, rangePicker(ctx.range), field("Cohorts", select)), filterChips());
  const box = h("section", { class: "card table-wrap", "aria-label": "Retention cohorts" }, loading());
  root.append(box);
  try {
    const answer = await api("/api/v1/analytics/retention", { params: { ...ctx.query, period } });
    if (!answer.cohorts.length) return replace(box, empty());
    const width = Math.max(...answer.cohorts.map((c) => c.periods.length));
    const head = h("tr", {}, h("th", { scope: "col" }, "Cohort"), h("th", { scope: "col", class: "num" }, "Visitors"), Array.from({ length: width }, (_, i) => h("th", { scope: "col", class: "num cell" }, `${period === "day" ? "Day" : "Week"} ${i}`)));
    const rows = answer.cohorts.map((c) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, c.cohort),
        h("td", { class: "num" }, number(c.visitors)),
        Array.from({ length: width }, (_, i) => {
          const p = c.periods[i];
          if (!p) return h("td", {});
          // a cohort nobody started in has no rate
          if (!c.visitors) return h("td", { class: "cell muted" }, "–");
          const cell = h("td", { class: "cell", title: `${number(p.visitors)} visitors` }, `${p.rate.toFixed(1)}%`);
          // at most half the series colour under the text colour: readable in both themes
          cell.style.backgroundColor = `color-mix(in srgb, var(--s0) ${Math.round(Math.min(100, p.rate) * 0.5)}%, transparent)`;
          return cell;
        }),
      ),
    );
    replace(box, h("table", { class: "data retention" }, h("thead", {}, head), h("tbody", {}, rows)));
  } catch (error) {
    replace(box, errorBox(error));
  }
}
