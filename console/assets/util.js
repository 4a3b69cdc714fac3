// util.js: small DOM and formatting helpers.

// h builds an element: h("td", {class: "x"}, "text", child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// rows replaces the rows of tbody, or shows empty when there are none.
export function rows(tbody, list, row, empty) {
  const cols = tbody.closest("table").querySelectorAll("thead th").length || 1;
  tbody.replaceChildren(...(list.length ? list.map(row) : [h("tr", {}, h("td", { colspan: cols, class: "muted" }, empty))]));
}

export function ago(t) {
  if (!t) return "";
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (!isFinite(s)) return "";
  if (s < 1) return "now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function time(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
}

export function num(n) {
  return (n ?? 0).toLocaleString("en-US");
}

export function bytes(n) {
  n = n || 0;
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export function badge(ok, yes, no) {
  return h("span", { class: ok ? "badge ok" : "badge off" }, ok ? yes : no);
}

// every calls f now and every ms until the returned stop is called; calls
// never overlap.
export function every(ms, f) {
  let stopped = false, timer = null;
  const tick = async () => {
    try { await f(); } catch (e) { console.warn(e); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
