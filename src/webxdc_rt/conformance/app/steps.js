// The suite's steps. Each step has three phases run by every page at once (ready, act,
// check); the coordinator starts a phase only when every page has finished the one before,
// so "B has joined" and "A has sent" are known to hold when the next phase starts. Roles: A
// is the page that started the run, B a page of another member, C a second page of A's
// member (optional). Every function returns what its page observed.
"use strict";

const ORDER_COUNT = 3000;
const ORDER_SIZE = 64;
const PACE_BATCH = 200;       // items sent per 100 ms: under a host's default send budget
const PINGS = 200;
const RATE_1K = 1500;
const RATE_128K = 48;
const RATE_WINDOW_BYTES = 1000000;  // what a sender has unanswered while a rate is measured
const ACK_WAIT_MS = 2000;     // how long it waits for an answer before counting the item lost
const STEP_BUDGET_MS = 30000; // how long a measuring sender goes on: well within a phase
const SETTLE_MS = 800;        // how long a page waits for items that must not come
const SEEN_MAX = 500;         // items a page lists in one observation (about 10 kB)

/** The page's side of the run: its role, its channel and what it received. */
class Member {
  constructor(webxdc, tag, role) {
    this.webxdc = webxdc;
    this.tag = tag;
    this.role = role;
    this.rec = new Recorder();
    this.ch = null;
    this.chId = 0;
  }

  join(withListener = true) {
    this.chId += 1;
    this.ch = this.webxdc.joinRealtimeChannel();
    if (withListener) this.listen();
    return this.ch;
  }

  listen() {
    const id = this.chId;
    this.ch.setListener(this.rec.listener(() => this.chId === id && this.ch !== null));
  }

  leave() {
    if (this.ch) this.ch.leave();
    this.ch = null;
    this.chId += 1;
  }

  item(step, seq, size, fill) {
    return makeItem(this.tag, step, ROLE_CODES[this.role], seq, size, fill);
  }

  /** The items received since the last reset, as [step, role, seq, len]: the first
   * SEEN_MAX of them, so that what a page posts stays well within one update. */
  seen() {
    return this.rec.items.slice(0, SEEN_MAX).map((i) => [i.step, i.role, i.seq, i.len]);
  }

  received() {
    return { items: this.rec.items.length, echo: this.rec.items.filter(
      (i) => i.role === ROLE_CODES[this.role]).length };
  }
}

const ROLE_CODES = { A: 0, B: 1, C: 2 };

async function pacedSend(member, step, count, size) {
  for (let seq = 0; seq < count; seq += 1) {
    member.ch.send(member.item(step, seq, size));
    if ((seq + 1) % PACE_BATCH === 0) await sleep(100);
  }
}

/** What a page saw once `count` items of `step` came (or the wait ran out): every item
 * since the last reset is listed, but only those of the step (and items without a header,
 * such as an empty one) are waited for, so that items of an earlier step still on their
 * way cannot end the wait early. */
async function expectFrom(member, count, step) {
  await member.rec.expect(count, undefined, undefined,
                          (i) => i.step === step || i.step === -1);
  return { seen: member.seen(), ...member.received() };
}

async function settle(member) {
  await sleep(SETTLE_MS);
  return member.received();
}

const listenAgain = (m) => {
  m.rec.reset();
  if (m.ch) m.listen();
  else m.join();
  return {};
};

