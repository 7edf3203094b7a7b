// The page of `ferry ui` (src/ui): resources, a page of jobs, one job's
// detail with its output followed live, the controls, the resource's
// transfers and its plots (inline SVG), and a workflow's graph (laid
// out by the server, drawn as SVG here, its states' colours kept up to
// date between layouts). It learns of
// changes from the server's event stream (/events: new counts of the
// resources' jobs, or a tick when a second passed without them) and then
// asks again for what it shows. Text from jobs goes in with
// textContent only, never as HTML.
"use strict";

const STATES = ["queued_active", "system_on_hold", "user_on_hold", "user_system_on_hold",
  "running", "system_suspended", "user_suspended", "user_system_suspended", "done", "failed"];
// the controls, in the order of their buttons; those that destroy ask first
const ACTIONS = ["stop", "restart", "hold", "release", "kill", "dispose"];
const DESTROYS = { kill: "Kill", dispose: "Kill if active and forget" };
const PAGE = 50;
// characters of a stream's output the page keeps (about 1 MiB), the last
// ones: a job that writes for days must not fill the tab's memory
const KEEP = 1 << 20;
const csrf = document.querySelector("meta[name=ferry-csrf]").content;

const view = {
  resource: null, state: "", name: "",
  workflow: "", since: "", until: "", endedSince: "", endedUntil: "",  // seconds, "" unset
  after: 0, back: [], next: null,   // the page: its cursor, those before it, the next one
  atEnd: true,                      // showing the newest jobs, the new ones as they come
  selected: new Set(),
  detail: null,                     // {resource, id, out: {stdout, stderr} offsets, kept: chars shown}
  loading: false, again: false,
  shown: null,                      // the jobs table's query and answer, as drawn
  transfersLoading: false, transfersShown: null,
  plotsLoading: false, plotsAt: 0,  // plots are asked for every 2 s at most
};

const $ = (sel) => document.querySelector(sel);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
function notice(text, bad) {
  const n = $("#notice");
  n.textContent = text;
  n.style.color = bad ? "#fbb" : "";
}

