// GDPR tools (admins): find a visitor, export or erase everything stored about a visitor
// or user on this site, and the site's consent mode and retention. Shows "not available"
// on a server without the privacy API.
import { h, replace, number, errorBox, field, toast, loading } from "./dom.js";
import { api, apiUrl } from "./api.js";
import { pageHeader, link } from "./controls.js";

export async function render(root, ctx) {
  root.append(pageHeader("Privacy tools", h("span", { class: "subtitle" }, ctx.site.domain)));
  const box = h("div", { class: "grid-2" }, loading());
  root.append(box);
  let settings = null;
  try {
    settings = await api(`/api/v1/privacy/sites/${encodeURIComponent(ctx.site.id)}`);
  } catch (error) {
    if (error.status === 404 && error.code === "not_found") {
      return replace(box, h("p", { class: "card empty", id: "not-available" }, "GDPR tools are not available on this server."));
    }
    settings = null;
  }
  replace(box, subjectForm(ctx), settings ? settingsForm(ctx, settings) : null);
}

function subjectForm(ctx) {
  const kind = h("select", { name: "kind" }, h("option", { value: "visitorId" }, "Visitor id"), h("option", { value: "userId" }, "User id"));
  const subject = h("input", { name: "subject", required: true, autocomplete: "off", spellcheck: "false" });
  const result = h("div", { role: "status", id: "privacy-result" });
  const id = () => subject.value.trim();
  const find = h(
    "button",
    {
      type: "button",
      class: "button",
      onclick: () => {
        if (!id()) return subject.focus();
        replace(
          result,
          kind.value === "visitorId"
            ? link("sessions", { visitor: id(), period: "12mo" }, "See this visitor's sessions and events")
            : link("sessions", { filter: null }, "Open the sessions explorer"),
        );
      },
    },
    "Find",
  );
  const download = h(
    "button",
    {
      type: "button",
      class: "button",
      onclick: () => {
        if (!id()) return subject.focus();
        // a zip archive; the browser downloads it (the sign-in cookie authenticates the GET)
        window.location.href = apiUrl("/api/v1/privacy/export", { site: ctx.site.id, [kind.value]: id() });
      },
    },
    "Export (zip)",
  );
  const erase = h(
    "button",
    {
      type: "button",
      class: "button danger",
      onclick: async () => {
        if (!id()) return subject.focus();
        if (!window.confirm(`Erase everything stored about ${id()} on ${ctx.site.domain}? This cannot be undone.`)) return;
        try {
          const answer = await api("/api/v1/privacy/erase", { method: "POST", body: { [kind.value]: id(), site: ctx.site.id } });
          const tiers = Object.entries(answer.tiers || {});
          replace(
            result,
            h("p", {}, `Erased at ${answer.erasedAt || "now"}.`),
            h(
              "table",
              { class: "data" },
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Where"), h("th", { scope: "col", class: "num" }, "Records erased"))),
              h("tbody", {}, tiers.map(([tier, count]) => h("tr", {}, h("td", {}, tier), h("td", { class: "num" }, number(count))))),
            ),
          );
          toast("Erased");
        } catch (error) {
          replace(result, errorBox(error));
        }
      },
    },
    "Erase",
  );
  return h(
    "form",
    { class: "card stack", "aria-label": "A visitor or user", onsubmit: (e) => e.preventDefault() },
    h("h2", {}, "A visitor or user"),
    h("p", { class: "muted" }, "Export or erase what this site stores about one person: events, sessions, queued events, live counters and caches. Admins only."),
    field("Identify by", kind),
    field("Id", subject, "The visitor id from the sessions explorer, or the user id your site sends."),
    h("div", { class: "actions" }, find, download, erase),
    result,
  );
}

function settingsForm(ctx, settings) {
  const mode = h(
    "select",
    { name: "consentMode" },
    [
      ["cookieless", "Cookieless (no consent needed)"],
      ["consent-required", "Consent required"],
    ].map(([value, label]) => h("option", { value, selected: value === settings.consentMode }, label)),
  );
  const days = h("input", { type: "number", name: "retentionDays", min: 0, value: settings.retentionDays ?? "" });
  const status = h("div", { class: "form-status", role: "status" });
  return h(
    "form",
    {
      class: "card stack",
      "aria-label": "Consent and retention",
      onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = "";
        const body = { consentMode: mode.value };
        if (days.value !== "") body.retentionDays = Number(days.value);
        try {
          await api(`/api/v1/privacy/sites/${encodeURIComponent(ctx.site.id)}`, { method: "PATCH", body });
          toast("Saved");
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    h("h2", {}, "Consent and retention"),
    field("Consent mode", mode),
    field("Keep events for (days)", days, "Older events are deleted by the retention job; 0 keeps them."),
    status,
    h("button", { type: "submit", class: "button primary" }, "Save"),
  );
}
