// Keeps the status page live: polls /stats every second, /routes when the generation moves and
// /history (the charts) when a sample lands or every few seconds, and redraws what changed.
const POLL_MS = 1000;
const HISTORY_MS = 5000;
// `/routes` names a problem's kind; the server embeds each kind's severity.
const SEVERITY = JSON.parse($("severities").textContent);
const page = {
  stats: null, report: null, history: null, historyAt: 0, historyVersion: 0,
  // The last poll's totals, and the rates per backend and in all from them and this one's.
  previous: null, rates: new Map(), live: null, drawn: {},
};

// Redraws a section only when its data changed, so a selection or hover is not reset.
function redraw(section, data, draw) {
  const key = JSON.stringify(data);
  if (page.drawn[section] !== key) {
    draw();
    page.drawn[section] = key;
  }
}

function renderProblems(problems) {
  const body = el("tbody", { id: "problems-body", "data-rendered-by": "script" });
  for (const p of problems) {
    const severity = p.severity || SEVERITY[p.kind] || "unknown";
    body.append(el("tr", { class: "problem", "data-severity": severity, "data-kind": p.kind, "data-app": p.app_id },
      el("td", { "data-label": "Severity" }, el("span", { class: `sev ${severity}` }, severity)),
      el("td", { class: "mono", "data-label": "Kind" }, p.kind), el("td", { "data-label": "App" }, p.app_id ?? "–"),
      el("td", { "data-label": "Port index" }, p.port_index ?? "–"),
      el("td", { class: "mono", "data-label": "Label" }, p.label ?? "–"), el("td", { "data-label": "Message" }, p.message)));
  }
  if (!problems.length) body.append(emptyRow(6, "No problems."));
  $("problems-body").replaceWith(body);
  $("problem-count").textContent = problems.length;
}

function renderSource(stats) {
  const s = stats.stream;
  const [state, text] = s.connected ? ["connected", `connected to ${s.connected}`]
    : s.last_error ? ["error", `disconnected: ${s.last_error}`]
      : ["idle", "no event stream"];
  $("source").dataset.state = state;
  $("source").textContent = text;
  $("source").title = `${count(s.connects, "connect")} since start`;
  $("events").textContent = s.events.toLocaleString("en");
  $("uptime").textContent = duration(stats.uptime_seconds);
  $("uptime").title = `started ${new Date(stats.started_unix_ms).toLocaleString()}`;
  $("version").textContent = stats.version;
  const sync = stats.last_sync_unix_ms;
  $("last-sync").textContent = sync === null ? "never" : ago(sync);
  $("read-error").hidden = !stats.read_error;
  $("read-error").textContent = stats.read_error ? `Last read of the source failed: ${stats.read_error}` : "";
}

// What a generation changed, in a few words.
function change(g) {
  const parts = [];
  if (g.apps_added.count) parts.push(`+${count(g.apps_added.count, "app")}: ${names(g.apps_added.first, g.apps_added.count)}`);
  if (g.apps_removed.count) parts.push(`−${count(g.apps_removed.count, "app")}: ${names(g.apps_removed.first, g.apps_removed.count)}`);
  if (g.apps_changed.count) parts.push(`changed: ${names(g.apps_changed.first, g.apps_changed.count)}`);
  const endpoints = [g.endpoints_added && `+${g.endpoints_added}`, g.endpoints_removed && `−${g.endpoints_removed}`].filter(Boolean);
  const moved = g.endpoints_added + g.endpoints_removed;
  if (endpoints.length) parts.push(`${endpoints.join(" ")} endpoint${moved === 1 ? "" : "s"}`);
  if (g.skipped) parts.push(`${g.skipped + 1} generations in a burst`);
  return parts.join(" · ") || "same routes and endpoints";
}

function renderGenerations(entries) {
  const items = entries.map((g) => el("li", { "data-generation": g.generation },
    el("span", { class: "gen" }, `#${g.generation}`), " ", el("span", { class: "when" }, clock(new Date(g.at_unix_ms))),
    el("span", { class: "counts" }, `${count(g.routes, "route")}, ${count(g.endpoints, "endpoint")}`),
    el("span", { class: "what" }, change(g))));
  $("history-list").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "no table yet")]));
}

function renderEvents(recent) {
  const items = [...recent].reverse().map((e) => el("li", { "data-event": e.type, "data-apps": (e.apps || []).join(" ") },
    el("span", { class: "when" }, clock(new Date(e.at_unix_ms))), el("span", { class: "what" }, e.type),
    e.apps && e.apps.length ? el("span", { class: "apps" }, names(e.apps, e.apps.length + (e.more_apps || 0))) : null));
  $("events-list").replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, "none yet")]));
}

