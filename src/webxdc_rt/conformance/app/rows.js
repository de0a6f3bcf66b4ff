// The report: one row per clause of the realtime spec, judged from what the pages observed.
// `get(step, phase, role)` is one page's observation (undefined when that page was absent).
"use strict";

const PASS = "pass";
const FAIL = "fail";
const UNTESTABLE = "not testable";

const has = (seen, step, role, seq) =>
  Array.isArray(seen) && seen.some((i) => i[0] === step && i[1] === role && i[2] === seq);
const shown = (value) => JSON.stringify(value);
const verdict = (ok, seenText) => (ok ? [PASS, ""] : [FAIL, seenText]);

const ROWS = [
  { id: "feature", clause: "R1", title: "feature detection", judge: (get) => {
    const local = get("local", "ready", "A");
    return verdict(local.feature === "function", `typeof joinRealtimeChannel: ${local.feature}`);
  } },
  { id: "join", clause: "R2", title: "join returns setListener/send/leave synchronously",
    judge: (get) => {
      const l = get("local", "ready", "A");
      return verdict(l.joinError === "none" && l.methods && l.methods.length === 3 && !l.thenable,
                     `join threw ${l.joinError}; methods ${shown(l.methods)}; ` +
                     `promise-like: ${l.thenable}`);
    } },
  { id: "join-twice", clause: "R3", title: "a second join throws; the first channel works",
    judge: (get) => {
      const a = get("first send", "act", "A");
      const b = get("first send", "check", "B");
      const threw = a.secondJoin !== "none";
      return verdict(threw && a.sendError === "none/none" && has(b.seen, 1, 0, 1),
                     `second join threw: ${a.secondJoin}; sends: ${a.sendError}; ` +
                     `B got the send after it: ${has(b.seen, 1, 0, 1)}`);
    } },
  { id: "rejoin", clause: "R4", title: "join after leave works", judge: (get) => {
    const l = get("local", "ready", "A");
    const fresh = get("before listener", "ready", "B");
    const b = get("after listener", "check", "B");
    return verdict(l.rejoined && fresh.newObject && has(b.seen, 4, 0, 0),
                   `new channel: ${l.rejoined}/${fresh.newObject}; it received: ` +
                   `${has(b.seen, 4, 0, 0)}`);
  } },
  { id: "set-listener", clause: "R5", title: "setListener replaces; data is a Uint8Array",
    judge: (get) => {
      const b = get("replace listener", "check", "B");
      const c = get("replace listener", "check", "C");
      const wrongType = b.notUint8Array + (c ? c.notUint8Array : 0);
      return verdict(b.oldCalls === 0 && has(b.seen, 2, 0, 0) && wrongType === 0,
                     `replaced listener called ${b.oldCalls}x; new one got the item: ` +
                     `${has(b.seen, 2, 0, 0)}; not a plain Uint8Array: ${wrongType}`);
    } },
  { id: "before-listener", clause: "R6", title: "data before a listener is dropped",
    judge: (get) => {
      const b = get("after listener", "check", "B");
      const early = b.seen.filter((i) => i[0] === 3).length;
      return verdict(early === 0 && has(b.seen, 4, 0, 0),
                     `items sent before setListener delivered afterwards: ${early}; ` +
                     `seen ${shown(b.seen)}`);
    } },
  { id: "type-errors", clause: "R7", title: "non-Uint8Array sends throw TypeError",
    judge: (get) => {
      const a = get("types", "act", "A");
      const wrong = Object.entries(a.errors).filter(([, name]) => name !== "TypeError");
      const receivers = ["B", "C"].map((r) => get("types", "check", r)).filter(Boolean);
      const extra = receivers.map((r) => r.seen.length - (has(r.seen, 5, 0, 0) ? 1 : 0));
      return verdict(!wrong.length && extra.every((n) => n === 0) &&
                     receivers.every((r) => has(r.seen, 5, 0, 0)),
                     `${wrong.map(([k, n]) => `${k}: ${n}`).join(", ") || "all TypeError"}; ` +
                     `items delivered besides the marker: ${shown(extra)}`);
    } },
  { id: "size", clause: "R8", title: "over 128000 bytes throws RangeError; 0 and 128000 arrive",
    judge: (get) => {
      const a = get("sizes", "act", "A");
      const b = get("sizes", "check", "B");
      const lengths = b.seen.map((i) => i[3]).sort((x, y) => x - y);
      return verdict(a.over === "RangeError" && a.empty === "none" && a.full === "none" &&
                     shown(lengths) === "[0,128000]",
                     `128001 bytes: ${a.over}; 0: ${a.empty}; 128000: ${a.full}; ` +
                     `received lengths ${shown(lengths)}`);
    } },
  { id: "send-after-join", clause: "R9", title: "a send right after join arrives",
    judge: (get) => {
      const b = get("first send", "check", "B");
      return verdict(has(b.seen, 1, 0, 0), `B received ${shown(b.seen)}`);
    } },
  { id: "no-echo", clause: "R10", title: "the sender never receives its own data",
    judge: (get, all) => {
      const echoes = all.reduce((sum, o) => sum + (o.echo || 0), 0);
      return verdict(echoes === 0, `own items received: ${echoes}`);
    } },
  { id: "every-page", clause: "R11", title: "every other joined page receives",
    judge: (get) => {
      const step = "mutation and B's sends";
      const [a, b, c] = ["A", "B", "C"].map((role) => get(step, "check", role));
      const ok = has(b.seen, 10, 0, 0) && has(a.seen, 10, 1, 1) &&
        (!c || (has(c.seen, 10, 0, 0) && has(c.seen, 10, 1, 1)));
      const row = verdict(ok, `B from A: ${has(b.seen, 10, 0, 0)}; A from B: ` +
                          `${has(a.seen, 10, 1, 1)}` + (c ? `; the second page of A's member ` +
                          `from A and B: ${shown(c.seen)}` : ""));
      if (ok && !c) row[1] = "one page per member: a second page of one member was not tested";
      return row;
    } },
  { id: "late-joiner", clause: "R12", title: "a late joiner gets nothing sent earlier",
    judge: (get) => {
      const b = get("late joiner", "check", "B");
      const earlier = b.seen.filter((i) => i[0] !== 8).length;
      return verdict(earlier === 0 && has(b.seen, 8, 0, 0),
                     `items from before the join: ${earlier}; seen ${shown(b.seen)}`);
    } },
  { id: "isolation", clause: "R13", title: "another copy of the app never hears this one",
    judge: (get, all, context) => {
      const foreign = all.reduce((sum, o) => sum + (o.foreign || 0), 0);
      if (foreign) return [FAIL, `items of another app copy received: ${foreign}`];
      if (!context.otherCopy) {
        return [UNTESTABLE, "no second copy of the app was sending in this chat"];
      }
      return [PASS, ""];
    } },
  { id: "privacy", clause: "R14", title: "non-members cannot join",
    judge: () => [UNTESTABLE, "needs a page without membership: the host's own tests"] },
  { id: "leave", clause: "R15", title: "after leave, send throws and nothing arrives",
    judge: (get) => {
      const l = get("local", "ready", "A");
      const b7 = get("leave", "check", "B");
      const b8 = get("late joiner", "check", "B");
      return verdict(l.sendAfterLeave !== "none" && b7.afterLeave === 0 &&
                     b8.afterLeave === 0 && b7.items === 0,
                     `send after leave threw: ${l.sendAfterLeave}; listener called after ` +
                     `leave: ${b8.afterLeave}x`);
    } },
  { id: "order", clause: "R16", title: "one sender's items in order, each once",
    judge: (get) => {
      const rows = ["B", "C"].map((r) => get("order", "check", r)).filter(Boolean);
      const ok = rows.every((r) => r.count > 0 && r.backwards === 0 && r.duplicates === 0);
      const text = rows.map((r) => `${r.count}/${ORDER_COUNT} received, ${r.backwards} ` +
                            `out of order, ${r.duplicates} duplicates`).join("; ");
      const row = verdict(ok, text);
      if (ok && rows.some((r) => r.distinct < ORDER_COUNT)) row[1] = text;
      return row;
    } },
  { id: "page-closed", clause: "R17", title: "a closed page counts as leave",
    judge: () => [UNTESTABLE, "a page cannot observe its own closing"] },
  { id: "mutation", clause: "R18", title: "changing the array after send changes nothing",
    judge: (get) => {
      const b = get("mutation and B's sends", "check", "B");
      return verdict(shown(b.fills) === "[[17]]", `payload bytes received: ${shown(b.fills)}`);
    } },
];

