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
let cardCount = 0; // numbers the ids that tie a card's buttons to what they control
let state = { peers: [], partition: [] };

// One command to the simulator; the state it answers is shown (null when refused).
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
    showJoined(card, peer.joined);
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

// Joined is written beside the dot, not only coloured.
function showJoined(card, joined) {
  card.classList.toggle("joined", joined);
  card.querySelector(".state").textContent = joined ? "joined" : "not joined";
}

function newCard(peer) {
  const card = template.content.firstElementChild.cloneNode(true);
  const member = peer.member;
  const id = `peer-${++cardCount}`;
  card.dataset.member = member;
  card.setAttribute("aria-labelledby", `${id}-name`);
  card.querySelector(".name").textContent = member;
  card.querySelector(".name").id = `${id}-name`;
  const frame = card.querySelector("iframe");
  frame.title = `${member}'s page`;
  frame.name = member;
  frame.src = peer.url;
  const button = (selector, label) => {
    const element = card.querySelector(selector);
    element.setAttribute("aria-label", label);
    element.title = label;
    return element;
  };
  button(".reload", `Reload ${member}`).addEventListener("click", () => reloadFrame(card));
  button(".remove", `Remove ${member}`).addEventListener("click", () => removePeer(card));
  button(".expand", `Fill the screen with ${member}`).addEventListener("click",
    () => fillScreen(card));
  card.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && card.classList.contains("expanded")) fillScreen(card);
  });
  const form = card.querySelector(".fault-form");
  form.id = `${id}-faults`;
  form.setAttribute("aria-label", `Faults of ${member}`);
  const toggle = button(".toggle-faults", `Faults of ${member}`);
  toggle.setAttribute("aria-controls", form.id);
  toggle.addEventListener("click", () => {
    form.hidden = !form.hidden;
    toggle.setAttribute("aria-expanded", String(!form.hidden));
  });
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

// The focus stays on the same control of the next peer (or the one before), so a keyboard
// user removing peers one by one is never sent back to the top of the page.
async function removePeer(card) {
  const member = card.dataset.member;
  const neighbour = card.nextElementSibling || card.previousElementSibling;
  const hadFocus = card.contains(document.activeElement);
  if (card.classList.contains("expanded")) fillScreen(card);
  if (!await command({ op: "remove", member })) return;
  document.getElementById("status").textContent = `Removed ${member}.`;
  if (hadFocus && !card.isConnected) {
    (neighbour?.isConnected && neighbour.querySelector(".remove")
      || document.getElementById("add-peer")).focus();
  }
}

// One peer fills the screen, or back to all of them; what is behind it is inert.
function fillScreen(card) {
  const expanded = !card.classList.contains("expanded");
  for (const other of frames.children) {
    other.classList.toggle("expanded", expanded && other === card);
    other.querySelector(".expand").setAttribute("aria-pressed",
      String(expanded && other === card));
  }
  frames.classList.toggle("solo", expanded);
  document.getElementById("top").inert = expanded;
  document.getElementById("log-panel").inert = expanded;
  splitter.inert = expanded;
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
    rows.push([peer.member, batch.joined.includes(peer.member) ? "yes" : "no",
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
    const card = cards.get(peer.member)?.card;
    if (card) showJoined(card, batch.joined.includes(peer.member));
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
document.getElementById("partition-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("partition").value.trim();
  const groups = text ? text.split("|").map((group) =>
    group.split(",").map((name) => name.trim()).filter(Boolean)) : [];
  command({ op: "partition", groups });
});
document.getElementById("pause").addEventListener("click", (event) => {
  paused = !paused;
  event.currentTarget.textContent = paused ? "Resume" : "Pause";
  event.currentTarget.setAttribute("aria-pressed", String(paused));
});
document.getElementById("clear").addEventListener("click", () => logList.replaceChildren());
document.getElementById("columns").addEventListener("change", (event) => {
  const value = event.target.value;
  frames.style.gridTemplateColumns = value === "auto"
    ? "" : `repeat(${value}, minmax(0, 1fr))`;
});
const splitter = document.getElementById("splitter");
const logPanel = document.getElementById("log-panel");
const MIN_LOG = 160;
const maxLog = () => Math.max(MIN_LOG, window.innerWidth - 200);

function setLogWidth(width) {
  const clamped = Math.round(Math.min(maxLog(), Math.max(MIN_LOG, width)));
  logPanel.style.width = `${clamped}px`;
  splitter.setAttribute("aria-valuemax", String(maxLog()));
  splitter.setAttribute("aria-valuenow", String(clamped));
}

splitter.addEventListener("pointerdown", (down) => {
  splitter.setPointerCapture(down.pointerId);
  const move = (event) => setLogWidth(window.innerWidth - event.clientX - 4);
  splitter.addEventListener("pointermove", move);
  splitter.addEventListener("pointerup", () => splitter.removeEventListener("pointermove", move),
    { once: true });
});
// The keyboard moves the splitter as a pointer would: the arrows by steps, Home and End to
// the narrowest and the widest log.
splitter.addEventListener("keydown", (event) => {
  const width = logPanel.getBoundingClientRect().width;
  const step = event.shiftKey ? 100 : 20;
  const next = { ArrowLeft: width + step, ArrowRight: width - step, Home: MIN_LOG,
                 End: maxLog() }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  setLogWidth(next);
});
setLogWidth(logPanel.getBoundingClientRect().width);
connect();
