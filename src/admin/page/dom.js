// Helpers the page's scripts share. Hosts, app ids, labels and messages come from users' app
// definitions: they reach the DOM only as text nodes or attribute values (see `el`), never as
// HTML.
const $ = (id) => document.getElementById(id);

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

function emptyRow(columns, text) {
  return el("tr", {}, el("td", { class: "empty", colspan: columns }, text));
}

function count(n, noun) {
  return `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

// "3 d 4 h", "2 h 5 min", "4 min", "12 s".
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min`;
  return `${s} s`;
}

function ago(ms) {
  return `${clock(new Date(ms))} (${duration((Date.now() - ms) / 1000)} ago)`;
}

// A rate per second: one decimal under 100, none above.
function perSecond(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en");
}

function millis(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s`;
  return `${ms >= 10 ? Math.round(ms) : ms.toFixed(1)} ms`;
}

// "/a, /b +3 more".
function names(first, total) {
  const more = total - first.length;
  return first.join(", ") + (more > 0 ? ` +${more} more` : "");
}
