"""Deliberately broken hosts for the conformance suite's own tests: each is this project's
bridge with one realtime rule broken (a patch applied to `window.webxdc` the moment the
bridge sets it, before the app runs; the host itself is unchanged). Each breakage must turn
exactly its row red."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.async_api import BrowserContext

from webxdc_rt.conformance.hosts import Deployment


@dataclass(frozen=True)
class Breakage:
    """A bridge patch (JS run after the real bridge, `W` is `window.webxdc`, `join` its
    real `joinRealtimeChannel`) and the row it must turn red."""

    name: str
    row: str
    patch: str
    leaks_between_copies: bool = False


def bridge_patch(body: str) -> str:
    """An init script that patches the bridge's `window.webxdc` when the bridge sets it."""
    return ("(() => {\n  let bridge;\n  Object.defineProperty(window, 'webxdc', {\n"
            "    configurable: true, get: () => bridge,\n    set(W) {\n      bridge = W;\n"
            "      const join = W.joinRealtimeChannel;\n"
            f"{body}\n    }},\n  }});\n}})();\n")


BREAKAGES = [
    Breakage("echoes", "no-echo", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    let listener = null;
    return {
      setListener(cb) { listener = cb; ch.setListener(cb); },
      send(data) {
        ch.send(data);
        const copy = new Uint8Array(data);
        setTimeout(() => listener && listener(copy), 0);
      },
      leave() { listener = null; ch.leave(); },
    };
  };""")),
    Breakage("lets a second join replace the first", "join-twice", bridge_patch("""
  let current = null;
  W.joinRealtimeChannel = () => {
    if (current) current.leave();
    current = join();
    return current;
  };""")),
    Breakage("reorders", "order", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    let listener = null;
    let held = null;
    const deliver = (data) => listener && listener(data);
    ch.setListener((data) => {
      if (held === null) {
        const timer = setTimeout(() => { const h = held; held = null; deliver(h.data); }, 50);
        held = { data, timer };
        return;
      }
      const h = held;
      held = null;
      clearTimeout(h.timer);
      deliver(data);
      deliver(h.data);
    });
    return {
      setListener(cb) { listener = cb; },
      send: (data) => ch.send(data),
      leave() { listener = null; if (held) clearTimeout(held.timer); held = null; ch.leave(); },
    };
  };""")),
    Breakage("no size check", "size", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    return {
      setListener: (cb) => ch.setListener(cb),
      send(data) { if (data instanceof Uint8Array && data.length > 128000) return; ch.send(data); },
      leave: () => ch.leave(),
    };
  };""")),
    Breakage("sends what is not a Uint8Array", "type-errors", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    return {
      setListener: (cb) => ch.setListener(cb),
      send(data) {
        if (data === null) return;
        if (typeof data === "string") data = new TextEncoder().encode(data);
        else if (data instanceof DataView) data = new Uint8Array(data.buffer);
        else if (!(data instanceof Uint8Array)) data = new Uint8Array(data);
        ch.send(data);
      },
      leave: () => ch.leave(),
    };
  };""")),
    Breakage("queues data before a listener", "before-listener", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    let listener = null;
    let queue = [];
    ch.setListener((data) => (listener ? listener(data) : queue.push(data)));
    return {
      setListener(cb) { listener = cb; const q = queue; queue = []; q.forEach(cb); },
      send: (data) => ch.send(data),
      leave() { listener = null; ch.leave(); },
    };
  };""")),
    Breakage("sends the caller's array later", "mutation", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    let left = false;
    return {
      setListener: (cb) => ch.setListener(cb),
      send(data) {
        if (!(data instanceof Uint8Array)) throw new TypeError("not a Uint8Array");
        if (data.length > 128000) throw new RangeError("too long");
        if (left) throw new Error("left");
        queueMicrotask(() => { if (!left) ch.send(data); });
      },
      leave() { left = true; ch.leave(); },
    };
  };""")),
    Breakage("calls listeners after leave", "leave", bridge_patch("""
  const ghosts = [];
  W.joinRealtimeChannel = () => {
    const ch = join();
    let listener = null;
    ch.setListener((data) => { if (listener) listener(data); ghosts.forEach((g) => g(data)); });
    return {
      setListener(cb) { listener = cb; },
      send: (data) => ch.send(data),
      leave() { if (listener) ghosts.push(listener); listener = null; ch.leave(); },
    };
  };""")),
    Breakage("replays to late joiners", "late-joiner", bridge_patch("""
  let real = null;
  let current = null;
  let missed = [];
  W.joinRealtimeChannel = () => {
    if (current) throw new Error("already joined");
    if (!real) {
      real = join();
      real.setListener((data) => {
        if (current === null) missed.push(data);
        else if (current.listener) current.listener(data);
      });
    }
    const me = { listener: null, left: false };
    current = me;
    return {
      setListener(cb) { me.listener = cb; const q = missed; missed = []; q.forEach(cb); },
      send(data) { if (me.left) throw new Error("left"); real.send(data); },
      leave() { me.left = true; if (current === me) current = null; },
    };
  };""")),
    Breakage("lets copies hear each other", "isolation", bridge_patch("""
  W.joinRealtimeChannel = () => {
    const ch = join();
    let listener = null;
    window.__inject = (bytes) => listener && listener(Uint8Array.from(bytes));
    return {
      setListener(cb) { listener = cb; ch.setListener(cb); },
      send(data) { ch.send(data); if (data.length < 1024) window.__leak(Array.from(data)); },
      leave() { listener = null; ch.leave(); },
    };
  };"""), leaks_between_copies=True),
]


def serving(breakage: Breakage) -> Any:
    """The runner's `prepare`: serves the broken bridge to every page of the context and,
    for a leak, carries items from each copy's pages to the other copy's."""

    async def prepare(context: BrowserContext, deployment: Deployment) -> None:
        await context.add_init_script(breakage.patch)
        if breakage.leaks_between_copies:
            await context.expose_binding("__leak", _leak(context))

    return prepare


def _leak(context: BrowserContext) -> Any:
    """Pages open in the order first, second, same member, other copy: the fourth page is
    the second copy's."""

    async def leak(source: dict[str, Any], data: list[int]) -> None:
        pages = context.pages
        sender = source["page"]
        other = pages[3:4]
        targets = pages[:3] if sender in other else other
        for page in targets:
            await page.evaluate("(bytes) => window.__inject && window.__inject(bytes)", data)

    return leak
