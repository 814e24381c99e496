// Funnels: a step builder, saved funnels (shared per site, on the server), a chart with drop-off.
import { h, replace, number, percent, duration, loading, errorBox, empty, field, toast } from "./dom.js";
import { api } from "./api.js";
import { params, update } from "./state.js";
import { meter } from "./chart.js";
import { rangePicker, filterChips, pageHeader, link } from "./controls.js";

const EVENT_TYPES = ["page_view", "product_view", "product_click", "affiliate_click", "click", "search", "form_submit", "scroll_depth", "session_start", "signup", "purchase"];
const WINDOWS = [["30m", "30 minutes"], ["2h", "2 hours"], ["1d", "1 day"], ["7d", "7 days"], ["30d", "30 days"]];
/** "page_view;page:contains:/p/" -> {type, contains} */
function parseStep(text) {
  const [type, ...filters] = text.split(";");
  const contains = filters.find((f) => f.startsWith("page:contains:"));
  return { type, page: contains ? contains.slice("page:contains:".length) : "" };
}

function stepText({ type, page }) {
  return page ? `${type};page:contains:${page.replace(/\\/g, "\\\\").replace(/;/g, "\\;").replace(/,/g, "\\,")}` : type;
}

export async function render(root, ctx) {
  const current = params().getAll("step");
  const windowValue = params().get("window") || "1d";
  const initial = current.length >= 2 ? current.map(parseStep) : [{ type: "page_view", page: "" }, { type: "product_view", page: "" }, { type: "affiliate_click", page: "" }];
  root.append(pageHeader("Funnels"), h("div", { class: "toolbar" }, rangePicker(ctx.range)), filterChips());

  const list = h("div", { class: "funnel-steps" });
  const addRow = (step) => {
    const index = list.children.length + 1;
    const type = h("input", { list: "event-types", value: step.type, name: "type", required: true, "aria-label": `Step ${index} event` });
    const page = h("input", { value: step.page, name: "page", placeholder: "any page", "aria-label": `Step ${index} page contains` });
    const remove = h("button", { type: "button", class: "button", "aria-label": `Remove step ${index}`, onclick: () => row.remove() }, "Remove");
    const row = h("div", { class: "funnel-step" }, h("strong", {}, `${index}.`), field("Event", type), field("Page contains", page), remove);
    list.append(row);
  };
  initial.forEach(addRow);
  const windowSelect = h("select", { name: "window" }, WINDOWS.map(([v, l]) => h("option", { value: v, selected: v === windowValue }, l)));
  const name = h("input", { name: "name", placeholder: "e.g. Product to click" });
  const steps = () =>
    [...list.children].map((row) => ({ type: row.querySelector('[name="type"]').value.trim(), page: row.querySelector('[name="page"]').value.trim() })).filter((s) => s.type);
  const form = h(
    "form",
    {
      class: "card stack",
      "aria-label": "Funnel builder",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = steps();
        if (chosen.length < 2) return toast("A funnel needs at least two steps", "error");
        update({ step: chosen.map(stepText), window: windowSelect.value });
      },
    },
    h("h2", {}, "Steps"),
    h("datalist", { id: "event-types" }, EVENT_TYPES.map((t) => h("option", { value: t }))),
    list,
    h("div", { class: "actions" }, h("button", { type: "button", class: "button", onclick: () => addRow({ type: "", page: "" }) }, "Add step"), field("Conversion window", windowSelect)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Show funnel")),
    h(
      "div",
      { class: "actions" },
      field("Name", name),
      h(
        "button",
        {
          type: "button",
          class: "button",
          onclick: async () => {
            const chosen = steps();
            if (chosen.length < 2) return toast("A funnel needs at least two steps", "error");
            const label = name.value.trim() || chosen.map((s) => s.type).join(" → ");
            try {
              await api(`/api/v1/sites/${encodeURIComponent(ctx.site.id)}/funnels`, {
                method: "POST",
                body: { name: label.slice(0, 100), steps: chosen.map(stepText), window: windowSelect.value },
              });
              toast(`Saved “${label}”`);
              update({ step: chosen.map(stepText), window: windowSelect.value });
            } catch (error) {
              toast(error.message, "error");
            }
          },
        },
        "Save funnel",
      ),
    ),
  );
  const savedBox = h("section", { class: "card", "aria-label": "Saved funnels" }, h("h2", {}, "Saved funnels"), loading());
  const showSaved = async () => {
    try {
      const list = await api(`/api/v1/sites/${encodeURIComponent(ctx.site.id)}/funnels`);
      const items = list.map((f) =>
        h(
          "li",
          { class: "saved-funnel" },
          link("funnels", { step: f.steps, window: f.window }, f.name),
          h("span", { class: "muted" }, ` ${f.steps.length} steps · ${f.createdBy}`),
          h(
            "button",
            {
              type: "button",
              class: "link-button",
              "aria-label": `Delete saved funnel ${f.name}`,
              onclick: async () => {
                if (!window.confirm(`Delete the saved funnel “${f.name}”?`)) return;
                try {
                  await api(`/api/v1/sites/${encodeURIComponent(ctx.site.id)}/funnels/${encodeURIComponent(f.id)}`, { method: "DELETE" });
                  showSaved();
                } catch (error) {
                  toast(error.message, "error");
                }
              },
            },
            "Delete",
          ),
        ),
      );
      replace(
        savedBox,
        h("h2", {}, "Saved funnels"),
        items.length ? h("ul", {}, items) : h("p", { class: "muted" }, "None yet. Saved funnels are shared with everyone on this site; the address of a funnel shares it too."),
      );
    } catch (error) {
      replace(savedBox, h("h2", {}, "Saved funnels"), errorBox(error));
    }
  };
  showSaved();
  const result = h("section", { class: "card", id: "funnel-result", "aria-label": "Funnel" });
  root.append(h("div", { class: "grid-2" }, form, savedBox), result);
  if (current.length < 2) {
    replace(result, empty("Choose at least two steps and press “Show funnel”."));
    return;
  }
  replace(result, loading());
  try {
    const answer = await api("/api/v1/analytics/funnel", { params: { ...ctx.query, step: current, window: windowValue } });
    const first = answer.steps[0] ? answer.steps[0].visitors : 0;
    if (!first) return replace(result, empty("No visitor did the first step in this period."));
    replace(
      result,
      h("h2", {}, "Conversion"),
      h(
        "ol",
        { class: "funnel-bars" },
        answer.steps.map((s) =>
          h(
            "li",
            { class: "funnel-bar", "data-step": String(s.step) },
            h("span", {}, `${s.step}. ${s.eventType}`, s.filters.length ? h("span", { class: "muted" }, ` (${s.filters.map((f) => f.values.join(" or ")).join(", ")})`) : null),
            meter(s.visitors / first),
            h(
              "span",
              {},
              h("strong", { class: "step-visitors" }, number(s.visitors)),
              ` · ${percent(s.conversionRate)}`,
              s.step > 1 ? h("div", { class: "drop" }, `−${number(s.dropOff)} (${percent(s.dropOffRate)})`, s.medianSecondsFromPrevious !== null ? ` · median ${duration(s.medianSecondsFromPrevious)}` : "") : null,
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    replace(result, errorBox(error));
  }
}
