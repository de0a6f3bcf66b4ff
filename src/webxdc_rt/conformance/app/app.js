// The page: finds the pages taking part through status updates (reliable and replayed, so
// they also coordinate the run), runs its role in each step, and shows the report. The page
// that presses Start coordinates: it posts each phase, waits until every page has posted
// what it observed, and in the end posts the report.
"use strict";

const W = window.webxdc;
const PHASES = ["ready", "act", "check"];
const PHASE_TIMEOUT_MS = 60000;
const NOISE_STEP = 99;
const MAX_REPORT_BYTES = 100000;  // under sendUpdateMaxSize (128000) with room to spare

const state = {
  page: hex(randomBytes(6)),
  live: false,
  ownCopyUpdate: false,
  tags: [],           // this copy's tags, in serial order: the first one is the copy's
  gather: null,
  heres: new Map(),   // page -> selfAddr of the pages that answered our gather
  run: null,
  member: null,
  waiting: null,      // the coordinator's wait for one phase: {key, label, pages, obs, resolve}
                      // (`pages`: how many act in it)
  report: null,
  noise: null,
  phase: null,        // the phase this page runs or ran last: {key, done}
  errors: [],         // the last few things that failed on this page, in words
};

const $ = (id) => document.getElementById(id);
// A post the bridge refuses at once (too big, too many waiting) is kept among the page's
// errors, which the progress shows: a run must not wait silently for an update never sent.
// A host refuses later, on its socket: the bridge says so on the console, which the runner
// keeps.
const post = (payload, info) => {
  try {
    const sent = W.sendUpdate(info ? { payload, info } : { payload }, "");
    if (sent && typeof sent.catch === "function") {
      sent.catch((error) => failed(`posting ${payload.t}`, error));
    }
  } catch (error) {
    failed(`posting ${payload.t}`, error);
  }
};
const failed = (what, error) => {
  state.errors.push(`${what}: ${error && error.message || error}`);
  if (state.errors.length > 5) state.errors.shift();
};
const tagBytes = () => Uint8Array.from(state.tags[0].match(/../g), (h) => parseInt(h, 16));

function onUpdate(update) {
  const u = update.payload;
  if (!u || typeof u !== "object") return;
  if (u.t === "copy" && typeof u.tag === "string" && /^[0-9a-f]{16}$/.test(u.tag)) {
    state.tags.push(u.tag);
    if (state.member) state.member.rec.tags.add(u.tag);
    if (state.noise) state.noise.rec.tags.add(u.tag);
    if (u.page === state.page) state.ownCopyUpdate = true;
  } else if (u.t === "gather" && state.live) {
    post({ t: "here", g: u.g, page: state.page, addr: W.selfAddr });
  } else if (u.t === "here" && u.g === state.gather) {
    state.heres.set(u.page, u.addr);
  } else if (u.t === "start" && state.live && Array.isArray(u.pages)) {
    const role = u.pages.indexOf(state.page);
    if (role >= 0) startRole(u, "ABC"[role]);
  } else if (u.t === "go" && state.run && u.run === state.run.id) {
    runPhase(u.n, u.phase);
  } else if (u.t === "done" && state.waiting && u.key === state.waiting.key) {
    state.waiting.obs[u.role] = u.obs;
    if (Object.keys(state.waiting.obs).length === state.waiting.pages) state.waiting.resolve();
  } else if (u.t === "report" && state.run && u.run === state.run.id) {
    state.report = u.report;
  }
  render();
}

function startRole(start, role) {
  state.run = { id: start.run, role, pages: start.pages, otherCopy: !!start.otherCopy };
  state.member = new Member(W, tagBytes(), role);
  for (const tag of state.tags) state.member.rec.tags.add(tag);
  state.report = null;
}

// Only the roles that act in a phase take part in it: the coordinator sends no "go" for a
// phase nobody acts in, and waits for the "done" of those that act. Every update counts
// against the pace the host allows a member's pages together (`sendUpdateInterval`, after
// a burst), and A and C are pages of one member: a "done" from every page for every phase
// took them past it on a quick run, and the host refused what came after.
const actsIn = (n, phase, role) => Boolean(STEPS[n] && STEPS[n][phase] && STEPS[n][phase][role]);

async function runPhase(n, phase) {
  if (!actsIn(n, phase, state.run.role)) return;
  const step = STEPS[n];
  const action = step[phase][state.run.role];
  let obs = {};
  const key = `${state.run.id}/${n}/${phase}`;
  const current = state.phase = { key: `${step.name} (${phase})`, done: false };
  try {
    obs = (await action(state.member)) || {};
  } catch (error) {
    obs = { error: String(error && error.message || error) };
  }
  obs.foreign = state.member.rec.foreign.length;
  current.done = true;
  post({ t: "done", key, role: state.run.role, obs });
}

