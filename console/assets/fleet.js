// fleet.js: the fleet at a glance, from /console/api/fleet: drivers,
// controllers online and offline with the driver holding each (the legacy
// `ps` title view), streams and ingest lag.
import { get } from "./api.js";
import { h, rows, ago, num, bytes, badge, every } from "./util.js";

export function fleetView(root) {
  const summary = h("section", { class: "cards" });
  const search = h("input", { id: "search", type: "search", placeholder: "search by serial", "aria-label": "search by serial", autocomplete: "off" });
  const status = h("select", { id: "filter", "aria-label": "status" },
    h("option", { value: "all" }, "all"), h("option", { value: "online" }, "online"), h("option", { value: "offline" }, "offline"));
  const matched = h("span", { class: "muted", id: "matched" });
  const ctrlBody = h("tbody", { id: "controllers" });
  const drvBody = h("tbody", { id: "drivers" });
  const strBody = h("tbody");
  const lagBody = h("tbody");
  const errors = h("div", { class: "errors", role: "alert" });

  // The short tables first; the controllers, which may be thousands, last.
  root.append(
    errors, summary,
    h("div", { class: "two" },
      h("section", {}, h("h2", {}, "Drivers"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Driver", "Controller address", "Sessions", "Events/s", "In flight", "State"].map((t) => h("th", {}, t)))), drvBody)),
      h("section", {}, h("h2", {}, "Streams"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Stream", "Messages", "Size", "Consumers"].map((t) => h("th", {}, t)))), strBody),
        h("h2", {}, "Ingest"),
        h("table", {}, h("thead", {}, h("tr", {}, ["Stream", "Pending", "Behind"].map((t) => h("th", {}, t)))), lagBody))),
    h("section", {},
      h("div", { class: "bar" }, h("h2", {}, "Controllers"), search, status, matched),
      h("table", {}, h("thead", {}, h("tr", {}, ["Serial", "State", "Driver", "Remote", "Since", "Last seen"].map((t) => h("th", {}, t)))), ctrlBody)));

  let timer = null;
  const refresh = async () => {
    const q = new URLSearchParams({ q: search.value.trim(), status: status.value, limit: "200" });
    let f;
    try {
      f = await get("/console/api/fleet?" + q);
    } catch (e) {
      errors.replaceChildren(h("p", {}, "Fleet view: " + e.message));
      return;
    }
    errors.replaceChildren(...(f.errors || []).map((e) => h("p", {}, e)));
    const rate = f.drivers.reduce((s, d) => s + d.events_per_s, 0);
    const behind = Math.max(0, ...f.ingest.map((l) => l.seconds_behind));
    summary.replaceChildren(
      card("online", num(f.online), "controllers online"),
      card("offline", num(f.offline), "offline", f.offline ? "warn" : ""),
      card("drivers", num(f.drivers.length), "drivers"),
      card("rate", rate.toFixed(1), "events/s"),
      card("lag", behind.toFixed(1) + " s", "ingest behind", behind > 30 ? "warn" : ""));
    matched.textContent = f.matched > f.controllers.length ? `${f.controllers.length} of ${num(f.matched)} shown` : `${num(f.matched)} shown`;
    rows(ctrlBody, f.controllers, (c) => h("tr", {},
      h("td", {}, h("a", { href: "#/c/" + c.controller, dataset: { serial: c.controller } }, c.controller)),
      h("td", {}, badge(c.online, "online", "offline")),
      h("td", {}, c.driver || ""),
      h("td", { class: "mono" }, c.remote || ""),
      h("td", {}, c.online ? ago(c.since) : (c.reason || "")),
      h("td", {}, ago(c.last_seen))), "No controller matches.");
    rows(drvBody, f.drivers, (d) => h("tr", {},
      h("td", {}, d.id), h("td", { class: "mono" }, d.controller_addr),
      h("td", { class: "n" }, num(d.sessions)), h("td", { class: "n" }, d.events_per_s.toFixed(1)),
      h("td", { class: "n" }, num(d.inflight)), h("td", {}, d.draining ? badge(false, "", "draining") : "running")), "No driver answered.");
    rows(strBody, f.streams, (s) => h("tr", {},
      h("td", {}, s.name), h("td", { class: "n" }, num(s.messages)), h("td", { class: "n" }, bytes(s.bytes)), h("td", { class: "n" }, s.consumers)), "No stream.");
    rows(lagBody, f.ingest, (l) => h("tr", {},
      h("td", {}, l.stream), h("td", { class: "n" }, num(l.pending)), h("td", { class: "n" }, l.seconds_behind.toFixed(1) + " s")), "No ingest consumer.");
    document.getElementById("status").textContent = "updated " + new Date(f.time).toLocaleTimeString([], { hour12: false });
  };

  let debounce = null;
  const soon = () => { clearTimeout(debounce); debounce = setTimeout(refresh, 200); };
  search.addEventListener("input", soon);
  status.addEventListener("change", soon);
  search.addEventListener("keydown", (e) => {
    // Enter on a search with one match opens that controller.
    const links = ctrlBody.querySelectorAll("a[data-serial]");
    if (e.key === "Enter" && links.length === 1) location.hash = links[0].getAttribute("href");
  });
  timer = every(3000, refresh);
  search.focus({ preventScroll: true });
  return () => { timer(); clearTimeout(debounce); };
}

function card(id, value, label, cls = "") {
  return h("div", { class: "card " + cls, id: "card-" + id }, h("strong", {}, value), h("span", {}, label));
}
