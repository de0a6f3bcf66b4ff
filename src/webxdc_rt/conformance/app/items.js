// Realtime items of the conformance suite and what a page records of the items it receives.
// An item starts with a header: "WXC1", the 8-byte tag of the app copy that sent it, the
// step, the sender's role and a sequence number. A received item whose tag is not one of
// this copy's tags came from somewhere this copy's channel must never hear (isolation).
"use strict";

const MAGIC = [0x57, 0x58, 0x43, 0x31];
const HEADER = 18;
const MAX_ITEM = 128000;

function randomBytes(count) {
  return crypto.getRandomValues(new Uint8Array(count));
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An item of `size` bytes (at least the header) carrying the header, filled with `fill`. */
function makeItem(tag, step, role, seq, size = HEADER, fill = 0) {
  const item = new Uint8Array(Math.max(size, HEADER));
  item.fill(fill);
  item.set(MAGIC, 0);
  item.set(tag, 4);
  item[12] = step;
  item[13] = role;
  new DataView(item.buffer).setUint32(14, seq);
  return item;
}

/** What an item says of itself: null when it has no header. Reads only, never trusts it. */
function parseItem(data) {
  if (data.length < HEADER) return null;
  for (let i = 0; i < 4; i += 1) if (data[i] !== MAGIC[i]) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { tag: hex(data.subarray(4, 12)), step: data[12], role: data[13],
           seq: view.getUint32(14) };
}

/** The received items of one page: its own copy's in `items`, other copies' counted apart. */
class Recorder {
  constructor() {
    this.tags = new Set();      // every tag this copy's pages announced
    this.items = [];
    this.foreign = [];
    this.notUint8Array = 0;
    this.afterLeave = 0;
    this.waiters = [];
  }

  reset() {
    this.items = [];
  }

  /** A listener for one channel: once `isCurrent()` is false, calls count as after leave. */
  listener(isCurrent) {
    return (data) => {
      if (!isCurrent()) { this.afterLeave += 1; return; }
      this.take(data);
    };
  }

  take(data) {
    if (!(data instanceof Uint8Array) || Object.getPrototypeOf(data) !== Uint8Array.prototype) {
      this.notUint8Array += 1;
      if (!(data instanceof Uint8Array)) return;
    }
    const head = parseItem(data);
    if (head !== null && !this.tags.has(head.tag)) {
      if (this.foreign.length < 5) this.foreign.push(head.tag);
      else this.foreign.push("");
      return;
    }
    const payload = data.length > HEADER ? data.subarray(HEADER) : data.subarray(0, 0);
    this.items.push({ len: data.length, step: head ? head.step : -1,
                      role: head ? head.role : -1, seq: head ? head.seq : -1,
                      fills: payload.length ? Array.from(new Set(payload)).slice(0, 4) : [],
                      at: performance.now() });
    this.waiters = this.waiters.filter((waiter) => !waiter());
  }

  /** Resolves once `count` items (those `matching`, if given) are recorded or `timeoutMs`
   * passed, then `graceMs` later. */
  async expect(count, timeoutMs = 5000, graceMs = 400, matching = null) {
    await this.until(count, timeoutMs, matching);
    await sleep(graceMs);
    return this.items.map((item) => ({ ...item }));
  }

  /** Resolves once `count` items (those `matching`, if given) are recorded or `timeoutMs`
   * passed, with no timer when they already are (a sender pacing itself item by item must
   * not wait a timer tick). */
  until(count, timeoutMs, matching = null) {
    const recorded = () => (matching ? this.items.filter(matching) : this.items).length;
    if (recorded() >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        if (recorded() < count) return false;
        clearTimeout(timer);
        resolve();
        return true;
      });
    });
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorName(action) {
  try {
    action();
    return "none";
  } catch (error) {
    return error && error.constructor ? error.constructor.name : String(error);
  }
}

function percentile(sorted, fraction) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}
