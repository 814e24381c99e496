// Small SVG charts (no third-party code): a line/area chart and horizontal bars.
import { h, number } from "./dom.js";

const H = 240;

/** The drawing width: the page's content width, so text is never stretched. */
function drawingWidth() {
  const main = document.getElementById("main");
  const width = main ? main.clientWidth - 72 : 800;
  return Math.max(280, Math.min(1600, width || 800));
}
const PAD = { top: 12, right: 12, bottom: 28, left: 48 };

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

/**
 * lineChart({labels: [...], series: [{name, values, className}], label, format})
 * Returns an <figure> with an SVG (role=img, described) and a legend.
 */
export function lineChart({ labels, series, label, format = number, bars = false }) {
  const W = drawingWidth();
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const n = Math.max(labels.length, 1);
  const x = (i) => PAD.left + (n === 1 ? innerW / 2 : (i * innerW) / (n - 1));
  const y = (v) => PAD.top + innerH - (v / max) * innerH;
  const svg = h("svg", {
    svg: true,
    viewBox: `0 0 ${W} ${H}`,
    class: "chart-svg",
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "none",
  });
  for (let k = 0; k <= 4; k += 1) {
    const value = (max * k) / 4;
    const yy = y(value);
    svg.append(h("line", { svg: true, x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy, class: "grid" }));
    svg.append(h("text", { svg: true, x: PAD.left - 6, y: yy + 4, class: "axis", "text-anchor": "end" }, format(value)));
  }
  const every = Math.max(1, Math.ceil(n / Math.max(3, Math.floor(W / 90))));
  labels.forEach((text, i) => {
    if (i % every === 0) {
      svg.append(h("text", { svg: true, x: x(i), y: H - 8, class: "axis", "text-anchor": "middle" }, text));
    }
  });
  series.forEach((s, index) => {
    if (bars) {
      const width = Math.max(2, (innerW / n) * 0.7);
      s.values.forEach((v, i) => {
        const bar = h("rect", {
          svg: true,
          x: x(i) - width / 2,
          y: y(v),
          width,
          height: Math.max(0, PAD.top + innerH - y(v)),
          class: `bar s${index}`,
        });
        bar.append(h("title", { svg: true }, `${labels[i]}: ${format(v)} ${s.name}`));
        svg.append(bar);
      });
      return;
    }
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    if (index === 0 && points.length > 1) {
      const area = `M${x(0)},${y(0)} L${points.join(" L")} L${x(s.values.length - 1)},${y(0)} Z`;
      svg.append(h("path", { svg: true, d: area, class: `area s${index}` }));
    }
    svg.append(h("polyline", { svg: true, points: points.join(" "), class: `line s${index}` }));
    s.values.forEach((v, i) => {
      const dot = h("circle", { svg: true, cx: x(i), cy: y(v), r: n > 60 ? 1.5 : 3, class: `dot s${index}` });
      dot.append(h("title", { svg: true }, `${labels[i]}: ${format(v)} ${s.name}`));
      svg.append(dot);
    });
  });
  const legend = h(
    "figcaption",
    { class: "legend" },
    series.map((s, index) => h("span", { class: `key s${index}` }, s.name)),
  );
  return h("figure", { class: "chart", "data-points": String(labels.length) }, svg, legend);
}

/** Horizontal bar: a track with a fill of `fraction` (0..1), styled through CSSOM. */
export function meter(fraction, className = "") {
  const fill = h("span", { class: "meter-fill" });
  fill.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return h("span", { class: `meter ${className}`, "aria-hidden": "true" }, fill);
}
