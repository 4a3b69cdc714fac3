// A small scpgate vendor application, written from docs/api.md only.
//
// It connects as the NATS user "vendor" (inbox prefix _INBOX.vendor),
// reads every event with its own durable consumer on SCP_EVENTS, sends
// commands through the commander's micro endpoints with idempotency keys,
// reads their results from SCP_RESULTS with a second durable consumer, and
// reads the current state of each controller from the scp_state bucket.
// It prints one JSON summary line at the end.
//
// Environment:
//   NATS_URL            nats://host:port (default nats://127.0.0.1:4222)
//   NATS_USER           default vendor
//   NATS_PASSWORD       the vendor user's password
//   VENDOR_DURABLE      consumer name prefix, must start with "vendor-"
//                       (default vendor-example)
//   VENDOR_ACK_WAIT_MS  ack wait of the consumers (default 30000)
//   VENDOR_SEEN_FILE    file that keeps the ids already handled, so that
//                       a restart after a crash skips redelivered events
//   VENDOR_CRASH_AFTER  handle this many events, then exit without
//                       acknowledging the rest of the batch (to show
//                       recovery); 0 = never
//   VENDOR_TIMEOUT_MS   overall deadline (default 60000)

import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { connect, nanos } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";

const env = process.env;
const durable = env.VENDOR_DURABLE || "vendor-example";
const ackWaitMS = Number(env.VENDOR_ACK_WAIT_MS || 30000);
const crashAfter = Number(env.VENDOR_CRASH_AFTER || 0);
const deadline = Date.now() + Number(env.VENDOR_TIMEOUT_MS || 60000);
const seenFile = env.VENDOR_SEEN_FILE || "";
const runID = env.VENDOR_RUN_ID || Math.random().toString(36).slice(2, 10);

if (!durable.startsWith("vendor-")) {
  throw new Error(`VENDOR_DURABLE ${durable}: the vendor user may only create consumers named vendor-...`);
}

function log(...args) {
  console.error(new Date().toISOString(), ...args);
}

function checkDeadline(what) {
  if (Date.now() > deadline) {
    throw new Error(`deadline passed while ${what}`);
  }
}

// seen holds the ids of the events already handled. Delivery is at least
// once: after a crash, messages handled but not yet acknowledged come
// again, and the id (also the Nats-Msg-Id) tells them apart.
const seen = new Set(seenFile && existsSync(seenFile) ? JSON.parse(readFileSync(seenFile, "utf8")) : []);
function saveSeen() {
  if (seenFile) writeFileSync(seenFile, JSON.stringify([...seen]));
}

const nc = await connect({
  servers: env.NATS_URL || "nats://127.0.0.1:4222",
  user: env.NATS_USER || "vendor",
  pass: env.NATS_PASSWORD || "",
  inboxPrefix: "_INBOX.vendor",
  name: "vendor-node-example",
});
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);