const STEPS = [
  { name: "local", ready: { A: (m) => localChecks(m) } },
  { name: "first send",
    ready: { B: listenAgain, C: listenAgain },
    act: { A: (m) => {
      m.rec.reset();
      m.join();
      let sendError = errorName(() => m.ch.send(m.item(1, 0)));
      let second = null;
      const secondJoin = errorName(() => { second = m.webxdc.joinRealtimeChannel(); });
      sendError += "/" + errorName(() => m.ch.send(m.item(1, 1)));
      if (second !== null) {
        // A host that let the second join through may have tied delivery to it: start
        // afresh, so that this row's failure does not spill into the rows after it.
        errorName(() => second.leave());
        m.leave();
        m.join();
      }
      return { secondJoin, sendError };
    } },
    check: { A: settle, B: (m) => expectFrom(m, 2, 1), C: (m) => expectFrom(m, 2, 1) } },
  { name: "replace listener",
    ready: { B: (m) => {
      m.rec.reset();
      const old = { calls: 0 };
      m.oldListener = old;
      m.ch.setListener(() => { old.calls += 1; });
      m.listen();
      return {};
    } },
    act: { A: (m) => { m.ch.send(m.item(2, 0)); return {}; } },
    check: { B: async (m) => ({ ...(await expectFrom(m, 1, 2)), oldCalls: m.oldListener.calls,
                                notUint8Array: m.rec.notUint8Array }),
             C: async (m) => ({ notUint8Array: m.rec.notUint8Array }) } },
  { name: "before listener",
    ready: { B: (m) => {
      const old = m.ch;
      m.leave();
      m.rec.reset();
      const fresh = m.join(false);
      return { newObject: fresh !== old && typeof fresh.send === "function" };
    }, C: listenAgain },
    act: { A: (m) => { m.ch.send(m.item(3, 0)); return {}; } },
    check: { B: settle, C: (m) => expectFrom(m, 1, 3) } },
  { name: "after listener",
    ready: { B: (m) => { m.rec.reset(); m.listen(); return {}; } },
    act: { A: (m) => { m.ch.send(m.item(4, 0)); return {}; } },
    check: { B: (m) => expectFrom(m, 1, 4) } },
  { name: "types",
    ready: { B: listenAgain, C: listenAgain },
    act: { A: (m) => {
      const bad = { string: "abc", ArrayBuffer: new ArrayBuffer(4),
                    DataView: new DataView(new ArrayBuffer(4)), array: [1, 2, 3], null: null };
      const errors = {};
      for (const [kind, value] of Object.entries(bad)) {
        errors[kind] = errorName(() => m.ch.send(value));
      }
      m.ch.send(m.item(5, 0));
      return { errors };
    } },
    check: { B: (m) => expectFrom(m, 1, 5), C: (m) => expectFrom(m, 1, 5) } },
  { name: "sizes",
    ready: { B: listenAgain, C: listenAgain },
    act: { A: (m) => {
      const over = errorName(() => m.ch.send(m.item(6, 9, MAX_ITEM + 1)));
      const empty = errorName(() => m.ch.send(new Uint8Array(0)));
      const full = errorName(() => m.ch.send(m.item(6, 1, MAX_ITEM)));
      return { over, empty, full };
    } },
    check: { B: (m) => expectFrom(m, 2, 6), C: (m) => expectFrom(m, 2, 6) } },
  { name: "leave",
    ready: { B: (m) => {
      m.leave();
      m.rec.reset();
      return {};
    }, C: listenAgain },
    act: { A: (m) => { m.ch.send(m.item(7, 0)); return {}; } },
    check: { B: async (m) => ({ ...(await settle(m)), afterLeave: m.rec.afterLeave }),
             C: (m) => expectFrom(m, 1, 7) } },
  { name: "late joiner",
    ready: { B: listenAgain },
    act: { A: (m) => { m.ch.send(m.item(8, 0)); return {}; } },
    check: { B: async (m) => ({ ...(await expectFrom(m, 1, 8)), afterLeave: m.rec.afterLeave }) } },
  { name: "order",
    ready: { A: (m) => { m.rec.reset(); return {}; }, B: listenAgain, C: listenAgain },
    act: { A: async (m) => { await pacedSend(m, 9, ORDER_COUNT, ORDER_SIZE); return {}; } },
    check: { A: settle, B: (m) => orderOf(m, 9), C: (m) => orderOf(m, 9) } },
  { name: "mutation and B's sends",
    ready: { A: listenAgain, B: listenAgain, C: listenAgain },
    act: {
      A: (m) => {
        const item = m.item(10, 0, 1000, 0x11);
        m.ch.send(item);
        item.fill(0x22, HEADER);
        return {};
      },
      B: (m) => { m.ch.send(m.item(10, 1)); return {}; },
    },
    check: {
      A: async (m) => ({ ...(await expectFrom(m, 1, 10)) }),
      B: async (m) => {
        // A's item of this step: not one of an earlier step still on its way.
        const fromA = (i) => i.step === 10 && i.role === 0;
        await m.rec.expect(1, 5000, 400, fromA);
        const got = m.rec.items.filter(fromA);
        return { fills: got.map((i) => i.fills), seen: m.seen(), ...m.received() };
      },
      C: (m) => expectFrom(m, 2, 10),
    } },
  { name: "round trip",
    ready: { B: (m) => {
      m.ch.setListener((data) => {
        const head = parseItem(data);
        if (head && head.step === 11 && head.role === 0) m.ch.send(m.item(11, head.seq));
      });
      return {};
    } },
    act: { A: (m) => roundTrips(m) } },
  { name: "rate 1 kB",
    ready: { B: answering(12) },
    act: { A: (m) => windowedSend(m, 12, RATE_1K, 1000) },
    check: { B: (m) => rateOf(m, RATE_1K) } },
  { name: "rate 128 kB",
    ready: { B: answering(13) },
    act: { A: (m) => windowedSend(m, 13, RATE_128K, MAX_ITEM) },
    check: { B: (m) => rateOf(m, RATE_128K) } },
  { name: "join to first item",
    act: { A: (m) => {
      let seq = 0;
      const timer = setInterval(() => m.ch && m.ch.send(m.item(14, seq++)), 10);
      setTimeout(() => clearInterval(timer), 5000);
      return {};
    } },
    check: { B: async (m) => {
      m.leave();
      m.rec.reset();
      const start = performance.now();
      m.join();
      await m.rec.expect(1, 4000, 0);
      const first = m.rec.items.find((i) => i.step === 14);
      return { ms: first ? first.at - start : null };
    } } },
  { name: "end",
    ready: { A: async (m) => { await sleep(200); m.leave(); return {}; },
             B: (m) => { m.leave(); return {}; }, C: (m) => { m.leave(); return {}; } } },
];