const FIGURES = [
  { id: "rtt_p50_ms", title: "round trip p50 (ms)",
    read: (get) => get("round trip", "act", "A").p50 },
  { id: "rtt_p99_ms", title: "round trip p99 (ms)",
    read: (get) => get("round trip", "act", "A").p99 },
  { id: "items_per_s_1kB", title: "items/s at 1 kB",
    read: (get) => get("rate 1 kB", "check", "B").perSecond },
  { id: "items_per_s_128kB", title: "items/s at 128 kB",
    read: (get) => get("rate 128 kB", "check", "B").perSecond },
  { id: "join_to_first_item_ms", title: "join to first item (ms)",
    read: (get) => get("join to first item", "check", "B").ms },
];

/** The report from every observation: rows (a row whose data is missing fails). */
function judge(observations, context) {
  const get = (step, phase, role) => (observations[step] && observations[step][phase] || {})[role];
  const all = [];
  for (const phases of Object.values(observations)) {
    for (const roles of Object.values(phases)) all.push(...Object.values(roles));
  }
  const rows = ROWS.map((row) => {
    let result;
    try {
      result = row.judge(get, all, context);
    } catch (error) {
      result = [FAIL, `incomplete observations: ${error.message}`];
    }
    return { id: row.id, clause: row.clause, title: row.title, status: result[0],
             detail: result[1] };
  });
  const figures = {};
  for (const figure of FIGURES) {
    try {
      const value = figure.read(get);
      figures[figure.id] = typeof value === "number" ? Math.round(value * 10) / 10 : null;
    } catch (error) {
      figures[figure.id] = null;
    }
  }
  return { rows, figures };
}
