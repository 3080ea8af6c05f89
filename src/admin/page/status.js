// Keeps the status page live: polls /routes and /stats every second and re-renders what changed.
// Hosts, app ids, labels and messages come from users' app definitions: they reach the DOM only
// as text nodes or attribute values (see `el`), never as HTML.
"use strict";
(() => {
  const POLL_MS = 1000;
  const HISTORY_LENGTH = 10;
  // `/routes` names a problem's kind; the server embeds each kind's severity.
  const SEVERITY = JSON.parse(document.getElementById("severities").textContent);
  const $ = (id) => document.getElementById(id);
  const history = [];
  // The previous poll's request counts, to turn totals into rates.
  let previous = null;
  const drawn = { routes: null, problems: null };

  // An element with attributes and children; strings and numbers become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // The same order as the server's `health`: an active check failing says the most.
  function health(s) {
    if (!s) return ["unknown", "unknown"];
    if (s.check_failed) return ["check-failed", "check failed"];
    if (s.down) return ["down", "down"];
    if (s.draining) return ["draining", "draining"];
    return ["up", "up"];
  }

  function endpoint(ep, s) {
    const [key, label] = health(s);
    const inFlight = s ? s.in_flight : 0;
    return el("span", {
      class: `ep ${key}`, "data-endpoint": ep.addr, "data-health": key, "data-in-flight": inFlight,
      title: `task ${ep.task_id} (${ep.state}): ${label}, ${inFlight} in flight`,
    }, el("i", { class: "dot" }), ep.addr, key === "up" ? null : el("em", {}, label),
    el("b", { class: inFlight > 0 ? "busy" : null }, inFlight));
  }

  function emptyRow(columns, text) {
    return el("tr", {}, el("td", { class: "empty", colspan: columns }, text));
  }

  function renderRoutes(report, stats) {
    const backends = new Map(report.backends.map((b) => [b.name, b]));
    const state = new Map();
    for (const b of stats.backends) for (const e of b.endpoints) state.set(`${b.name} ${e.addr}`, e);
    const body = el("tbody", { id: "routes-body", "data-rendered-by": "script" });
    for (const r of report.routes) {
      const endpoints = (backends.get(r.backend) || { endpoints: [] }).endpoints;
      body.append(el("tr", {
        class: "route", "data-listener": r.listener, "data-host": r.host, "data-path": r.path,
        "data-app": r.app_id, "data-backend": r.backend,
      }, el("td", {}, r.listener), el("td", {}, r.host), el("td", {}, r.path),
      el("td", { title: `backend ${r.backend}` }, r.app_id),
      el("td", {}, ...(endpoints.length
        ? endpoints.map((ep) => endpoint(ep, state.get(`${r.backend} ${ep.addr}`)))
        : [el("span", { class: "none" }, "no endpoints")]))));
    }
    if (!report.routes.length) body.append(emptyRow(5, "No routes: no app is exposed by this balancer."));
    $("routes-body").replaceWith(body);
    $("route-count").textContent = report.routes.length;
  }

  function renderProblems(problems) {
    const body = el("tbody", { id: "problems-body", "data-rendered-by": "script" });
    for (const p of problems) {
      const severity = p.severity || SEVERITY[p.kind] || "unknown";
      body.append(el("tr", {
        class: "problem", "data-severity": severity, "data-kind": p.kind, "data-app": p.app_id,
      }, el("td", {}, el("span", { class: `sev ${severity}` }, severity)),
      el("td", { class: "mono" }, p.kind), el("td", {}, p.app_id ?? "–"),
      el("td", {}, p.port_index ?? "–"), el("td", { class: "mono" }, p.label ?? "–"),
      el("td", {}, p.message)));
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
    $("connects").textContent = s.connects;
    $("events").textContent = s.events;
    const sync = stats.last_sync_unix_ms;
    $("last-sync").textContent = sync === null ? "never"
      : `${clock(new Date(sync))} (${Math.max(0, Math.round((Date.now() - sync) / 1000))} s ago)`;
    const recent = [...s.recent].reverse().map((e) => el("li", { "data-event": e.type },
      el("span", { class: "when" }, clock(new Date(e.at_unix_ms))), " ", el("span", { class: "what" }, e.type)));
    $("events-list").replaceChildren(...(recent.length ? recent : [el("li", { class: "empty" }, "none yet")]));
    $("read-error").hidden = !stats.read_error;
    $("read-error").textContent = stats.read_error ? `Last read of the source failed: ${stats.read_error}` : "";
  }

  // One entry per generation this page has seen, newest first, with what changed.
  function remember(report) {
    const endpoints = new Set(report.backends.flatMap((b) => b.endpoints.map((e) => `${b.name} ${e.addr}`)));
    const last = history[0];
    if (last && last.generation === report.generation) return;
    let change = "first seen by this page";
    if (last) {
      const added = [...endpoints].filter((e) => !last.endpoints.has(e)).length;
      const removed = [...last.endpoints].filter((e) => !endpoints.has(e)).length;
      const changes = [];
      if (added) changes.push(`+${count(added, "endpoint")}`);
      if (removed) changes.push(`−${count(removed, "endpoint")}`);
      if (report.routes.length !== last.routes) changes.push(`routes ${last.routes} → ${report.routes.length}`);
      change = changes.join(", ") || "same routes and endpoints";
    }
    history.unshift({ generation: report.generation, at: new Date(), endpoints, routes: report.routes.length, change });
    history.length = Math.min(history.length, HISTORY_LENGTH);
    $("history-list").replaceChildren(...history.map((h) => el("li", { "data-generation": h.generation },
      el("span", { class: "gen" }, `#${h.generation}`), " ", el("span", { class: "when" }, clock(h.at)),
      el("span", { class: "counts" }, `${count(h.routes, "route")}, ${count(h.endpoints.size, "endpoint")}`),
      el("span", { class: "what" }, h.change))));
  }

  // Requests and 5xx per second per backend, from the totals of this poll and the last.
  function renderTraffic(stats) {
    const now = performance.now();
    const rows = stats.backends.map((b) => {
      const before = previous && previous.totals.get(b.name);
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const rate = (field) => (before && seconds > 0 ? ((b[field] - before[field]) / seconds).toFixed(1) : "–");
      return el("tr", { "data-backend": b.name, "data-requests": b.requests },
        el("td", {}, b.name), el("td", {}, b.app_id), el("td", { class: "num" }, rate("requests")),
        el("td", { class: "num" }, rate("errors_5xx")), el("td", { class: "num" }, b.requests),
        el("td", { class: "num" }, b.errors_5xx));
    });
    $("traffic-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, "no backends")]));
    previous = { at: now, totals: new Map(stats.backends.map((b) => [b.name, b])) };
  }

  function count(n, noun) {
    return `${n} ${noun}${n === 1 ? "" : "s"}`;
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour12: false });
  }

  // Redraws a section only when its data changed, so a selection or hover is not reset.
  function redraw(section, data, draw) {
    const key = JSON.stringify(data);
    if (drawn[section] !== key) {
      draw();
      drawn[section] = key;
    }
  }

  async function poll() {
    try {
      const [report, stats] = await Promise.all(["/routes", "/stats"].map(async (path) => {
        const response = await fetch(path, { cache: "no-store" });
        if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
        return response.json();
      }));
      renderSource(stats);
      // A table swap between the two requests: the endpoints' state would not match; next poll.
      if (report.generation === stats.generation) {
        remember(report);
        redraw("routes", [report.routes, report.backends, stats.backends], () => renderRoutes(report, stats));
        redraw("problems", report.problems, () => renderProblems(report.problems));
        $("generation").textContent = report.generation;
        document.title = `Switchyard · generation ${report.generation}`;
        $("status").dataset.generation = report.generation;
        $("status").dataset.renderedBy = "script";
      }
      renderTraffic(stats);
      $("poll").dataset.state = "live";
      $("poll").textContent = `live, updated ${clock(new Date())}`;
    } catch (error) {
      $("poll").dataset.state = "error";
      $("poll").textContent = `cannot reach the admin port: ${error.message}`;
    }
    setTimeout(poll, POLL_MS);
  }

  poll();
})();
