// The signed-in user's account: password change.
import { h, field, toast } from "./dom.js";
import { api } from "./api.js";
import { pageHeader } from "./controls.js";

export async function render(root, ctx) {
  const current = h("input", { type: "password", name: "current", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", name: "new", autocomplete: "new-password", minlength: 8, required: true });
  const again = h("input", { type: "password", name: "again", autocomplete: "new-password", minlength: 8, required: true });
  const status = h("div", { class: "form-status", role: "status" });
  const form = h(
    "form",
    {
      class: "card stack",
      "aria-label": "Change password",
      onsubmit: async (event) => {
        event.preventDefault();
        status.textContent = "";
        if (next.value !== again.value) {
          status.textContent = "The new passwords differ.";
          return;
        }
        try {
          await api("/api/v1/auth/password", { method: "POST", body: { currentPassword: current.value, newPassword: next.value } });
          form.reset();
          toast("Password changed; your other sign-ins have ended.");
        } catch (error) {
          status.textContent = error.message;
        }
      },
    },
    h("h2", {}, "Change password"),
    field("Current password", current),
    field("New password", next, "At least 8 characters."),
    field("New password again", again),
    status,
    h("button", { type: "submit", class: "button primary" }, "Change password"),
  );
  root.append(pageHeader("Account", h("span", { class: "subtitle" }, ctx.me.email)), h("div", { class: "grid-2" }, form));
}
