// The dashboard's entry point: who is signed in, the app shell, and the router.
import { h, replace, clear, loading, errorBox, field, toast } from "./dom.js";
import { api, setCsrfToken, ApiError } from "./api.js";
import { currentView, get, href, listen, navigate, range } from "./state.js";

const PAGES = [
  ["overview", "Overview"],
  ["realtime", "Realtime"],
  ["products", "Products"],
  ["funnels", "Funnels"],
  ["retention", "Retention"],
  ["sessions", "Sessions"],
  ["exports", "Exports"],
  ["experiments", "Experiments"],
  ["settings", "Site settings"],
  ["users", "Users"],
  ["privacy", "Privacy tools"],
  ["account", "Account"],
];

const app = document.getElementById("app");
const STATIC = app.dataset.static;
let session = null;
let cleanup = null;
let generation = 0;

// -- theme ---------------------------------------------------------------------------------

function applyTheme() {
  const chosen = localStorage.getItem("sightline-theme");
  if (chosen) document.documentElement.dataset.theme = chosen;
  else delete document.documentElement.dataset.theme;
}

function isDark() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen === "dark";
  return window.matchMedia("(prefers-color-scheme: dark)").matches;
}

function themeButton() {
  const button = h("button", { type: "button", class: "icon-button", id: "theme-toggle" });
  const label = () => {
    button.textContent = isDark() ? "☀ Light" : "☾ Dark";
    button.setAttribute("aria-label", isDark() ? "Switch to light mode" : "Switch to dark mode");
  };
  button.addEventListener("click", () => {
    localStorage.setItem("sightline-theme", isDark() ? "light" : "dark");
    applyTheme();
    label();
  });
  label();
  return button;
}

// -- signing in ----------------------------------------------------------------------------

function loginPage(message) {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const status = h("div", { class: "form-status", role: "alert" }, message || "");
  const submit = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "login-form card",
      "aria-labelledby": "login-title",
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        status.textContent = "";
        try {
          await api("/api/v1/auth/login", { method: "POST", body: { email: email.value, password: password.value } });
          const next = get("next");
          history.replaceState(null, "", next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
          await boot();
        } catch (error) {
          status.textContent = error instanceof ApiError ? error.message : "Could not reach the server";
          submit.disabled = false;
          password.focus();
        }
      },
    },
    h("img", { src: `${STATIC}/icon.svg`, alt: "", class: "login-logo", width: 48, height: 48 }),
    h("h1", { id: "login-title" }, "Sign in to Sightline"),
    field("E-mail", email),
    field("Password", password),
    status,
    submit,
  );
  replace(app, h("main", { id: "main", class: "login" }, form, h("div", { class: "login-theme" }, themeButton())));
  app.setAttribute("aria-busy", "false");
  email.focus();
}

async function logout() {
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch {
    // the sign-in has ended already
  }
  session = null;
  history.pushState(null, "", "/login");
  loginPage("You are signed out.");
}

// -- the shell -----------------------------------------------------------------------------

function currentSite() {
  const wanted = get("site");
  const sites = session.sites;
  return sites.find((s) => s.id === wanted || s.domain === wanted) || sites[0] || null;
}

function siteSwitcher(site) {
  if (!session.sites.length) return null;
  const select = h(
    "select",
    {
      id: "site-switcher",
      "aria-label": "Site",
      onchange: (event) => navigate(href(currentView(), { site: event.target.value, filter: null, page: null })),
    },
    session.sites.map((s) => h("option", { value: s.domain, selected: s.id === site.id }, s.domain)),
  );
  return h("div", { class: "site-switcher" }, select);
}

function navigation(view) {
  const role = session.me.role;
  const links = PAGES.filter(([name]) => name !== "users" || role === "admin").map(([name, label]) => {
    const url = href(name, {}, { keep: false });
    return h(
      "li",
      {},
      h(
        "a",
        {
          href: url,
          "aria-current": name === view ? "page" : null,
          onclick: (event) => {
            if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
            event.preventDefault();
            navigate(url);
          },
        },
        label,
      ),
    );
  });
  return h("nav", { class: "sidebar", "aria-label": "Pages" }, h("ul", {}, links));
}