// Hosts answered 503 because nothing routes them, when the balancer reports them.
function renderUnrouted(unrouted) {
  const rows = Array.isArray(unrouted) ? unrouted : [];
  $("unrouted").hidden = !rows.length;
  $("unrouted-count").textContent = rows.length;
  const seen = (at) => {
    const ms = typeof at === "number" ? at : Date.parse(at);
    return Number.isNaN(ms) ? String(at ?? "–") : ago(ms);
  };
  $("unrouted-body").replaceChildren(...rows.map((u) => el("tr", { class: "unrouted", "data-host": u.host },
    el("td", { "data-label": "Host" }, u.host), el("td", { "data-label": "Listener" }, u.listener ?? "–"),
    el("td", { class: "num", "data-label": "Requests" }, u.requests ?? "–"),
    el("td", { "data-label": "Last seen" }, seen(u.last_seen)))));
}

// Requests and 5xx per second per backend, from the totals of this poll and the last.
function measureRates(stats) {
  const now = performance.now();
  const before = page.previous;
  page.rates = new Map();
  if (before && now > before.at) {
    const seconds = (now - before.at) / 1000;
    for (const b of stats.backends) {
      const was = before.totals.get(b.name);
      if (!was) continue;
      page.rates.set(b.name, {
        requests: Math.max(0, b.requests - was.requests) / seconds,
        errors_5xx: Math.max(0, b.errors_5xx - was.errors_5xx) / seconds,
      });
    }
  }
  page.previous = { at: now, totals: new Map(stats.backends.map((b) => [b.name, b])) };
  page.live = null;
  for (const r of page.rates.values()) {
    page.live ??= { requests: 0, errors_5xx: 0 };
    page.live.requests += r.requests;
    page.live.errors_5xx += r.errors_5xx;
  }
}

function renderOverview() {
  if (!page.history) return;
  $("overview-span").textContent = `all backends, ${span(page.history)}`;
  const drawn = charts(page.history, page.history.total, page.live, true);
  drawn.id = "total-charts";
  $("total-charts").replaceWith(drawn);
}

function redrawApps() {
  const { stats, report, history } = page;
  if (!stats || !report || report.generation !== stats.generation) return;
  const endpoints = new Map();
  for (const b of stats.backends) for (const e of b.endpoints) endpoints.set(`${b.name} ${e.addr}`, e);
  renderApps(report, {
    endpoints, history, historyVersion: page.historyVersion, rates: page.rates,
    totals: new Map(stats.backends.map((b) => [b.name, { requests: b.requests, errors_5xx: b.errors_5xx }])),
    series: new Map((history ? history.backends : []).map((s) => [s.name, s])),
  });
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function poll() {
  try {
    const stats = await getJson("/stats");
    page.stats = stats;
    if (!page.report || page.report.generation !== stats.generation) {
      const report = await getJson("/routes");
      // A table swap between the two requests: the endpoints' state would not match; next poll.
      if (report.generation === stats.generation) page.report = report;
    }
    const stale = !page.history || page.history.samples !== stats.history_samples
      || Date.now() - page.historyAt >= HISTORY_MS;
    if (stale) {
      page.history = await getJson("/history");
      page.historyAt = Date.now();
      page.historyVersion += 1;
    }
    measureRates(stats);
    renderSource(stats);
    redraw("generations", stats.generations, () => renderGenerations(stats.generations));
    redraw("events", stats.stream.recent, () => renderEvents(stats.stream.recent));
    redraw("unrouted", stats.unrouted ?? null, () => renderUnrouted(stats.unrouted));
    const live = page.live && [perSecond(page.live.requests), perSecond(page.live.errors_5xx)];
    redraw("overview", [page.historyVersion, live], renderOverview);
    if (page.report && page.report.generation === stats.generation) {
      const report = page.report;
      redraw("problems", report.problems, () => renderProblems(report.problems));
      redrawApps();
      $("generation").textContent = report.generation;
      document.title = `Switchyard · generation ${report.generation}`;
      $("status").dataset.generation = report.generation;
      $("status").dataset.renderedBy = "script";
    }
    $("poll").dataset.state = "live";
    $("poll").textContent = `live, updated ${clock(new Date())}`;
  } catch (error) {
    $("poll").dataset.state = "error";
    $("poll").textContent = `cannot reach the admin port: ${error.message}`;
  }
  setTimeout(poll, POLL_MS);
}

watchFilter(redrawApps);
poll();