async function coordinate() {
  const others = [...state.heres].filter(([page]) => page !== state.page);
  const b = others.find(([, addr]) => addr !== W.selfAddr);
  if (!b) { $("status").textContent = "Needs a page of another member: none answered."; return; }
  const c = others.find(([, addr]) => addr === W.selfAddr);
  const pages = [state.page, b[0], ...(c ? [c[0]] : [])];
  const run = hex(randomBytes(6));
  const otherCopy = $("other-copy").checked;
  post({ t: "start", run, pages, otherCopy });
  const roles = [..."ABC".slice(0, pages.length)];
  const observations = {};
  for (let n = 0; n < STEPS.length; n += 1) {
    observations[STEPS[n].name] = {};
    for (const phase of PHASES) {
      const acting = roles.filter((role) => actsIn(n, phase, role)).length;
      if (acting === 0) continue;
      $("status").textContent = `Running: ${STEPS[n].name} (${phase})`;
      const obs = await allDone(`${run}/${n}/${phase}`, `${STEPS[n].name} (${phase})`,
                                acting, () => post({ t: "go", run, n, phase }));
      observations[STEPS[n].name][phase] = obs;
    }
  }
  let report = { ...judge(observations, { otherCopy }), pages: pages.length,
                 host: navigator.userAgent, observations };
  const size = new TextEncoder().encode(JSON.stringify(report)).byteLength;
  if (size > Math.min(MAX_REPORT_BYTES, (W.sendUpdateMaxSize || Infinity) * 0.8)) {
    // The rows and figures are the report; what each page saw is its evidence, kept
    // whenever it fits in one update.
    report = { ...report, observations: `omitted: ${size} bytes with the report` };
  }
  const counts = countStatus(report.rows);
  post({ t: "report", run, report },
       `Realtime conformance: ${counts.pass} pass, ${counts.fail} fail, ` +
       `${counts.untestable} not testable`);
}

function allDone(key, label, pages, send) {
  return new Promise((resolve) => {
    const obs = {};
    const timer = setTimeout(() => finish(), PHASE_TIMEOUT_MS);
    const finish = () => { clearTimeout(timer); state.waiting = null; resolve(obs); };
    state.waiting = { key, label, pages, obs, resolve: finish };
    send();
  });
}

function countStatus(rows) {
  const counts = { pass: 0, fail: 0, untestable: 0 };
  for (const row of rows) {
    if (row.status === PASS) counts.pass += 1;
    else if (row.status === FAIL) counts.fail += 1;
    else counts.untestable += 1;
  }
  return counts;
}

/** The second copy's part in the isolation row: it sends tagged items and counts foreign. */
function toggleNoise() {
  if (state.noise) {
    clearInterval(state.noise.timer);
    state.noise.member.leave();
    state.noise = null;
  } else {
    const member = new Member(W, tagBytes(), "A");
    for (const tag of state.tags) member.rec.tags.add(tag);
    member.join();
    let seq = 0;
    const timer = setInterval(() => member.ch.send(makeItem(member.tag, NOISE_STEP, 3, seq++)),
                              25);
    state.noise = { member, rec: member.rec, timer };
  }
  render();
}

function render() {
  $("who").textContent = `${W.selfName} · page ${state.page}`;
  $("participants").textContent = state.gather ? `${state.heres.size} page(s) answered` : "";
  $("start").disabled = !state.gather || state.heres.size < 2 || !!state.run;
  $("noise").textContent = state.noise ? "Stop sending as the second copy"
    : "Send as the second copy";
  $("noise-foreign").textContent = state.noise
    ? `Second copy: items of another copy received: ${state.noise.rec.foreign.length}` : "";
  $("save").disabled = !state.report;
  if (state.report) showReport(state.report);
}

function showReport(report) {
  const counts = countStatus(report.rows);
  $("status").textContent = `${counts.pass} pass, ${counts.fail} fail, ` +
    `${counts.untestable} not testable (${report.pages} pages)`;
  const body = $("rows");
  body.replaceChildren(...report.rows.map((row) => {
    const tr = document.createElement("tr");
    tr.className = row.status === PASS ? "pass" : row.status === FAIL ? "fail" : "untestable";
    for (const text of [row.clause, row.title, row.status, row.detail]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
  $("figures").replaceChildren(...FIGURES.map((figure) => {
    const li = document.createElement("li");
    const value = report.figures[figure.id];
    li.textContent = `${figure.title}: ${value === null ? "–" : value}`;
    return li;
  }));
}

function save() {
  const report = { ...state.report };
  W.sendToChat({ file: { name: "realtime-conformance.json",
                         plainText: JSON.stringify(report, null, 2) },
                 text: $("status").textContent });
}

window.conformance = {
  get ready() { return state.live && state.ownCopyUpdate && state.tags.length > 0; },
  get participants() { return state.heres.size; },
  get report() { return state.report; },
  /** Where this page is in a run, in words: what a run that does not end is stuck on. */
  get progress() {
    const parts = [state.run ? `role ${state.run.role}` : "no run"];
    if (state.phase) parts.push(`${state.phase.done ? "ran" : "running"} ${state.phase.key}`);
    if (state.waiting) {
      parts.push(`waiting for ${state.waiting.label}: answered by ` +
                 `${Object.keys(state.waiting.obs).sort().join("") || "none"} of ` +
                 `${state.waiting.pages} page(s)`);
    }
    if (state.member) parts.push(`${state.member.rec.items.length} item(s) recorded`);
    for (const error of state.errors) parts.push(`failed: ${error}`);
    return parts.join("; ");
  },
  get noiseForeign() { return state.noise ? state.noise.rec.foreign.length : null; },
};

window.addEventListener("DOMContentLoaded", () => {
  $("gather").addEventListener("click", () => {
    state.gather = hex(randomBytes(6));
    state.heres = new Map();
    post({ t: "gather", g: state.gather });
    render();
  });
  $("start").addEventListener("click", () => {
    $("start").disabled = true;
    coordinate().catch((error) => {
      failed("coordinating", error);
      $("status").textContent = `The run stopped: ${state.errors[state.errors.length - 1]}`;
    });
  });
  $("noise").addEventListener("click", toggleNoise);
  $("save").addEventListener("click", save);
  W.setUpdateListener(onUpdate, 0).then(() => {
    state.live = true;
    post({ t: "copy", tag: hex(randomBytes(8)), page: state.page });
    render();
  });
  render();
});
