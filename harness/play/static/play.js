// The playground page: controls -> URL -> a training session on the server -> pictures.
// No training happens here: the server trains with the harness's engine and streams
// snapshots (losses, decision-boundary fields, the network's weights) that this file only
// draws. The Playground's live controls (learning and regularization rate, a weight or a
// bias typed in) are requests that change the running session between two epochs.
"use strict";

const $ = (id) => document.getElementById(id);
const FEATURE_LABELS = { x1: "X\u2081", x2: "X\u2082", x1sq: "X\u2081\u00b2", x2sq: "X\u2082\u00b2",
  x1x2: "X\u2081X\u2082", sin_x1: "sin(X\u2081)", sin_x2: "sin(X\u2082)" };
const DATA_LABELS = { circle: "Circle", xor: "Exclusive or", gauss: "Gaussian", spiral: "Spiral",
  reg_plane: "Plane", reg_gauss: "Multi gaussian" };
const LOSS_LABELS = { cross_entropy: "cross-entropy", mse: "squared error (MSE)", tanh_squared: "the Playground's loss" };
const NEG = [245, 147, 34], MID = [232, 234, 235], POS = [8, 119, 189];  // Playground's colours
// The Playground's network drawing (playground.ts): node boxes, their spacing, link widths.
const RECT = 30, BIAS = 6, ROW = RECT + 25, FEATURE_W = 118, NET_W = 520, NET_TOP = 44;

let options = null;      // /api/options
let settings = {};       // the URL's query, as strings
let view = {};           // the page's own URL keys (classroom: <control>_hide, hideText; discretize)
let info = null;         // the session's fixed facts (members, points, grid)
let curves = null;       // per member: the trained loss {train: [], test: []}
let pg = null;           // per member: the Playground's loss {train: [], test: []}
let fields = [];         // per member: Uint8Array of the field (0..255 = -1..1)
let diverged = [];
let neurons = null;      // the first network's hidden neurons (Uint8Array each), one network on screen only
let weights = null;      // the first network's weights and biases per layer (the Playground's form)
let changes = [];        // this session's live changes: {epoch, change}
let hovered = null;      // the node under the mouse; the big picture shows its field (null: the output)
let focusField = null;   // that field, at the big picture's resolution
let periods = 0;         // evaluation periods received (the next "since")
let epoch = 0;
let stream = null;       // the EventSource while playing
let playing = false;
let pending = null;      // the session being created (a Promise)
let token = 0;           // ignores answers for sessions that were replaced

// --- settings and the URL ----------------------------------------------------------------
// The page's own keys never reach the server: the Playground's classroom keys (its state.ts:
// "<control>_hide=true" hides the elements of class "ui-<control>", "hideText=true" the text)
// and "discretize". They are read from the query or, as in a Playground link, the hash.
function isViewKey(k) { return k.endsWith("_hide") || k === "hideText" || k === "discretize"; }
function readUrl() {
  const q = new URLSearchParams(location.search), hash = new URLSearchParams(location.hash.slice(1));
  settings = Object.assign({}, options.defaults);
  view = {};
  for (const [k, v] of [...hash.entries(), ...q.entries()]) {
    if (isViewKey(k)) view[k] = k.endsWith("_hide") ? v === "true" : v !== "false";  // as state.ts reads them
    else if (q.has(k)) settings[k] = v;  // unknown names reach the server: it says what is wrong
  }
}
function writeUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(settings)) if (!(k === "problem" && !v)) q.set(k, v);
  for (const [k, v] of Object.entries(view)) if (v) q.set(k, "true");
  history.replaceState(null, "", "?" + q.toString());
  $("classroom-link").href = location.href;
}
function applyView() {
  for (const el of document.querySelectorAll(".hidden-by-url")) el.classList.remove("hidden-by-url");
  for (const [k, v] of Object.entries(view)) {
    if (!v) continue;
    const selector = k === "hideText" ? ".text" : k === "discretize" ? null : ".ui-" + k.slice(0, -"_hide".length);
    if (selector) for (const el of document.querySelectorAll(selector)) el.classList.add("hidden-by-url");
  }
  $("discretize").checked = !!view.discretize;
  for (const box of document.querySelectorAll("#hide-controls input")) box.checked = !view[box.value + "_hide"];
}
function problemOf(data) { return options.data.regression.includes(data) ? "regression" : "classification"; }

