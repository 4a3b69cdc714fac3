// controller.js: one controller: presence (commander), state and live
// event tail (ingest), a command form with its result, recent commands.
import { get, post } from "./api.js";
import { h, rows, ago, time, badge, every } from "./util.js";

// Parameter templates by command type (see docs/events.md, commands).
const TEMPLATES = {
  momentary_unlock: { door: 1, seconds: 5 },
  door_mode: { door: 1, mode: "locked" },
  output: { output: 1, action: "pulse", ms: 500 },
  card_add: { card: 12345, facility: 1, levels: [1] },
  card_delete: { card: 12345 },
  access_level: { level: 1, doors: [1] },
  set_time: {},
  id_request: {},
  tran_status: {},
  reset: {},
};
const FINAL = new Set(["ok", "nak", "failed", "expired"]);
const TAIL = 100; // events kept in the tail

export function controllerView(root, serial) {
  const head = h("div", { class: "bar" }, h("h1", {}, serial));
  const facts = h("dl", { class: "facts", id: "presence" });
  const doors = h("tbody", { id: "doors" }), inputs = h("tbody", { id: "inputs" }), outputs = h("tbody", { id: "outputs" });
  const eventsBody = h("tbody", { id: "events" });
  const recentBody = h("tbody", { id: "recent" });
  const errors = h("div", { class: "errors", role: "alert" });

  const type = h("select", { id: "cmd-type", name: "type", "aria-label": "command type" },
    Object.keys(TEMPLATES).map((t) => h("option", { value: t }, t)));
  const params = h("textarea", { id: "cmd-params", name: "params", rows: 3, spellcheck: "false", "aria-label": "params (JSON)" });
  const ttl = h("input", { id: "cmd-ttl", name: "ttl", placeholder: "ttl, e.g. 30s", size: 10, "aria-label": "ttl" });
  const send = h("button", { id: "cmd-send", type: "submit", class: "primary" }, "Send");
  const result = h("div", { id: "cmd-result", class: "result", "aria-live": "polite" });
  const fill = () => { params.value = JSON.stringify(TEMPLATES[type.value]); };
  type.addEventListener("change", fill);
  fill();
  const form = h("form", { id: "cmd-form", class: "cmd" },
    h("label", {}, "Command", type), h("label", { class: "grow" }, "Params", params), h("label", {}, "TTL", ttl), send);

  root.append(
    h("p", {}, h("a", { href: "#/" }, "← Fleet")), head, errors, facts,
    h("div", { class: "two" },
      h("section", {}, h("h2", {}, "State"),
        table(["Door", "Status", "Lock"], doors), table(["Input", "State"], inputs), table(["Output", "State"], outputs)),
      h("section", {}, h("h2", {}, "Command"), form, result,
        h("h3", {}, "Recent commands"), table(["Sent", "Type", "Status", "Detail"], recentBody))),
    h("section", {}, h("h2", {}, "Events ", h("span", { class: "muted small" }, "live, newest first")),
      table(["Time", "Kind", "Code", "Source", "Detail"], eventsBody)));

  // Recent commands: the controller's status records (commands a driver
  // took up, from any sender) and those sent from this tab, which may
  // still be queued; those are refreshed until final.
  const key = "scpgate.recent." + serial;
  let local = JSON.parse(sessionStorage.getItem(key) || "[]");
  let server = [];
  const showRecent = () => {
    const byId = new Map(local.map((c) => [c.id, c]));
    for (const c of server) byId.set(c.id, c);
    const all = [...byId.values()].sort((a, b) => (b.seq || 0) - (a.seq || 0)).slice(0, 20);
    rows(recentBody, all, (c) => h("tr", {},
      h("td", {}, time(c.created)), h("td", {}, c.type), h("td", {}, status(c.status)),
      h("td", { class: "small" }, [c.reason, c.detail].filter(Boolean).join(": "))), "No command yet.");
  };
  showRecent();
  const remember = (rec) => {
    const c = { id: rec.id, seq: rec.seq, type: rec.type, status: rec.status, reason: rec.reason, detail: rec.detail, created: rec.created };
    local = [c, ...local.filter((x) => x.id !== c.id)].slice(0, 20);
    sessionStorage.setItem(key, JSON.stringify(local));
    showRecent();
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let p;
    try {
      p = JSON.parse(params.value || "{}");
    } catch (err) {
      result.replaceChildren(h("span", { class: "badge bad" }, "error"), " params are not JSON: " + err.message);
      return;
    }
    const body = { type: type.value, params: p };
    if (ttl.value.trim()) body.ttl = ttl.value.trim();
    send.disabled = true;
    result.replaceChildren(h("span", { class: "muted" }, `sending ${type.value}…`));
    try {
      const r = await post(`/v1/controllers/${serial}/commands?wait=10s`, body);
      const res = r.result;
      const st = res ? res.status : r.status;
      const ctrl = (res && (res.controller ?? res.serial)) || r.controller || r.serial || serial;
      result.replaceChildren(h("span", { id: "cmd-status" }, status(st)), " ", h("code", {}, r.id), ` ${r.type} to ${ctrl}`,
        res && (res.reason || res.detail) ? ": " + [res.reason, res.detail].filter(Boolean).join(": ") : "",
        res ? "" : " (waiting for the controller; see recent commands)");
      remember({ ...r, status: st, reason: res && res.reason, detail: res && res.detail });
    } catch (err) {
      result.replaceChildren(h("span", { class: "badge bad" }, "refused"), " " + err.message);
    } finally {
      send.disabled = false;
    }
  });

  const refreshPresence = async () => {
    const c = await get(`/v1/controllers/${serial}`);
    head.replaceChildren(h("h1", {}, serial), badge(c.online, "online", "offline"));
    facts.replaceChildren(
      fact("Driver", c.driver || "—"), fact("Remote", c.remote || "—"),
      fact("Since", c.since ? `${time(c.since)} (${ago(c.since)})` : "—"),
      fact("Model", [c.model, c.firmware].filter(Boolean).join(" ") || "—"));
  };
  const refreshState = async () => {
    let st;
    try {
      st = await get(`/v1/controllers/${serial}/state`);
    } catch (e) {
      if (e.status !== 404) throw e;
      st = {};
    }
    rows(doors, st.doors || [], (d) => h("tr", {}, h("td", {}, d.door), h("td", {}, pill(d.status, !d.forced_open && !d.held_open)), h("td", {}, d.lock || "")), "No door state yet.");
    rows(inputs, st.inputs || [], (i) => h("tr", {}, h("td", {}, i.input), h("td", {}, pill(i.code || i.state, (i.code || i.state) === "normal"))), "No input state yet.");
    rows(outputs, st.outputs || [], (o) => h("tr", {}, h("td", {}, o.output), h("td", {}, pill(o.code || (o.on ? "on" : "off"), true))), "No output state yet.");
  };
  const refreshRecent = async () => {
    server = (await get(`/console/api/controllers/${serial}/commands?limit=20`)).commands;
    const known = new Set(server.map((c) => c.id));
    for (const c of local.filter((c) => !FINAL.has(c.status) && !known.has(c.id)).slice(0, 5)) {
      remember(await get(`/v1/commands/${c.id}`));
    }
    showRecent();
  };

  // The event tail polls for events at or after the newest one shown and
  // drops those already shown; the table keeps the newest TAIL.
  let since = "", shown = new Map();
  const refreshEvents = async () => {
    const q = new URLSearchParams({ limit: since ? "200" : String(TAIL), order: since ? "asc" : "desc" });
    if (since) q.set("since", since);
    const page = await get(`/v1/controllers/${serial}/events?` + q);
    const fresh = page.events.filter((e) => !shown.has(e.id));
    if (!fresh.length && eventsBody.children.length) return;
    for (const e of fresh) shown.set(e.id, e);
    const all = [...shown.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.id < b.id ? 1 : -1)).slice(0, TAIL);
    shown = new Map(all.map((e) => [e.id, e]));
    if (all.length) since = all[0].time;
    rows(eventsBody, all, (e) => h("tr", { class: fresh.includes(e) && eventsBody.children.length ? "new" : "" },
      h("td", { class: "mono" }, time(e.time)), h("td", {}, e.kind), h("td", {}, e.code),
      h("td", {}, e.source ? `${e.source.type} ${e.source.number}` : ""),
      h("td", { class: "small" }, detail(e))), "No event yet.");
  };

  const guard = (what, f) => async () => {
    try {
      await f();
      errors.querySelector(`[data-what="${what}"]`)?.remove();
    } catch (e) {
      const p = errors.querySelector(`[data-what="${what}"]`) || errors.appendChild(h("p", { dataset: { what } }));
      p.textContent = `${what}: ${e.message}`;
    }
  };
  const stops = [
    every(3000, guard("presence", refreshPresence)),
    every(3000, guard("state", refreshState)),
    every(2000, guard("events", refreshEvents)),
    every(3000, guard("commands", refreshRecent)),
  ];
  return () => stops.forEach((s) => s());
}

function table(head, body) {
  return h("table", {}, h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t)))), body);
}

function fact(k, v) {
  return h("div", {}, h("dt", {}, k), h("dd", {}, v));
}

function status(s) {
  const cls = s === "ok" ? "ok" : FINAL.has(s) ? "bad" : "off";
  return h("span", { class: "badge " + cls, dataset: { status: s } }, s);
}

function pill(text, good) {
  return h("span", { class: good ? "pill" : "pill warn" }, text || "—");
}

function detail(e) {
  if (e.card) return `card ${e.card.number} facility ${e.card.facility}`;
  if (e.presence) return [e.presence.remote, e.presence.reason].filter(Boolean).join(" ");
  if (e.lost) return `${e.lost} lost`;
  return "";
}
