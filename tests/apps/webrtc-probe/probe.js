// Tries every way an app could get a working RTCPeerConnection past the host's guard.
// `probeWebRTC()` resolves to {way: true if that way gave a working RTCPeerConnection}.
(() => {
  "use strict";

  const works = (C) => {
    if (typeof C !== "function") return false;
    try {
      new C().close();
      return true;
    } catch (_) {
      return false;
    }
  };
  const worksIn = (w) => {
    try {
      return works(w.RTCPeerConnection) || works(w.webkitRTCPeerConnection);
    } catch (_) {
      return false;  // cross-origin: out of the page's reach
    }
  };

  // Frames and popups of app files or srcdoc report on themselves (report.js, or the
  // srcdoc script below) with a message naming their probe.
  const reports = new Map();
  const waiters = new Map();
  window.addEventListener("message", (event) => {
    const { probe, working } = event.data || {};
    if (typeof probe !== "string") return;
    reports.set(probe, working);
    const resolve = waiters.get(probe);
    if (resolve) resolve(working);
  });
  const reportOf = (probe) => reports.has(probe)
    ? Promise.resolve(reports.get(probe))
    : new Promise((resolve) => waiters.set(probe, resolve));
  const selfReport = (probe) => `<script>(() => {
      const works = ${works};
      const working = works(window.RTCPeerConnection) || works(window.webkitRTCPeerConnection);
      parent.postMessage({ probe: ${JSON.stringify(probe)}, working }, "*");
    })()<\/script>`;

  const frame = (attributes = {}) => {
    const element = document.createElement("iframe");
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    return element;
  };
  const loaded = (element) => new Promise((resolve) => element.addEventListener(
    "load", resolve, { once: true }));
  // Resolves when the Content-Security-Policy refuses to load a frame.
  const frameRefused = () => new Promise((resolve) => {
    const seen = (event) => {
      if (event.effectiveDirective !== "frame-src") return;
      document.removeEventListener("securitypolicyviolation", seen);
      resolve(false);
    };
    document.addEventListener("securitypolicyviolation", seen);
  });

  const ways = {
    "inline script before the bridge": () =>
      works(window.early.RTCPeerConnection) || works(window.early.webkitRTCPeerConnection),

    "this window's globals, after trying to put them back": () => {
      try { delete window.RTCPeerConnection; } catch (_) { /* refused */ }
      try {
        Object.defineProperty(window, "RTCPeerConnection", window.early.descriptor);
      } catch (_) { /* refused */ }
      const names = Object.getOwnPropertyNames(window).filter((n) => /^(webkit)?RTC/.test(n));
      return worksIn(window) || names.some((n) => window[n] !== undefined);
    },

    "prototypes and constructors of other globals": () => {
      for (const name of Object.getOwnPropertyNames(window)) {
        let value;
        try { value = window[name]; } catch (_) { continue; }
        if (value === null || (typeof value !== "object" && typeof value !== "function")) continue;
        const chain = [value, value.prototype];
        for (let object of chain) {
          for (let depth = 0; object && depth < 20; depth++) {
            const constructor = Object.getOwnPropertyDescriptor(object, "constructor");
            const found = constructor && constructor.value;
            if (typeof found === "function" && /PeerConnection/.test(found.name) && works(found)) {
              return true;
            }
            object = Object.getPrototypeOf(object);
          }
        }
      }
      return false;
    },

    "empty iframe: contentWindow": () => {
      const f = frame();
      document.body.append(f);
      return worksIn(f.contentWindow);
    },

    "empty iframe: window[i] right after appendChild": () => {
      const index = window.length;
      document.body.appendChild(frame());
      return worksIn(window[index]);
    },

    "empty iframe: window[i] in its onload handler": () => {
      let working = false;
      const f = frame();
      const index = window.length;
      f.onload = () => { working = worksIn(window[index]); };
      document.body.appendChild(f);
      return working;
    },

    "empty iframe: window[name]": () => {
      document.body.insertAdjacentHTML("beforeend", '<iframe name="probeNamed"></iframe>');
      return worksIn(window.probeNamed);
    },

    "empty iframe: contentDocument.defaultView": () => {
      const f = frame();
      document.body.append(f);
      return worksIn(f.contentDocument.defaultView);
    },

    "empty iframe inside an empty iframe": () => {
      const outer = frame();
      document.body.append(outer);
      const inner = outer.contentDocument.createElement("iframe");
      outer.contentDocument.body.appendChild(inner);
      return worksIn(outer.contentWindow[0]) || worksIn(inner.contentWindow);
    },

    "empty iframe in a shadow root": () => {
      const host = document.createElement("div");
      document.body.append(host);
      const f = frame();
      host.attachShadow({ mode: "closed" }).append(f);
      return worksIn(f.contentWindow);
    },

    "app file iframe: window[i] before it loads": () => {
      const index = window.length;
      document.body.append(frame({ src: "frame.html?probe=unused" }));
      return worksIn(window[index]);
    },

    "app file iframe: its own globals": async () => {
      const f = frame({ src: "frame.html?probe=app-frame" });
      const done = loaded(f);
      document.body.append(f);
      await done;
      return (await reportOf("app-frame")) || worksIn(f.contentWindow);
    },

    "sandboxed app file iframe: its own globals": async () => {
      const f = frame({ src: "frame.html?probe=sandboxed-frame", sandbox: "allow-scripts" });
      document.body.append(f);
      return reportOf("sandboxed-frame");
    },

    "app file in an object element": async () => {
      const object = document.createElement("object");
      object.type = "text/html";
      object.data = "frame.html?probe=object";
      document.body.append(object);
      return (await reportOf("object")) || worksIn(object.contentWindow);
    },

    "srcdoc iframe: its own script": () => {
      const f = frame({ srcdoc: selfReport("srcdoc") });
      document.body.append(f);
      return reportOf("srcdoc");
    },

    "srcdoc set after insertion": () => {
      const f = frame();
      document.body.append(f);
      f.srcdoc = selfReport("srcdoc-later");
      return reportOf("srcdoc-later");
    },

    "srcdoc iframe from innerHTML": () => {
      const holder = document.createElement("div");
      const escaped = selfReport("srcdoc-markup").replace(/&/g, "&amp;").replace(/"/g, "&quot;");
      holder.innerHTML = `<iframe srcdoc="${escaped}"></iframe>`;
      document.body.append(holder);
      return reportOf("srcdoc-markup");
    },

    "srcdoc iframe in the page's own HTML": () => reportOf("srcdoc-in-html"),

    "blob: iframe": () => {
      const url = URL.createObjectURL(new Blob([selfReport("blob")], { type: "text/html" }));
      const refused = frameRefused();
      document.body.append(frame({ src: url }));
      return Promise.race([refused, reportOf("blob")]);
    },

    "data: iframe": () => {
      const refused = frameRefused();
      document.body.append(frame({ src: "data:text/html," + encodeURIComponent(selfReport("data")) }));
      return Promise.race([refused, reportOf("data")]);
    },

    "window.open()": () => {
      const popup = window.open();
      const working = worksIn(popup);
      popup.close();
      return working;
    },

    "window.open() of an app file": async () => {
      const popup = window.open("frame.html?probe=popup");
      const working = await reportOf("popup");
      popup.close();
      return working;
    },

    "document.open() with three arguments": () => {
      const popup = document.open("", "probePopup", "");
      const working = worksIn(popup);
      popup.close();
      return working;
    },

    "a dedicated worker": async () => {
      const worker = new Worker("worker.js");
      const types = await new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); });
      worker.terminate();
      return types.some((type) => type !== "undefined");
    },

    "a service worker": async () => {
      try {
        await navigator.serviceWorker.register("sw.js");
        return true;
      } catch (_) {
        return false;
      }
    },
  };

  window.probeWebRTC = async () => {
    const results = {};
    for (const [way, attempt] of Object.entries(ways)) results[way] = await attempt();
    return results;
  };
})();
