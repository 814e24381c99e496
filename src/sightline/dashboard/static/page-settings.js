// Site settings: domain, allowed origins, time zone, the tracking snippet, site key rotation.
import { h, replace, loading, errorBox, field, toast } from "./dom.js";
import { api } from "./api.js";
import { pageHeader } from "./controls.js";

function zones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

export async function render(root, ctx) {
  root.append(pageHeader("Site settings", h("span", { class: "subtitle" }, ctx.site.domain)));
  const box = h("div", { class: "grid-2" }, loading());
  root.append(box);
  let site;
  try {
    site = await api(`/api/v1/sites/${encodeURIComponent(ctx.site.id)}`);
  } catch (error) {
    return replace(box, errorBox(error));
  }
  const admin = site.role === "admin";
  const domain = h("input", { name: "domain", value: site.domain, required: true, disabled: !admin });
  const origins = h("textarea", { name: "origins", disabled: !admin }, (site.allowedOrigins || []).join("\n"));
  const timezone = h("input", { name: "timezone", value: site.timezone, list: "zones", required: true, disabled: !admin });
  const status = h("div", { class: "form-status", role: "status" });
  const form = h(
    "form",
    {
      class: "card stack",
      "aria-label": "Site",
      onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = "";
        try {
          await api(`/api/v1/sites/${encodeURIComponent(site.id)}`, {
            method: "PATCH",
            body: { domain: domain.value.trim(), allowedOrigins: origins.value.split(/\s+/).filter(Boolean), timezone: timezone.value.trim() },
          });
          toast("Saved");
          await ctx.reloadSites();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    h("h2", {}, "Site"),
    field("Domain", domain),
    field("Allowed origins", origins, "One per line, e.g. https://shop.example; * allows any origin."),
    field("Time zone", timezone, "Day boundaries of every report; changing it rebuilds the daily figures."),
    h("datalist", { id: "zones" }, zones().map((z) => h("option", { value: z }))),
    status,
    admin ? h("button", { type: "submit", class: "button primary" }, "Save") : h("p", { class: "muted" }, "Only admins of this site can change it."),
  );
  const snippetText = () => `<script defer src="${location.origin}/sdk/v1/sightline.js" data-site-key="${site.siteKey || "YOUR_SITE_KEY"}"></script>`;
  const snippet = h("pre", { class: "snippet", id: "snippet" }, snippetText());
  const copy = h(
    "button",
    {
      type: "button",
      class: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(snippet.textContent);
          toast("Snippet copied");
        } catch {
          const selection = window.getSelection();
          const rangeObj = document.createRange();
          rangeObj.selectNodeContents(snippet);
          selection.removeAllRanges();
          selection.addRange(rangeObj);
          toast("Press Ctrl+C to copy the selected snippet");
        }
      },
    },
    "Copy snippet",
  );
  const rotate = h(
    "button",
    {
      type: "button",
      class: "button danger",
      disabled: !admin,
      onclick: async () => {
        if (!window.confirm("Rotate the site key? Pages with the old key stop sending events until updated.")) return;
        try {
          site = await api(`/api/v1/sites/${encodeURIComponent(site.id)}/rotate-key`, { method: "POST" });
          snippet.textContent = snippetText();
          toast("New site key issued");
        } catch (error) {
          toast(error.message, "error");
        }
      },
    },
    "Rotate site key",
  );
  const tracking = h(
    "section",
    { class: "card stack" },
    h("h2", {}, "Tracking snippet"),
    h("p", { class: "muted" }, "Put this in the <head> of every page."),
    snippet,
    h("div", { class: "actions" }, copy, rotate),
  );
  replace(box, form, tracking);
}