async function api(path, params) {
  const q = new URLSearchParams(params || {});
  const r = await fetch(path + "?" + q.toString(), { credentials: "same-origin" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// ---- resources ----

function renderResources(list) {
  const box = $("#res-list");
  box.replaceChildren();
  for (const r of list) {
    const d = el("div", null, "res");
    d.dataset.resource = r.name;
    d.append(el("div", r.name, "name"));
    d.append(el("div", (r.scheduler || "local") + (r.host ? " on " + r.host : "") +
      (r.slots ? ", " + r.slots + " slots" : ""), "kind"));
    d.append(el("div", r.connected ? "engine answers" : "engine: not reached", "engine"));
    if (r.error) d.append(el("div", r.error, "err"));
    const c = el("div", null, "counts");
    if (r.counts) {
      c.append(el("span", r.total + (r.total === 1 ? " job" : " jobs")));
      if (r.used_slots !== undefined) c.append(el("span", r.used_slots + " slots used", "used"));
      for (const s of STATES) if (r.counts[s]) c.append(el("span", s + " " + r.counts[s], "state " + s));
    }
    d.append(c);
    box.append(d);
  }
  const sel = $("#f-resource");
  if (sel.options.length !== list.length) {
    sel.replaceChildren(...list.map((r) => { const o = el("option", r.name); o.value = r.name; return o; }));
    if (!view.resource && list.length) view.resource = list[0].name;
    sel.value = view.resource;
  }
}

// ---- jobs ----

function jobRow(j) {
  const tr = el("tr");
  tr.dataset.id = j.id;
  const box = el("input");
  box.type = "checkbox";
  box.checked = view.selected.has(j.id);
  box.addEventListener("click", (ev) => {
    ev.stopPropagation();
    if (box.checked) view.selected.add(j.id); else view.selected.delete(j.id);
    $("#n-selected").textContent = view.selected.size + " selected";
  });
  const cb = el("td"); cb.append(box);
  const exit = j.exit_status && j.exit_status !== "none"
    ? j.exit_status + (j.exit_status === "finished_regularly" ? " " + j.exit_value : "") : "";
  tr.append(cb, el("td", j.id), el("td", j.name || (j.command || []).join(" ")),
    el("td", j.status, "state " + j.status), el("td", exit),
    el("td", when(j.submitted_at)), el("td", when(j.started_at)), el("td", when(j.ended_at)));
  if (view.detail && view.detail.id === j.id) tr.classList.add("open");
  tr.addEventListener("click", () => openDetail(view.resource, j.id));
  return tr;
}

async function loadJobs() {
  if (!view.resource) return;
  if (view.loading) { view.again = true; return; }
  view.loading = true;
  try {
    // filters the server looks at job by job page from the oldest only
    const scan = view.name || view.until || view.endedSince || view.endedUntil;
    const end = view.atEnd && !scan;
    const q = { resource: view.resource, limit: PAGE };
    if (end) q.from = "end"; else q.after = view.after;
    if (view.state) q.state = view.state;
    if (view.name) q.name = view.name;
    if (view.workflow) q.workflow = view.workflow;
    if (view.since) q.since = view.since;
    if (view.until) q.until = view.until;
    if (view.endedSince) q.ended_since = view.endedSince;
    if (view.endedUntil) q.ended_until = view.endedUntil;
    const page = await api("/api/jobs", q);
    // redrawn only when it changed: a click or a hover is not lost each second
    const text = JSON.stringify([q, page]);
    if (text !== view.shown) $("#jobs-table tbody").replaceChildren(...page.jobs.map(jobRow));
    // when the first rows were drawn, for the browser's performance timing (tests/test_ui.py)
    if (page.jobs.length && !performance.getEntriesByName("ferry-first-jobs").length)
      performance.mark("ferry-first-jobs");
    view.shown = text;
    view.next = page.next;
    $("#p-next").disabled = end || page.next === null;
    $("#p-prev").disabled = end || view.back.length === 0;
    $("#p-last").disabled = end || !!scan;
    $("#p-where").textContent = end ? "newest jobs" : "page " + (view.back.length + 1) +
      (page.next !== null && page.jobs.length < PAGE ? " (searched up to job " + page.next + ")" : "");
  } catch (e) {
    notice("jobs: " + e.message, true);
  } finally {
    view.loading = false;
    if (view.again) { view.again = false; loadJobs(); }
  }
}

// A datetime-local input's value (local time) as seconds since the epoch; "" when empty.
function seconds(v) { return v ? String(new Date(v).getTime() / 1000) : ""; }

function resetPaging(atEnd) { view.after = 0; view.back = []; view.atEnd = atEnd; }

// ---- one job ----

function fieldText(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.join(" ");
  return String(v);
}

async function loadDetail() {
  const d = view.detail;
  if (!d) return;
  try {
    const j = await api("/api/job", { resource: d.resource, id: d.id });
    if (view.detail !== d || JSON.stringify(j) === d.shown) return;
    d.shown = JSON.stringify(j);
    $("#d-status").textContent = j.status;
    $("#d-status").className = "state " + j.status;
    const rows = Object.entries(j).map(([k, v]) => {
      const tr = el("tr");
      tr.dataset.field = k;
      tr.append(el("td", k), el("td", /_at$/.test(k) && v ? when(v) : fieldText(v)));
      return tr;
    });
    $("#d-fields tbody").replaceChildren(...rows);
  } catch (e) {
    notice("job " + d.id + ": " + e.message, true);
  }
}

// Adds text to a stream's view, keeping its last KEEP characters: past a
// quarter more, what is before them is cut (in steps, not at each read),
// and the view says so at its top.
function appendOutput(d, stream, text) {
  const pre = $("#d-" + stream);
  pre.append(document.createTextNode(text));
  d.kept[stream] += text.length;
  if (d.kept[stream] <= KEEP + KEEP / 4) return;
  let all = "";
  for (const n of pre.childNodes) if (n.nodeType === Node.TEXT_NODE) all += n.data;
  let tail = all.slice(-KEEP);
  if (/^[\udc00-\udfff]/.test(tail)) tail = tail.slice(1);  // half a surrogate pair
  pre.replaceChildren(el("div", "earlier output cut", "cut"), document.createTextNode(tail));
  d.kept[stream] = tail.length;
}

// Appends what the job wrote since the last read; again soon while it runs.
async function follow(d, stream) {
  while (view.detail === d) {
    let ended = false, got = 0;
    try {
      const q = new URLSearchParams({ resource: d.resource, id: d.id, stream, offset: d.out[stream] });
      const r = await fetch("/api/output?" + q.toString(), { credentials: "same-origin" });
      if (!r.ok) throw new Error((await r.json()).error || r.statusText);
      const text = await r.text();
      if (view.detail !== d) return;
      got = text.length;
      d.out[stream] = Number(r.headers.get("X-Next-Offset"));
      ended = r.headers.get("X-Ended") === "1";
      if (text) appendOutput(d, stream, text);
    } catch (e) {
      $("#d-" + stream).dataset.error = e.message;
    }
    if (ended) return;
    if (!got) await new Promise((ok) => setTimeout(ok, 500));
  }
}

function openDetail(resource, id) {
  const d = { resource, id, out: { stdout: 0, stderr: 0 }, kept: { stdout: 0, stderr: 0 } };
  view.detail = d;
  $("#detail").hidden = false;
  $("#d-id").textContent = id;
  $("#d-stdout").replaceChildren();
  $("#d-stderr").replaceChildren();
  $("#d-fields tbody").replaceChildren();
  for (const tr of document.querySelectorAll("#jobs-table tbody tr"))
    tr.classList.toggle("open", Number(tr.dataset.id) === id);
  loadDetail();
  follow(d, "stdout");
  follow(d, "stderr");
}

// ---- transfers ----

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function transferRow(t) {
  const tr = el("tr");
  tr.dataset.path = t.server_path;
  const prog = el("td", null, "progress");
  // a bar while its files arrive: the bytes on the engine's host of all of them
  if (t.state === "transferring") {
    const bar = el("progress");
    bar.max = Math.max(t.size, 1);
    bar.value = t.done;
    prog.append(bar, el("span", (t.size ? Math.floor(100 * t.done / t.size) : 0) + "% " +
      bytes(t.done) + " / " + bytes(t.size)));
  }
  tr.append(el("td", t.server_path, "path"), el("td", t.kind),
    el("td", t.state, "state " + t.state),
    prog, el("td", bytes(t.size)), el("td", when(t.created_at)));
  return tr;
}

async function loadTransfers() {
  if (!view.resource || view.transfersLoading) return;
  view.transfersLoading = true;
  try {
    const r = await api("/api/transfers", { resource: view.resource });
    const text = JSON.stringify([view.resource, r]);
    if (text !== view.transfersShown)
      $("#transfers-table tbody").replaceChildren(...r.transfers.map(transferRow));
    view.transfersShown = text;
    $("#t-total").textContent = r.total > r.transfers.length
      ? "the newest " + r.transfers.length + " of " + r.total : r.total + " of them";
  } catch (e) {
    notice("transfers: " + e.message, true);
  } finally {
    view.transfersLoading = false;
  }
}

// ---- plots (inline SVG) ----

const SVGNS = "http://www.w3.org/2000/svg";
const PW = 400, PH = 160, PL = 32, PR = 6, PT = 8, PB = 18;  // size and margins

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// The frame of a plot: its axes, the top of the y scale and the x axis' two ends.
function frame(box, ymax, left, right) {
  box.setAttribute("viewBox", `0 0 ${PW} ${PH}`);
  box.replaceChildren(
    svg("line", { x1: PL, y1: PT, x2: PL, y2: PH - PB, class: "axis" }),
    svg("line", { x1: PL, y1: PH - PB, x2: PW - PR, y2: PH - PB, class: "axis" }),
    svg("text", { x: PL - 4, y: PT + 8, "text-anchor": "end" }, ymax),
    svg("text", { x: PL - 4, y: PH - PB, "text-anchor": "end" }, 0),
    svg("text", { x: PL, y: PH - 4 }, left),
    svg("text", { x: PW - PR, y: PH - 4, "text-anchor": "end" }, right));
}

const px = (f) => PL + f * (PW - PL - PR);          // f in [0, 1] across
const py = (v, ymax) => PH - PB - (v / ymax) * (PH - PB - PT);

function plotRunning(p) {
  const box = $("#plot-running");
  // the hour the server keeps, or since its first sample when younger (a minute at least)
  const span = Math.min(3600, Math.max(60, p.samples.length ? p.now - p.samples[0][0] : 0));
  const from = p.now - span;
  const ymax = Math.max(1, p.slots, ...p.samples.map((s) => Math.max(s[1], s[2])));
  frame(box, ymax, span >= 120 ? "-" + Math.round(span / 60) + " min"
    : "-" + Math.round(span) + " s", "now");
  for (const [k, cls] of [[1, "running"], [2, "used"]]) {
    const pts = p.samples.map((s) => px(Math.max(0, s[0] - from) / span).toFixed(1) + "," +
      py(s[k], ymax).toFixed(1));
    box.append(svg("polyline", { points: pts.join(" "), class: cls, "data-n": pts.length,
      "data-max": Math.max(0, ...p.samples.map((s) => s[k])) }));
  }
  const last = p.samples.length ? p.samples[p.samples.length - 1] : [0, 0, 0];
  box.append(svg("text", { x: PL + 6, y: PT + 8, class: "legend" },
    `running ${last[1]} (blue), used slots ${last[2]} (orange)`));
}

// Bars of counts across the plot, each with its count in data-count and a title.
function bars(box, counts, left, right, title) {
  const ymax = Math.max(1, ...counts);
  frame(box, ymax, left, right);
  const w = (PW - PL - PR) / counts.length;
  counts.forEach((n, i) => {
    const y = py(n, ymax);
    const r = svg("rect", { x: (PL + i * w + 0.5).toFixed(1), y: y.toFixed(1),
      width: Math.max(1, w - 1).toFixed(1), height: (PH - PB - y).toFixed(1), class: "bar",
      "data-count": n });
    r.append(svg("title", {}, title(i, n)));
    box.append(r);
  });
}

function plotEnded(p) {
  const m = p.ended_per_minute;
  bars($("#plot-ended"), m.counts, "-60 min", "now", (i, n) =>
    new Date((m.first + 60 * i) * 1000).toLocaleTimeString() + ": " + n + " ended");
}

function plotDurations(p) {
  const d = p.durations;
  const s = (x) => String(+x.toFixed(3));  // 0.6, not 0.6000000000000001
  const box = $("#plot-durations");
  bars(box, d.counts, "0 s", s(d.width * d.counts.length) + " s", (i, n) =>
    `${s(i * d.width)}-${s((i + 1) * d.width)} s: ${n} jobs`);
  box.dataset.width = d.width;
}

async function loadPlots() {
  const now = Date.now();
  if (!view.resource || view.plotsLoading || now - view.plotsAt < 2000) return;
  view.plotsLoading = true;
  view.plotsAt = now;
  try {
    const p = await api("/api/plots", { resource: view.resource });
    plotRunning(p);
    plotEnded(p);
    plotDurations(p);
    $("#pl-note").textContent = "ended jobs and durations of the newest " + p.ended_jobs +
      " ended jobs (" + p.durations.jobs + " of them ran)";
  } catch (e) {
    notice("plots: " + e.message, true);
  } finally {
    view.plotsLoading = false;
  }
}

// ---- workflows: the graph (laid out by the server's Graphviz, drawn here) ----

const graph = {
  resource: null,      // whose workflows are listed
  list: [], listAt: 0, listLoading: false,
  workflow: null,      // the one shown
  g: null,             // its layout, as /api/graph answered
  collapsed: null,     // group indexes drawn as one node; null: the server's default
  rankdir: null,       // "TB" or "LR"; null: the server's choice, then kept
  states: new Map(),   // job id -> [state, exit status], newest known
  loading: false, statesLoading: false, statesAt: 0,
  vb: null,            // the part of the drawing shown: {x, y, w, h}
};

function graphNote(text, bad) {
  const n = $("#w-note");
  n.textContent = text;
  n.classList.toggle("bad", !!bad);
}

async function loadWorkflows(force) {
  const now = Date.now();
  if (!view.resource || graph.listLoading || (!force && now - graph.listAt < 5000)) return;
  graph.listLoading = true;
  graph.listAt = now;
  try {
    const r = await api("/api/workflows", { resource: view.resource });
    const sel = $("#w-select");
    const text = JSON.stringify(r.workflows);
    if (text !== JSON.stringify(graph.list)) {
      graph.list = r.workflows;
      // the newest first
      sel.replaceChildren(...r.workflows.slice().reverse().map((w) => {
        const o = el("option", "#" + w.id + (w.name ? " " + w.name : "") + " (" + w.state +
          ", " + w.jobs + (w.jobs === 1 ? " job)" : " jobs)"));
        o.value = w.id;
        return o;
      }));
      if (graph.workflow && r.workflows.some((w) => w.id === graph.workflow))
        sel.value = graph.workflow;
    }
    $("#w-count").textContent = r.total ? "" : "none yet";
    // the one shown is gone (disposed of): the newest instead, if any
    if (graph.workflow && !r.workflows.some((w) => w.id === graph.workflow)) {
      graph.workflow = null;
      graph.g = null;
      $("#graph").replaceChildren();
    }
    if (!graph.workflow && r.workflows.length) showWorkflow(Number(sel.value));
  } catch (e) {
    notice("workflows: " + e.message, true);
  } finally {
    graph.listLoading = false;
  }
}

function showWorkflow(id) {
  graph.workflow = id;
  graph.collapsed = null;
  graph.rankdir = null;
  graph.g = null;
  graph.vb = null;
  graph.states = new Map();
  loadGraph();
}

async function loadGraph() {
  if (!view.resource || !graph.workflow) return;
  if (graph.loading) return;
  graph.loading = true;
  const wf = graph.workflow;
  try {
    const q = { resource: view.resource, workflow: wf };
    if (graph.collapsed) q.collapsed = [...graph.collapsed].join(",") || "none";
    if (graph.rankdir) q.rankdir = graph.rankdir;
    const t = performance.now();
    const g = await api("/api/graph", q);
    if (graph.workflow !== wf) return;
    graph.g = g;
    graph.collapsed = new Set(g.groups.flatMap((x, i) => (x.collapsed ? [i] : [])));
    graph.rankdir = g.rankdir;
    for (const n of g.nodes) graph.states.set(n.job, [n.status, n.exit_status]);
    drawGraph(g);
    // asked, laid out and drawn: read by tests/test_ui_graph.py
    $("#graph").dataset.ms = Math.round(performance.now() - t);
    graphNote(g.jobs + " jobs, " + g.nodes.length + " drawn as jobs" +
      (graph.collapsed.size ? ", " + graph.collapsed.size +
        (graph.collapsed.size === 1 ? " group collapsed" : " groups collapsed") : "") +
      " (laid out in " + g.layout_s.toFixed(2) + " s)" +
      (g.unmatched ? "; " + g.unmatched + " group elements name no job of the workflow" : ""),
      false);
    loadGraphStates(true);
  } catch (e) {
    if (graph.workflow === wf) {
      $("#graph").replaceChildren();
      graph.g = null;
      graphNote("graph of workflow " + wf + ": " + e.message, true);
    }
  } finally {
    graph.loading = false;
  }
}

// The arrowhead the edges end in, and the view's frame.
function graphDefs() {
  const m = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  m.append(svg("path", { d: "M0 0 L10 5 L0 10 z", class: "arrow" }));
  const d = svg("defs");
  d.append(m);
  return d;
}

function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

function jobNode(n) {
  const gr = svg("g", { class: "node job", "data-id": n.job });
  gr.append(svg("rect", { class: "box", x: n.x - n.w / 2, y: n.y - n.h / 2, width: n.w,
    height: n.h, rx: 4 }));
  gr.append(svg("text", { x: n.x, y: n.y + 4, "text-anchor": "middle" },
    short(n.name || String(n.job), 20)));
  gr.append(svg("title", {}, ""));
  gr.addEventListener("click", () => openDetail(view.resource, n.job));
  return gr;
}

function groupNode(i, grp) {
  const n = grp.node;
  const gr = svg("g", { class: "node group", "data-group": i });
  gr.append(svg("rect", { class: "box", x: n.x - n.w / 2, y: n.y - n.h / 2, width: n.w,
    height: n.h, rx: 6 }));
  gr.append(svg("g", { class: "bar" }));
  gr.append(svg("text", { x: n.x, y: n.y - n.h / 2 + 12, "text-anchor": "middle",
    class: "gname" }, "⊞ " + short(grp.name || "group " + i, 24) + " (" + grp.jobs + ")"));
  gr.append(svg("text", { x: n.x, y: n.y + 5, "text-anchor": "middle", class: "gcounts" }));
  gr.append(svg("title", {}, ""));
  gr.addEventListener("click", () => toggleGroup(i, false));
  return gr;
}

function clusterBox(c, grp) {
  const gr = svg("g", { class: "cluster", "data-group": c.group });
  gr.append(svg("rect", { x: c.x - c.w / 2, y: c.y - c.h / 2, width: c.w, height: c.h, rx: 6 }));
  const label = svg("text", { x: c.x - c.w / 2 + 6, y: c.y - c.h / 2 + 12, class: "gname" },
    "⊟ " + short(grp.name || "group " + c.group, 30) + " (" + grp.jobs + ")");
  label.append(svg("title", {}, "collapse this group"));
  label.addEventListener("click", () => toggleGroup(c.group, true));
  gr.append(label);
  return gr;
}

function drawGraph(g) {
  const box = $("#graph");
  const parts = [graphDefs()];
  for (const c of g.clusters) parts.push(clusterBox(c, g.groups[c.group]));
  for (const e of g.edges)
    if (e.d) parts.push(svg("path", { d: e.d, class: "edge", "marker-end": "url(#arrow)" }));
  for (const n of g.nodes) parts.push(jobNode(n));
  g.groups.forEach((grp, i) => { if (grp.node) parts.push(groupNode(i, grp)); });
  box.replaceChildren(...parts);
  box.dataset.workflow = g.workflow;
  box.dataset.jobs = g.jobs;
  if (!graph.vb) graphStart();
  else setViewBox();
  paintGraph();
}

// The states' colours on the nodes, and each collapsed group's counts.
function paintGraph() {
  const g = graph.g;
  if (!g) return;
  for (const node of document.querySelectorAll("#graph g.job")) {
    const id = Number(node.dataset.id);
    const [st, exit] = graph.states.get(id) || ["", ""];
    node.setAttribute("class", "node job " + st + (exit === "aborted" ? " aborted" : ""));
    node.dataset.status = st;
    node.querySelector("title").textContent = "job " + id + ": " + st +
      (exit && exit !== "none" ? " (" + exit + ")" : "") + " — click for its detail";
  }
  for (const node of document.querySelectorAll("#graph g.group")) {
    const grp = g.groups[Number(node.dataset.group)];
    const counts = {};
    for (const id of grp.members || []) {
      const st = (graph.states.get(id) || ["queued_active"])[0];
      counts[st] = (counts[st] || 0) + 1;
    }
    node.dataset.counts = JSON.stringify(counts);
    const n = grp.node, bar = node.querySelector("g.bar");
    const x0 = n.x - n.w / 2 + 6, w = n.w - 12, y = n.y + n.h / 2 - 12;
    const total = (grp.members || []).length || 1;
    let x = x0;
    const segs = [];
    for (const st of STATES) if (counts[st]) {
      const sw = w * counts[st] / total;
      segs.push(svg("rect", { class: "seg " + st, x: x.toFixed(1), y, width: sw.toFixed(1),
        height: 8, "data-state": st, "data-count": counts[st] }));
      x += sw;
    }
    bar.replaceChildren(...segs);
    // the counts in words too, shortest first names: "3 done, 2 running"
    node.querySelector("text.gcounts").textContent = STATES.filter((st) => counts[st])
      .map((st) => counts[st] + " " + st.replace("queued_active", "queued")
        .replace(/_on_hold$/, " held").replace("user_system", "u+s")).join(", ");
    node.querySelector("title").textContent = (grp.name || "group") + ": " +
      STATES.filter((st) => counts[st]).map((st) => counts[st] + " " + st).join(", ") +
      " — click to expand";
  }
}

async function loadGraphStates(force) {
  const now = Date.now();
  // each second, and less often for big workflows: a listing of all their jobs
  const every = Math.max(1000, graph.g ? graph.g.jobs / 2 : 0);
  if (!graph.g || graph.statesLoading || (!force && now - graph.statesAt < every)) return;
  graph.statesLoading = true;
  graph.statesAt = now;
  const wf = graph.workflow;
  try {
    const r = await api("/api/workflow-jobs", { resource: view.resource, workflow: wf });
    if (graph.workflow !== wf) return;
    graph.states = new Map(r.jobs.map((j) => [j[0], [j[1], j[2]]]));
    // jobs disposed of (or a graph of another size): laid out again
    if (r.jobs.length !== graph.g.jobs) { graph.statesLoading = false; loadGraph(); return; }
    paintGraph();
  } catch (e) {
    graphNote("graph of workflow " + wf + ": " + e.message, true);
  } finally {
    graph.statesLoading = false;
  }
}

function toggleGroup(i, collapse) {
  if (!graph.collapsed) return;
  if (collapse) graph.collapsed.add(i); else graph.collapsed.delete(i);
  loadGraph();
}

// ---- pan and zoom: the SVG's viewBox ----

function setViewBox() {
  const v = graph.vb;
  $("#graph").setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
}

// The whole drawing, centred, at most 1.5 times its size (a small graph is not blown up).
function graphFit() {
  const g = graph.g, r = $("#graph").getBoundingClientRect();
  if (!g) return;
  const w = Math.max(g.width + 20, r.width / 1.5), h = Math.max(g.height + 20, r.height / 1.5);
  graph.vb = { x: g.width / 2 - w / 2, y: g.height / 2 - h / 2, w, h };
  setViewBox();
}

// The first view: the whole drawing when it is readable so (its text at
// 0.8 of its size at least), else its top left corner at that size, to be
// panned (drag) and zoomed (wheel, buttons).
function graphStart() {
  const g = graph.g, r = $("#graph").getBoundingClientRect();
  if (Math.min(r.width / (g.width + 20), r.height / (g.height + 20)) >= 0.8) return graphFit();
  graph.vb = { x: -10, y: -10, w: r.width / 0.8, h: r.height / 0.8 };
  setViewBox();
}

// Zooms by f about the point (fx, fy) of the view, as fractions of it.
function graphZoom(f, fx = 0.5, fy = 0.5) {
  const v = graph.vb;
  if (!v) return;
  const x = v.x + fx * v.w, y = v.y + fy * v.h;
  v.w /= f; v.h /= f;
  v.x = x - fx * v.w; v.y = y - fy * v.h;
  setViewBox();
}

function wireGraph() {
  const box = $("#graph");
  $("#w-select").addEventListener("change", (ev) => showWorkflow(Number(ev.target.value)));
  $("#w-fit").addEventListener("click", graphFit);
  $("#w-dir").addEventListener("click", () => {
    graph.rankdir = graph.rankdir === "LR" ? "TB" : "LR";
    graph.vb = null;
    loadGraph();
  });
  $("#w-in").addEventListener("click", () => graphZoom(1.5));
  $("#w-out").addEventListener("click", () => graphZoom(1 / 1.5));
  $("#w-collapse").addEventListener("click", () => {
    if (!graph.g) return;
    graph.collapsed = new Set(graph.g.groups.flatMap((x, i) => (x.parent < 0 ? [i] : [])));
    graph.vb = null;
    loadGraph();
  });
  $("#w-expand").addEventListener("click", () => {
    graph.collapsed = new Set();
    graph.vb = null;
    loadGraph();
  });
  $("#w-stop").addEventListener("click", () => workflowAct("stop"));
  $("#w-restart").addEventListener("click", () => workflowAct("restart"));
  $("#w-jobs").addEventListener("click", () => {
    if (!graph.workflow) return;
    $("#f-workflow").value = graph.workflow;
    $("#filters").requestSubmit();
  });
  box.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = box.getBoundingClientRect();
    graphZoom(ev.deltaY < 0 ? 1.2 : 1 / 1.2, (ev.clientX - r.left) / r.width,
      (ev.clientY - r.top) / r.height);
  }, { passive: false });
  let drag = null;
  box.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest(".node, .gname") || !graph.vb) return;
    drag = { x: ev.clientX, y: ev.clientY, vx: graph.vb.x, vy: graph.vb.y };
    box.setPointerCapture(ev.pointerId);
  });
  box.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const r = box.getBoundingClientRect();
    const s = Math.max(graph.vb.w / r.width, graph.vb.h / r.height);
    graph.vb.x = drag.vx - (ev.clientX - drag.x) * s;
    graph.vb.y = drag.vy - (ev.clientY - drag.y) * s;
    setViewBox();
  });
  box.addEventListener("pointerup", () => { drag = null; });
}

