// webxdc-rt guard: the host puts this inline as the first script of every HTML document it
// serves (html_guard.py), so it runs before any script of the app. It takes WebRTC away:
// RTCPeerConnection and every other RTC* global become undefined for good, here and in
// every same-origin window the page reaches through the DOM (frames, popups,
// picture-in-picture windows). WebRTC could reach the Internet past the
// Content-Security-Policy, and Chromium has no CSP directive against it.
//
// A frame's new document is a new set of globals that no script in the page can prepare in
// advance, so the guard reaches each one as early as a page can: when the page gets hold of
// it (contentWindow, contentDocument, open(), ...), right after any DOM call that can create
// a frame, at the synchronous load of an empty frame, and at the next microtask for
// everything else. srcdoc documents get this guard as their own first script. What stays
// open is listed in the README ("No Internet for apps").
//
// The function below refers to nothing outside itself: its own source is what srcdoc frames
// get. Being inline, the file must not hold an HTML comment opener or a closing script tag
// (html_guard.py checks).
(function webxdcGuard(top) {
  "use strict";
  const MARK = "__webxdcRtGuard";
  const SELF = "<script>(" + webxdcGuard + ")(window)<\/script>";
  const HTML_NS = "http://www.w3.org/1999/xhtml";
  const define = Object.defineProperty;
  const describe = Object.getOwnPropertyDescriptor;
  const gone = { value: undefined, writable: false, enumerable: false, configurable: false };

  // Takes WebRTC away in window `w` and hooks its DOM, once; cross-origin windows are left
  // alone (they are either served by the host, and so guarded, or out of the page's reach).
  function guard(w) {
    try {
      if (!w || describe(w, MARK)) return;
      define(w, MARK, { value: true });
    } catch (_) {
      return;
    }
    for (const name of Object.getOwnPropertyNames(w)) {
      if (/^(webkit)?RTC/.test(name)) {
        try { define(w, name, gone); } catch (_) { /* already gone */ }
      }
    }
    try { hook(w); } catch (_) { /* a window closing under us */ }
  }

  function hook(w) {
    const windowLength = describe(w, "length").get;
    const defaultView = describe(w.Document.prototype, "defaultView").get;
    const ownerDocument = describe(w.Node.prototype, "ownerDocument").get;
    const localName = describe(w.Element.prototype, "localName").get;
    const namespaceURI = describe(w.Element.prototype, "namespaceURI").get;
    const { getAttribute, setAttribute, hasAttribute, querySelectorAll } = w.Element.prototype;
    const firstElementChild = describe(w.Element.prototype, "firstElementChild").get;
    const addListener = w.EventTarget.prototype.addEventListener;

    // Every child window of `view`: window[i] reaches them without any call we could wrap.
    const sweep = (view) => {
      try {
        for (let i = 0, n = windowLength.call(view); i < n; i++) guard(view[i]);
      } catch (_) { /* not a window */ }
    };
    const viewOf = (node) => {
      try {
        return defaultView.call(ownerDocument.call(node) || node);
      } catch (_) {
        return null;
      }
    };
    const guardDocument = (doc) => {
      try { if (doc) guard(defaultView.call(doc)); } catch (_) { /* not a document */ }
    };

    // srcdoc documents run this guard first: the attribute is rewritten before the frame
    // navigates, a task later. (A frame sandboxed without allow-same-origin starts its
    // srcdoc document at once, out of reach: see the README.)
    const guardSrcdoc = (el) => {
      try {
        if (localName.call(el) !== "iframe" || namespaceURI.call(el) !== HTML_NS) return;
        if (!hasAttribute.call(el, "srcdoc")) return;
        const html = getAttribute.call(el, "srcdoc");
        if (!html.startsWith(SELF)) setAttribute.call(el, "srcdoc", SELF + html);
      } catch (_) { /* not an element */ }
    };
    const observer = new w.MutationObserver((records) => {
      sweep(w);
      for (const record of records) {
        if (record.type === "attributes") {
          guardSrcdoc(record.target);
        } else {
          for (const node of record.addedNodes) {
            if (node.nodeType !== 1) continue;
            guardSrcdoc(node);
            if (firstElementChild.call(node) === null) continue;  // the common, cheap case
            for (const frame of querySelectorAll.call(node, "iframe[srcdoc]")) guardSrcdoc(frame);
          }
        }
      }
    });
    const observe = (root) => observer.observe(root, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["srcdoc"],
    });
    observe(w.document);

    // An empty frame loads synchronously while it is inserted, before any handler of the
    // app sees it; document.open() drops listeners, so it is added again after one.
    const onLoad = () => sweep(w);
    const listen = () => addListener.call(w.document, "load", onLoad, true);
    listen();

    // Wraps the method ("value"), getter ("get") or setter ("set") `name` of `owner`.
    const replace = (owner, name, part, wrap) => {
      const d = owner && describe(owner, name);
      if (!d || typeof d[part] !== "function") return;
      d[part] = wrap(d[part]);
      define(owner, name, d);
    };
    const returning = (check) => (original) => function (...args) {
      const result = original.apply(this, args);
      check(result, args);
      return result;
    };
    const sweepingAfter = (original) => function (...args) {
      try {
        return original.apply(this, args);
      } finally {
        sweep(viewOf(this));
      }
    };

    for (const type of [w.HTMLIFrameElement, w.HTMLFrameElement, w.HTMLObjectElement]) {
      if (!type) continue;
      replace(type.prototype, "contentWindow", "get", returning(guard));
      replace(type.prototype, "contentDocument", "get", returning(guardDocument));
    }
    for (const type of [w.HTMLIFrameElement, w.HTMLObjectElement, w.HTMLEmbedElement]) {
      if (type) replace(type.prototype, "getSVGDocument", "value", returning(guardDocument));
    }
    replace(w, "open", "value", returning(guard));
    replace(w, "length", "get", (original) => function () {
      sweep(this);
      return original.call(this);
    });
    replace(w.Document.prototype, "open", "value", (original) => function (...args) {
      const result = original.apply(this, args);
      if (args.length >= 3) guard(result);  // the window.open() form
      listen();
      return result;
    });
    for (const name of ["write", "writeln"]) {
      replace(w.Document.prototype, name, "value", (original) => function (...args) {
        try {
          return original.apply(this, args);
        } finally {
          listen();
          sweep(viewOf(this));
        }
      });
    }
    if (w.DocumentPictureInPicture) {
      replace(w.DocumentPictureInPicture.prototype, "requestWindow", "value", (original) =>
        function (...args) {
          return original.apply(this, args).then((pip) => {
            guard(pip);
            return pip;
          });
        });
    }
    if (w.DocumentPictureInPictureEvent) {
      replace(w.DocumentPictureInPictureEvent.prototype, "window", "get", returning(guard));
    }
    replace(w.Element.prototype, "attachShadow", "value", returning((root) => observe(root)));

    // DOM calls that can put a frame into this document: afterwards its window is guarded
    // before the caller's next statement can reach it as window[i].
    const inserting = [
      [w.Node, "value", ["appendChild", "insertBefore", "replaceChild"]],
      [w.Element, "value", ["append", "prepend", "before", "after", "replaceWith",
                            "replaceChildren", "insertAdjacentElement", "insertAdjacentHTML",
                            "setHTMLUnsafe"]],
      [w.Element, "set", ["innerHTML", "outerHTML"]],
      [w.CharacterData, "value", ["before", "after", "replaceWith"]],
      [w.DocumentType, "value", ["before", "after", "replaceWith"]],
      [w.Document, "value", ["append", "prepend", "replaceChildren", "execCommand"]],
      [w.Document, "set", ["body"]],
      [w.Range, "value", ["insertNode", "surroundContents"]],
    ];
    for (const [type, part, names] of inserting) {
      for (const name of names) if (type) replace(type.prototype, name, part, sweepingAfter);
    }
  }

  guard(top);
  const script = top.document.currentScript;
  if (script) script.remove();  // the app's DOM starts as the app wrote it
})(window);
