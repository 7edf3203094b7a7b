// The page of `ferry ui` (src/ui): resources, a page of jobs, one job's
// detail with its output followed live, the controls, the resource's
// transfers and its plots (inline SVG). It learns of
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
    const end = view.atEnd && !view.name;  // a name filter pages from the oldest only
    const q = { resource: view.resource, limit: PAGE };
    if (end) q.from = "end"; else q.after = view.after;
    if (view.state) q.state = view.state;
    if (view.name) q.name = view.name;
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
    $("#p-last").disabled = end || !!view.name;
    $("#p-where").textContent = end ? "newest jobs" : "page " + (view.back.length + 1) +
      (page.next !== null && page.jobs.length < PAGE ? " (searched up to job " + page.next + ")" : "");
  } catch (e) {
    notice("jobs: " + e.message, true);
  } finally {
    view.loading = false;
    if (view.again) { view.again = false; loadJobs(); }
  }
}

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
    view.selected.clear();
    $("#n-selected").textContent = "0 selected";
    view.shown = null;
    resetPaging(view.atEnd);
    loadJobs();
    view.plotsAt = 0;
    loadTransfers();
    loadPlots();
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
  });
  // a second without new counts (counting many jobs takes longer): the jobs may have moved
  es.addEventListener("tick", () => { loadJobs(); loadDetail(); loadTransfers(); loadPlots(); });
}

wire();
api("/api/resources").then(renderResources).then(() => { loadJobs(); loadTransfers(); loadPlots(); })
  .catch((e) => notice(e.message, true));
listen();
