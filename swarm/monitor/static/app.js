// Mafalda swarm monitor page: one EventSource, a few DOM tables, three uPlot charts.
// Everything shown comes from gossip, so it is written with textContent (never as HTML).
"use strict";

const HISTORY_S = 600;
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d",
                 "#4f46e5", "#b45309"];
const state = { snapshot: null, series: {}, charts: {}, chartPeers: "", transportsPeer: null };

const $ = (id) => document.getElementById(id);
const short = (peer) => (peer && peer.length > 10 ? "…" + peer.slice(-8) : peer || "?");
const colors = new Map();  // peer -> colour, in order of appearance: distinct for the first ten members
const colorOf = (peer) => {
  if (!colors.has(peer)) colors.set(peer, PALETTE[colors.size % PALETTE.length]);
  return colors.get(peer);
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "class") node.className = value;
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const fmt = {
  pct: (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " %"),
  bytes: (v) => {
    if (!v) return "–";
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  },
  kbps: (v) => (v === null || v === undefined ? "–" : (v / 1000).toFixed(v < 10000 ? 1 : 0) + " kbit/s"),
  int: (v) => (v === null || v === undefined ? "–" : String(v)),
  age: (t) => {
    if (!t) return "–";
    const s = Math.max(0, Date.now() / 1000 - t);
    return s < 60 ? s.toFixed(0) + " s ago" : (s / 60).toFixed(1) + " min ago";
  },
};

function nodeLabel(peer) {
  return el("span", { class: "peer", title: peer }, el("span", { class: "dot", style: `background:${colorOf(peer)}` }),
            short(peer));
}

// -- members -------------------------------------------------------------------------------

function renderMembers(snapshot) {
  const body = $("members").tBodies[0];
  body.replaceChildren(...snapshot.nodes.map((n) => {
    const capacity = n.capacity || 0;
    const share = capacity ? Math.min(100, (100 * (n.consumers || 0)) / capacity) : 0;
    const button = el("button", { type: "button", textContent: "transports", dataset: { peer: n.peer } });
    button.addEventListener("click", () => showTransports(n.peer));
    return el("tr", { class: "node" + (n.self ? " self" : ""), dataset: { peer: n.peer } },
      el("td", {}, nodeLabel(n.peer)),
      el("td", {}, ...n.roles.map((r) => el("span", { class: "role " + r }, r))),
      el("td", { class: "num" }, fmt.pct(n.cpu)),
      el("td", { class: "num" }, fmt.bytes(n.memory)),
      el("td", { class: "num workers", title: n.workers.map((w) => `worker ${w.id}: ${w.consumers} + ${w.pipe_consumers} pipe`).join("\n") },
         n.workers.length),
      el("td", { class: "num consumers" }, el("span", { class: "bar" }, el("span", { style: `width:${share}%` })),
         `${fmt.int(n.consumers)} / ${fmt.int(n.capacity)}`),
      el("td", { class: "num pipe-consumers" }, fmt.int(n.pipe_consumers)),
      el("td", { class: "num bitrate-in", dataset: { bps: n.in_bps ?? "" } }, fmt.kbps(n.in_bps)),
      el("td", { class: "num bitrate-out", dataset: { bps: n.out_bps ?? "" } }, fmt.kbps(n.out_bps)),
      el("td", { class: "num heard", dataset: { t: n.self ? "" : n.heard_at || "" } }, n.self ? "–" : fmt.age(n.heard_at)),
      el("td", { title: n.links.join("\n") }, n.links.length),
      el("td", {}, n.roles.includes("monitor") ? null : button));
  }));
  $("left").replaceChildren(...snapshot.left.slice(0, 8).map((l) =>
    el("li", { class: "left", dataset: { peer: l.peer } }, "left: ", nodeLabel(l.peer), " at ",
       new Date(l.at * 1000).toLocaleTimeString())));
  renderGraph(snapshot);
}