// --- controls ----------------------------------------------------------------------------
function fillSelect(el, values, labels) {
  el.innerHTML = "";
  values.forEach((v, i) => { const o = document.createElement("option"); o.value = String(v); o.textContent = labels ? labels[i] : String(v); el.appendChild(o); });
}
function num(v) { return isNaN(+v) || v === "" ? String(v) : String(+v); }

function buildControls() {
  fillSelect($("lr"), options.learning_rates.map(num));
  fillSelect($("activation"), options.activations, options.activations.map((a) => a === "relu" ? "ReLU" : a[0].toUpperCase() + a.slice(1)));
  fillSelect($("reg"), options.regularizers, ["None", "L1", "L2"]);
  fillSelect($("rate"), options.reg_rates.map(num));
  const cmp = Object.keys(options.compare);
  fillSelect($("compare"), ["none", ...cmp], ["off (one network)", "activation", "learning rate", "batch size", "regularization", "regularization rate", "features"]);
  fillSelect($("seeds"), Array.from({ length: options.limits.seeds }, (_, i) => String(i + 1)));
  for (const id of ["activation", "seeds", "seed"]) $(id).addEventListener("change", () => change({ [id]: $(id).value }));
  for (const id of options.live) $(id).addEventListener("change", () => changeLive(id, $(id).value));
  $("reg").addEventListener("change", () => {
    const upd = { reg: $("reg").value };
    if (upd.reg !== "none" && +settings.rate === 0) upd.rate = "0.003";  // a penalty needs a rate
    if (upd.reg === "none" && settings.compare === "rate") upd.compare = "none";
    change(upd);
  });
  $("compare").addEventListener("change", () => {
    const upd = { compare: $("compare").value };
    if (upd.compare === "rate" && settings.reg === "none") upd.reg = "l2";
    if ((upd.compare === "rate" || upd.compare === "reg") && +settings.rate === 0) upd.rate = "0.003";
    change(upd);
  });
  $("problem").addEventListener("change", () => {
    const p = $("problem").value;
    change({ problem: "", data: options.data[p][0] });
  });
  $("ratio").addEventListener("change", () => change({ ratio: num($("ratio").value / 100) }));
  $("noise").addEventListener("change", () => change({ noise: num($("noise").value / 100) }));
  $("batch").addEventListener("change", () => change({ batch: $("batch").value }));
  for (const [id, out, f] of [["ratio", "ratio-value", (v) => v + "%"], ["noise", "noise-value", (v) => v], ["batch", "batch-value", (v) => v]])
    $(id).addEventListener("input", () => { $(out).textContent = f($(id).value); });
  $("showtest").addEventListener("change", () => { settings.showtest = $("showtest").checked ? "1" : "0"; writeUrl(); draw(); });
  $("discretize").addEventListener("change", () => { view.discretize = $("discretize").checked; writeUrl(); draw(); });
  $("regenerate").addEventListener("click", () => change({ dataseed: String((+settings.dataseed || 0) + 1) }));
  $("add-layer").addEventListener("click", () => { const h = hidden(); if (h.length < options.limits.layers) change({ hidden: [...h, 2].join(",") }); });
  $("remove-layer").addEventListener("click", () => { const h = hidden(); h.pop(); change({ hidden: h.join(",") }); });
  $("play").addEventListener("click", () => (playing ? pause() : play()));
  $("step").addEventListener("click", step);
  // As in the Playground, Reset draws new weights: here the next seed(s), so the link still reproduces them.
  $("reset").addEventListener("click", () => change({ seed: String((+settings.seed || 0) + (+settings.seeds || 1)) }));
  $("command").addEventListener("click", showCommands);
  $("close-commands").addEventListener("click", () => { $("commands").hidden = true; });
  const boxes = $("hide-controls");
  for (const [text, id] of options.hidable) {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox" value="${id}"> ${text}`;
    l.querySelector("input").addEventListener("change", (ev) => { view[id + "_hide"] = !ev.target.checked; writeUrl(); applyView(); });
    boxes.appendChild(l);
  }
  const link = document.createElement("a"); link.id = "classroom-link"; link.textContent = "this page's link";
  boxes.appendChild(link);
  buildHovercard();
}

