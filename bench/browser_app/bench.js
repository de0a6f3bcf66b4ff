// One page of the browser benchmark. It joins the app's realtime channel through the host's
// own bridge (`window.webxdc`, whichever host served it) and offers the phases that
// bench/browser.py runs in it over CDP (Runtime.evaluate); each returns a promise of plain
// figures.
//
// Every item starts with a 16-byte header: the time it was sent (float64, ms on the clock
// all pages share, performance.timeOrigin + performance.now()), its sequence number (uint32),
// its kind and the phase it belongs to (so that stragglers of an earlier phase are ignored).
// The rest is as the Node.js load generator of bench/realtime.py fills it.
(() => {
  const HEADER_BYTES = 16;
  const DATA = 1, ACK = 2, PROBE = 3;
  const now = () => performance.timeOrigin + performance.now();

  // Timers set from a timer callback are clamped to 4 ms after a few levels of nesting;
  // one set from a message event is not, so paced sending keeps its rate.
  const wakeups = [];
  const port = new MessageChannel();
  port.port1.onmessage = () => {
    const [ms, resolve] = wakeups.shift();
    if (ms > 0) setTimeout(resolve, ms);
    else resolve();
  };
  const sleep = (ms) => new Promise((resolve) => {
    wakeups.push([ms, resolve]);
    port.port2.postMessage(null);
  });

  // One array per phase, stamped again before each send: both bridges copy (or encode) what
  // they are given during send(), as the spec lets apps rely on.
  function makeItem(size, kind, phase) {
    const bytes = new Uint8Array(Math.max(size, HEADER_BYTES));
    for (let i = HEADER_BYTES; i < bytes.length; i += 97) bytes[i] = i & 0xff;
    const view = new DataView(bytes.buffer);
    view.setUint8(12, kind);
    view.setUint8(13, phase);
    return {
      bytes,
      view,
      stamp(seq) {
        const sentAt = now();
        view.setFloat64(0, sentAt);
        view.setUint32(8, seq);
        return sentAt;
      },
    };
  }

  const handlers = { [DATA]: null, [ACK]: null, [PROBE]: null };
  const channel = window.webxdc.joinRealtimeChannel();
  channel.setListener((bytes) => {
    if (bytes.byteLength < HEADER_BYTES) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const handler = handlers[view.getUint8(12)];
    if (handler) handler(view);
  });

  const quantile = (sorted, q) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;

  let recorder = null;

  window.bench = {
    // Resolves once this page has heard another page and been heard by it, so that both
    // are joined and every later item reaches the other side. Probes repeat every 20 ms:
    // until the links are up a bridge may drop them.
    async handshake({ phase, timeoutMs }) {
      let heard = false, heardMe = false;
      handlers[PROBE] = (view) => {
        if (view.getUint8(13) !== phase) return;
        heard = true;
        if (view.getUint8(14)) heardMe = true;
      };
      const probe = makeItem(HEADER_BYTES, PROBE, phase);
      const giveUp = now() + timeoutMs;
      while (!(heard && heardMe)) {
        if (now() > giveUp) throw new Error(`no other page answered within ${timeoutMs} ms`);
        probe.view.setUint8(14, heard ? 1 : 0);
        probe.stamp(0);
        channel.send(probe.bytes);
        await sleep(20);
      }
      probe.view.setUint8(14, 1);
      probe.stamp(0);
      channel.send(probe.bytes);   // the other page may still wait to hear that it was heard
      return true;
    },

    // Receiver: from now on, record every data item of `phase` (its age on arrival and the
    // arrival time); with `ackEvery`, tell the sender each time that many more arrived, by
    // the sequence number it has reached (so that an item a host dropped does not count as
    // in flight for ever: items of one sender arrive in order).
    listen({ phase, ackEvery = 0 }) {
      const record = {
        phase, count: 0, ages: [], arrivals: [], reordered: 0, lastSeq: -1,
        startedAt: now(), socketsBefore: window.benchSockets.opened(),
        closesBefore: window.benchSockets.closes().length,
      };
      const ack = makeItem(HEADER_BYTES, ACK, phase);
      handlers[DATA] = (view) => {
        if (view.getUint8(13) !== phase) return;
        const arrivedAt = now();
        record.ages.push(arrivedAt - view.getFloat64(0));
        record.arrivals.push(arrivedAt);
        record.count += 1;
        const seq = view.getUint32(8);
        if (seq <= record.lastSeq) record.reordered += 1;
        record.lastSeq = seq;
        if (ackEvery && record.count % ackEvery === 0) {
          ack.stamp(record.lastSeq + 1);
          channel.send(ack.bytes);
        }
      };
      recorder = record;
      return true;
    },

    // Receiver: how far the current recording is.
    progress() {
      const record = recorder;
      const last = record.arrivals.length ? record.arrivals[record.arrivals.length - 1] : null;
      return { count: record.count, lastArrivalAt: last, now: now() };
    },

    // Receiver: stop recording; the figures of what arrived, with the rate over
    // [from, to] (times on the shared clock) when given.
    finish({ from = null, to = null } = {}) {
      const record = recorder;
      handlers[DATA] = null;
      recorder = null;
      const sorted = Float64Array.from(record.ages).sort();
      let inWindow = 0;
      if (from !== null) {
        for (const t of record.arrivals) if (t >= from && t <= to) inWindow += 1;
      }
      const arrivals = record.arrivals;
      return {
        delivered: record.count,
        reordered: record.reordered,
        windowPerS: from !== null ? inWindow / ((to - from) / 1000) : null,
        ageP50Ms: quantile(sorted, 0.5),
        ageP99Ms: quantile(sorted, 0.99),
        ageMaxMs: sorted.length ? sorted[sorted.length - 1] : null,
        firstArrivalAt: arrivals.length ? arrivals[0] : null,
        lastArrivalAt: arrivals.length ? arrivals[arrivals.length - 1] : null,
        socketsOpened: window.benchSockets.opened() - record.socketsBefore,
        closes: window.benchSockets.closes().slice(record.closesBefore),
      };
    },

    // Sender: `rate` items per second for `durationMs`, each sent when it is due.
    async paced({ phase, size, rate, durationMs }) {
      const item = makeItem(size, DATA, phase);
      const startedAt = now();
      const endAt = startedAt + durationMs;
      const interval = 1000 / rate;
      let sent = 0;
      for (let t = now(); t < endAt; t = now()) {
        const due = startedAt + sent * interval;
        if (t < due) {
          await sleep(due - t);
          continue;
        }
        item.stamp(sent);
        channel.send(item.bytes);
        sent += 1;
      }
      return { sent, startedAt, endedAt: now() };
    },

    // Sender: for `durationMs`, keep `window` items in flight: sent, and not yet passed by
    // the receiver's acknowledgements (it acknowledges every `window / 4` items).
    async windowed({ phase, size, window, durationMs }) {
      const item = makeItem(size, DATA, phase);
      let sent = 0, acknowledged = 0, running = true;
      const pump = () => {
        while (running && sent - acknowledged < window) {
          item.stamp(sent);
          channel.send(item.bytes);
          sent += 1;
        }
      };
      handlers[ACK] = (view) => {
        if (view.getUint8(13) !== phase) return;
        acknowledged = Math.max(acknowledged, view.getUint32(8));
        pump();
      };
      const startedAt = now();
      pump();
      await sleep(durationMs);
      running = false;
      handlers[ACK] = null;
      return { sent, startedAt, endedAt: now() };
    },

    // Sender: call send() as fast as it returns for `durationMs`, letting the page's event
    // loop run every `sliceMs` (a page that never yields sends nothing at all). Only when
    // the page's own socket holds over `maxBufferedBytes` unsent (this browser would keep
    // buffering until the renderer runs out of memory) does it wait for that to drain.
    async flood({ phase, size, durationMs, sliceMs = 10, maxBufferedBytes }) {
      const item = makeItem(size, DATA, phase);
      const startedAt = now();
      const endAt = startedAt + durationMs;
      let sent = 0, peakBufferedBytes = 0, heldMs = 0;
      for (let t = startedAt; t < endAt; t = now()) {
        const sliceEnd = Math.min(endAt, t + sliceMs);
        while (t < sliceEnd) {
          t = item.stamp(sent);
          channel.send(item.bytes);
          sent += 1;
        }
        peakBufferedBytes = Math.max(peakBufferedBytes, window.benchSockets.bufferedAmount());
        await sleep(0);
        while (window.benchSockets.bufferedAmount() > maxBufferedBytes && now() < endAt) {
          const heldSince = now();
          await sleep(5);
          heldMs += now() - heldSince;
        }
      }
      return { sent, startedAt, endedAt: now(), peakBufferedBytes, heldMs,
               socketsOpened: window.benchSockets.opened() };
    },

    // Bytes this page's socket has accepted from send() but not yet written.
    bufferedAmount: () => window.benchSockets.bufferedAmount(),
  };
})();