function renderGraph(snapshot) {
  const svg = $("graph");
  const ns = "http://www.w3.org/2000/svg";
  const nodes = snapshot.nodes;
  const at = {};
  nodes.forEach((n, i) => {
    const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
    at[n.peer] = nodes.length === 1 ? [0, 0] : [80 * Math.cos(a), 80 * Math.sin(a)];
  });
  const shapes = [];
  const seen = new Set();
  for (const n of nodes) {
    for (const other of n.links) {
      const key = [n.peer, other].sort().join(" ");
      if (!at[other] || seen.has(key)) continue;
      seen.add(key);
      const line = document.createElementNS(ns, "line");
      const [x1, y1] = at[n.peer], [x2, y2] = at[other];
      Object.entries({ x1, y1, x2, y2 }).forEach(([k, v]) => line.setAttribute(k, v));
      shapes.push(line);
    }
  }
  for (const n of nodes) {
    const [x, y] = at[n.peer];
    const circle = document.createElementNS(ns, "circle");
    Object.entries({ cx: x, cy: y, r: 9, fill: colorOf(n.peer) }).forEach(([k, v]) => circle.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = n.peer;
    circle.append(title);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", x);
    text.setAttribute("y", y + 20);
    text.textContent = short(n.peer) + (n.roles.includes("monitor") ? " (monitor)" : "");
    shapes.push(circle, text);
  }
  svg.replaceChildren(...shapes);
}

// -- rooms ---------------------------------------------------------------------------------

function renderRooms(snapshot) {
  const box = $("rooms");
  if (!snapshot.rooms.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No rooms."));
    return;
  }
  box.replaceChildren(...snapshot.rooms.map((room) => {
    const producers = room.producers.map((p) => {
      const pipes = room.pipes.filter((x) => x.producer === p.id).map((x) =>
        el("li", { class: "pipe", dataset: { producer: x.producer, fromPeer: x.from.peer, fromWorker: x.from.worker,
                                                toPeer: x.to.peer, toWorker: x.to.worker } },
           "pipe to ", nodeLabel(x.to.peer), ` / worker ${x.to.worker}`));
      return el("li", { class: "producer", dataset: { producer: p.id } },
                `${p.kind} producer ${p.id.slice(0, 8)} on `, nodeLabel(p.peer), ` / worker ${p.worker}`,
                pipes.length ? el("ul", {}, ...pipes) : null);
    });
    return el("div", { class: "room", dataset: { room: room.id, nodes: room.nodes.join(" ") } },
      el("h3", {}, `room ${room.id.slice(0, 8)}`),
      el("div", { class: "muted" }, `entered through ${short(room.entry)} · ${room.nodes.length} node(s) · `
         + `${room.workers.length} worker(s) · ${room.producers.length} producer(s) · ${room.pipes.length} pipe(s)`),
      el("div", {}, ...room.nodes.map((p) => el("span", { class: "room-node", dataset: { peer: p } }, nodeLabel(p),
         " ", room.workers.filter((w) => w.peer === p).map((w) => "w" + w.worker).join(", ")))),
      producers.length ? el("ul", {}, ...producers) : el("p", { class: "muted" }, "no producers"));
  }));
}

// -- transports, on demand -----------------------------------------------------------------

async function showTransports(peer) {
  state.transportsPeer = peer;
  $("transports-section").hidden = false;
  $("transports-node").replaceChildren(nodeLabel(peer));
  $("transports-status").textContent = "asking the node…";
  let answer;
  try {
    const response = await fetch(`/api/nodes/${encodeURIComponent(peer)}/transports`);
    answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
  } catch (error) {
    $("transports-status").textContent = `no statistics: ${error.message}`;
    $("transports").tBodies[0].replaceChildren();
    return;
  }
  const rows = answer.transports;
  $("transports-status").textContent = `${rows.length} transport(s), fetched ${new Date().toLocaleTimeString()}`;
  const loss = (v) => (v === null || v === undefined ? "–" : String(v));
  $("transports").tBodies[0].replaceChildren(...rows.map((t) =>
    el("tr", { dataset: { transport: t.id } },
       el("td", { class: "peer" }, t.id.slice(0, 8)), el("td", {}, t.type || "?"),
       el("td", { class: "num" }, fmt.kbps(t.recv_bitrate)), el("td", { class: "num" }, fmt.kbps(t.send_bitrate)),
       el("td", { class: "num" }, `${loss(t.packet_loss_received)} / ${loss(t.packet_loss_sent)}`),
       el("td", { class: "num" }, t.rtt_ms === null || t.rtt_ms === undefined ? "–" : t.rtt_ms.toFixed(1) + " ms"),
       el("td", { class: "num" }, fmt.int(t.score)),
       el("td", { class: "num" }, fmt.int(t.producers)), el("td", { class: "num" }, fmt.int(t.consumers)))));
}

// -- charts --------------------------------------------------------------------------------

const CHARTS = [  // name, value of sample i, y range
  ["cpu", (s, i) => s.cpu[i], [0, 100]],
  ["consumers", (s, i) => s.consumers[i], null],
  ["bitrate", (s, i) => (s.in_bps[i] === null && s.out_bps[i] === null ? null
                         : ((s.in_bps[i] || 0) + (s.out_bps[i] || 0)) / 1000), null],
];
const fromZero = (u, min, max) => [0, Math.max(1, max * 1.1)];

function addSample(peer, point) {
  let s = state.series[peer];
  if (!s) s = state.series[peer] = { t: [], cpu: [], consumers: [], pipe_consumers: [], in_bps: [], out_bps: [], memory: [] };
  for (const key of Object.keys(s)) s[key].push(point[key] ?? null);
  const horizon = Date.now() / 1000 - HISTORY_S;
  while (s.t.length && s.t[0] < horizon) for (const key of Object.keys(s)) s[key].shift();
}

function renderCharts() {
  if (!window.uPlot) return;
  const live = new Set((state.snapshot ? state.snapshot.nodes : []).map((n) => n.peer));
  const peers = Object.keys(state.series).filter((p) => live.has(p)).sort();
  const times = [...new Set(peers.flatMap((p) => state.series[p].t))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const width = Math.max(320, $("charts").clientWidth / Math.max(1, Math.floor($("charts").clientWidth / 420)) - 16);
  for (const [name, value, range] of CHARTS) {
    const columns = peers.map((p) => {
      const column = new Array(times.length).fill(null);
      const s = state.series[p];
      s.t.forEach((t, i) => { column[index.get(t)] = value(s, i); });
      return column;
    });
    const data = [times, ...columns];
    const key = peers.join(" ");
    if (state.charts[name] && state.chartPeers === key) {
      state.charts[name].setData(data);
      continue;
    }
    if (state.charts[name]) state.charts[name].destroy();
    state.charts[name] = new window.uPlot({
      width, height: 160, legend: { show: true, live: false }, cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: range || fromZero } },
      series: [{}, ...peers.map((p) => ({ label: short(p), stroke: colorOf(p), width: 1.5, spanGaps: true }))],
      axes: [{}, { size: 50 }],
    }, data, $(`chart-${name}`));
  }
  state.chartPeers = peers.join(" ");
}

