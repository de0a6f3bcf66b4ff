// The benchmark's load generator: WebSocket peers (Node's `ws`) that speak each host's
// realtime protocol, one sender and the rest receiving. It reads the server's CPU time and
// memory from /proc itself, at the exact start and end of each measured phase.
//
//   node bench/node/loadgen.mjs CONFIG.json      -> prints one JSON object with the results
//
// Config: {task: "case"|"first-delivery"|"idle", protocol: "rt"|"bare"|"dev",
//          endpoints: [{url, headers, group?}], serverPids, size, peers, ...}; see
//          realtime.py. Every process in serverPids counts as the server (CPU and memory
//          summed); an endpoint's optional `group` gets latency figures of its own.
import fs from "node:fs";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

const CLOCK_TICKS = 100; // USER_HZ on Linux
const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function processCpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime
}

function processMemoryMb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const serverCpuSeconds = (pids) => pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);

function serverMemoryMb(pids) {
  const each = pids.map(processMemoryMb);
  return { rss: each.reduce((sum, m) => sum + m.rss, 0),
           peak: each.reduce((sum, m) => sum + m.peak, 0) };
}

// -- one peer per protocol -----------------------------------------------------------

class Peer {
  constructor(protocol, endpoint, onItem) {
    this.protocol = protocol;
    this.onItem = onItem;
    this.ws = new WebSocket(endpoint.url, {
      headers: endpoint.headers || {}, perMessageDeflate: false, maxPayload: 0,
    });
    this.ready = new Promise((resolve, reject) => {
      this.ws.on("error", reject);
      this.ws.on("open", () => this.opened(resolve));
      this.ws.on("message", (data, isBinary) => this.message(data, isBinary, resolve));
    });
  }

  opened(resolve) {
    if (this.protocol === "bare") resolve();
    if (this.protocol === "dev") {
      this.ws.send(JSON.stringify({ type: "setRealtimeListener" }));
      resolve();
    }
    // "rt" is ready once the host confirmed the join (see message()).
  }

  message(data, isBinary, resolve) {
    if (this.protocol === "rt") {
      if (isBinary) return this.onItem(data);
      const control = JSON.parse(data.toString());
      if (control.type === "hello") this.ws.send(JSON.stringify({ type: "join", epoch: 1 }));
      else if (control.type === "joined") resolve();
      else if (control.type === "error") console.error("host error:", control.message);
    } else if (this.protocol === "bare") {
      this.onItem(data);
    } else {
      // webxdc-dev's own client does exactly this: JSON, then Object.values back to bytes.
      const message = JSON.parse(data.toString());
      if (message.type === "realtime") this.onItem(new Uint8Array(Object.values(message.data)));
    }
  }

  send(item) {
    if (this.protocol === "dev") {
      // JSON.stringify of a Uint8Array, as webxdc-dev's bridge sends it.
      this.ws.send(JSON.stringify({ type: "sendRealtime", data: item }));
    } else {
      this.ws.send(item, { binary: true });
    }
  }

  close() {
    this.ws.terminate();
  }
}

function makeItem(size, seq) {
  const item = new Uint8Array(size);
  const view = new DataView(item.buffer);
  view.setFloat64(0, now());
  view.setUint32(8, seq);
  for (let i = 12; i < size; i += 97) item[i] = i & 0xff;
  return item;
}

function readItem(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { sentAt: view.getFloat64(0), seq: view.getUint32(8) };
}

async function connectAll(count, endpointFor, onItemFor, concurrency = 100) {
  const peers = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const peer = new Peer(config.protocol, endpointFor(index), onItemFor(index));
      await peer.ready;
      peers[index] = peer;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return peers;
}

// -- throughput, CPU per delivery, latency -------------------------------------------

