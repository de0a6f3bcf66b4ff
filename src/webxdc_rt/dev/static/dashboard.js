// The webxdc-rt dev dashboard: one frame per peer, commands to the simulator, and the log
// it streams over a WebSocket in batches (the host samples; this page keeps at most
// MAX_ROWS rows, so a flood of items never slows it down).
"use strict";

const MAX_ROWS = 500;
const frames = document.getElementById("frames");
const template = document.getElementById("peer-template");
const logList = document.getElementById("log");
const ratesBody = document.querySelector("#rates tbody");
const filterPeer = document.getElementById("filter-peer");
const cards = new Map(); // member -> {card, url}
let paused = false;
let state = { peers: [], partition: [] };

async function command(body) {
  const response = await fetch("/api", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  const status = document.getElementById("status");
  if (!response.ok) {
    status.textContent = answer.message || "refused";
    return null;
  }
  status.textContent = "";
  showState(answer);
  return answer;
}

function showState(next) {
  state = next;
  document.getElementById("app-name").textContent = next.app || "webxdc-rt dev";
  const wanted = new Set(next.peers.map((peer) => peer.member));
  for (const [member, entry] of cards) {
    if (!wanted.has(member)) { entry.card.remove(); cards.delete(member); }
  }
  next.peers.forEach((peer, index) => {
    let entry = cards.get(peer.member);
    if (!entry || entry.url !== peer.url) {
      if (entry) entry.card.remove();
      entry = { card: newCard(peer), url: peer.url };
      cards.set(peer.member, entry);
    }
    const card = entry.card;
    // Moving a frame in the document reloads it: a card is only inserted where it is missing.
    if (frames.children[index] !== card) frames.insertBefore(card, frames.children[index] || null);
    card.querySelector(".addr").textContent = peer.self_addr;
    card.querySelector(".addr").title = peer.self_addr;
    card.querySelector(".faults").textContent = peer.shown_faults;
    card.classList.toggle("offline", peer.faults.offline);
    card.classList.toggle("joined", peer.joined);
    const form = card.querySelector(".fault-form");
    for (const [name, value] of Object.entries(peer.faults)) {
      const input = form.elements[name];
      if (!input || document.activeElement === input) continue;
      if (input.type === "checkbox") input.checked = value; else input.value = value ?? "";
    }
  });
  const selected = filterPeer.value;
  filterPeer.replaceChildren(new Option("all peers", ""),
    ...next.peers.map((peer) => new Option(peer.member, peer.member)));
  filterPeer.value = selected;
  const partition = document.getElementById("partition");
  if (document.activeElement !== partition) {
    partition.value = next.partition.map((group) => group.join(",")).join(" | ");
  }
}

function newCard(peer) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.dataset.member = peer.member;
  card.querySelector(".name").textContent = peer.member;
  const frame = card.querySelector("iframe");
  frame.title = peer.member;
  frame.name = peer.member;
  frame.src = peer.url;
  card.querySelector(".reload").addEventListener("click", () => reloadFrame(card));
  card.querySelector(".remove").addEventListener("click",
    () => command({ op: "remove", member: peer.member }));
  const form = card.querySelector(".fault-form");
  card.querySelector(".toggle-faults").addEventListener("click",
    () => { form.hidden = !form.hidden; });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const faults = {};
    for (const input of form.elements) {
      if (!input.name) continue;
      if (input.type === "checkbox") faults[input.name] = input.checked;
      else if (input.name === "seed") faults.seed = input.value === "" ? null : Number(input.value);
      else faults[input.name] = Number(input.value || 0);
    }
    command({ op: "faults", member: peer.member, faults });
  });
  return card;
}

function reloadFrame(card) {
  // The invite link again: it lands on the app's first page with its cookie.
  const frame = card.querySelector("iframe");
  frame.src = cards.get(card.dataset.member).url;
}

function describe(event) {
  switch (event.kind) {
    case "item": {
      const bytes = event.text !== undefined ? `"${event.text}"` : event.hex;
      return `${event.sender} → ${event.receivers.join(", ") || "(nobody)"}  ${event.size} B  ${bytes}`;
    }
    case "join": return `${event.peer} joined the realtime channel`;
    case "leave": return `${event.peer} left the realtime channel`;
    case "update": {
      const bytes = event.text !== undefined ? event.text : event.hex;
      return `${event.sender} status update  ${event.size} B  ${bytes}`;
    }
    case "message": {
      const file = event.file_name ? `  file ${event.file_name} (${event.file_size} B)` : "";
      return `${event.sender} sendToChat  ${JSON.stringify(event.text)}${file}`;
    }
    case "refused": return `host refused ${event.count}× ${event.code}`;
    default: return JSON.stringify(event);
  }
}