function hidden() { return (settings.hidden || "").split(",").filter((s) => s.trim() !== "").map(Number); }
function features() { return (settings.features || "").split(",").filter((f) => f); }

function showSettings() {
  const set = (id, v) => { const el = $(id); if ([...el.options].some((o) => o.value === v)) el.value = v; else { const o = document.createElement("option"); o.value = v; o.textContent = v; el.appendChild(o); el.value = v; } };
  set("lr", num(settings.lr)); set("activation", settings.activation); set("reg", settings.reg);
  set("rate", num(settings.rate)); set("compare", settings.compare); set("seeds", settings.seeds);
  $("seed").value = settings.seed;
  const problem = settings.problem || problemOf(settings.data);
  $("problem").value = problem;
  $("rate").disabled = settings.reg === "none";
  const ds = $("datasets"); ds.innerHTML = "";
  for (const d of options.data[problem] || []) {
    const b = document.createElement("button");
    b.textContent = DATA_LABELS[d] || d; b.id = "data-" + d; b.title = d;
    if (d === settings.data) b.className = "selected";
    b.addEventListener("click", () => change({ data: d }));
    ds.appendChild(b);
  }
  $("ratio").value = Math.round(+settings.ratio * 100); $("ratio-value").textContent = $("ratio").value + "%";
  $("noise").value = Math.round(+settings.noise * 100); $("noise-value").textContent = $("noise").value;
  $("batch").value = settings.batch; $("batch-value").textContent = settings.batch;
  $("showtest").checked = settings.showtest === "1";
  const h = hidden();
  $("layer-count").textContent = `${h.length} hidden layer${h.length === 1 ? "" : "s"}`;
  buildNetwork();
  const comparing = settings.compare !== "none";
  $("grid-col").hidden = !comparing;
  $("out-col").hidden = comparing;  // the grid shows every value instead
  $("grid-title").textContent = comparing ? `Compare: ${$("compare").selectedOptions[0].textContent}, ${settings.seeds} seed(s) each, trained at once` : "";
  applyView();
}