// ensureConsumer creates (or updates) a durable pull consumer with the
// settings docs/api.md recommends.
async function ensureConsumer(stream, name) {
  const config = {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All, // a new consumer starts at the oldest stored message
    ack_wait: nanos(ackWaitMS),
    max_ack_pending: 1000,
    max_deliver: -1,
  };
  try {
    await jsm.consumers.info(stream, name);
    await jsm.consumers.update(stream, name, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
  } catch (err) {
    if (!String(err.message).includes("consumer not found")) throw err;
    await jsm.consumers.add(stream, config);
  }
  return js.consumers.get(stream, name);
}

// request calls a commander micro endpoint; an error answer (header
// Nats-Service-Error-Code) becomes an exception carrying its code.
async function request(endpoint, body) {
  const m = await nc.request(`scpgate.commander.${endpoint}`, JSON.stringify(body), { timeout: 30000 });
  const status = m.headers?.get("Nats-Service-Error-Code");
  const doc = m.json();
  if (status) {
    const err = new Error(`${endpoint}: ${status} ${doc.code}: ${doc.error}`);
    err.code = doc.code;
    throw err;
  }
  return doc;
}

// 1. Controllers: every page of the online ones.
const controllers = [];
for (let after = ""; ;) {
  const page = await request("controllers", after ? { after, limit: 100 } : { limit: 100 });
  controllers.push(...page.controllers.map((c) => c.controller));
  if (!page.next) break;
  after = page.next;
}
log(`controllers online: ${controllers.join(", ")}`);

// 2. Commands, each with an idempotency key: a retry after a timeout or a
// crash cannot queue it twice. The reply is the command document.
const commands = [];
async function submit(controller, n, type, params, wait = "10s") {
  const key = `${runID}-${controller}-${n}`;
  const doc = await request("submit", { controller, type, params, wait, idempotency_key: key });
  commands.push({ id: doc.id, controller, type, status: doc.status, key });
  return doc;
}
for (const c of controllers) {
  await submit(c, 1, "momentary_unlock", { door: 1, seconds: 5 });
  await submit(c, 2, "output", { output: 1, action: "pulse", ms: 250 });
  // Card numbers go past 2^53: send them as strings.
  await submit(c, 3, "card_add", { card: "18446744073709551615", facility: 7, levels: [1] });
  await submit(c, 4, "door_mode", { door: 99, mode: "locked" }); // no door 99: nak out_of_range
  await submit(c, 5, "id_request", undefined, "0s"); // answered at once: queued or sent
  // The same key again: the same command, not a second one.
  const again = await request("submit", { controller: c, type: "momentary_unlock", params: { door: 1, seconds: 5 }, idempotency_key: `${runID}-${c}-1` });
  const first = commands.find((x) => x.key === `${runID}-${c}-1`);
  if (again.id !== first.id || again.duplicate !== true) {
    throw new Error(`idempotent resubmission: got ${again.id} duplicate=${again.duplicate}, want ${first.id} duplicate=true`);
  }
}
// A refused request answers an error code.
let refused = "";
try {
  await request("submit", { controller: controllers[0], type: "momentary_unlock", params: { door: 1 } });
} catch (err) {
  refused = err.code;
}
log(`submitted ${commands.length} commands; a bad one was refused with ${refused}`);

// 3. Events: read everything with the durable consumer, acknowledging
// each after it is handled, until the consumer has nothing pending.
const eventsConsumer = await ensureConsumer("SCP_EVENTS", `${durable}-events`);
const byKind = {};
const points = new Map(); // controller -> Set of "door.1" ...
let read = 0, duplicates = 0, handled = 0, maxCard = 0n;
for (; ;) {
  checkDeadline("reading events");
  const batch = await eventsConsumer.fetch({ max_messages: 200, expires: 1000 });
  let got = 0;
  for await (const m of batch) {
    got++;
    read++;
    const ev = m.json();
    if (seen.has(ev.id)) {
      duplicates++; // handled before a crash, not acknowledged: skip
      m.ack();
      continue;
    }
    seen.add(ev.id);
    handled++;
    byKind[ev.kind] = (byKind[ev.kind] || 0) + 1;
    if (ev.card) {
      const card = BigInt(ev.card.number_str); // exact, unlike ev.card.number
      if (card > maxCard) maxCard = card;
    }
    if (ev.source && ["door", "input", "output"].includes(ev.source.type) && ev.kind === ev.source.type) {
      if (!points.has(ev.controller)) points.set(ev.controller, new Set());
      points.get(ev.controller).add(`${ev.source.type}.${ev.source.number}`);
    }
    if (crashAfter > 0 && handled >= crashAfter) {
      // Handled (and remembered) but never acknowledged: it comes again.
      saveSeen();
      log(`crashing after ${handled} events, before acknowledging the last`);
      process.exit(3);
    }
    m.ack();
  }
  if (got === 0) {
    const info = await eventsConsumer.info();
    if (info.num_pending === 0 && info.num_ack_pending === 0) break;
  }
}
saveSeen();
const streamInfo = await jsm.streams.info("SCP_EVENTS");
log(`events: ${handled} handled, ${duplicates} duplicates skipped; the stream holds ${streamInfo.state.messages}`);

// 4. Results: one per command, by command id, from SCP_RESULTS.
const resultsConsumer = await ensureConsumer("SCP_RESULTS", `${durable}-results`);
const results = {};
const want = new Set(commands.map((c) => c.id));
while ([...want].some((id) => !results[id])) {
  checkDeadline(`waiting for results of ${[...want].filter((id) => !results[id]).join(", ")}`);
  const batch = await resultsConsumer.fetch({ max_messages: 200, expires: 1000 });
  for await (const m of batch) {
    const r = m.json();
    if (want.has(r.id)) results[r.id] = { status: r.status, reason: r.reason || "", finished: r.finished };
    m.ack();
  }
}
log(`results: ${Object.keys(results).length} of ${want.size} commands`);

// 5. State: the controller value and the value of every point seen.
// allow_direct: read with direct gets, the only reads the vendor user may
// make of the bucket (and the cheapest for the servers).
const kv = await new Kvm(js).open("scp_state", { allow_direct: true });
const state = {};
for (const c of controllers) {
  const keys = [c, ...[...(points.get(c) || [])].map((p) => `${c}.${p}`)];
  for (const key of keys) {
    const e = await kv.get(key);
    if (e && e.operation === "PUT") state[key] = { revision: e.revision, value: e.json() };
  }
}

console.log(JSON.stringify({
  controllers,
  events: { read, handled, unique: seen.size, duplicates, stream: streamInfo.state.messages, by_kind: byKind, max_card: maxCard.toString() },
  commands,
  results,
  refused,
  state,
}));
await nc.drain();
