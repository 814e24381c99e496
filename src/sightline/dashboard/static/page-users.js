// Users and roles (admins of every site).
import { h, replace, loading, errorBox, field, toast } from "./dom.js";
import { api } from "./api.js";
import { pageHeader } from "./controls.js";

const ROLES = ["admin", "analyst", "viewer"];

function roleSelect(value, label, onchange) {
  return h(
    "select",
    { "aria-label": label, onchange },
    h("option", { value: "", selected: !value }, "per-site only"),
    ROLES.map((r) => h("option", { value: r, selected: r === value }, r)),
  );
}

export async function render(root, ctx) {
  root.append(pageHeader("Users and roles"));
  const box = h("section", { class: "card table-wrap", "aria-label": "Users" }, loading());
  const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off" });
  const password = h("input", { type: "password", name: "password", minlength: 8, autocomplete: "new-password", required: true });
  const role = h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === "viewer" }, r)));
  const status = h("div", { class: "form-status", role: "status" });
  const form = h(
    "form",
    {
      class: "card stack",
      "aria-label": "Add a user",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api("/api/v1/users", { method: "POST", body: { email: email.value.trim(), password: password.value, role: role.value } });
          toast(`Added ${email.value.trim()}`);
          form.reset();
          load();
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    h("h2", {}, "Add a user"),
    field("E-mail", email),
    field("Password", password, "At least 8 characters."),
    field("Role on every site", role),
    status,
    h("button", { type: "submit", class: "button primary" }, "Add user"),
  );
  root.append(box, h("div", { class: "grid-2" }, form));

  async function load() {
    try {
      const users = await api("/api/v1/users");
      const rows = users.map((u) =>
        h(
          "tr",
          {},
          h("td", {}, u.email),
          h(
            "td",
            {},
            roleSelect(u.role, `Role of ${u.email} on every site`, async (event) => {
              try {
                await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "PATCH", body: { role: event.target.value || null } });
                toast("Role changed");
              } catch (error) {
                toast(error.message, "error");
                load();
              }
            }),
          ),
          h("td", {}, u.sites.map((s) => `${s.domain}: ${s.role}`).join(", ") || "–"),
          h(
            "td",
            {},
            u.id === ctx.me.id
              ? h("span", { class: "muted" }, "you")
              : h(
                  "button",
                  {
                    type: "button",
                    class: "button danger",
                    "aria-label": `Delete ${u.email}`,
                    onclick: async () => {
                      if (!window.confirm(`Delete ${u.email}?`)) return;
                      try {
                        await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "DELETE" });
                        load();
                      } catch (error) {
                        toast(error.message, "error");
                      }
                    },
                  },
                  "Delete",
                ),
          ),
        ),
      );
      replace(box, h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["E-mail", "Role on every site", "Per-site roles", ""].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows)));
    } catch (error) {
      replace(box, errorBox(error.status === 403 ? new Error("Managing users needs the admin role on every site.") : error));
    }
  }
  await load();
}