// --- the network (the Playground's drawing: inputs, hidden layers, output, links) --------
function nodeIds() {  // node ids per column: inputs (every feature), hidden layers, the output
  return [options.features, ...hidden().map((n, l) => Array.from({ length: n }, (_, u) => `h${l}-${u}`)), ["out"]];
}
function layerX(l, n) {  // d3's rangePoints([FEATURE_W, NET_W - 2 RECT], 0.7) over n hidden layers, as the Playground
  const a = FEATURE_W, b = NET_W - 2.5 * RECT;
  if (n < 2) return (a + b) / 2;
  const stepX = (b - a) / (n - 1 + 0.7);
  return a + stepX * 0.35 + l * stepX;
}
function coords() {  // node id -> centre
  const cols = nodeIds(), n = cols.length - 2, at = {};
  cols.forEach((ids, c) => {
    const cx = c === 0 ? RECT / 2 + 60 : c === cols.length - 1 ? NET_W - RECT / 2 - 2 : layerX(c - 1, n) + RECT / 2;
    ids.forEach((id, i) => { at[id] = { cx, cy: NET_TOP + i * ROW + RECT / 2 }; });
  });
  return at;
}
function links() {  // every link: {layer, source (index), dest (index), from, to (node ids)}
  const cols = nodeIds(), used = features(), out = [];
  for (let l = 0; l < cols.length - 1; l++) {
    const sources = l === 0 ? used : cols[l];
    cols[l + 1].forEach((to, d) => sources.forEach((from, s) => out.push({ layer: l, source: s, dest: d, from, to })));
  }
  return out;
}
function linkPath(a, b, index, count) {  // d3.svg.diagonal, as the Playground draws a link
  const x0 = a.cx + RECT / 2 + 2, y0 = a.cy, x1 = b.cx - RECT / 2, y1 = b.cy + ((index - (count - 1) / 2) / count) * 12;
  const xm = (x0 + x1) / 2;
  return `M${x0},${y0}C${xm},${y0} ${xm},${y1} ${x1},${y1}`;
}
function svgEl(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function buildNetwork() {
  const net = $("network"), svg = $("links"), at = coords(), cols = nodeIds(), used = features();
  for (const el of net.querySelectorAll(".node, .layer-ctl")) el.remove();
  svg.innerHTML = "";
  const height = NET_TOP + Math.max(...cols.map((c) => c.length)) * ROW;
  svg.setAttribute("width", NET_W); svg.setAttribute("height", height);
  net.style.width = NET_W + "px"; net.style.height = height + "px";
  const all = links(), into = {};
  for (const k of all) (into[k.to] = into[k.to] || []).push(k);
  for (const k of all) {
    const list = into[k.to], i = list.indexOf(k), d = linkPath(at[k.from], at[k.to], i, list.length);
    const id = `link-${k.layer}-${k.source}-${k.dest}`;
    svg.appendChild(svgEl("path", { d, id, class: "link" }));
    const hover = svgEl("path", { d, class: "link-hover", "data-link": id });
    hover.addEventListener("mouseenter", (ev) => showCard({ kind: "weight", ...k }, ev));
    hover.addEventListener("mouseleave", () => hideCard());
    hover.addEventListener("click", (ev) => editCard(ev));
    svg.appendChild(hover);
  }
  cols.forEach((ids, c) => ids.forEach((id, i) => {
    const { cx, cy } = at[id], x = cx - RECT / 2, y = cy - RECT / 2;
    const div = document.createElement("div");
    div.className = "node"; div.id = "node-" + id; div.dataset.node = id;
    div.style.left = x + "px"; div.style.top = y + "px";
    div.innerHTML = `<canvas width="${RECT}" height="${RECT}"></canvas>`;
    if (c === 0) {
      div.classList.add("input", used.includes(id) ? "active" : "inactive");
      div.insertAdjacentHTML("beforeend", `<span class="label">${FEATURE_LABELS[id] || id}</span>`);
      div.title = used.includes(id) ? "used: click to leave it out" : "not used: click to use it";
      div.addEventListener("click", () => {
        const on = options.features.filter((f) => (f === id) !== used.includes(f));
        if (on.length) change({ features: on.join(",") });
      });
    }
    if (id !== "out") {
      div.addEventListener("mouseenter", () => focus(id));
      div.addEventListener("mouseleave", () => focus(null));
    }
    net.appendChild(div);
    if (c > 0) {  // the bias: a small square at the node's lower left, as in the Playground
      const layer = c - 1, bias = svgEl("rect", { class: "bias", id: `bias-${layer}-${i}`, x: x - BIAS - 2, y: y + RECT - BIAS + 3, width: BIAS, height: BIAS });
      bias.addEventListener("mouseenter", (ev) => showCard({ kind: "bias", layer, dest: i }, ev));
      bias.addEventListener("mouseleave", () => hideCard());
      bias.addEventListener("click", (ev) => editCard(ev));
      svg.appendChild(bias);
    }
  }));
  hidden().forEach((n, l) => {  // + / - neurons above each hidden layer
    const ctl = document.createElement("div");
    ctl.className = `layer-ctl ui-numNodes${l + 1}`;
    ctl.style.left = (layerX(l, cols.length - 2) - 14) + "px";
    ctl.innerHTML = `<button class="add-neuron" title="Add a neuron">+</button><button class="remove-neuron" title="Remove a neuron">&minus;</button>` +
      `<div>${n} neuron${n === 1 ? "" : "s"}</div>`;
    ctl.querySelector(".add-neuron").addEventListener("click", () => { const hh = hidden(); if (hh[l] < options.limits.neurons) { hh[l]++; change({ hidden: hh.join(",") }); } });
    ctl.querySelector(".remove-neuron").addEventListener("click", () => { const hh = hidden(); if (hh[l] > 1) { hh[l]--; change({ hidden: hh.join(",") }); } });
    net.appendChild(ctl);
  });
}

function linkWidth(w) { return Math.max(1, Math.min(10, 1 + 9 * Math.abs(w) / 5)); }  // Playground: |w| 0..5 -> 1..10 px
function valueColour(v) { return `rgb(${colour((Math.max(-1, Math.min(1, v)) + 1) / 2).join(",")})`; }

function drawWeights() {
  for (const k of links()) {
    const el = $(`link-${k.layer}-${k.source}-${k.dest}`);
    const w = weights?.[k.layer]?.weights?.[k.source]?.[k.dest] ?? null;  // null: not (yet) this session's
    el.style.stroke = w === null ? "#ccc" : valueColour(w);
    el.style.strokeWidth = w === null ? 1 : linkWidth(w);
    el.style.strokeDashoffset = String(-epoch / 3);  // the Playground's links flow as it trains
    el.dataset.weight = w === null ? "" : String(w);
  }
  for (const el of document.querySelectorAll("#links rect.bias")) {
    const [, layer, unit] = el.id.split("-").map(Number);
    const b = weights?.[layer]?.biases?.[unit] ?? null;
    el.style.fill = b === null ? "#ccc" : valueColour(b);
    el.dataset.bias = b === null ? "" : String(b);
  }
}

// --- the hover card: a weight's or a bias's value, click to type a new one ---------------
let card = null;  // what the card shows: {kind: "weight"|"bias", layer, source, dest}
function buildHovercard() {
  const input = $("hovercard").querySelector("input");
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") submitCard(input.value);
    if (ev.key === "Escape") closeCard();
  });
  input.addEventListener("blur", () => closeCard());
}
function cardValue(c) {
  const layer = weights?.[c.layer];
  return (c.kind === "weight" ? layer?.weights?.[c.source]?.[c.dest] : layer?.biases?.[c.dest]) ?? null;
}
function showCard(c, ev) {
  if (settings.compare !== "none" || editing()) return;  // weights are those of the one network on screen
  const v = cardValue(c);
  if (v === null) return;
  card = c;
  const hc = $("hovercard"), box = $("network").getBoundingClientRect();
  hc.style.left = (ev.clientX - box.left + 20) + "px"; hc.style.top = (ev.clientY - box.top) + "px";
  hc.querySelector(".type").textContent = c.kind === "weight" ? "Weight" : "Bias";
  hc.querySelector(".value").textContent = v.toPrecision(2);
  hc.querySelector(".value").hidden = false;
  hc.querySelector("input").hidden = true;
  hc.hidden = false;
}
function editing() { return !$("hovercard").querySelector("input").hidden; }
function hideCard() { if (!editing()) { $("hovercard").hidden = true; card = null; } }
function closeCard() { const hc = $("hovercard"); hc.querySelector("input").hidden = true; hc.hidden = true; card = null; }
function editCard(ev) {
  if (!card) return;
  ev.stopPropagation();
  const hc = $("hovercard"), input = hc.querySelector("input");
  hc.querySelector(".value").hidden = true;
  input.value = cardValue(card).toPrecision(2);
  input.hidden = false;
  input.focus(); input.select();
}
async function submitCard(text) {
  const c = card;
  closeCard();
  if (!c || !info || text.trim() === "") return;
  const q = new URLSearchParams({ layer: c.layer, dest: c.dest, value: text.trim(), since: periods });
  if (c.kind === "weight") q.set("source", c.source);
  await post(`/api/session/${info.id}/${c.kind}?${q}`);
}