// -- the stream ----------------------------------------------------------------------------

function applyState(snapshot) {
  state.snapshot = snapshot;
  snapshot.nodes.forEach((n) => colorOf(n.peer));
  renderMembers(snapshot);
  renderRooms(snapshot);
  const members = snapshot.nodes.length;
  $("summary").textContent = `${members} member(s) · ${snapshot.rooms.length} room(s)`;
  $("self").textContent = `served by ${short(snapshot.self)}`;
  document.body.dataset.version = snapshot.version;
  document.body.dataset.updatedAt = Date.now();
}

function connect() {
  const source = new EventSource("/api/events");
  const live = $("live");
  source.addEventListener("open", () => { live.className = "live open"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.className = "live closed"; live.textContent = "reconnecting"; });
  source.addEventListener("history", (event) => {
    state.series = {};
    for (const [peer, s] of Object.entries(JSON.parse(event.data))) {
      s.t.forEach((t, i) => addSample(peer, Object.fromEntries(Object.keys(s).map((k) => [k, s[k][i]]))));
    }
    renderCharts();
  });
  source.addEventListener("state", (event) => { applyState(JSON.parse(event.data)); renderCharts(); });
  source.addEventListener("sample", (event) => {
    for (const [peer, point] of Object.entries(JSON.parse(event.data))) addSample(peer, point);
    renderCharts();
  });
}

setInterval(() => {
  for (const cell of document.querySelectorAll("td.heard")) {
    if (cell.dataset.t) cell.textContent = fmt.age(Number(cell.dataset.t));
  }
}, 1000);
$("transports-refresh").addEventListener("click", () => state.transportsPeer && showTransports(state.transportsPeer));
connect();