async function runCase() {
  const { size, peers: peerCount, window, durationS, latencyS } = config;
  const receiverCount = peerCount - 1;
  const received = new Array(receiverCount).fill(0);
  const latencies = [];
  const groupLatencies = {}; // endpoint group -> latencies of its receivers
  let recordLatency = false;
  let pump = () => {};
  const peers = await connectAll(peerCount, (i) => config.endpoints[i], (i) => (bytes) => {
    if (i === 0) return; // the sender: webxdc-rt and the relay never echo; dev does not either
    received[i - 1] += 1;
    if (recordLatency) {
      const latency = now() - readItem(bytes).sentAt;
      latencies.push(latency);
      const group = config.endpoints[i].group;
      if (group) (groupLatencies[group] ??= []).push(latency);
    }
    pump();
  });
  const sender = peers[0];
  const minReceived = () => Math.min(...received);

  // Warm up until every receiver has items (also proves every join is in effect).
  let sent = 0;
  while (minReceived() === 0) {
    sender.send(makeItem(size, sent++));
    await sleep(20);
  }
  await sleep(200); // let the last warm-up items land
  const baseline = received.map((n) => n);
  sent = 0;
  const inFlight = () => sent - Math.min(...received.map((n, i) => n - baseline[i]));

  // Saturation: keep `window` items in flight to the slowest receiver.
  let running = true;
  pump = () => {
    while (running && inFlight() < window) sender.send(makeItem(size, sent++));
  };
  pump();
  await sleep(300); // ramp up, not measured
  // Several back-to-back windows; the median of each figure resists a noisy moment.
  const windows = [];
  for (let round = 0; round < config.rounds; round++) {
    const cpu0 = serverCpuSeconds(config.serverPids);
    const deliveries0 = received.reduce((a, b) => a + b, 0);
    const t0 = now();
    await sleep((durationS * 1000) / config.rounds);
    const deliveries = received.reduce((a, b) => a + b, 0) - deliveries0;
    const seconds = (now() - t0) / 1000;
    const cpu = serverCpuSeconds(config.serverPids) - cpu0;
    windows.push({ perS: deliveries / seconds, cpuUs: deliveries ? (cpu * 1e6) / deliveries : null,
                   share: cpu / seconds });
  }
  const median = (key) => {
    const values = windows.map((w) => w[key]).filter((v) => v !== null).sort((a, b) => a - b);
    return values.length ? values[Math.floor(values.length / 2)] : null;
  };
  running = false;
  pump = () => {};
  const drainUntil = now() + 120000;
  while (inFlight() > 0 && now() < drainUntil) await sleep(10);

  const deliveriesPerS = median("perS");
  const itemsPerS = deliveriesPerS / receiverCount;

  // Latency at a steady rate well below saturation.
  const rate = Math.max(0.1, Math.min(config.steadyRate, itemsPerS * config.latencyLoad));
  recordLatency = true;
  const steadyCpu0 = serverCpuSeconds(config.serverPids);
  const steadyDeliveries0 = received.reduce((a, b) => a + b, 0);
  // At least five samples, even for a host that saturates at a few items per second.
  const latencyEnd = now() + Math.min(30, Math.max(latencyS, 5 / rate)) * 1000;
  const interval = 1000 / rate;
  let due = now();
  while (now() < latencyEnd) {
    sender.send(makeItem(size, sent++));
    due += interval;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
  }
  const settleUntil = now() + 60000;
  while (inFlight() > 0 && now() < settleUntil) await sleep(10);
  recordLatency = false;
  const steadyDeliveries = received.reduce((a, b) => a + b, 0) - steadyDeliveries0;
  const steadyCpu = serverCpuSeconds(config.serverPids) - steadyCpu0;
  const quantileOf = (values, q) => values.length ? values[Math.min(values.length - 1,
    Math.floor(q * values.length))] : null;
  latencies.sort((a, b) => a - b);
  const quantile = (q) => quantileOf(latencies, q);
  const groups = {};
  for (const [group, values] of Object.entries(groupLatencies)) {
    values.sort((a, b) => a - b);
    groups[`p50_ms_${group}`] = quantileOf(values, 0.5);
    groups[`p99_ms_${group}`] = quantileOf(values, 0.99);
  }
  const memory = serverMemoryMb(config.serverPids);
  for (const peer of peers) peer.close();
  return {
    deliveries_per_s: deliveriesPerS,
    cpu_us_per_delivery: median("cpuUs"),
    server_cpu_share: median("share"),
    p50_ms: quantile(0.5),
    p99_ms: quantile(0.99),
    latency_rate_per_s: rate,
    steady_cpu_us_per_delivery: steadyDeliveries ? (steadyCpu * 1e6) / steadyDeliveries : null,
    latency_samples: latencies.length,
    peak_rss_mb: memory.peak,
    ...groups,
  };
}

// -- time from connect to the first delivery to a newly joined peer --------------------

async function runFirstDelivery() {
  const peers = await connectAll(2, (i) => config.endpoints[i], () => () => {});
  const sender = peers[0];
  const times = [];
  for (let trial = 0; trial < config.trials; trial++) {
    const started = now();
    let arrived = null;
    const fresh = new Peer(config.protocol, config.endpoints[2], () => {
      if (arrived === null) arrived = now();
    });
    await fresh.ready;
    // Send until the new peer has one: what an app that greets newcomers would see.
    while (arrived === null) {
      sender.send(makeItem(100, trial));
      for (let i = 0; i < 20 && arrived === null; i++) await sleep(1);
    }
    times.push(arrived - started);
    fresh.close();
    await sleep(20);
  }
  for (const peer of peers) peer.close();
  times.sort((a, b) => a - b);
  return { first_delivery_p50_ms: times[Math.floor(times.length / 2)],
           first_delivery_max_ms: times[times.length - 1] };
}

// -- memory of idle joined peers --------------------------------------------------------

async function runIdle() {
  const before = serverMemoryMb(config.serverPids).rss;
  const peers = await connectAll(config.count, (i) => config.endpoints[i % config.endpoints.length],
                                 () => () => {}, 200);
  await sleep(2000);
  const after = serverMemoryMb(config.serverPids).rss;
  for (const peer of peers) peer.close();
  return { idle_peers: config.count, rss_mb: after, rss_before_mb: before,
           kb_per_idle_peer: ((after - before) * 1024) / config.count };
}

const tasks = { case: runCase, "first-delivery": runFirstDelivery, idle: runIdle };
const result = await tasks[config.task]();
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