function localChecks(m) {
  const webxdc = m.webxdc;
  const feature = typeof webxdc.joinRealtimeChannel;
  if (feature !== "function") return { feature };
  let ch;
  const joinError = errorName(() => { ch = webxdc.joinRealtimeChannel(); });
  if (!ch) return { feature, joinError };
  const methods = ["setListener", "send", "leave"].filter((k) => typeof ch[k] === "function");
  const thenable = typeof ch.then === "function";
  ch.leave();
  const sendAfterLeave = errorName(() => ch.send(new Uint8Array(1)));
  let again = null;
  const rejoinError = errorName(() => { again = webxdc.joinRealtimeChannel(); });
  const rejoined = again !== null && again !== ch && typeof again.send === "function";
  if (again) again.leave();
  return { feature, joinError, methods, thenable, sendAfterLeave, rejoinError, rejoined };
}

async function orderOf(m, step) {
  await m.rec.expect(ORDER_COUNT, 15000);
  const seqs = m.rec.items.filter((i) => i.step === step && i.role === 0).map((i) => i.seq);
  let backwards = 0;
  let duplicates = 0;
  const seen = new Set();
  for (let i = 0; i < seqs.length; i += 1) {
    if (seen.has(seqs[i])) duplicates += 1;
    else if (i > 0 && seqs[i] < seqs[i - 1]) backwards += 1;
    seen.add(seqs[i]);
  }
  return { count: seqs.length, distinct: seen.size, backwards, duplicates };
}

async function roundTrips(m) {
  m.rec.reset();
  const times = [];
  let lost = 0;
  const deadline = performance.now() + STEP_BUDGET_MS;
  for (let seq = 0; seq < PINGS && performance.now() < deadline; seq += 1) {
    const start = performance.now();
    m.ch.send(m.item(11, seq));
    const before = m.rec.items.length;
    await m.rec.expect(before + 1, ACK_WAIT_MS, 0);
    const pong = m.rec.items.slice(before)
      .find((i) => i.step === 11 && i.role === 1 && i.seq === seq);
    if (pong) times.push(pong.at - start);
    else lost += 1;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), lost,
           unsent: PINGS - times.length - lost };
}

/** B's side of a rate step: records what arrives and answers each of A's items with a
 * small one, so that A can pace itself to what B takes in. */
function answering(step) {
  return (m) => {
    listenAgain(m);
    const id = m.chId;
    const record = m.rec.listener(() => m.chId === id && m.ch !== null);
    m.ch.setListener((data) => {
      record(data);
      const head = parseItem(data);
      if (head && head.step === step && head.role === 0 && m.chId === id && m.ch) {
        errorName(() => m.ch.send(m.item(step, head.seq)));
      }
    });
    return {};
  };
}

/** Sends `count` items of `size` bytes as fast as the receiver answers them, with at most
 * RATE_WINDOW_BYTES unanswered: a sender that outran its receiver would measure the
 * host's drops of stale items, not its throughput. When no answer comes within
 * ACK_WAIT_MS, every item unanswered so far counts as lost and the window starts afresh
 * (a host that dropped a burst costs one wait, not one per item); it stops sending at
 * STEP_BUDGET_MS, so that a host that answers nothing still ends the step. */
async function windowedSend(m, step, count, size) {
  m.rec.reset();
  const window = Math.max(1, Math.floor(RATE_WINDOW_BYTES / size));
  const deadline = performance.now() + STEP_BUDGET_MS;
  let refused = "none";
  let lost = 0;
  let seq = 0;
  for (; seq < count && refused === "none" && performance.now() < deadline; seq += 1) {
    const answers = seq + 1 - window - lost;
    await m.rec.until(answers, ACK_WAIT_MS);
    if (m.rec.items.length < answers) lost = seq - m.rec.items.length;
    refused = errorName(() => m.ch.send(m.item(step, seq, size)));
  }
  return { refused, lost, unsent: count - seq };
}

async function rateOf(m, count) {
  await m.rec.expect(count, 15000, 200);
  const items = m.rec.items;
  if (items.length < 2) return { perSecond: null, count: items.length };
  const seconds = (items[items.length - 1].at - items[0].at) / 1000;
  return { perSecond: seconds > 0 ? (items.length - 1) / seconds : null, count: items.length };
}
