// Tries every way an app could get a working RTCPeerConnection past the host's guard.
// `probeWebRTC()` resolves to {way: true if that way gave a working RTCPeerConnection}.
(() => {
  "use strict";

  // A working constructor or window (works.js): one whose peer connection gathers candidates.
  const works = (C) => webrtcWorks(C);
  const worksIn = (w) => webrtcWorks(w);

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
  // A document the page made reports on itself; one that never runs its script (the policy
  // refused it) is "silent" after a while, which is not a working way.
  const reportOf = (probe) => reports.has(probe)
    ? Promise.resolve(reports.get(probe))
    : new Promise((resolve) => {
      waiters.set(probe, resolve);
      setTimeout(() => resolve("silent"), 5000);
    });
  const selfReport = (probe) => `<script>(async () => {
      const webrtcWorks = ${webrtcWorks};
      const working = await webrtcWorks(window);
      (window.opener || top).postMessage({ probe: ${JSON.stringify(probe)}, working }, "*");
    })()<\/script>`;
  const escapeAttribute = (text) => text.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  const SANDBOXES = { "allow-scripts": "opaque", "allow-scripts allow-same-origin": "same-origin" };

  // Runs `action` with `owner[name]` replaced by `value`, then puts it back: a page may
  // replace any built-in before it makes a frame, and the guard runs before it, not after.
  const replaced = (owner, name, value, action) => {
    const saved = Object.getOwnPropertyDescriptor(owner, name);
    Object.defineProperty(owner, name, { value, configurable: true, writable: true });
    try {
      return action();
    } finally {
      Object.defineProperty(owner, name, saved);
    }
  };
  // A sandboxed srcdoc frame as a parser makes it, out of the guard's sight: in a DOMParser
  // document, adopted into the page but not yet inserted.
  const parsedFrame = (probe) => document.adoptNode(new DOMParser().parseFromString(
    `<iframe sandbox="allow-scripts" srcdoc="${escapeAttribute(selfReport(probe))}"></iframe>`,
    "text/html").querySelector("iframe"));

  // A popup of an app file (guarded) navigates itself to a blob it made of `text`.
  const blobInAWindow = async (probe, text, type) => {
    const popup = window.open(`frame.html?probe=before-${probe}`);
    await reportOf(`before-${probe}`);
    try {
      popup.location.href = popup.URL.createObjectURL(new popup.Blob([text], { type }));
      return await reportOf(probe);
    } catch (error) {
      return `refused: ${error}`;  // createObjectURL refused the blob: not working
    } finally {
      popup.close();
    }
  };

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
    "inline script before the bridge": async () =>
      await works(window.early.RTCPeerConnection) || works(window.early.webkitRTCPeerConnection),

    "this window's globals, after trying to put them back": async () => {
      try { delete window.RTCPeerConnection; } catch (_) { /* refused */ }
      try {
        Object.defineProperty(window, "RTCPeerConnection", window.early.descriptor);
      } catch (_) { /* refused */ }
      const names = Object.getOwnPropertyNames(window).filter((n) => /^(webkit)?RTC/.test(n));
      return await worksIn(window) || names.some((n) => window[n] !== undefined);
    },

    "prototypes and constructors of other globals": async () => {
      for (const name of Object.getOwnPropertyNames(window)) {
        let value;
        const found = [];
        try {
          value = window[name];
          const kind = typeof value;
          if (value === null || (kind !== "object" && kind !== "function")) continue;
          for (let object of [value, value.prototype]) {
            for (let depth = 0; object && depth < 20; depth++) {
              const constructor = Object.getOwnPropertyDescriptor(object, "constructor");
              const C = constructor && constructor.value;
              if (typeof C === "function" && /PeerConnection/.test(C.name)) found.push(C);
              object = Object.getPrototypeOf(object);
            }
          }
        } catch (_) {
          continue;  // a cross-origin frame's window
        }
        for (const C of found) if (await works(C)) return true;
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

    "about:blank iframe: contentWindow": () => {
      const f = frame({ src: "about:blank" });
      document.body.append(f);
      return worksIn(f.contentWindow);
    },

    "about:blank iframe: contentWindow kept until it loads": async () => {
      const f = frame({ src: "about:blank" });
      const done = loaded(f);
      document.body.append(f);
      const kept = f.contentWindow;
      await done;
      return await worksIn(kept) || worksIn(f.contentWindow);
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

    "empty iframe inside an empty iframe": async () => {
      const outer = frame();
      document.body.append(outer);
      const inner = outer.contentDocument.createElement("iframe");
      outer.contentDocument.body.appendChild(inner);
      return await worksIn(outer.contentWindow[0]) || worksIn(inner.contentWindow);
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
      return (await reportOf("app-frame")) === true || worksIn(f.contentWindow);
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
      return (await reportOf("object")) === true || worksIn(object.contentWindow);
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

    "sandboxed srcdoc iframe in the page's own HTML": () => reportOf("sandboxed-srcdoc-in-html"),

    "srcdoc in an empty iframe's document": () => {
      const outer = frame();
      document.body.append(outer);
      const doc = outer.contentDocument;
      const inner = doc.createElement("iframe");
      inner.setAttribute("sandbox", "allow-scripts");
      inner.srcdoc = selfReport("srcdoc-nested");
      doc.body.appendChild(inner);
      return reportOf("srcdoc-nested");
    },

    ...Object.fromEntries(Object.entries(SANDBOXES).flatMap(([sandbox, kind]) => [
      [`sandboxed (${kind}) srcdoc iframe: appended`, () => {
        const probe = `sandboxed-${kind}-appended`;
        document.body.appendChild(frame({ sandbox, srcdoc: selfReport(probe) }));
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: srcdoc property, then inserted`, () => {
        const probe = `sandboxed-${kind}-property`;
        const f = frame({ sandbox });
        f.srcdoc = selfReport(probe);
        document.body.insertBefore(f, null);
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: srcdoc set after insertion`, () => {
        const probe = `sandboxed-${kind}-later`;
        const f = frame({ sandbox });
        document.body.append(f);
        f.setAttribute("srcdoc", selfReport(probe));
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: an Attr node`, () => {
        const probe = `sandboxed-${kind}-attr`;
        const f = frame({ sandbox });
        document.body.append(f);
        const attribute = document.createAttribute("srcdoc");
        attribute.value = selfReport(probe);
        f.setAttributeNode(attribute);
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: an Attr node's value changed`, () => {
        const probe = `sandboxed-${kind}-attr-value`;
        const f = frame({ sandbox, srcdoc: "" });
        document.body.append(f);
        f.getAttributeNode("srcdoc").value = selfReport(probe);
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: innerHTML`, () => {
        const probe = `sandboxed-${kind}-markup`;
        const holder = document.createElement("div");
        document.body.append(holder);
        holder.innerHTML =
          `<iframe sandbox="${sandbox}" srcdoc="${escapeAttribute(selfReport(probe))}"></iframe>`;
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: insertAdjacentHTML`, () => {
        const probe = `sandboxed-${kind}-adjacent`;
        document.body.insertAdjacentHTML("beforeend",
          `<iframe sandbox="${sandbox}" srcdoc="${escapeAttribute(selfReport(probe))}"></iframe>`);
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: a DOMParser document's frame, adopted`, () => {
        const probe = `sandboxed-${kind}-parsed`;
        const parsed = new DOMParser().parseFromString(
          `<iframe sandbox="${sandbox}" srcdoc="${escapeAttribute(selfReport(probe))}"></iframe>`,
          "text/html");
        document.body.append(document.adoptNode(parsed.querySelector("iframe")));
        return reportOf(probe);
      }],
      [`sandboxed (${kind}) srcdoc iframe: a clone`, () => {
        const probe = `sandboxed-${kind}-clone`;
        const template = frame({ sandbox, srcdoc: selfReport(probe) });
        document.body.append(template.cloneNode(true));
        return reportOf(probe);
      }],
    ])),

    "sandboxed srcdoc iframe, inserted while array iteration finds nothing": () => {
      const f = parsedFrame("srcdoc-no-iteration");
      replaced(Array.prototype, Symbol.iterator, function* () { /* nothing */ }, () =>
        replaced(NodeList.prototype, Symbol.iterator, function* () { /* nothing */ }, () =>
          document.body.append(f)));
      return reportOf("srcdoc-no-iteration");
    },

    "sandboxed srcdoc iframe, inserted by a native function the page caught in call/apply": () => {
      const caught = [];
      const catching = (name) => function (self, ...rest) {
        caught.push(this);
        return Reflect.apply(this, self, name === "apply" ? Array.from(rest[0] || []) : rest);
      };
      replaced(Function.prototype, "apply", catching("apply"), () =>
        replaced(Function.prototype, "call", catching("call"), () =>
          document.body.appendChild(document.createTextNode(""))));
      const native = caught.find((f) => f.name === "appendChild" && /native code/.test(`${f}`));
      if (!native) return false;
      Reflect.apply(native, document.body, [parsedFrame("srcdoc-caught-native")]);
      return reportOf("srcdoc-caught-native");
    },

    "sandboxed srcdoc iframe, set and inserted while every string starts with anything": () => {
      const f = frame({ sandbox: "allow-scripts" });
      const html = selfReport("srcdoc-starts-with");
      replaced(String.prototype, "startsWith", () => true, () => {
        f.srcdoc = html;
        document.body.append(f);
      });
      return reportOf("srcdoc-starts-with");
    },

    "javascript: URL iframe": () => {
      const html = selfReport("javascript-frame");
      const src = "javascript:" + encodeURIComponent(JSON.stringify(html));
      document.body.append(frame({ src }));
      return reportOf("javascript-frame");
    },

    "javascript: URL loaded into an empty iframe": () => {
      const f = frame();
      document.body.append(f);
      f.src = "javascript:" + encodeURIComponent(JSON.stringify(selfReport("javascript-later")));
      return reportOf("javascript-later");
    },

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
      return worksIn(popup).finally(() => popup.close());
    },

    "window.open('about:blank')": () => {
      const popup = window.open("about:blank");
      const working = worksIn(popup);
      return working.finally(() => popup.close());
    },

    "window.open() of a blob: document": async () => {
      const url = URL.createObjectURL(new Blob([selfReport("blob-popup")], { type: "text/html" }));
      const popup = window.open(url);
      const working = await reportOf("blob-popup");
      if (popup) popup.close();
      return working;
    },

    "a window of an app file navigating itself to a blob: document": () =>
      blobInAWindow("blob-self", selfReport("blob-self"), "text/html"),

    "a window of an app file navigating itself to a blob: SVG document": () =>
      blobInAWindow("blob-svg", `<svg xmlns="http://www.w3.org/2000/svg"><script><![CDATA[
        (async () => {
          const webrtcWorks = ${webrtcWorks};
          const working = await webrtcWorks(window);
          opener.postMessage({ probe: "blob-svg", working }, "*");
        })()
      ]]></script></svg>`, "image/svg+xml"),

    "a window of an app file navigating itself to a blob: XML document an XSLT turns into HTML":
      () => {
        const stylesheet = `<?xml version="1.0"?>
          <xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
          <xsl:template match="/"><html><body><script><![CDATA[
            (async () => {
              const webrtcWorks = ${webrtcWorks};
              const working = await webrtcWorks(window);
              opener.postMessage({ probe: "blob-xslt", working }, "*");
            })()
          ]]></script></body></html></xsl:template></xsl:stylesheet>`;
        const href = URL.createObjectURL(new Blob([stylesheet], { type: "text/xsl" }));
        return blobInAWindow("blob-xslt",
          `<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="${href}"?><root/>`,
          "text/xml");
      },

    "window.open() of an app file": async () => {
      const popup = window.open("frame.html?probe=popup");
      const working = await reportOf("popup");
      popup.close();
      return working;
    },

    "document.open() with three arguments": () => {
      const popup = document.open("", "probePopup", "");
      return worksIn(popup).finally(() => popup.close());
    },

    "a dedicated worker": async () => {
      const worker = new Worker("worker.js");
      const types = await new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); });
      worker.terminate();
      return types.includes("function");
    },

    "a worker's own worker": async () => {
      const worker = new Worker("worker.js", { name: "nested" });
      const types = await new Promise((resolve) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => resolve(["error: " + e.message]);
      });
      worker.terminate();
      return types.includes("function");
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
