// The playground page: controls -> URL -> a training session on the server -> pictures.
// No training happens here: the server trains with the harness's engine and streams
// snapshots (losses, decision-boundary fields) that this file only draws.
"use strict";

const $ = (id) => document.getElementById(id);
const FEATURE_LABELS = { x1: "X\u2081", x2: "X\u2082", x1sq: "X\u2081\u00b2", x2sq: "X\u2082\u00b2",
  x1x2: "X\u2081X\u2082", sin_x1: "sin(X\u2081)", sin_x2: "sin(X\u2082)" };
const DATA_LABELS = { circle: "Circle", xor: "Exclusive or", gauss: "Gaussian", spiral: "Spiral",
  reg_plane: "Plane", reg_gauss: "Multi gaussian" };
const NEG = [245, 147, 34], MID = [232, 234, 235], POS = [8, 119, 189];  // Playground's colours

let options = null;      // /api/options
let settings = {};       // the URL's query, as strings
let info = null;         // the session's fixed facts (members, points, grid)
let curves = null;       // per member: {train: [], test: []}
let fields = [];         // per member: Uint8Array of the field (0..255 = -1..1)
let diverged = [];
let neurons = null;      // the first network's hidden neurons (Uint8Array each), one network on screen only
let periods = 0;         // evaluation periods received (the next "since")
let epoch = 0;
let stream = null;       // the EventSource while playing
let playing = false;
let pending = null;      // the session being created (a Promise)
let token = 0;           // ignores answers for sessions that were replaced

// --- settings and the URL ----------------------------------------------------------------
function readUrl() {
  const q = new URLSearchParams(location.search);
  settings = Object.assign({}, options.defaults);
  for (const [k, v] of q.entries()) settings[k] = v;  // unknown names reach the server: it says what is wrong
}
function writeUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(settings)) if (!(k === "problem" && !v)) q.set(k, v);
  history.replaceState(null, "", "?" + q.toString());
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
  const feats = $("features");
  for (const f of options.features) {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox" id="feat-${f}" value="${f}"> <canvas class="thumb" id="thumb-${f}" width="24" height="24"></canvas> ${FEATURE_LABELS[f] || f}`;
    feats.appendChild(l);
    l.querySelector("input").addEventListener("change", () => {
      const on = options.features.filter((n) => $("feat-" + n).checked);
      change({ features: on.join(",") });
    });
  }
  for (const id of ["lr", "activation", "rate", "seeds", "seed"]) $(id).addEventListener("change", () => change({ [id]: $(id).value }));
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
  $("regenerate").addEventListener("click", () => change({ dataseed: String((+settings.dataseed || 0) + 1) }));
  $("add-layer").addEventListener("click", () => { const h = hidden(); if (h.length < options.limits.layers) change({ hidden: [...h, 2].join(",") }); });
  $("remove-layer").addEventListener("click", () => { const h = hidden(); h.pop(); change({ hidden: h.join(",") }); });
  $("play").addEventListener("click", () => (playing ? pause() : play()));
  $("step").addEventListener("click", step);
  $("reset").addEventListener("click", () => restart());
  $("command").addEventListener("click", showCommands);
  $("close-commands").addEventListener("click", () => { $("commands").hidden = true; });
}

function hidden() { return (settings.hidden || "").split(",").filter((s) => s.trim() !== "").map(Number); }

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
  const feats = settings.features.split(",");
  for (const f of options.features) $("feat-" + f).checked = feats.includes(f);
  $("showtest").checked = settings.showtest === "1";
  const h = hidden(), layers = $("layers"); layers.innerHTML = "";
  $("layer-count").textContent = `${h.length} layer${h.length === 1 ? "" : "s"}`;
  h.forEach((n, i) => {
    const row = document.createElement("div"); row.className = "layer";
    row.innerHTML = `<button class="add-neuron">+</button><button class="remove-neuron">&minus;</button>` +
      `<span class="neurons">${n} neuron${n === 1 ? "" : "s"}</span> <span class="dots">` +
      Array.from({ length: n }, (_, k) => `<canvas class="thumb neuron" data-layer="${i}" data-unit="${k}" width="24" height="24"></canvas>`).join("") + "</span>";
    row.querySelector(".add-neuron").addEventListener("click", () => { const hh = hidden(); if (hh[i] < options.limits.neurons) { hh[i]++; change({ hidden: hh.join(",") }); } });
    row.querySelector(".remove-neuron").addEventListener("click", () => { const hh = hidden(); if (hh[i] > 1) { hh[i]--; change({ hidden: hh.join(",") }); } });
    layers.appendChild(row);
  });
  const comparing = settings.compare !== "none";
  $("grid-col").hidden = !comparing;
  $("out-col").hidden = comparing;  // the grid shows every value instead
  $("grid-title").textContent = comparing ? `Compare: ${$("compare").selectedOptions[0].textContent}, ${settings.seeds} seed(s) each, trained at once` : "";
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
      fields = []; diverged = []; periods = 0;
      apply(body.snapshot);
      status(`${info.members.length} network(s) in ${info.groups} compiled group(s); started in ${info.start_s.toFixed(1)} s`);
      buildGrid();
      draw();
      return info;
    })
    .catch((err) => { if (mine === token) showError(String(err)); return null; });
  if (wasPlaying) pending.then((s) => { if (s) play(); });
  return pending;
}

