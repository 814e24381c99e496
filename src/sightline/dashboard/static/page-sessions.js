// Sessions explorer: recent sessions, and one visitor's journey (sessions and events in order).
import { h, replace, number, money, duration, dateTime, shortDateTime, flag, loading, errorBox, empty } from "./dom.js";
import { api } from "./api.js";
import { get } from "./state.js";
import { rangePicker, filterChips, pageHeader, link } from "./controls.js";

export async function render(root, ctx) {
  const visitor = get("visitor");
  root.append(
    pageHeader(visitor ? "Visitor journey" : "Sessions", visitor ? link("sessions", { visitor: null, cursor: null }, "← All sessions") : null),
    h("div", { class: "toolbar" }, rangePicker(ctx.range)),
    filterChips(),
  );
  const box = h("section", { class: "card table-wrap", "aria-label": visitor ? "Journey" : "Sessions" }, loading());
  root.append(box);
  try {
    const answer = await api("/api/v1/analytics/sessions", { params: { ...ctx.query, visitorId: visitor || undefined, cursor: get("cursor") || undefined, limit: 50 } });
    const sessionRows = answer.sessions.map((s) =>
      h(
        "tr",
        {},
        h("td", { class: "when" }, shortDateTime(s.startedAt)),
        h("td", { class: "nowrap" }, visitor ? s.visitorId : link("sessions", { visitor: s.visitorId, cursor: null }, s.visitorId.slice(0, 8), { title: `Journey of visitor ${s.visitorId}` })),
        h("td", {}, s.entryPage),
        h("td", {}, s.exitPage),
        h("td", { class: "nowrap" }, s.referrerSource || s.channel || "direct"),
        h("td", {}, [flag(s.country), [s.deviceType, s.browser, s.os].filter(Boolean).join(" / ")].filter(Boolean).join(" ")),
        h("td", { class: "num" }, number(s.pageViews)),
        h("td", { class: "num" }, duration(s.duration)),
        h("td", { class: "num" }, s.converted ? money(s.revenue) : "–"),
      ),
    );
    const table = answer.sessions.length
      ? h(
          "table",
          { class: "data" },
          h("thead", {}, h("tr", {}, ["Started", "Visitor", "Entry", "Exit", "Source", "Device", "Views", "Duration", "Revenue"].map((t, i) => h("th", { scope: "col", class: i >= 6 ? "num" : null }, t)))),
          h("tbody", {}, sessionRows),
        )
      : empty("No sessions in this period");
    const parts = [table];
    if (visitor) {
      parts.push(
        h("h2", {}, "Events"),
        answer.events.length
          ? h(
              "ol",
              { class: "stream journey" },
              answer.events.map((e) =>
                h("li", {}, h("time", { class: "muted" }, dateTime(e.timestamp)), h("span", { class: "type" }, e.eventType), h("span", { class: "meta" }, [e.pageTitle, e.pagePath].filter(Boolean).join(" · "))),
              ),
            )
          : empty("No events"),
      );
    }
    if (answer.nextCursor) parts.push(h("p", {}, link("sessions", { cursor: answer.nextCursor }, "Next page →")));
    replace(box, ...parts);
  } catch (error) {
    replace(box, errorBox(error.status === 403 ? new Error("Seeing single sessions needs the analyst role on this site.") : error));
  }
}
