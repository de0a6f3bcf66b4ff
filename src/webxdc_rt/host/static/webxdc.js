// webxdc-rt browser bridge: `window.webxdc` for one member's page of one shared app.
// Served by the host at /webxdc.js with this page's settings filled in below.
(() => {
  "use strict";
  const CONFIG = /*WEBXDC_RT_CONFIG*/null;
  const RETRY_MIN_MS = 250;
  const RETRY_MAX_MS = 10000;
  // A flood of `rate-limited` errors from the host shows in the console at most this often.
  const RATE_LIMITED_REPORT_MS = 5000;
  // The host is told what this page has read at most this long after, and at once after a
  // sixteenth of its window (at least 64 KiB): it keeps what is in flight to a slow page
  // small, so what reaches it is fresh.
  const REPORT_DELAY_MS = 20;
  const REPORT_BYTES = Math.max(64 * 1024, Math.floor(CONFIG.receiveWindowBytes / 16));

  // What one realtime item counts for in a `received` report: its payload and its frame
  // header as the host sends it (RFC 6455).
  const frameBytes = (n) => n + (n < 126 ? 2 : n < 65536 ? 4 : 10);

  // Every realtime item in both directions starts with its stamp (the join says so): when
  // its sender sent it, by the host's clock, in ms, as a big-endian double. The host's clock
  // is the reference both ends share; this page's offset to it comes from the hello.
  const STAMP_BYTES = 8;
  // Dropped items that arrived older than the age bound show in the console at most this
  // often.
  const STALE_REPORT_MS = 5000;

  const isUint8Array = (x) =>
    ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === "[object Uint8Array]";

  const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
  const isCount = (x) => Number.isSafeInteger(x) && x >= 0;

  // What is wrong with a control message from the host, or null if the bridge can act on
  // it: every field it reads has the type it expects. Types it does not know pass (a newer
  // host may send them); they are ignored.
  const hostMessageProblem = (message) => {
    if (!isObject(message)) return "not a JSON object";
    if (typeof message.type !== "string") return "no string field 'type'";
    switch (message.type) {
      case "hello":
        if (!Number.isFinite(message.time_ms)) return "hello: 'time_ms' is not a number";
        if (!isObject(message.limits) || !(message.limits.max_item_age_ms > 0)) {
          return "hello: 'limits.max_item_age_ms' is not a positive number";
        }
        return null;
      case "joined":
        if (message.time_ms != null && !Number.isFinite(message.time_ms)) {
          return "joined: 'time_ms' is not a number";
        }
        return isCount(message.epoch) ? null : "joined: 'epoch' is not a non-negative integer";
      case "update":
        if (!isCount(message.listen)) return "update: 'listen' is not a non-negative integer";
        if (!isObject(message.update)) return "update: 'update' is not an object";
        return isCount(message.update.serial) ? null
          : "update: 'update.serial' is not a non-negative integer";
      case "update-backlog-done":
        return isCount(message.listen) ? null
          : "update-backlog-done: 'listen' is not a non-negative integer";
      case "update-stored":
        return typeof message.id === "string" ? null : "update-stored: 'id' is not a string";
      case "reply":
        if (!isCount(message.id)) return "reply: 'id' is not a non-negative integer";
        return typeof message.ok === "boolean" ? null : "reply: 'ok' is not a boolean";
      case "error":
        if (typeof message.code !== "string") return "error: 'code' is not a string";
        if (message.id !== undefined && typeof message.id !== "string") {
          return "error: 'id' is not a string";
        }
        return typeof message.message === "string" ? null : "error: 'message' is not a string";
      default:
        return null;
    }
  };

  // A text frame from the host as a message the bridge can act on, or null (with one
  // warning) if it is not JSON or lacks what the bridge reads: a bad frame costs itself only.
  const parseHostFrame = (text) => {
    let message;
    try {
      message = JSON.parse(text);
    } catch (err) {
      console.warn(`webxdc-rt: a frame from the host was skipped: not JSON (${err.message})`);
      return null;
    }
    const problem = hostMessageProblem(message);
    if (problem !== null) {
      console.warn(`webxdc-rt: a frame from the host was skipped: ${problem}`);
      return null;
    }
    return message;
  };

  // The host refused a request (nothing else was lost) or is slowing this page down: tell
  // the app's author why, e.g. why an update was not stored.
  let rateLimitedReportedAt = -Infinity;
  const reportHostError = (code, message) => {
    const text = `webxdc-rt: ${code}: ${message}`;
    if (code !== "rate-limited") {
      console.error(text);
      return;
    }
    const now = performance.now();
    if (now - rateLimitedReportedAt < RATE_LIMITED_REPORT_MS) return;
    rateLimitedReportedAt = now;
    console.warn(text);
  };

  const reportListenerError = (err) => {
    // Surface the app's error like an uncaught one, without breaking the bridge.
    if (typeof reportError === "function") reportError(err);
    else setTimeout(() => { throw err; });
  };

  // The one WebSocket to the host. It connects at once, reconnects with backoff when the
  // link is lost, and queues (bounded) what is sent while it is down so nothing sent right
  // after joining is lost (R9).
  class HostLink {
    constructor(onControl, onData, onDown, onUp) {
      this.onControl = onControl;
      this.onData = onData;
      this.onDown = onDown;
      this.onUp = onUp;
      this.ws = null;
      this.pending = [];          // strings (control) and Uint8Arrays (items), in order
      this.pendingItems = 0;
      this.pendingBytes = 0;
      this.retryMs = RETRY_MIN_MS;
      this.readBytes = 0;         // realtime bytes read on this link, as `received` counts
      this.reportedBytes = 0;
      this.reportTimer = null;
      this.dropping = false;      // items are being dropped: the socket holds too much
      this.sentBytes = 0;         // bytes handed to the open socket, to tell how fast it drains
      this.drainSample = null;    // {at, drained, backlogged} of the last measurement
      this.drainRate = null;      // bytes/ms the socket was seen to drain while backlogged
      // The host's clock less performance.now(), from the hello, as two bounds (see
      // `connect`): the highest it can be, to stamp what this page sends, and the lowest,
      // to age what it receives. Both err towards keeping items, never towards dropping.
      this.sendOffsetMs = 0;
      this.receiveOffsetMs = 0;
      this.maxItemAgeMs = Infinity;
      this.staleItems = 0;        // items dropped on arrival: older than the age bound
      this.staleReportedAt = -Infinity;
      this.connect();
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      // The host's clock in its hello was read after this page dialled and before the
      // page handled the hello, so the offset lies between the two bounds taken from
      // those moments. Taking the moment the socket opened instead would be exact only on
      // an idle page: one busy while its socket opened (still loading, on a slow phone)
      // would learn of the opening late, stamp every item it sends that much too early,
      // and have every item dropped by its receivers once that is over the age bound.
      const dialledAt = performance.now();
      const ws = new WebSocket(scheme + location.host + CONFIG.socketPath);
      ws.binaryType = "arraybuffer";
      // The link is up once the host's hello tells its clock: items are stamped by it.
      const up = (hello) => {
        this.sendOffsetMs = hello.time_ms - dialledAt;
        this.receiveOffsetMs = hello.time_ms - performance.now();
        this.maxItemAgeMs = hello.limits.max_item_age_ms;
        this.ws = ws;
        this.retryMs = RETRY_MIN_MS;
        this.readBytes = this.reportedBytes = this.sentBytes = 0;
        this.drainSample = this.drainRate = null;
        if (CONFIG.receiveWindowBytes > 0) {
          // From its first item on, the host may keep what is in flight to this page small.
          this.send(JSON.stringify({ type: "received", bytes: 0 }));
        }
        this.onUp();
        const queued = this.pending;
        this.pending = [];
        this.pendingItems = this.pendingBytes = 0;
        for (const item of queued) {
          if (typeof item !== "string") this.stamp(item);
          this.send(item);
        }
      };
      ws.onmessage = (event) => {
        if (typeof event.data !== "string") {
          const item = new Uint8Array(event.data);
          // A copy: the app gets a buffer of its own, exactly the payload (`data.buffer`).
          if (this.fresh(item)) this.onData(item.slice(STAMP_BYTES));
          this.counted(ws, event.data.byteLength);
          return;
        }
        const message = parseHostFrame(event.data);
        if (message === null) return;
        if (message.type === "hello") {
          if (this.ws === null) up(message);
          return;
        }
        this.onControl(message);
      };
      ws.onclose = () => {
        if (this.ws === ws) {
          this.ws = null;
          this.onDown();
        }
        // Each wait cut at random by up to half: pages cut off together (a host restarted)
        // come back spread over the interval, not all in the same millisecond.
        setTimeout(() => this.connect(), this.retryMs * (1 - Math.random() / 2));
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      };
    }

    // Whether an item from the host is within the age bound by its stamp: a stamp in the
    // future (or not a number) counts as now, so a lying sender only loses its own items.
    fresh(item) {
      const now = performance.now() + this.receiveOffsetMs;
      if (item.byteLength >= STAMP_BYTES) {
        const sent = new DataView(item.buffer, item.byteOffset, STAMP_BYTES).getFloat64(0);
        if (!(now - sent > this.maxItemAgeMs)) return true;
      }
      this.staleItems += 1;
      if (now - this.staleReportedAt >= STALE_REPORT_MS) {
        this.staleReportedAt = now;
        console.warn(`webxdc-rt: ${this.staleItems} realtime item(s) dropped so far: older ` +
                     `than ${this.maxItemAgeMs} ms when they arrived`);
      }
      return false;
    }

    // Narrows the bounds by another reading of the host's clock (a `joined`), taken after
    // this page's clock showed `askedAt` and before it showed `heardAt`: a page busy while
    // its link opened learns the clock closely once it is idle. A reading that contradicts
    // the bounds means that a clock jumped (a device that slept): it replaces them.
    narrow(hostMs, askedAt, heardAt) {
      const highest = hostMs - askedAt;  // this reading's bounds
      const lowest = hostMs - heardAt;
      const send = Math.min(this.sendOffsetMs, highest);
      const receive = Math.max(this.receiveOffsetMs, lowest);
      const jumped = receive > send;
      this.sendOffsetMs = jumped ? highest : send;
      this.receiveOffsetMs = jumped ? lowest : receive;
    }

    // Writes into an item's stamp when it is sent by the host's clock; it was made by
    // `RealtimeChannel.send` holding the time by this page's clock.
    stamp(item) {
      const view = new DataView(item.buffer, item.byteOffset, STAMP_BYTES);
      view.setFloat64(0, view.getFloat64(0) + this.sendOffsetMs);
    }

    get up() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    // An item was read (and given to the app): tell the host soon, or now after many.
    counted(ws, size) {
      if (!(CONFIG.receiveWindowBytes > 0) || ws !== this.ws) return;
      this.readBytes += frameBytes(size);
      if (this.readBytes - this.reportedBytes >= REPORT_BYTES) {
        this.report();
      } else if (this.reportTimer === null) {
        this.reportTimer = setTimeout(() => this.report(), REPORT_DELAY_MS);
      }
    }

    report() {
      if (this.reportTimer !== null) clearTimeout(this.reportTimer);
      this.reportTimer = null;
      if (!this.up || this.readBytes === this.reportedBytes) return;
      this.reportedBytes = this.readBytes;
      this.send(JSON.stringify({ type: "received", bytes: this.readBytes }));
    }

    send(data) {
      this.sentBytes += typeof data === "string" ? data.length : data.byteLength;
      this.ws.send(data);
    }

    // How long what the socket holds will take to leave, by the rate it was seen to drain
    // while it held something (null until seen): an app that sends in bursts is not
    // mistaken for a slow link.
    drainMs() {
      const now = performance.now();
      const buffered = this.ws.bufferedAmount;
      const drained = this.sentBytes - buffered;
      const last = this.drainSample;
      if (last === null || now - last.at >= 100) {
        if (last !== null && last.backlogged && buffered > 0) {
          const seen = (drained - last.drained) / (now - last.at);
          this.drainRate = this.drainRate === null ? seen : (this.drainRate + seen) / 2;
        }
        this.drainSample = { at: now, drained, backlogged: buffered > 0 };
      }
      return this.drainRate > 0 ? buffered / this.drainRate : null;
    }

    // Returns false, sending nothing, when the link is down and its queue is full; joins
    // and leaves are always kept, since dropping them would leave the host out of step.
    sendControl(message, droppable = false) {
      const text = JSON.stringify(message);
      if (this.up) {
        this.send(text);
        return true;
      }
      if (droppable && (this.pendingItems >= CONFIG.maxPendingItems ||
                        this.pendingBytes + text.length > CONFIG.maxPendingBytes)) {
        return false;
      }
      this.pending.push(text);
      this.pendingItems += 1;
      this.pendingBytes += text.length;
      return true;
    }

    // `bytes` must not be changed by anyone afterwards: the caller passes a copy.
    sendItem(bytes) {
      if (this.up) {
        // Stale realtime data is worse than none: while what the socket holds would take
        // longer than the bound to leave (the host or the network is slower than the app
        // sends), or is over the byte bound, items are dropped here instead of waiting
        // seconds, with one warning per episode.
        const drainMs = this.drainMs();
        if (this.ws.bufferedAmount >= CONFIG.maxBufferedBytes ||
            (drainMs !== null && drainMs > CONFIG.maxBufferedMs)) {
          if (!this.dropping) {
            this.dropping = true;
            console.warn("webxdc-rt: realtime items dropped: the link to the host takes " +
                         "them slower than they are sent (over " +
                         `${CONFIG.maxBufferedMs} ms or ${CONFIG.maxBufferedBytes} bytes ` +
                         "waiting)");
          }
          return;
        }
        this.dropping = false;
        this.stamp(bytes);
        this.send(bytes);
        return;
      }
      if (this.pendingItems >= CONFIG.maxPendingItems ||
          this.pendingBytes + bytes.byteLength > CONFIG.maxPendingBytes) {
        console.warn("webxdc-rt: realtime item dropped: the queue for the host link is full");
        return;
      }
      this.pending.push(bytes);
      this.pendingItems += 1;
      this.pendingBytes += bytes.byteLength;
    }
  }

  let current = null;    // the joined RealtimeChannel, if any
  let epoch = 0;         // counts joins; the host echoes the epoch of each join it applied
  let ackedEpoch = -1;   // items from the host belong to this join
  let joinAskedAt = 0;   // when the latest join was asked for: its answer narrows the clock

  const link = new HostLink(
    (message) => {
      switch (message.type) {
        case "joined":
          ackedEpoch = message.epoch;
          if (Number.isFinite(message.time_ms) && current !== null &&
              current.epoch === message.epoch) {
            link.narrow(message.time_ms, joinAskedAt, performance.now());
          }
          break;
        case "update": onUpdate(message); break;
        case "update-backlog-done": onBacklogDone(message.listen); break;
        case "update-stored": onUpdateStored(message.id); break;
        case "reply": onReply(message); break;
        case "error":
          if (typeof message.id === "string") onUpdateRefused(message.id);
          reportHostError(message.code, message.message);
          break;
      }
    },
    (bytes) => {
      const channel = current;
      // Items that were on their way before this join took effect belong to nobody (R12).
      if (channel === null || channel.epoch !== ackedEpoch) return;
      channel.deliver(bytes);
    },
    () => {
      ackedEpoch = -1;
      failRequestsOnLostLink();
    },
    () => {
      // A new link starts with nothing joined and no listener: restore both unless the
      // requests are still queued. Updates the host has not said it stored go next, in the
      // order sent and before anything queued: any it stored are found by their ids.
      link.pending.unshift(...unacked.entries.map((entry) => entry.text));
      if (updates.listener !== null && !updates.listener.queued) {
        link.pending.unshift(JSON.stringify(nextListenRequest()));
      }
      if (updates.listener !== null) updates.listener.queued = false;
      if (current !== null && !current.joinQueued) {
        link.pending.unshift(JSON.stringify({ type: "join", epoch: current.epoch,
                                              stamped: true }));
      }
      if (current !== null) {
        current.joinQueued = false;
        // Whether queued now or earlier (an app that joined before the link was up), the
        // join goes out right after this, so it is asked for now: a queued one asked for
        // while the page was busy would otherwise narrow the clock by little.
        joinAskedAt = performance.now();
      }
    },
  );

  // -- status updates ------------------------------------------------------------------

  const updates = {
    listener: null,          // {callback, id, lastSerial, queued}
    listenCounter: 0,
    backlogWaiters: [],      // [listen id, resolve] until that backlog is done
  };

  const nextListenRequest = () => {
    const listener = updates.listener;
    listener.id = ++updates.listenCounter;
    return { type: "update-listen", listen: listener.id, serial: listener.lastSerial };
  };

  function onUpdate(message) {
    const listener = updates.listener;
    if (listener === null || message.listen !== listener.id) return; // for a replaced listener
    const update = message.update;
    if (update.serial <= listener.lastSerial) return;
    listener.lastSerial = update.serial;
    try {
      listener.callback(update);
    } catch (err) {
      reportListenerError(err);
    }
  }

  function onBacklogDone(listenId) {
    // A replaced listener's backlog may never finish: its promise resolves with the newer one.
    const waiting = updates.backlogWaiters;
    updates.backlogWaiters = waiting.filter(([id]) => id > listenId);
    for (const [id, resolve] of waiting) if (id <= listenId) resolve();
  }

  const setUpdateListener = (callback, serial = 0) => {
    if (typeof callback !== "function") throw new TypeError("setUpdateListener expects a function");
    if (!Number.isSafeInteger(serial) || serial < 0) {
      throw new TypeError("serial must be a non-negative integer");
    }
    updates.listener = { callback, id: 0, lastSerial: serial, queued: !link.up };
    const request = nextListenRequest();
    link.sendControl(request);
    return new Promise((resolve) => updates.backlogWaiters.push([request.listen, resolve]));
  };

  const sendUpdate = (update, _descr) => {
    if (update === null || typeof update !== "object" || update.payload === undefined) {
      throw new TypeError("sendUpdate expects an object with a payload that is not undefined");
    }
    const payloadJson = JSON.stringify(update.payload);
    const size = new TextEncoder().encode(payloadJson).byteLength;
    if (size > CONFIG.sendUpdateMaxSize) {
      throw new RangeError(
        `update payload of ${size} bytes is over the limit of ${CONFIG.sendUpdateMaxSize} bytes`);
    }
    const id = newUpdateId();
    const text = JSON.stringify({ type: "update-send", update, id });
    if (unacked.entries.length >= CONFIG.maxPendingItems ||
        unacked.bytes + text.length > CONFIG.maxPendingBytes) {
      throw new Error(`update not sent: ${unacked.entries.length} updates ` +
                      `(${unacked.bytes} bytes) wait for the host to store them already`);
    }
    unacked.entries.push({ id, text });
    unacked.bytes += text.length;
    if (link.up) link.send(text);  // else sent when the link is up again, with the others
  };

  // Status updates sent and not yet answered, oldest first: each is kept until the host
  // says it stored it (`update-stored`) or refused it (an `error` naming its id), and sent
  // again on every new link, so an update whose answer the link lost is stored once. The
  // host stores one socket's updates in the order sent, so that an update is stored
  // answers every one sent before it; a refusal may come before the answers to updates
  // sent earlier (still being stored), and answers its own update alone.
  const unacked = { entries: [], bytes: 0 };   // {id, text}

  // 22 characters of base64url: 128 random bits, which no two updates of a member share.
  // `crypto.getRandomValues`, unlike `crypto.randomUUID`, works on an http:// origin.
  const newUpdateId = () => {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const forgetUpdates = (count) => {
    for (const entry of unacked.entries.splice(0, count)) unacked.bytes -= entry.text.length;
  };

  function onUpdateStored(id) {
    const index = unacked.entries.findIndex((entry) => entry.id === id);
    if (index >= 0) forgetUpdates(index + 1);
  }

  function onUpdateRefused(id) {
    const index = unacked.entries.findIndex((entry) => entry.id === id);
    if (index < 0) return;
    unacked.bytes -= unacked.entries[index].text.length;
    unacked.entries.splice(index, 1);
  }

  // -- requests answered by the host: sendToChat -----------------------------------------

  let requestCounter = 0;
  const pendingReplies = new Map();   // request id -> {resolve, reject}

  function onReply(message) {
    const waiter = pendingReplies.get(message.id);
    if (waiter === undefined) return;
    pendingReplies.delete(message.id);
    if (message.ok) waiter.resolve();
    else waiter.reject(new Error(String(message.message ?? message.code ?? "refused")));
  }

  const request = (message) => new Promise((resolve, reject) => {
    const id = ++requestCounter;
    const sentNow = link.up;
    if (!link.sendControl({ ...message, id }, true)) {
      reject(new Error("not sent: the link to the host is down and its queue is full"));
      return;
    }
    pendingReplies.set(id, { resolve, reject, sentNow });
  });

  // Requests written to a link that then broke may or may not have been carried out: the
  // app is told, rather than left waiting. Queued ones go out on the next link.
  function failRequestsOnLostLink() {
    for (const [id, waiter] of pendingReplies) {
      if (!waiter.sentNow) continue;
      pendingReplies.delete(id);
      waiter.reject(new Error("the link to the host was lost before it answered"));
    }
  }

  const bytesToBase64 = (bytes) => {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  };

  async function fileToBase64(file) {
    const given = ["blob", "base64", "plainText"].filter((key) => file[key] !== undefined);
    if (given.length !== 1) {
      throw new Error("sendToChat: file needs exactly one of blob, base64 and plainText");
    }
    if (file.base64 !== undefined) {
      if (typeof file.base64 !== "string") throw new TypeError("file.base64 must be a string");
      return file.base64;
    }
    if (file.plainText !== undefined) {
      return bytesToBase64(new TextEncoder().encode(String(file.plainText)));
    }
    if (!(file.blob instanceof Blob)) throw new TypeError("file.blob must be a Blob");
    return bytesToBase64(new Uint8Array(await file.blob.arrayBuffer()));
  }

  const sendToChat = async (message) => {
    if (message === null || typeof message !== "object") {
      throw new TypeError("sendToChat expects {file, text}");
    }
    const { file, text } = message;
    if (!file && (text === undefined || text === null || text === "")) {
      throw new Error("sendToChat needs a file, a text, or both");
    }
    if (text !== undefined && text !== null && typeof text !== "string") {
      throw new TypeError("sendToChat: text must be a string");
    }
    let fileOut = null;
    if (file) {
      if (typeof file.name !== "string" || file.name === "") {
        throw new Error("sendToChat: file.name is required");
      }
      fileOut = { name: file.name, base64: await fileToBase64(file) };
    }
    await request({ type: "send-to-chat", text: text ?? null, file: fileOut });
  };

  // -- importFiles: the browser's own file chooser ---------------------------------------

  const importFiles = (filter = {}) => new Promise((resolve) => {
    const input = document.createElement("input");
    input.type = "file";
    input.accept = [...(filter.extensions || []), ...(filter.mimeTypes || [])].join(",");
    input.multiple = Boolean(filter.multiple);
    input.style.display = "none";
    const finish = (files) => {
      input.remove();
      resolve(files);
    };
    input.addEventListener("change", () => finish(Array.from(input.files || [])));
    input.addEventListener("cancel", () => finish([]));
    document.body.append(input);
    input.click();
  });

  class RealtimeChannel {
    #listener = null;
    #left = false;

    constructor(channelEpoch) {
      this.epoch = channelEpoch;
      this.joinQueued = !link.up;
    }

    setListener(listener) {
      if (listener !== null && listener !== undefined && typeof listener !== "function") {
        throw new TypeError("setListener expects a function");
      }
      if (!this.#left) this.#listener = listener || null;
    }

    send(data) {
      if (this.#left) throw new Error("this realtime channel was left; join a new one");
      if (!isUint8Array(data)) {
        throw new TypeError("realtime data must be a Uint8Array");
      }
      if (data.byteLength > CONFIG.maxPayloadBytes) {
        throw new RangeError(
          `realtime data of ${data.byteLength} bytes is over the limit of ` +
          `${CONFIG.maxPayloadBytes} bytes`);
      }
      // A copy, so that changing the array after send() changes nothing that was sent
      // (R18), behind its stamp, which holds the time by this page's clock until it is sent.
      const item = new Uint8Array(STAMP_BYTES + data.byteLength);
      item.set(data, STAMP_BYTES);
      new DataView(item.buffer).setFloat64(0, performance.now());
      link.sendItem(item);
    }

    leave() {
      if (this.#left) return;
      this.#left = true;
      this.#listener = null;
      if (current === this) current = null;
      // A join made over a link that has since dropped was already undone by the host.
      if (link.up || this.joinQueued) link.sendControl({ type: "leave" });
    }

    deliver(bytes) {
      const listener = this.#listener;
      if (listener === null) return;   // no listener yet: dropped, not queued (R6)
      try {
        listener(bytes);
      } catch (err) {
        reportListenerError(err);
      }
    }
  }

  const joinRealtimeChannel = () => {
    if (current !== null) {
      throw new Error("already joined a realtime channel: call leave() before joining again");
    }
    epoch += 1;
    current = new RealtimeChannel(epoch);
    joinAskedAt = performance.now();
    link.sendControl({ type: "join", epoch, stamped: true });
    return current;
  };

  // No WebRTC: it could reach the Internet past the Content-Security-Policy. The host's guard,
  // the first script of every page, has already taken it away (guard.js); this covers a
  // page that was served without it.
  for (const name of Object.getOwnPropertyNames(window)) {
    if (!/^(webkit)?RTC/.test(name)) continue;
    try {
      Object.defineProperty(window, name, {
        value: undefined, writable: false, enumerable: false, configurable: false });
    } catch (_) { /* already taken away */ }
  }

  window.webxdc = {
    selfAddr: CONFIG.selfAddr,
    selfName: CONFIG.selfName,
    isAppSender: CONFIG.isAppSender,
    isBroadcast: CONFIG.isBroadcast,
    sendUpdateInterval: CONFIG.sendUpdateInterval,
    sendUpdateMaxSize: CONFIG.sendUpdateMaxSize,
    sendUpdate,
    setUpdateListener,
    getAllUpdates: () => Promise.resolve([]),   // deprecated by the spec
    sendToChat,
    importFiles,
    joinRealtimeChannel,
  };
})();