// --- sessions ----------------------------------------------------------------------------
function showError(msg) { const e = $("error"); e.textContent = msg ? "error: " + msg : ""; e.hidden = !msg; }
function status(msg) { $("status").textContent = msg || ""; }

function change(update) {
  for (const k of Object.keys(settings)) if (!(k in options.defaults)) delete settings[k];  // a bad link's unknown names
  Object.assign(settings, update);
  writeUrl();
  showSettings();
  restart();
}

async function post(url) {  // a request that changes the session; its answer is a snapshot
  const r = await fetch(url, { method: "POST" });
  const body = await r.json();
  if (!r.ok) { showError(body.error); return null; }
  showError("");
  apply(body); draw();
  return body;
}

// The learning rate and the regularization rate change while training, as in the Playground:
// the server gives the running networks the new number from their next epoch on (nothing is
// recompiled). Compared values, or no session yet, start over instead.
async function changeLive(name, value) {
  if (!info || settings.compare === name) { change({ [name]: value }); return; }
  const snap = await post(`/api/session/${info.id}/change?${name}=${encodeURIComponent(value)}&since=${periods}`);
  if (!snap) { showSettings(); return; }  // refused: the controls show what still trains
  settings[name] = snap.query[name];
  writeUrl();
}

function restart() {
  const wasPlaying = playing;
  pause();
  const old = info && info.id;
  const mine = ++token;
  status("compiling / starting\u2026");
  pending = fetch("/api/session?" + new URLSearchParams(settings).toString(), { method: "POST" })
    .then(async (r) => {
      const body = await r.json();
      if (mine !== token) return null;
      if (!r.ok) { showError(body.error); status(""); info = null; return null; }
      showError("");
      if (old) fetch("/api/session/" + old, { method: "DELETE" });
      info = body;
      curves = info.members.map(() => ({ train: [], test: [] }));
      pg = info.members.map(() => ({ train: [], test: [] }));
      fields = []; diverged = []; periods = 0; weights = null; focusField = null; changes = [];
      apply(body.snapshot);
      $("objective-name").textContent = LOSS_LABELS[info.loss] || info.loss;
      status(`${info.members.length} network(s) in ${info.groups} compiled group(s); started in ${info.start_s.toFixed(1)} s`);
      buildGrid();
      draw();
      if (hovered) focus(hovered);
      return info;
    })
    .catch((err) => { if (mine === token) showError(String(err)); return null; });
  if (wasPlaying) pending.then((s) => { if (s) play(); });
  return pending;
}