function shell(view, site) {
  const main = h("main", { id: "main", tabindex: "-1" });
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { href: href("overview", {}, { keep: false }), class: "brand" }, h("img", { src: `${STATIC}/icon.svg`, alt: "", width: 24, height: 24 }), "Sightline"),
    site ? siteSwitcher(site) : null,
    h("div", { class: "spacer" }),
    themeButton(),
    h("span", { class: "who" }, session.me.email),
    h("button", { type: "button", class: "button", id: "logout", onclick: logout }, "Sign out"),
  );
  replace(app, header, h("div", { class: "layout" }, navigation(view), main));
  return main;
}

const loaders = {
  overview: () => import("./page-overview.js"),
  realtime: () => import("./page-realtime.js"),
  products: () => import("./page-products.js"),
  funnels: () => import("./page-funnels.js"),
  retention: () => import("./page-retention.js"),
  sessions: () => import("./page-sessions.js"),
  exports: () => import("./page-exports.js"),
  experiments: () => import("./page-experiments.js"),
  settings: () => import("./page-settings.js"),
  users: () => import("./page-users.js"),
  privacy: () => import("./page-privacy.js"),
  account: () => import("./page-account.js"),
};

async function render() {
  generation += 1;
  const mine = generation;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  let view = currentView();
  if (view === "login") {
    if (session) {
      history.replaceState(null, "", "/");
      view = "overview";
    } else {
      loginPage();
      return;
    }
  }
  if (!session) return;
  const site = currentSite();
  const main = shell(view, site);
  if (!site && !["account", "users"].includes(view)) {
    main.append(
      h("div", { class: "card empty-state" }, h("h1", {}, "No sites yet"), h("p", {}, "Add a site with `sightline site add DOMAIN` or ask an administrator for access.")),
    );
    app.setAttribute("aria-busy", "false");
    return;
  }
  const load = loaders[view] || loaders.overview;
  main.append(loading());
  app.setAttribute("aria-busy", "true");
  try {
    const page = await load();
    if (mine !== generation) return;
    clear(main);
    const dates = site ? range(site.timezone) : null;
    const ctx = {
      me: session.me,
      site,
      sites: session.sites,
      range: dates,
      query: site ? { site: site.id, startDate: dates.startDate, endDate: dates.endDate, filter: get("filter") ? new URLSearchParams(location.search).getAll("filter") : undefined } : {},
      reloadSites: loadSites,
      isCurrent: () => mine === generation,
      onCleanup: (fn) => {
        cleanup = fn;
      },
    };
    await page.render(main, ctx);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      session = null;
      loginPage("Your sign-in has ended; please sign in again.");
      return;
    }
    if (mine === generation) replace(main, errorBox(error));
  } finally {
    if (mine === generation) app.setAttribute("aria-busy", "false");
  }
}

async function loadSites() {
  const sites = await api("/api/v1/sites");
  session.sites = Array.isArray(sites) ? sites : sites.sites || [];
}

async function boot() {
  applyTheme();
  try {
    const [me, sites] = await Promise.all([api("/api/v1/auth/me"), api("/api/v1/sites")]);
    setCsrfToken(me.csrfToken);
    session = { me, sites: Array.isArray(sites) ? sites : sites.sites || [] };
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      session = null;
      if (currentView() !== "login") {
        const next = location.pathname + location.search;
        history.replaceState(null, "", next === "/" ? "/login" : `/login?next=${encodeURIComponent(next)}`);
      }
      loginPage();
      return;
    }
    replace(app, errorBox(error));
    return;
  }
  await render();
}

listen(render);
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
window.addEventListener("unhandledrejection", (event) => {
  toast(String(event.reason && event.reason.message ? event.reason.message : event.reason), "error");
});
boot();