function involves(event, member) {
  return !member || event.sender === member || event.peer === member
    || (event.receivers || []).includes(member);
}

function showBatch(batch) {
  const rows = [];
  for (const peer of state.peers) {
    const r = batch.rates[peer.member] || {};
    const lost = Object.values(r.lost || {}).reduce((a, b) => a + b, 0);
    rows.push([peer.member, batch.joined.includes(peer.member) ? "●" : "",
      (r.items_sent_per_s || 0).toFixed(0), ((r.bytes_sent_per_s || 0) / 1000).toFixed(1),
      (r.items_received_per_s || 0).toFixed(0), ((r.bytes_received_per_s || 0) / 1000).toFixed(1),
      r.items_sent || 0, r.items_received || 0, lost]);
  }
  ratesBody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.dataset.member = cells[0];
    for (const cell of cells) { const td = document.createElement("td"); td.textContent = cell; tr.appendChild(td); }
    return tr;
  }));
  for (const peer of state.peers) {
    cards.get(peer.member)?.card.classList.toggle("joined", batch.joined.includes(peer.member));
  }
  const note = [];
  if (batch.items_not_described) note.push(`${batch.items_not_described} items counted, not shown`);
  if (batch.events_dropped) note.push(`${batch.events_dropped} events dropped`);
  document.getElementById("log-note").textContent = note.join("; ");
  if (paused || !batch.events.length) return;
  const kinds = new Set([...document.querySelectorAll(".kind:checked")].map((box) => box.value));
  if (kinds.has("join")) kinds.add("leave");
  const member = filterPeer.value;
  const fragment = document.createDocumentFragment();
  for (const event of batch.events.slice(-MAX_ROWS)) {
    if (!kinds.has(event.kind) || !involves(event, member)) continue;
    const li = document.createElement("li");
    li.dataset.kind = event.kind;
    li.textContent = describe(event);
    fragment.appendChild(li);
  }
  const atBottom = logList.scrollTop + logList.clientHeight >= logList.scrollHeight - 4;
  logList.appendChild(fragment);
  while (logList.childElementCount > MAX_ROWS) logList.firstElementChild.remove();
  if (atBottom) logList.scrollTop = logList.scrollHeight;
}

function connect() {
  const socket = new WebSocket(`ws://${location.host}/socket`);
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "state") showState(message);
    else if (message.type === "batch") showBatch(message);
    else if (message.type === "reload") for (const card of frames.children) reloadFrame(card);
  });
  socket.addEventListener("close", () => setTimeout(connect, 1000));
  window.dashboardSocket = socket;
}

document.getElementById("add-peer").addEventListener("click", () => command({ op: "add" }));
document.getElementById("reset").addEventListener("click", () => command({ op: "reset" }));
document.getElementById("heal").addEventListener("click", () => command({ op: "heal" }));
document.getElementById("apply-partition").addEventListener("click", () => {
  const text = document.getElementById("partition").value.trim();
  const groups = text ? text.split("|").map((group) =>
    group.split(",").map((name) => name.trim()).filter(Boolean)) : [];
  command({ op: "partition", groups });
});
document.getElementById("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.target.textContent = paused ? "Resume" : "Pause";
});
document.getElementById("clear").addEventListener("click", () => logList.replaceChildren());
document.getElementById("columns").addEventListener("change", (event) => {
  const value = event.target.value;
  frames.style.gridTemplateColumns = value === "auto"
    ? "" : `repeat(${value}, minmax(0, 1fr))`;
});
const splitter = document.getElementById("splitter");
splitter.addEventListener("pointerdown", (down) => {
  splitter.setPointerCapture(down.pointerId);
  const panel = document.getElementById("log-panel");
  const move = (event) => {
    panel.style.width = `${Math.max(160, window.innerWidth - event.clientX - 3)}px`;
  };
  splitter.addEventListener("pointermove", move);
  splitter.addEventListener("pointerup", () => splitter.removeEventListener("pointermove", move),
    { once: true });
});
connect();
