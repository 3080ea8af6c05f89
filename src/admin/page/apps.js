// The apps: one card per app with its routes and each backend (one per port) once, whatever
// the listeners, with its endpoints, live rates and charts. Busiest first (requests in the
// history window), filtered by the search box, a page at a time: 2,500 apps stay usable.
const PAGE = 50;
const appView = { list: [], generation: null, filter: "", shown: PAGE, drawn: null };

// Apps from `/routes`: backends and routes grouped by app id, with the text a search matches.
function groupApps(report) {
  const byId = new Map();
  const app = (id) => {
    if (!byId.has(id)) byId.set(id, { id, routes: [], backends: [] });
    return byId.get(id);
  };
  for (const b of report.backends) app(b.app_id).backends.push(b);
  for (const r of report.routes) app(r.app_id).routes.push(r);
  for (const a of byId.values()) {
    a.search = [a.id, ...a.routes.map((r) => `${r.listener} ${r.host}${r.path === "*" ? "" : r.path}`),
      ...a.backends.flatMap((b) => [b.name, ...b.endpoints.map((e) => e.addr)])].join(" ").toLowerCase();
  }
  return [...byId.values()];
}

// The same order as the server's `health`: an active check failing says the most.
function health(s) {
  if (!s) return ["unknown", "unknown"];
  if (s.check_failed) return ["check-failed", "check failed"];
  if (s.down) return ["down", "down"];
  if (s.draining) return ["draining", "draining"];
  return ["up", "up"];
}

// The same markup as the server's `endpoint_chip`.
function endpoint(ep, s) {
  const [key, label] = health(s);
  const inFlight = s ? s.in_flight : 0;
  return el("span", {
    class: `ep ${key}`, "data-endpoint": ep.addr, "data-health": key, "data-in-flight": inFlight,
    title: `task ${ep.task_id} (${ep.state}): ${label}, ${inFlight} in flight`,
  }, el("i", { class: "dot" }), el("span", { class: "addr" }, ep.addr), key === "up" ? null : el("em", {}, label),
  el("b", { class: inFlight > 0 ? "busy" : null }, inFlight));
}

// The same markup as the server's `route_chip`.
function routeChip(r) {
  const where = (r.host === "*" ? "" : r.host) + (r.path === "*" ? "" : r.path);
  return el("li", {
    class: "route", "data-listener": r.listener, "data-host": r.host, "data-path": r.path,
    "data-app": r.app_id, "data-backend": r.backend,
  }, el("span", { class: "listener" }, r.listener), el("span", { class: "where" }, where));
}

// The same words as the server's `about`.
function about(b) {
  return `port ${b.port_index} · service port ${b.service_port} · ${b.mode} · ${b.protocol} · ${b.balance}${b.sticky ? " · sticky" : ""}`;
}

function backendBlock(b, ctx) {
  const totals = ctx.totals.get(b.name);
  const rate = ctx.rates.get(b.name);
  const series = ctx.series.get(b.name);
  const eps = b.endpoints.map((ep) => endpoint(ep, ctx.endpoints.get(`${b.name} ${ep.addr}`)));
  const live = rate ? `${perSecond(rate.requests)} req/s · ${perSecond(rate.errors_5xx)} 5xx/s` : "";
  return el("div", {
    class: "backend", "data-backend": b.name, "data-requests": totals ? totals.requests : 0,
    "data-window-requests": series ? series.window_requests : 0,
  }, el("div", { class: "backend-head" }, el("span", { class: "name" }, b.name), el("span", { class: "about" }, about(b)),
    el("span", { class: "live" }, live)),
  el("div", { class: "endpoints" }, ...(eps.length ? eps : [el("span", { class: "none" }, "no endpoints")])),
  charts(ctx.history, series, rate, false));
}

function appCard(a, ctx) {
  return el("article", { class: "app", "data-app": a.id },
    el("div", { class: "app-head" }, el("h3", {}, a.id)),
    el("ul", { class: "routes" }, ...a.routes.map(routeChip)),
    ...a.backends.map((b) => backendBlock(b, ctx)));
}

// Requests over the history window: what "busiest" means.
function weight(a, ctx) {
  return a.backends.reduce((sum, b) => sum + (ctx.series.get(b.name)?.window_requests || 0), 0);
}

// Draws the apps that match the filter, busiest first, when what they show changed.
function renderApps(report, ctx) {
  if (appView.generation !== report.generation) {
    appView.list = groupApps(report);
    appView.generation = report.generation;
  }
  const needle = appView.filter.trim().toLowerCase();
  const matching = needle ? appView.list.filter((a) => a.search.includes(needle)) : appView.list;
  const sorted = matching.map((a) => [weight(a, ctx), a])
    .sort((x, y) => y[0] - x[0] || (x[1].id < y[1].id ? -1 : 1)).map(([, a]) => a);
  const visible = sorted.slice(0, appView.shown);
  const key = JSON.stringify([report.generation, ctx.historyVersion, needle, appView.shown,
    visible.map((a) => a.backends.map((b) => {
      const rate = ctx.rates.get(b.name);
      return [ctx.totals.get(b.name), rate && [perSecond(rate.requests), perSecond(rate.errors_5xx)]];
    }))]);
  if (appView.drawn === key) return;
  appView.drawn = key;
  const list = el("div", { id: "app-list", "data-rendered-by": "script", "data-matching": matching.length },
    ...visible.map((a) => appCard(a, ctx)));
  if (!appView.list.length) list.append(el("p", { class: "empty" }, "No apps: no app is exposed by this balancer."));
  else if (!matching.length) list.append(el("p", { class: "empty" }, `No app, host or endpoint matches “${appView.filter}”.`));
  $("app-list").replaceWith(list);
  $("app-count").textContent = appView.list.length.toLocaleString("en");
  const total = count(appView.list.length, "app");
  $("app-shown").textContent = needle ? `${visible.length} shown of ${matching.length} matching (${total})`
    : `${visible.length} shown of ${total}`;
  $("app-paging").hidden = matching.length <= visible.length;
  $("show-more").textContent = `Show ${Math.min(PAGE, matching.length - visible.length)} more`;
}

// The search box: the filter is kept in the address (`#q=`), so a reload or a link keeps it.
function watchFilter(redrawApps) {
  const box = $("filter");
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("q") || "";
  box.value = fromHash;
  appView.filter = fromHash;
  box.addEventListener("input", () => {
    appView.filter = box.value;
    appView.shown = PAGE;
    const address = box.value ? `#q=${encodeURIComponent(box.value)}` : location.pathname;
    window.history.replaceState(null, "", address);
    redrawApps();
  });
  $("show-more").addEventListener("click", () => {
    appView.shown += PAGE;
    redrawApps();
  });
}