function apply(snap) {
  if (!info || snap.id !== info.id) return;
  for (let i = 0; i < info.members.length; i++) {
    for (const k of ["train", "test"]) {
      const c = curves[i][k], add = snap.curves[k][i] || [];
      c.length = snap.since;  // the snapshot's curves start at period `since`
      for (const v of add) c.push(v);
    }
    if (snap.fields[i]) fields[i] = decode(snap.fields[i]);
  }
  diverged = snap.diverged;
  neurons = snap.neurons ? snap.neurons.map(decode) : null;
  periods = snap.periods;
  epoch = snap.epoch;
  $("epoch").textContent = String(epoch).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  if (snap.done) pause();
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

async function step() {
  pause();
  const s = await (pending || restart());
  if (!s) return;
  const r = await fetch(`/api/session/${s.id}/step?since=${periods}`, { method: "POST" });
  const body = await r.json();
  if (!r.ok) { showError(body.error); return; }
  apply(body); draw();
}

async function showCommands() {
  const q = new URLSearchParams(settings); q.set("epochs", String(Math.max(epoch, 1)));
  const r = await fetch("/api/command?" + q.toString());
  const body = await r.json();
  if (!r.ok) { showError(body.error); return; }
  $("cmd-hydra").textContent = body.hydra;
  $("cmd-claim").textContent = body.claim ? body.claim + "\n\n# then: " + body.claim_command : "(choose a control to compare: a claim compares values)";
  $("cmd-wandb").textContent = body.wandb;
  $("commands").hidden = false;
}

// --- drawing -----------------------------------------------------------------------------
function colour(t) {  // t in 0..1 (0 = -1, 1 = +1)
  const [a, b, u] = t < 0.5 ? [NEG, MID, t * 2] : [MID, POS, (t - 0.5) * 2];
  return a.map((c, i) => Math.round(c + (b[i] - c) * u));
}

function decode(b64) { return Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)); }

function drawThumb(canvas, field, res) {  // a small field without points (features, neurons)
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!field) return;
  const img = new ImageData(res, res);
  for (let i = 0; i < res * res; i++) img.data.set([...colour(field[i] / 255), 255], i * 4);
  const off = document.createElement("canvas"); off.width = res; off.height = res;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

function drawField(canvas, field) {
  const ctx = canvas.getContext("2d"), res = info.resolution;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (field) {
    const img = new ImageData(res, res);
    for (let i = 0; i < res * res; i++) {
      const [r, g, b] = colour(field[i] / 255);
      img.data.set([r, g, b, 255], i * 4);
    }
    const off = document.createElement("canvas"); off.width = res; off.height = res;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.globalAlpha = 0.75;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
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

function drawThumbs() {
  for (const f of options.features) {
    const el = $("thumb-" + f);
    drawThumb(el, info.feature_fields ? decode(info.feature_fields[f]) : null, info.thumb_resolution);
    el.style.opacity = info.settings.features.includes(f) ? 1 : 0.35;
  }
  const sizes = info.settings.hidden;
  for (const el of document.querySelectorAll("#layers canvas.neuron")) {
    const layer = +el.dataset.layer, unit = +el.dataset.unit;
    const at = sizes.slice(0, layer).reduce((a, b) => a + b, 0) + unit;
    const field = neurons && layer < sizes.length && unit < sizes[layer] ? neurons[at] : null;
    el.style.visibility = field ? "visible" : "hidden";  // one network on screen only
    drawThumb(el, field, info.thumb_resolution);
  }
}

function draw() {
  if (!info) return;
  drawThumbs();
  drawField($("boundary"), fields[0]);
  const seeds = info.members.map((m, i) => i).filter((i) => info.members[i].value === 0);
  drawCurves($("curve"), [
    ...seeds.slice(1).map((i) => ({ values: curves[i].test, colour: "#bbb" })),
    { values: curves[0].train, colour: "#999", width: 1.5 },
    { values: curves[0].test, colour: "#000", width: 1.5 },
  ]);
  $("test-loss").textContent = fmt(last(curves[0].test), diverged[0]);
  $("train-loss").textContent = fmt(last(curves[0].train), diverged[0]);
  for (const cell of document.querySelectorAll("#grid .cell")) {
    const value = +cell.dataset.value;
    const idx = info.members.map((m, i) => i).filter((i) => info.members[i].value === value);
    drawField(cell.querySelector(".boundary"), fields[idx[0]]);
    drawCurves(cell.querySelector(".curve"), idx.map((i) => ({ values: curves[i].test, colour: "#000" })));
    const tests = idx.map((i) => last(curves[i].test)).filter((v) => v !== null);
    const mean = tests.length ? tests.reduce((a, b) => a + b, 0) / tests.length : null;
    const gone = idx.every((i) => diverged[i]);
    cell.querySelector(".nums").textContent = `test loss ${fmt(mean, gone)}` + (idx.length > 1 && !gone ? ` (mean of ${tests.length} seeds)` : "");
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
