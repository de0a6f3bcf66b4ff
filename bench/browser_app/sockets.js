// Counts the WebSockets this page opens and how each one closed, so that the benchmark can
// tell a bridge that reconnected from one that kept its link. It reads no frames: a listener
// per frame would add work to every item and distort the figures at saturation.
(() => {
  const Native = window.WebSocket;
  const sockets = [];
  window.benchSockets = {
    opened: () => sockets.length,
    closes: () => sockets.filter((s) => s.closed).map((s) => ({ code: s.code, reason: s.reason })),
    // Bytes the newest socket has accepted from send() but not yet handed to the network.
    bufferedAmount: () => (sockets.length ? sockets[sockets.length - 1].ws.bufferedAmount : 0),
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const record = { ws: this, closed: false, code: null, reason: "" };
      sockets.push(record);
      this.addEventListener("close", (event) => {
        Object.assign(record, { closed: true, code: event.code, reason: event.reason });
      });
    }
  };
})();
