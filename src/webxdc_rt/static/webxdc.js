// webxdc-rt browser bridge: `window.webxdc` for one member's page of one shared app.
// Served by the host at /webxdc.js with this page's settings filled in below.
(() => {
  "use strict";
  const CONFIG = /*WEBXDC_RT_CONFIG*/null;
  const RETRY_MIN_MS = 250;
  const RETRY_MAX_MS = 10000;

  const isUint8Array = (x) =>
    ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === "[object Uint8Array]";

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
      this.connect();
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + CONFIG.socketPath);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        this.ws = ws;
        this.retryMs = RETRY_MIN_MS;
        this.onUp();
        const queued = this.pending;
        this.pending = [];
        this.pendingItems = this.pendingBytes = 0;
        for (const item of queued) ws.send(item);
      };
      ws.onmessage = (event) => {
        if (typeof event.data === "string") this.onControl(JSON.parse(event.data));
        else this.onData(new Uint8Array(event.data));
      };
      ws.onclose = () => {
        if (this.ws === ws) {
          this.ws = null;
          this.onDown();
        }
        setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      };
    }

    get up() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    sendControl(message) {
      const text = JSON.stringify(message);
      if (this.up) this.ws.send(text);
      else this.pending.push(text);
    }

    // `bytes` must not be changed by anyone afterwards: the caller passes a copy.
    sendItem(bytes) {
      if (this.up) {
        this.ws.send(bytes);
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

  const link = new HostLink(
    (message) => {
      if (message.type === "joined") ackedEpoch = message.epoch;
      else if (message.type === "error") console.error(`webxdc-rt host: ${message.message}`);
    },
    (bytes) => {
      const channel = current;
      // Items that were on their way before this join took effect belong to nobody (R12).
      if (channel === null || channel.epoch !== ackedEpoch) return;
      channel.deliver(bytes);
    },
    () => { ackedEpoch = -1; },
    () => {
      // A new link starts with nothing joined: join again unless the join is still queued.
      if (current !== null && !current.joinQueued) {
        link.pending.unshift(JSON.stringify({ type: "join", epoch: current.epoch }));
      }
      if (current !== null) current.joinQueued = false;
    },
  );

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
      // A copy, so that changing the array after send() changes nothing that was sent (R18).
      link.sendItem(data.slice());
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
    link.sendControl({ type: "join", epoch });
    return current;
  };

  window.webxdc = Object.assign(window.webxdc || {}, {
    selfAddr: CONFIG.selfAddr,
    selfName: CONFIG.selfName,
    joinRealtimeChannel,
  });
})();