function apply(snap) {
  if (!info || snap.id !== info.id) return;
  // Answers can cross (a stream event and a change's answer): one older than what is drawn is
  // dropped, so the curves never have a gap (each answer brings the points from its `since` on).
  if (snap.periods < periods) return;
  for (let i = 0; i < info.members.length; i++) {
    for (const [mine, theirs] of [[curves[i], snap.curves], [pg[i], snap.playground]]) {
      for (const k of ["train", "test"]) {
        const c = mine[k], add = theirs[k][i] || [];
        c.length = snap.since;  // the snapshot's curves start at period `since`
        for (const v of add) c.push(v);
      }
    }
    if (snap.fields[i]) fields[i] = decode(snap.fields[i]);
  }
  diverged = snap.diverged;
  neurons = snap.neurons ? snap.neurons.map(decode) : null;
  weights = snap.network;
  focusField = snap.focus && snap.focus.node === hovered ? decode(snap.focus.field) : null;
  changes = snap.changes;
  periods = snap.periods;
  epoch = snap.epoch;
  $("epoch").textContent = String(epoch).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  $("changes").hidden = !changes.length;
  $("changes").textContent = changes.length ? "Changed while training: " + changes.map((c) => `${c.change} (epoch ${c.epoch})`).join("; ") : "";
  if (snap.done) pause();
}

// The big picture shows the hovered node's field (the server sends it with every snapshot
// while a node is hovered), else the output's.
async function focus(node) {
  hovered = node;
  for (const el of document.querySelectorAll("#network .node")) el.classList.toggle("hovered", el.dataset.node === node);
  if (!node) { focusField = null; draw(); }
  const s = await (pending || restart());
  if (!s || hovered !== node) return;
  await post(`/api/session/${s.id}/focus?node=${encodeURIComponent(node || "")}&since=${periods}`);
}

