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
// everything else. Documents the page makes from its own text get this guard as their first
// script before they exist: srcdoc (rewritten whenever it is set, by any call, and before
// any frame is inserted; HTML parsed from strings is parsed out of the document first), the
// string a javascript: URL returns (the Trusted Types default policy of every guarded
// window, which the host's report-only policy makes the browser consult) and the
// blobs of HTML and XML types. What stays open is listed in docs/realtime.md ("No WebRTC").
//
// The function below refers to nothing outside itself: its own source is what srcdoc frames
// get. Being inline, the file must not hold an HTML comment opener or a closing script tag
// (html_guard.py checks).
(function webxdcGuard(top) {
  "use strict";
  const MARK = "__webxdcRtGuard";
  const SELF = "<script>(" + webxdcGuard + ")(window)<\/script>";
  // The same script as an XML document's element (an XHTML script runs in any of them).
  const XML_SELF = "<script xmlns=\"http://www.w3.org/1999/xhtml\"><![CDATA[(" + webxdcGuard +
    ")(window)]]" + "><\/script>";  // split: the guard's own source sits in CDATA
  const COMMENT = "<!" + "--";  // split: this file is inline HTML
  const XML_NAME_START = /^[A-Za-z_:\u0080-\uFFFF]$/;
  const XML_NAME_END = /^[\s\/>]$/;
  const HTML_NS = "http://www.w3.org/1999/xhtml";
  const define = Object.defineProperty;
  const describe = Object.getOwnPropertyDescriptor;
  // Descriptors and option bags have no prototype: a page could give Object.prototype a
  // `get` or an `attributeFilter` of its own.
  const gone = {
    __proto__: null, value: undefined, writable: false, enumerable: false, configurable: false,
  };
  // The page may replace any built-in once this has run, so what the guard calls later is
  // taken now: natives are called through Reflect.apply (a replaced Function.prototype.call
  // would be handed the native function itself), and arrays are walked by index (iteration
  // can be replaced too).
  const { apply } = Reflect;
  const call = (fn, self, ...args) => apply(fn, self, args);
  const ownNames = Object.getOwnPropertyNames;
  const setPrototype = Object.setPrototypeOf;
  const hasOwn = Object.hasOwn;
  const stringify = JSON.stringify;
  const Text = String;
  const ITERATOR = Symbol.iterator;
  const { startsWith, toLowerCase, indexOf, trim, slice } = Text.prototype;
  const then = Promise.prototype.then;
  const search = RegExp.prototype.exec;  // on the guard's own expressions only
  const SRCDOC = /srcdoc/i;
  const SHADOW_ROOT_MODE = /shadowrootmode/i;
  const mentions = (text, expression) => call(search, expression, text) !== null;
  // An array that natives given it (as a WebIDL sequence) walk with its own iterator.
  const listOf = (...items) => define(items, ITERATOR, { __proto__: null, value() {
    let i = 0;
    return { __proto__: null, next: () => (i < items.length
      ? { __proto__: null, value: items[i++], done: false }
      : { __proto__: null, value: undefined, done: true }) };
  } });
  const SRCDOC_SINK = "HTMLIFrameElement srcdoc";
  const guardedHtml = (html) => (call(startsWith, html, SELF) ? html : SELF + html);
  // A javascript: URL's script, changed so that a string it returns (which becomes the
  // frame's new document) starts with the guard; indirect eval keeps its globals global.
  const guardedResult = (script) => "(() => { const result = (0, eval)(" +
    stringify(script) + "); return typeof result === \"string\" ? " +
    stringify(SELF) + " + result : result; })()";

  // Takes WebRTC away in window `w` and hooks its DOM, once; cross-origin windows are left
  // alone (they are either served by the host, and so guarded, or out of the page's reach).
  function guard(w) {
    try {
      if (!w || describe(w, MARK)) return;
      define(w, MARK, { __proto__: null, value: true });
    } catch (_) {
      return;
    }
    const names = ownNames(w);
    for (let i = 0; i < names.length; i++) {
      if (call(startsWith, names[i], "RTC") || call(startsWith, names[i], "webkitRTC")) {
        try { define(w, names[i], gone); } catch (_) { /* already gone */ }
      }
    }
    trust(w);
    try { hook(w); } catch (_) { /* a window closing under us */ }
  }

  // The browser asks this policy about every string that becomes a srcdoc document or the
  // script of a javascript: URL, whichever call or attribute node sets it.
  function trust(w) {
    try {
      w.trustedTypes.createPolicy("default", {
        __proto__: null,
        createHTML: (html, _type, sink) => (sink === SRCDOC_SINK ? guardedHtml(html) : html),
        createScript: (script, _type, sink) =>
          (sink === "Location href" ? guardedResult(script) : script),
        createScriptURL: (url) => url,
      });
    } catch (_) { /* no Trusted Types here */ }
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
    const nodeType = describe(w.Node.prototype, "nodeType").get;
    const listLength = describe(w.NodeList.prototype, "length").get;
    const recordType = describe(w.MutationRecord.prototype, "type").get;
    const recordTarget = describe(w.MutationRecord.prototype, "target").get;
    const addedNodes = describe(w.MutationRecord.prototype, "addedNodes").get;
    const observeNodes = w.MutationObserver.prototype.observe;
    // Each frame with a srcdoc in `node`'s subtree.
    const eachFrame = (node, act) => {
      const frames = call(querySelectorAll, node, "iframe[srcdoc]");
      for (let i = 0, n = call(listLength, frames); i < n; i++) act(frames[i]);
    };

    // Every child window of `view`: window[i] reaches them without any call we could wrap.
    const sweep = (view) => {
      try {
        for (let i = 0, n = call(windowLength, view); i < n; i++) guard(view[i]);
      } catch (_) { /* not a window */ }
    };
    const viewOf = (node) => {
      try {
        return call(defaultView, call(ownerDocument, node) || node);
      } catch (_) {
        return null;
      }
    };
    const guardDocument = (doc) => {
      try { if (doc) guard(call(defaultView, doc)); } catch (_) { /* not a document */ }
    };

    // srcdoc documents run this guard first: the attribute is rewritten before the frame
    // navigates, a task later. (A frame sandboxed without allow-same-origin starts its
    // srcdoc document at once, out of reach: see the README.)
    const guardSrcdoc = (el) => {
      try {
        if (call(localName, el) !== "iframe" || call(namespaceURI, el) !== HTML_NS) return;
        if (!call(hasAttribute, el, "srcdoc")) return;
        const html = call(getAttribute, el, "srcdoc");
        if (!call(startsWith, html, SELF)) call(setAttribute, el, "srcdoc", SELF + html);
      } catch (_) { /* not an element */ }
    };
    const observer = new w.MutationObserver((records) => {
      sweep(w);
      for (let i = 0; i < records.length; i++) {
        if (call(recordType, records[i]) === "attributes") {
          guardSrcdoc(call(recordTarget, records[i]));
          continue;
        }
        const nodes = call(addedNodes, records[i]);
        for (let j = 0, n = call(listLength, nodes); j < n; j++) {
          if (call(nodeType, nodes[j]) !== 1) continue;
          guardSrcdoc(nodes[j]);
          if (call(firstElementChild, nodes[j]) === null) continue;  // the common, cheap case
          eachFrame(nodes[j], guardSrcdoc);
        }
      }
    });
    const observe = (root) => call(observeNodes, observer, root, {
      __proto__: null, childList: true, subtree: true, attributes: true,
      attributeFilter: listOf("srcdoc"),
    });
    observe(w.document);

    // An empty frame loads synchronously while it is inserted, before any handler of the
    // app sees it; document.open() drops listeners, so it is added again after one.
    const onLoad = () => sweep(w);
    const listen = () => call(addListener, w.document, "load", onLoad, true);
    listen();

    // Wraps the method ("value"), getter ("get") or setter ("set") `name` of `owner`.
    const replace = (owner, name, part, wrap) => {
      const d = owner && describe(owner, name);
      if (!d || !hasOwn(d, part) || typeof d[part] !== "function") return;
      setPrototype(d, null);
      d[part] = wrap(d[part]);
      define(owner, name, d);
    };
    const returning = (check) => (original) => function (...args) {
      const result = apply(original, this, args);
      check(result, args);
      return result;
    };
    // Every iframe in a node about to be inserted gets its srcdoc guarded first: a frame
    // sandboxed without allow-same-origin starts its document as it is inserted.
    const scan = (node) => {
      try {
        if (node === null || typeof node !== "object") return;
        const type = call(nodeType, node);
        if (type !== 1 && type !== 9 && type !== 11) return;
        guardSrcdoc(node);
        eachFrame(node, guardSrcdoc);
      } catch (_) { /* not a node */ }
    };
    const sweepingAfter = (original) => function (...args) {
      for (let i = 0; i < args.length; i++) scan(args[i]);
      try {
        return apply(original, this, args);
      } finally {
        sweep(viewOf(this));
      }
    };
    guardSrcdocSetters(w, replace);
    guardMarkup(w, replace, scan);
    guardBlobs(w, replace);

    const frameTypes = [w.HTMLIFrameElement, w.HTMLFrameElement, w.HTMLObjectElement];
    for (let i = 0; i < frameTypes.length; i++) {
      if (!frameTypes[i]) continue;
      replace(frameTypes[i].prototype, "contentWindow", "get", returning(guard));
      replace(frameTypes[i].prototype, "contentDocument", "get", returning(guardDocument));
    }
    const svgHolders = [w.HTMLIFrameElement, w.HTMLObjectElement, w.HTMLEmbedElement];
    for (let i = 0; i < svgHolders.length; i++) {
      const type = svgHolders[i];
      if (type) replace(type.prototype, "getSVGDocument", "value", returning(guardDocument));
    }
    replace(w, "open", "value", returning(guard));
    replace(w, "length", "get", (original) => function () {
      sweep(this);
      return call(original, this);
    });
    replace(w.Document.prototype, "open", "value", (original) => function (...args) {
      const result = apply(original, this, args);
      if (args.length >= 3) guard(result);  // the window.open() form
      listen();
      return result;
    });
    const writes = ["write", "writeln"];
    for (let i = 0; i < writes.length; i++) {
      replace(w.Document.prototype, writes[i], "value", (original) => function (...args) {
        try {
          return apply(original, this, args);
        } finally {
          listen();
          sweep(viewOf(this));
        }
      });
    }
    if (w.DocumentPictureInPicture) {
      replace(w.DocumentPictureInPicture.prototype, "requestWindow", "value", (original) =>
        function (...args) {
          return call(then, apply(original, this, args), (pip) => {
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
      [w.DocumentFragment, "value", ["append", "prepend", "replaceChildren"]],
      [w.ShadowRoot, "value", ["setHTMLUnsafe"]],
      [w.ShadowRoot, "set", ["innerHTML"]],
      [w.CharacterData, "value", ["before", "after", "replaceWith"]],
      [w.DocumentType, "value", ["before", "after", "replaceWith"]],
      [w.Document, "value", ["append", "prepend", "replaceChildren", "execCommand"]],
      [w.Document, "set", ["body"]],
      [w.Range, "value", ["insertNode", "surroundContents"]],
    ];
    for (let i = 0; i < inserting.length; i++) {
      const type = inserting[i][0];
      const part = inserting[i][1];
      const names = inserting[i][2];
      if (!type) continue;
      for (let j = 0; j < names.length; j++) replace(type.prototype, names[j], part, sweepingAfter);
    }
  }

  // Every call that sets an iframe's srcdoc, with a string or with a TrustedHTML of a policy
  // of the page's own (which the default policy never sees), sets it with the guard first.
  function guardSrcdocSetters(w, replace) {
    const localName = describe(w.Element.prototype, "localName").get;
    const namespaceURI = describe(w.Element.prototype, "namespaceURI").get;
    const nodeType = describe(w.Node.prototype, "nodeType").get;
    const attrName = describe(w.Attr.prototype, "localName").get;
    const attrNamespace = describe(w.Attr.prototype, "namespaceURI").get;
    const attrOwner = describe(w.Attr.prototype, "ownerElement").get;
    const attrValue = describe(w.Attr.prototype, "value");
    const isFrame = (el) => {
      try {
        return call(localName, el) === "iframe" && call(namespaceURI, el) === HTML_NS;
      } catch (_) {
        return false;
      }
    };
    const isSrcdocAttr = (attr) => {
      try {
        return call(nodeType, attr) === 2 && call(attrName, attr) === "srcdoc" &&
          call(attrNamespace, attr) === null;
      } catch (_) {
        return false;
      }
    };
    const text = (value) => (value === null ? "" : Text(value));

    replace(w.HTMLIFrameElement.prototype, "srcdoc", "set", (original) => function (html) {
      return call(original, this, guardedHtml(Text(html)));
    });
    replace(w.Element.prototype, "setAttribute", "value", (original) => function (...args) {
      if (args.length < 2 || !isFrame(this)) return apply(original, this, args);
      const name = Text(args[0]);
      if (call(toLowerCase, name) !== "srcdoc") return call(original, this, name, args[1]);
      return call(original, this, name, guardedHtml(Text(args[1])));
    });
    replace(w.Element.prototype, "setAttributeNS", "value", (original) => function (...args) {
      if (args.length < 3 || !isFrame(this)) return apply(original, this, args);
      const space = args[0] === null || args[0] === undefined ? null : Text(args[0]);
      const name = Text(args[1]);
      if ((space !== null && space !== "") || name !== "srcdoc") {
        return call(original, this, space, name, args[2]);
      }
      return call(original, this, space, name, guardedHtml(Text(args[2])));
    });
    // An attribute node's value, while it belongs to a frame.
    const valueSetters = [[w.Attr.prototype, "value"], [w.Node.prototype, "nodeValue"],
                          [w.Node.prototype, "textContent"]];
    for (let i = 0; i < valueSetters.length; i++) {
      replace(valueSetters[i][0], valueSetters[i][1], "set", (original) => function (value) {
        if (!isSrcdocAttr(this) || !isFrame(call(attrOwner, this))) {
          return call(original, this, value);
        }
        return call(original, this, guardedHtml(text(value)));
      });
    }
    // An attribute node given to an element: guarded before it is attached. (A
    // NamedNodeMap does not tell whose it is, so any srcdoc node given to one is.)
    const guardAttr = (attr) => {
      if (!isSrcdocAttr(attr)) return;
      const value = call(attrValue.get, attr);
      if (!call(startsWith, value, SELF)) call(attrValue.set, attr, guardedHtml(value));
    };
    const attaching = [[w.Element.prototype, "setAttributeNode"],
                       [w.Element.prototype, "setAttributeNodeNS"],
                       [w.NamedNodeMap.prototype, "setNamedItem"],
                       [w.NamedNodeMap.prototype, "setNamedItemNS"]];
    for (let i = 0; i < attaching.length; i++) {
      const owner = attaching[i][0];
      replace(owner, attaching[i][1], "value", (original) => function (...args) {
        if (owner !== w.Element.prototype || isFrame(this)) guardAttr(args[0]);
        return apply(original, this, args);
      });
    }
  }

  // HTML from a string is parsed apart (into a detached element of the same kind, which
  // parses it the same way) when it mentions srcdoc, its frames guarded, and then moved in:
  // parsed in place, a sandboxed frame would start before anything could guard it.
  function guardMarkup(w, replace, scan) {
    const proto = w.Node.prototype;
    const { appendChild, insertBefore, replaceChild, removeChild } = proto;
    const parentNode = describe(proto, "parentNode").get;
    const firstChild = describe(proto, "firstChild").get;
    const nextSibling = describe(proto, "nextSibling").get;
    const nodeType = describe(proto, "nodeType").get;
    const ownerDocument = describe(proto, "ownerDocument").get;
    const localName = describe(w.Element.prototype, "localName").get;
    const namespaceURI = describe(w.Element.prototype, "namespaceURI").get;
    const shadowHost = describe(w.ShadowRoot.prototype, "host").get;
    const { createElementNS, createDocumentFragment } = w.Document.prototype;
    const setInnerHTML = describe(w.Element.prototype, "innerHTML").set;
    const isElement = (node) => node !== null && call(nodeType, node) === 1;
    const isTemplate = (el) => call(localName, el) === "template" &&
      call(namespaceURI, el) === HTML_NS;  // its content is inert; inserted later, it is scanned
    // `parse(holder)` parses the string into `holder`, made like `context`.
    const parsedApart = (context, parse) => {
      const doc = call(ownerDocument, context);
      const holder = call(createElementNS, doc, call(namespaceURI, context),
                           call(localName, context));
      parse(holder);
      scan(holder);
      const fragment = call(createDocumentFragment, doc);
      for (let child = call(firstChild, holder); child; child = call(firstChild, holder)) {
        call(appendChild, fragment, child);
      }
      return fragment;
    };
    const emptied = (node) => {
      for (let child = call(firstChild, node); child; child = call(firstChild, node)) {
        call(removeChild, node, child);
      }
      return node;
    };
    const refuseDeclarativeFrames = (html) => {
      if (mentions(html, SHADOW_ROOT_MODE)) {
        throw new TypeError("webxdc-rt: an iframe with srcdoc in a declarative shadow root " +
                            "is not allowed (it would run without the host's guard)");
      }
    };

    replace(w.Element.prototype, "innerHTML", "set", (original) => function (value) {
      const html = value === null ? "" : Text(value);
      if (!mentions(html, SRCDOC) || isTemplate(this)) return call(original, this, html);
      const fragment = parsedApart(this, (holder) => call(original, holder, html));
      call(appendChild, emptied(this), fragment);
    });
    replace(w.ShadowRoot.prototype, "innerHTML", "set", (original) => function (value) {
      const html = value === null ? "" : Text(value);
      if (!mentions(html, SRCDOC)) return call(original, this, html);
      const fragment = parsedApart(call(shadowHost, this), (h) => call(setInnerHTML, h, html));
      call(appendChild, emptied(this), fragment);
    });
    replace(w.Element.prototype, "outerHTML", "set", (original) => function (value) {
      const html = value === null ? "" : Text(value);
      const parent = call(parentNode, this);
      if (!mentions(html, SRCDOC) || parent === null || call(nodeType, parent) === 9) {
        return call(original, this, html);
      }
      const context = isElement(parent) ? parent
        : call(createElementNS, call(ownerDocument, this), HTML_NS, "body");
      call(replaceChild, parent, parsedApart(context, (h) => call(setInnerHTML, h, html)), this);
    });
    replace(w.Element.prototype, "insertAdjacentHTML", "value", (original) => function (...args) {
      const where = call(toLowerCase, Text(args[0]));
      const html = Text(args[1]);
      const parent = call(parentNode, this);
      const outside = where === "beforebegin" || where === "afterend";
      const inside = where === "afterbegin" || where === "beforeend";
      if (!mentions(html, SRCDOC) || !(inside || outside) ||
          (outside && (parent === null || call(nodeType, parent) === 9))) {
        return call(original, this, where, html);
      }
      const context = !outside ? this : isElement(parent) ? parent
        : call(createElementNS, call(ownerDocument, this), HTML_NS, "body");
      const fragment = parsedApart(context, (h) => call(setInnerHTML, h, html));
      if (where === "beforebegin") call(insertBefore, parent, fragment, this);
      else if (where === "afterbegin") call(insertBefore, this, fragment, call(firstChild, this));
      else if (where === "beforeend") call(appendChild, this, fragment);
      else call(insertBefore, parent, fragment, call(nextSibling, this));
    });
    const settingHTML = [w.Element, w.ShadowRoot];
    for (let i = 0; i < settingHTML.length; i++) {
      const type = settingHTML[i];
      replace(type.prototype, "setHTMLUnsafe", "value", (original) => function (...args) {
        const html = args[0] = Text(args[0]);
        if (!mentions(html, SRCDOC)) return apply(original, this, args);
        refuseDeclarativeFrames(html);
        const host = type === w.ShadowRoot ? call(shadowHost, this) : this;
        if (isTemplate(host)) return apply(original, this, args);
        const fragment = parsedApart(host, (holder) => apply(original, holder, args));
        call(appendChild, emptied(this), fragment);
      });
    }
    replace(w.Document, "parseHTMLUnsafe", "value", (original) => function (...args) {
      const html = args[0] = Text(args[0]);
      if (mentions(html, SRCDOC)) refuseDeclarativeFrames(html);
      return apply(original, this, args);
    });
  }

  // A blob a window can be navigated to gets the guard as its first script: a page may
  // navigate itself or a window it opened to a blob: document of its own making. A text/html
  // blob gets it prepended; an XML one (SVG, XHTML, any XML: their scripts run too) is read
  // at once and gets it as the first child of its root element, so it stays well-formed
  // and the same image to an <img>. An XML blob the guard cannot place itself in (not
  // well-formed up to its root, or not in an ASCII-compatible encoding) is refused, and so
  // is one with an xml-stylesheet instruction (its XSLT result would be another document).
  function guardBlobs(w, replace) {
    const NativeBlob = w.Blob;
    const Request = w.XMLHttpRequest;
    const { open, send, overrideMimeType } = Request.prototype;
    const responseText = describe(Request.prototype, "responseText").get;
    const revoke = w.URL.revokeObjectURL;
    // The blob's bytes, one character per byte (ASCII as itself), read synchronously.
    const readBytes = (createURL, blob) => {
      const url = call(createURL, w.URL, blob);
      try {
        const request = new Request();
        call(open, request, "GET", url, false);
        call(overrideMimeType, request, "text/plain; charset=x-user-defined");
        call(send, request);
        return call(responseText, request);
      } finally {
        call(revoke, w.URL, url);
      }
    };
    const blobType = describe(NativeBlob.prototype, "type").get;
    const blobSlice = NativeBlob.prototype.slice;
    replace(w.URL, "createObjectURL", "value", (original) => function (...args) {
      let type = null;
      try { type = call(blobType, args[0]); } catch (_) { /* a MediaSource, or not a blob */ }
      if (type !== null) {
        const end = call(indexOf, type, ";");
        const essence = call(toLowerCase,
                             call(trim, end === -1 ? type : call(slice, type, 0, end)));
        if (essence === "text/html") {
          args[0] = new NativeBlob(listOf(SELF, args[0]), { __proto__: null, type });
        } else if (isXml(essence)) {
          const blob = args[0];
          const bytes = readBytes(original, blob);
          // An XSLT stylesheet would make a new document of its own, without the guard.
          const place = call(indexOf, bytes, "<?xml-stylesheet") === -1
            ? xmlRootStart(bytes) : null;
          if (place === null) {
            throw new TypeError("webxdc-rt: an XML blob must be well-formed up to its root " +
                                "element, in UTF-8 or another ASCII-compatible encoding, " +
                                "with no xml-stylesheet instruction");
          }
          const middle = place.selfClosing
            ? ">" + XML_SELF + "</" + place.name + ">" : XML_SELF;
          args[0] = new NativeBlob(listOf(call(blobSlice, blob, 0, place.at), middle,
                                          call(blobSlice, blob, place.end)),
                                   { __proto__: null, type });
        }
      }
      return apply(original, this, args);
    });
  }

  // The MIME types a browser renders as an XML document, whose scripts run.
  function isXml(essence) {
    return essence === "text/xml" || essence === "application/xml" ||
      (essence.length > 4 && call(slice, essence, -4) === "+xml");
  }

  // Where the root element's start tag of XML `text` ends: `at` and `end` are the indexes
  // around its `>` (or `/>`, then `selfClosing`); null if the prolog is not as XML has it.
  function xmlRootStart(text) {
    const n = text.length;
    let i = call(startsWith, text, "\uF7EF\uF7BB\uF7BF") ? 3 : 0;  // a UTF-8 byte order mark
    const past = (closer, from) => {
      const found = call(indexOf, text, closer, from);
      return found === -1 ? -1 : found + closer.length;
    };
    while (i !== -1 && i < n) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\r" || c === "\n") {
        i++;
      } else if (call(startsWith, text, "<?", i)) {
        i = past("?>", i + 2);
      } else if (call(startsWith, text, COMMENT, i)) {
        i = past("-->", i + 4);
      } else if (call(startsWith, text, "<!DOCTYPE", i)) {
        i = doctypeEnd(text, i + 9);
      } else if (c === "<" && mentions(text[i + 1] || "", XML_NAME_START)) {
        let k = i + 1;
        while (k < n && !mentions(text[k], XML_NAME_END)) k++;
        const name = call(slice, text, i + 1, k);
        for (; k < n; k++) {
          const q = text[k];
          if (q === "\"" || q === "'") {
            k = call(indexOf, text, q, k + 1);
            if (k === -1) return null;
          } else if (q === "<") {
            return null;
          } else if (q === ">") {
            const selfClosing = text[k - 1] === "/";
            return { __proto__: null, name, selfClosing,
                     at: selfClosing ? k - 1 : k + 1, end: k + 1 };
          }
        }
        return null;
      } else {
        return null;
      }
    }
    return null;
  }

  // Index after a doctype whose `<!DOCTYPE` ends at `i` (quoted literals and an internal
  // subset, with its comments and processing instructions, can hold `>`), or -1.
  function doctypeEnd(text, i) {
    let subset = false;
    for (let n = text.length; i < n; i++) {
      const c = text[i];
      if (c === "\"" || c === "'") {
        i = call(indexOf, text, c, i + 1);
      } else if (subset && call(startsWith, text, COMMENT, i)) {
        i = call(indexOf, text, "-->", i + 4);
      } else if (subset && call(startsWith, text, "<?", i)) {
        i = call(indexOf, text, "?>", i + 2);
      } else if (c === "[") {
        subset = true;
      } else if (c === "]") {
        subset = false;
      } else if (c === ">" && !subset) {
        return i + 1;
      }
      if (i === -1) return -1;
    }
    return -1;
  }

  guard(top);
  const script = top.document.currentScript;
  if (script) script.remove();  // the app's DOM starts as the app wrote it
})(window)
