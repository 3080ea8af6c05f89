// Small charts of the history the balancer keeps (`/history`): requests and 5xx per second and
// the p99 duration, one point per sample across the window. Drawn as inline SVG: no library.
const CHART_W = 300;
const CHART_H = 40;
// A name, not an address the page loads.
const SVG_NS = "http://www.w3.org/2000/svg";
// A last, partial interval shorter than this is counted but not drawn: its rate is noise.
const SHORTEST_DRAWN_MS = 1000;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

// The points of `series` (a `/history` series) for `kind`: requests and errors_5xx become
// rates, p99_ms stays milliseconds; each point is placed at the middle of its interval.
function points(history, series, kind) {
  const times = history.times;
  const values = series[kind];
  const offset = times.length - values.length;
  const out = [];
  values.forEach((value, i) => {
    const g = offset + i;
    const end = times[g];
    const start = g > 0 ? times[g - 1] : history.start_ms;
    const ms = end - start;
    const y = value === null || kind === "p99_ms" ? value : (value * 1000) / Math.max(ms, 1);
    out.push({ t: (start + end) / 2, ms, y, count: value });
  });
  return out;
}

// One path through the drawn points, broken where there is no value (nothing timed).
function paths(pts, x, y) {
  let line = "";
  let area = "";
  let run = [];
  const flush = () => {
    if (!run.length) return;
    const d = run.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)} ${y(p.y).toFixed(1)}`).join(" ");
    line += `${d} `;
    area += `M${x(run[0].t).toFixed(1)} ${CHART_H} ${d.replace(/^M/, "L")} L${x(run[run.length - 1].t).toFixed(1)} ${CHART_H} Z `;
    run = [];
  };
  for (const p of pts) {
    if (p.y === null || p.ms < SHORTEST_DRAWN_MS) flush();
    else run.push(p);
  }
  flush();
  return [line.trim(), area.trim()];
}

function windowMinutes(history) {
  return Math.round((history.window_slots * history.interval_ms) / 60000);
}

// What the charts' width spans.
function span(history) {
  return history.times.length < history.window_slots ? "since the balancer started"
    : `over the last ${windowMinutes(history)} minutes`;
}

const KINDS = {
  requests: { label: "req/s", format: perSecond },
  errors_5xx: { label: "5xx/s", format: perSecond },
  p99_ms: { label: "p99", format: millis },
};

// A chart of one kind of one series. `now`: the figure to show as the latest (a live rate),
// else the last drawn point's.
function chart(history, series, kind, now) {
  const { label, format } = KINDS[kind];
  const pts = series ? points(history, series, kind) : [];
  const drawn = pts.filter((p) => p.y !== null && p.ms >= SHORTEST_DRAWN_MS);
  const max = Math.max(0, ...drawn.map((p) => p.y));
  // The window, or the time since the balancer started while that is shorter.
  const start = history.start_ms;
  const end = Math.max(start + 1, history.times.length ? history.times[history.times.length - 1] : start);
  const x = (t) => ((t - start) / (end - start)) * CHART_W;
  const y = (v) => CHART_H - 2 - (max > 0 ? (v / max) * (CHART_H - 4) : 0);
  const [line, area] = paths(pts, x, y);
  const graphic = svg("svg", {
    viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${label} ${span(history)}`,
  });
  graphic.append(svg("path", { class: "base", d: `M0 ${CHART_H - 1} H${CHART_W}` }));
  if (area) graphic.append(svg("path", { class: "area", d: area }));
  if (line) graphic.append(svg("path", { class: "line", d: line }));
  const last = drawn.length ? drawn[drawn.length - 1].y : null;
  const shown = now === null || now === undefined ? last : now;
  const sum = kind === "p99_ms" ? Math.round(max * 100) / 100
    : pts.reduce((total, p) => total + (p.count || 0), 0);
  return el("figure", { class: `chart ${kind}`, "data-series": kind, "data-sum": sum, "data-points": drawn.length },
    el("figcaption", {}, el("span", { class: "what" }, label), el("span", { class: "now" }, format(shown)),
      el("span", { class: "max" }, max > 0 ? `max ${format(max)}` : "")),
    graphic);
}

// The three charts of a series, or why there are none.
function charts(history, series, live, big) {
  if (!history) return el("p", { class: "hint" }, "loading history…");
  if (!series) {
    return el("p", { class: "hint no-history" }, history.backends.length >= history.kept_series
      ? `no history kept: quieter than the ${history.kept_series} busiest backends`
      : `no requests ${span(history)}`);
  }
  const now = live || {};
  return el("div", { class: big ? "charts big" : "charts" },
    chart(history, series, "requests", now.requests), chart(history, series, "errors_5xx", now.errors_5xx),
    chart(history, series, "p99_ms", null));
}
