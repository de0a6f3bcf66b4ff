// A shared sketch pad: every member draws on the same canvas and sees who is here and
// where their pointer is. Points and presence travel live over the realtime channel as
// small JSON messages; each finished stroke is also sent as a status update, so the drawing
// persists and a member who opens the pad later sees it. The pen width is a per-device
// preference kept in localStorage.
"use strict";

const HEARTBEAT_MS = 2000;      // presence is repeated this often...
const GONE_AFTER_MS = 6000;     // ...and a member silent this long is shown as gone
// Each colour is at least 4.5:1 against white: white names on it and it on the white pad
// (the pad stays white in the dark scheme too, so a drawing looks the same to everyone).
const PALETTE = ["#c62828", "#2e7d32", "#1565c0", "#b34700", "#6a1b9a", "#00796b", "#ad1457"];

const me = { addr: window.webxdc.selfAddr, name: window.webxdc.selfName };
const canvas = document.getElementById("pad");
const context = canvas.getContext("2d");
const peopleList = document.getElementById("people");
const cursorLayer = document.getElementById("cursors");
const statusText = document.getElementById("status");

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const peers = new Map();        // addr -> {name, color, lastSeen, cursorEl}
const strokes = [];             // {addr, color, points: [[x, y], ...]} in drawing order

const PEN_KEY = "sketch.penWidth";
const penWidth = Number(localStorage.getItem(PEN_KEY)) || 3;
localStorage.setItem(PEN_KEY, String(penWidth));

const colorOf = (addr) => {
  let hash = 0;
  for (const ch of addr) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
};
me.color = colorOf(me.addr);

const channel = window.webxdc.joinRealtimeChannel();
const send = (message) => channel.send(encoder.encode(JSON.stringify({ ...message, from: me.addr })));

// Positions travel as fractions of the canvas so that screens of any size agree.
const toUnit = (event) => {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height];
};

function resize() {
  const box = canvas.getBoundingClientRect();
  canvas.width = box.width * devicePixelRatio;
  canvas.height = box.height * devicePixelRatio;
  redraw();
}

function drawSegment(color, from, to, width = penWidth) {
  context.strokeStyle = color;
  context.lineWidth = width * devicePixelRatio;
  context.lineCap = "round";
  context.beginPath();
  context.moveTo(from[0] * canvas.width, from[1] * canvas.height);
  context.lineTo(to[0] * canvas.width, to[1] * canvas.height);
  context.stroke();
}

function redraw() {
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (const stroke of strokes) {
    for (let i = 1; i < stroke.points.length; i++) {
      drawSegment(stroke.color, stroke.points[i - 1], stroke.points[i]);
    }
  }
}

function addPoint(addr, color, strokeId, point) {
  let stroke = strokes.find((s) => s.addr === addr && s.id === strokeId);
  if (!stroke) {
    stroke = { addr, id: strokeId, color, points: [] };
    strokes.push(stroke);
  }
  const last = stroke.points[stroke.points.length - 1];
  stroke.points.push(point);
  if (last) drawSegment(color, last, point);
}

// A stroke that the status updates bring: replaces any live copy of the same stroke.
function storeStroke({ addr, id, color, points }) {
  const known = strokes.findIndex((s) => s.addr === addr && s.id === id);
  if (known >= 0) strokes.splice(known, 1);
  strokes.push({ addr, id, color, points });
  redraw();
}

function clearStrokesOf(addr) {
  for (let i = strokes.length - 1; i >= 0; i--) if (strokes[i].addr === addr) strokes.splice(i, 1);
  redraw();
}

function seen(addr, name) {
  let peer = peers.get(addr);
  if (!peer) {
    const cursorEl = document.createElement("div");
    cursorEl.className = "cursor";
    cursorEl.hidden = true;
    cursorLayer.append(cursorEl);
    peer = { name, color: colorOf(addr), cursorEl };
    peers.set(addr, peer);
  }
  peer.name = name || peer.name;
  peer.cursorEl.textContent = peer.name;
  peer.cursorEl.style.color = peer.color;
  peer.lastSeen = Date.now();
  renderPeople();
  return peer;
}

function forget(addr) {
  const peer = peers.get(addr);
  if (!peer) return;
  peer.cursorEl.remove();
  peers.delete(addr);
  renderPeople();
}

function renderPeople() {
  peopleList.replaceChildren(...[[me.addr, me], ...peers].map(([addr, person]) => {
    const item = document.createElement("li");
    item.textContent = addr === me.addr ? `${person.name} (you)` : person.name;
    item.style.background = person.color;
    item.dataset.addr = addr;
    return item;
  }));
  // The status is a live region: it is written only when it says something new.
  const status = peers.size === 0 ? "alone here" : `${peers.size + 1} here`;
  if (statusText.textContent !== status) statusText.textContent = status;
}

channel.setListener((bytes) => {
  let message;
  try {
    message = JSON.parse(decoder.decode(bytes));
  } catch {
    return; // not ours: another version of the app, or noise
  }
  if (typeof message.from !== "string") return;
  if (message.t === "bye") return forget(message.from);
  const peer = seen(message.from, message.name);
  if (message.t === "hello") send({ t: "here", name: me.name });  // answer newcomers at once
  if (message.t === "point") {
    addPoint(message.from, peer.color, message.stroke, message.p);
  }
  if (message.t === "point" || message.t === "move") {
    const box = canvas.getBoundingClientRect();
    peer.cursorEl.hidden = false;
    peer.cursorEl.style.left = `${message.p[0] * box.width}px`;
    peer.cursorEl.style.top = `${message.p[1] * box.height}px`;
  }
  if (message.t === "clear") clearStrokesOf(message.from);
});

window.webxdc.setUpdateListener((update) => {
  const { stroke, clear } = update.payload;
  if (stroke) storeStroke(stroke);
  if (clear) clearStrokesOf(clear);
}, 0);

let drawing = null;
// Stroke ids must stay unique across visits, since finished strokes are stored.
let strokeCounter = Date.now();
canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  drawing = ++strokeCounter;
  const p = toUnit(event);
  addPoint(me.addr, me.color, drawing, p);
  send({ t: "point", stroke: drawing, p });
});
canvas.addEventListener("pointermove", (event) => {
  const p = toUnit(event);
  if (drawing === null) return send({ t: "move", p });
  addPoint(me.addr, me.color, drawing, p);
  send({ t: "point", stroke: drawing, p });
});
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (drawing === null) return;
    const stroke = strokes.find((s) => s.addr === me.addr && s.id === drawing);
    drawing = null;
    if (stroke) {
      window.webxdc.sendUpdate({ payload: { stroke: { ...stroke } } }, "");
    }
  });
}
document.getElementById("clear").addEventListener("click", () => {
  clearStrokesOf(me.addr);
  send({ t: "clear" });
  window.webxdc.sendUpdate({ payload: { clear: me.addr }, info: `${me.name} cleared their strokes` }, "");
});

setInterval(() => {
  send({ t: "here", name: me.name });
  const now = Date.now();
  for (const [addr, peer] of peers) if (now - peer.lastSeen > GONE_AFTER_MS) forget(addr);
}, HEARTBEAT_MS);
window.addEventListener("pagehide", () => send({ t: "bye" }));
window.addEventListener("resize", resize);

resize();
renderPeople();
send({ t: "hello", name: me.name });