// ---- actions ----

async function act(action, resource, ids) {
  if (!ids.length) { notice("select jobs first", true); return; }
  if (DESTROYS[action] && !window.confirm(DESTROYS[action] + " " + ids.length +
      (ids.length === 1 ? " job (" + ids[0] + ")" : " jobs") + " of " + resource + "?")) return;
  try {
    const r = await fetch("/api/action", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Ferry-CSRF": csrf },
      body: JSON.stringify({ resource, action, ids }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    const first = body.errors.length ? " (" + body.errors[0].id + ": " + body.errors[0].message + ")" : "";
    notice(action + ": " + body.changed + " of " + ids.length + " changed" +
      (body.failed ? ", " + body.failed + " refused" + first : ""), body.failed > 0);
    if (action === "dispose") ids.forEach((id) => view.selected.delete(id));
  } catch (e) {
    notice(action + ": " + e.message, true);
  }
  loadJobs();
  loadDetail();
}

// stop (after a confirmation: it kills) or restart the workflow shown
async function workflowAct(action) {
  const wf = graph.workflow, resource = view.resource;
  if (!wf) { notice("no workflow shown", true); return; }
  if (action === "stop" && !window.confirm("Stop workflow " + wf + " of " + resource +
      ": kill its jobs not ended, and start none until it is restarted?")) return;
  try {
    const r = await fetch("/api/workflow-action", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Ferry-CSRF": csrf },
      body: JSON.stringify({ resource, workflow: wf, action }),
    });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    notice(action === "stop" ? "workflow " + wf + " stopped: " + body.changed + " jobs killed"
      : "workflow " + wf + " restarted: " + body.restarted + " jobs to run again", false);
  } catch (e) {
    notice(action + " workflow " + wf + ": " + e.message, true);
  }
  loadWorkflows(true);
  loadJobs();
}

// ---- wiring ----

// The action buttons of box, after what it holds.
function actionButtons(box) {
  for (const a of ACTIONS) {
    const b = el("button", a, DESTROYS[a] ? "danger" : null);
    b.type = "button";
    b.dataset.action = a;
    box.append(b);
  }
}

function wire() {
  actionButtons($("#bulk"));
  actionButtons($("#d-actions"));
  const st = $("#f-state");
  for (const s of STATES) { const o = el("option", s); o.value = s; st.append(o); }
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    view.resource = $("#f-resource").value;
    view.state = $("#f-state").value;
    view.name = $("#f-name").value.trim();
    view.workflow = $("#f-workflow").value.trim();
    view.since = seconds($("#f-since").value);
    view.until = seconds($("#f-until").value);
    view.endedSince = seconds($("#f-ended-since").value);
    view.endedUntil = seconds($("#f-ended-until").value);
    view.selected.clear();
    $("#n-selected").textContent = "0 selected";
    view.shown = null;
    resetPaging(view.atEnd);
    loadJobs();
    view.plotsAt = 0;
    loadTransfers();
    loadPlots();
    if (graph.resource !== view.resource) {
      graph.resource = view.resource;
      graph.workflow = null;
      graph.list = [];
      $("#w-select").replaceChildren();
      $("#graph").replaceChildren();
      graph.g = null;
      loadWorkflows(true);
    }
  });
  $("#f-resource").addEventListener("change", () => $("#filters").requestSubmit());
  $("#f-state").addEventListener("change", () => $("#filters").requestSubmit());
  $("#p-first").addEventListener("click", () => { resetPaging(false); loadJobs(); });
  $("#p-last").addEventListener("click", () => { resetPaging(true); loadJobs(); });
  $("#p-prev").addEventListener("click", () => { view.after = view.back.pop() || 0; loadJobs(); });
  $("#p-next").addEventListener("click", () => {
    if (view.next === null) return;
    view.back.push(view.after); view.after = view.next; loadJobs();
  });
  $("#select-all").addEventListener("change", (ev) => {
    for (const tr of document.querySelectorAll("#jobs-table tbody tr")) {
      const id = Number(tr.dataset.id);
      tr.querySelector("input").checked = ev.target.checked;
      if (ev.target.checked) view.selected.add(id); else view.selected.delete(id);
    }
    $("#n-selected").textContent = view.selected.size + " selected";
  });
  for (const b of document.querySelectorAll("#bulk button"))
    b.addEventListener("click", () => act(b.dataset.action, view.resource, [...view.selected]));
  for (const b of document.querySelectorAll("#d-actions button"))
    b.addEventListener("click", () => view.detail && act(b.dataset.action, view.detail.resource, [view.detail.id]));
  $("#d-close").addEventListener("click", () => { view.detail = null; $("#detail").hidden = true; });
  wireGraph();
}

function listen() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("#live").textContent = "live"; $("#live").className = "on"; });
  es.addEventListener("error", () => { $("#live").textContent = "reconnecting"; $("#live").className = "off"; });
  es.addEventListener("resources", (ev) => {
    renderResources(JSON.parse(ev.data));
    loadJobs();
    loadDetail();
    loadTransfers();
    loadPlots();
    loadWorkflows();
    loadGraphStates();
  });
  // a second without new counts (counting many jobs takes longer): the jobs may have moved
  es.addEventListener("tick", () => {
    loadJobs(); loadDetail(); loadTransfers(); loadPlots(); loadWorkflows(); loadGraphStates();
  });
}

wire();
api("/api/resources").then(renderResources).then(() => {
  graph.resource = view.resource;
  loadJobs(); loadTransfers(); loadPlots(); loadWorkflows(true);
})
  .catch((e) => notice(e.message, true));
listen();