async function play() {
  const s = await (pending || restart());
  if (!s || playing) return;
  playing = true;
  $("play").classList.add("playing"); $("play").innerHTML = "&#10074;&#10074;";
  stream = new EventSource(`/api/session/${s.id}/stream?since=${periods}`);
  stream.onmessage = (ev) => { apply(JSON.parse(ev.data)); draw(); };
  stream.addEventListener("done", () => pause());
  stream.onerror = () => { if (playing) { pause(); status("the stream ended (server stopped?)"); } };
}

function pause() {
  playing = false;
  if (stream) { stream.close(); stream = null; }
  $("play").classList.remove("playing"); $("play").innerHTML = "&#x25B6;";
}

async function step() {  // one epoch, as the Playground's Step
  pause();
  const s = await (pending || restart());
  if (!s) return;
  await post(`/api/session/${s.id}/step?epochs=1&since=${periods}`);
}

async function showCommands() {
  const q = new URLSearchParams(settings); q.set("epochs", String(Math.max(epoch, 1)));
  const r = await fetch("/api/command?" + q.toString());
  const body = await r.json();
  if (!r.ok) { showError(body.error); return; }
  $("cmd-changes").hidden = !changes.length;
  $("cmd-changes").textContent = changes.length ? "This screen was changed while training (" + changes.map((c) => `${c.change} at epoch ${c.epoch}`).join("; ") +
    "). The commands train the settings now on screen from epoch 0, which is not the run you watched." : "";
  $("cmd-hydra").textContent = body.hydra;
  $("cmd-claim").textContent = body.claim ? body.claim + "\n\n# then: " + body.claim_command : "(choose a control to compare: a claim compares values)";
  $("cmd-wandb").textContent = body.wandb;
  $("commands").hidden = false;
}

// --- drawing -----------------------------------------------------------------------------
function colour(t) {  // t in 0..1 (0 = -1, 1 = +1)
  if (view.discretize) t = t < 0.5 ? 0 : 1;  // the Playground's "Discretize output": the sign only
  const [a, b, u] = t < 0.5 ? [NEG, MID, t * 2] : [MID, POS, (t - 0.5) * 2];
  return a.map((c, i) => Math.round(c + (b[i] - c) * u));
}

function decode(b64) { return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)); }

function paint(ctx, field, res, w, h) {  // a field of res x res bytes, scaled onto w x h
  const img = new ImageData(res, res);
  for (let i = 0; i < res * res; i++) img.data.set([...colour(field[i] / 255), 255], i * 4);
  const off = document.createElement("canvas"); off.width = res; off.height = res;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, w, h);
}

function drawThumb(canvas, field, res) {  // a node's small picture (no points)
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (field) paint(ctx, field, res, canvas.width, canvas.height);
}

function drawField(canvas, field) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (field) {
    ctx.globalAlpha = 0.75;
    paint(ctx, field, info.resolution, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
  }
  const [lo, hi] = info.extent, sx = canvas.width / (hi - lo), sy = canvas.height / (hi - lo);
  const r = canvas.width > 200 ? 3.5 : 2;
  const dots = (pts, stroke) => {
    for (const [x, y, v] of pts) {
      const t = info.problem === "classification" ? v : (Math.max(-1, Math.min(1, v)) + 1) / 2;
      ctx.fillStyle = `rgb(${colour(t).join(",")})`;
      ctx.beginPath(); ctx.arc((x - lo) * sx, (hi - y) * sy, r, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = stroke; ctx.lineWidth = 1; ctx.stroke();
    }
  };
  dots(info.points.train, "#fff");
  if (settings.showtest === "1") dots(info.points.test, "#000");
}

function drawCurves(canvas, series) {  // series: [{values, colour, width}]
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  let n = 2, top = 0.1;
  for (const s of series) for (const v of s.values) if (v !== null && isFinite(v)) top = Math.max(top, v);
  for (const s of series) n = Math.max(n, s.values.length);
  top = Math.min(top, 5);
  for (const s of series) {
    ctx.strokeStyle = s.colour; ctx.lineWidth = s.width || 1; ctx.beginPath();
    let pen = false;
    const stride = Math.max(1, Math.floor(n / w));  // at most one point per pixel column
    s.values.forEach((v, i) => {
      if (i % stride && i !== s.values.length - 1) return;
      if (v === null || !isFinite(v)) { pen = false; return; }
      const x = (i / (n - 1)) * (w - 2) + 1, y = h - 1 - (Math.min(v, top) / top) * (h - 4);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
  }
}

function last(a) { for (let i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return null; }
function fmt(v, gone) { return gone ? "diverged" : v === null || v === undefined ? "\u2013" : v.toFixed(3); }

function buildGrid() {
  const grid = $("grid"); grid.innerHTML = "";
  if (!info || settings.compare === "none") return;
  for (const [value, label] of info.values) {
    const cell = document.createElement("div"); cell.className = "cell"; cell.dataset.value = value;
    cell.innerHTML = `<div class="title">${label}</div><canvas class="boundary" width="160" height="160"></canvas>` +
      `<canvas class="curve" width="160" height="44"></canvas><div class="nums"></div>`;
    grid.appendChild(cell);
  }
}

function drawNodes() {
  const sizes = info.settings.hidden;
  for (const f of options.features) {
    const el = $("node-" + f);
    if (el) drawThumb(el.querySelector("canvas"), info.feature_fields ? decode(info.feature_fields[f]) : null, info.thumb_resolution);
  }
  sizes.forEach((n, l) => {
    for (let u = 0; u < n; u++) {
      const el = $(`node-h${l}-${u}`);
      if (!el) continue;
      const at = sizes.slice(0, l).reduce((a, b) => a + b, 0) + u;
      drawThumb(el.querySelector("canvas"), neurons ? neurons[at] : null, info.thumb_resolution);
    }
  });
  const out = $("node-out");
  if (out) drawThumb(out.querySelector("canvas"), fields[0], info.resolution);
  drawWeights();
}

function draw() {
  if (!info) return;
  drawNodes();
  drawField($("boundary"), focusField || fields[0]);
  const seeds = info.members.map((m, i) => i).filter((i) => info.members[i].value === 0);
  drawCurves($("curve"), [  // the Playground's chart: training loss grey, test loss black
    ...seeds.slice(1).map((i) => ({ values: pg[i].test, colour: "#bbb" })),
    { values: pg[0].train, colour: "#777", width: 1.5 },
    { values: pg[0].test, colour: "#000", width: 1.5 },
  ]);
  $("test-loss").textContent = fmt(last(pg[0].test), diverged[0]);
  $("train-loss").textContent = fmt(last(pg[0].train), diverged[0]);
  $("test-objective").textContent = fmt(last(curves[0].test), diverged[0]);
  $("train-objective").textContent = fmt(last(curves[0].train), diverged[0]);
  for (const cell of document.querySelectorAll("#grid .cell")) {
    const value = +cell.dataset.value;
    const idx = info.members.map((m, i) => i).filter((i) => info.members[i].value === value);
    drawField(cell.querySelector(".boundary"), fields[idx[0]]);
    drawCurves(cell.querySelector(".curve"), idx.map((i) => ({ values: pg[i].test, colour: "#000" })));
    const mean = (series) => { const v = idx.map((i) => last(series[i].test)).filter((x) => x !== null); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
    const gone = idx.every((i) => diverged[i]);
    cell.querySelector(".nums").textContent = `test loss ${fmt(mean(pg), gone)}` + (idx.length > 1 && !gone ? ` (mean of ${idx.length} seeds)` : "") +
      ` \u00b7 trained on ${fmt(mean(curves), gone)}`;
    cell.classList.toggle("diverged", idx.some((i) => diverged[i]));
  }
}

// --- start -------------------------------------------------------------------------------
(async function main() {
  options = await (await fetch("/api/options")).json();
  buildControls();
  readUrl();
  showSettings();
  writeUrl();
  restart();
})();
