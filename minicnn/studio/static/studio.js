// minicnn studio: this page only draws. Every number it shows comes from minicnn through /api/... .
"use strict";

const $ = (id) => document.getElementById(id);
let INFO = null;

// ------------------------------------------------------------------ talking to minicnn

// The token the studio printed in its link (?token=...): sent with every request, then taken out of the
// address bar so that a copied link shares the view, not the secret. Without it (a later link, a reload),
// the cookie the studio set on the first visit stands in for it.
const TOKEN = (() => {
  const token = new URLSearchParams(location.search).get("token");
  if (token !== null) history.replaceState(null, "", location.pathname + location.hash);
  return token;
})();

async function api(path, body) {
  const headers = TOKEN ? { Authorization: "token " + TOKEN } : {};
  const options = body === undefined ? { headers } :
    { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) {
    const error = new Error(data.error || ("HTTP " + response.status));
    error.status = response.status;
    throw error;
  }
  if (data.engine) { $("engine").textContent = "computed by minicnn's " + data.engine + " code"; }
  return data;
}

function say(text, isError) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = "message" + (isError ? " error" : "");
}

// ------------------------------------------------------------------ the state in the URL

const state = {
  view: "stepper", image: "small", kernel: "sobel_x", stride: 1, padding: 0, step: 0,
  task: "sobel", lr: null, seed: 0, steps: 10,
};

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, value] of params) {
    if (!(key in state)) continue;
    state[key] = ["stride", "padding", "step", "seed", "steps"].includes(key) ? parseInt(value, 10) :
      key === "lr" ? parseFloat(value) : value;
  }
}

function writeHash() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state)) {
    if (value !== null && value !== undefined && !Number.isNaN(value)) params.set(key, String(value));
  }
  history.replaceState(null, "", "#" + params.toString());
}

// grids in the URL: "1,2,3;4,5,6"
const gridToText = (g) => g.map((row) => row.join(",")).join(";");
const textToGrid = (t) => t.split(";").map((row) => row.split(",").map(Number));

// ------------------------------------------------------------------ drawing helpers

function colour(v, lo, hi, diverging) {
  if (diverging) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const t = Math.max(-1, Math.min(1, v / m));
    return t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
      : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
  }
  const t = hi > lo ? (v - lo) / (hi - lo) : 0;
  const g = Math.round(255 * Math.max(0, Math.min(1, t)));
  return [g, g, g];
}

function heat(v, hi) {  // black -> red -> yellow -> white
  const t = hi > 0 ? Math.max(0, Math.min(1, v / hi)) : 0;
  return [Math.round(255 * Math.min(1, 3 * t)), Math.round(255 * Math.max(0, Math.min(1, 3 * t - 1))),
    Math.round(255 * Math.max(0, 3 * t - 2))];
}

function drawMap(canvas, values, mode) {
  const H = values.length, W = values[0].length;
  const flat = values.flat();
  const lo = Math.min(...flat), hi = Math.max(...flat);
  const small = document.createElement("canvas");
  small.width = W; small.height = H;
  const ctx = small.getContext("2d");
  const img = ctx.createImageData(W, H);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const v = values[r][c];
      const rgb = mode === "heat" ? heat(v, hi) : mode === "gray255" ? [v, v, v] : colour(v, lo, hi, mode === "diverging");
      const i = 4 * (r * W + c);
      img.data[i] = rgb[0]; img.data[i + 1] = rgb[1]; img.data[i + 2] = rgb[2]; img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = false;
  out.clearRect(0, 0, canvas.width, canvas.height);
  out.drawImage(small, 0, 0, canvas.width, canvas.height);
}

function newCanvas(width, height) {
  const c = document.createElement("canvas");
  c.width = width; c.height = height;
  return c;
}

function kernelTile(kernel, caption, cls) {
  const box = document.createElement("div");
  box.className = "kernel" + (cls ? " " + cls : "");
  const c = newCanvas(54, 54);
  drawMap(c, kernel, "diverging");
  box.appendChild(c);
  const text = document.createElement("div");
  text.textContent = caption;
  box.appendChild(text);
  return box;
}

function lineChart(canvas, series, { logY = false, xs = null } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 46, bottom = 22, top = 8, right = 8;
  ctx.clearRect(0, 0, W, H);
  const tf = (v) => (logY ? Math.log10(v) : v);
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && (!logY || v > 0)).map(tf));
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(...series.map((s) => s.values.length));
  const x0 = xs ? xs[0] : 0, x1 = xs ? xs[xs.length - 1] : n - 1;
  const X = (i) => left + (W - left - right) * ((xs ? xs[i] : i) - x0) / Math.max(1e-9, x1 - x0);
  const Y = (v) => top + (H - top - bottom) * (1 - (tf(v) - lo) / (hi - lo));
  ctx.strokeStyle = "#99a"; ctx.fillStyle = "#445"; ctx.font = "11px sans-serif";
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, H - bottom); ctx.lineTo(W - right, H - bottom); ctx.stroke();
  const label = (v) => (logY ? Number(Math.pow(10, v).toPrecision(2)) : Number(v.toPrecision(3))).toString();
  ctx.fillText(label(hi), 2, top + 8); ctx.fillText(label(lo), 2, H - bottom);
  ctx.fillText(String(x0), left, H - 6); ctx.fillText(String(x1), W - right - 30, H - 6);
  series.forEach((s, k) => {
    ctx.strokeStyle = s.colour; ctx.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (v === null || (logY && v <= 0)) return;
      if (started) ctx.lineTo(X(i), Y(v)); else { ctx.moveTo(X(i), Y(v)); started = true; }
    });
    ctx.stroke();
    ctx.fillStyle = s.colour; ctx.fillText(s.name, W - right - 90, top + 12 + 13 * k);
  });
}

// ------------------------------------------------------------------ 1. the convolution stepper

const stepper = { image: null, kernel: null, trace: null, timer: null, drawingCrop: null, request: 0 };

function fillGrid(table, values, { editable = false, onEdit = null, classes = null, texts = null } = {}) {
  table.innerHTML = "";
  values.forEach((row, r) => {
    const tr = document.createElement("tr");
    row.forEach((v, c) => {
      const td = document.createElement("td");
      td.dataset.r = r; td.dataset.c = c;
      if (classes) { const k = classes(r, c); if (k) td.className = k; }
      if (editable) {
        const input = document.createElement("input");
        input.value = v;
        input.addEventListener("change", () => onEdit(r, c, input.value));
        td.appendChild(input);
      } else {
        td.textContent = texts ? texts(r, c) : (v === null ? "" : v);
      }
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
}

function resizeGrid(grid, rows, cols) {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) =>
    (grid[r] && grid[r][c] !== undefined ? grid[r][c] : 0)));
}

async function loadStepperImage() {
  const p = state.image;
  if (p === "small" || p === "step") {
    stepper.image = INFO.images[p].map((row) => row.slice());
  } else if (p === "drawing") {
    if (!stepper.drawingCrop) { say("draw a digit first (Draw a digit), then come back: the stepper uses a crop of it"); state.image = "small"; return loadStepperImage(); }
    stepper.image = stepper.drawingCrop.map((row) => row.slice());
  } else if (p.startsWith("c:")) {
    stepper.image = textToGrid(p.slice(2));
  }
  $("image-preset").value = p.startsWith("c:") ? "custom" : p;
  $("image-rows").value = stepper.image.length; $("image-cols").value = stepper.image[0].length;
}

async function loadStepperKernel() {
  const k = state.kernel;
  if (INFO.kernels[k]) {
    stepper.kernel = INFO.kernels[k].map((row) => row.slice());
    $("kernel-preset").value = k;
  } else if (k.startsWith("c:")) {
    stepper.kernel = textToGrid(k.slice(2));
    $("kernel-preset").value = "custom";
  } else if (/^L\d+F\d+C\d+$/.test(k) && INFO.checkpoint) {
    const [, layer, filter, channel] = k.match(/^L(\d+)F(\d+)C(\d+)$/).map(Number);
    const data = await api("/api/kernel", { layer, filter, channel });
    stepper.kernel = data.kernel;
    $("kernel-preset").value = "learned";
    $("kernel-layer").value = layer; fillLearnedPicker(); $("kernel-filter").value = filter; $("kernel-channel").value = channel;
  } else {
    state.kernel = "sobel_x";
    return loadStepperKernel();
  }
  $("learned-picker").hidden = $("kernel-preset").value !== "learned";
  $("kernel-size").value = stepper.kernel.length;
}

function fillLearnedPicker() {
  const layer = INFO.conv_layers.find((l) => l.layer === Number($("kernel-layer").value)) || INFO.conv_layers[0];
  const options = (select, n) => {
    const keep = select.value;
    select.innerHTML = "";
    for (let i = 0; i < n; i++) select.add(new Option(String(i), String(i)));
    if (Number(keep) < n) select.value = keep;
  };
  options($("kernel-filter"), layer.filters);
  options($("kernel-channel"), layer.channels);
}

async function convolve() {
  const id = ++stepper.request;
  let trace;
  try {
    trace = await api("/api/convolve", { image: stepper.image, kernel: stepper.kernel, stride: state.stride, padding: state.padding });
  } catch (e) { say(e.message, true); return; }
  if (id !== stepper.request) return;  // a newer request is on its way
  say("");
  stepper.trace = trace;
  const total = trace.fits ? trace.steps.length : 0;
  state.step = Math.max(0, Math.min(state.step, total));
  $("scrub").max = total;
  const f = trace.formula;
  $("formula").innerHTML = "";
  $("formula").append(`output size = floor((N + 2P - K) / S) + 1\n  rows:    ${f.rows}\n  columns: ${f.cols}\n`);
  if (!trace.fits) {
    const bad = document.createElement("div"); bad.className = "bad"; bad.textContent = trace.explanation;
    $("formula").appendChild(bad);
  }
  for (const note of trace.notes || []) {
    const n = document.createElement("div"); n.className = "muted"; n.textContent = note; $("formula").appendChild(n);
  }
  $("conv-check").textContent = trace.fits ?
    `Conv2D gives the same output: largest difference ${trace.conv2d_max_difference}` : "";
  renderStep();
}

function renderStep() {
  const t = stepper.trace;
  if (!t) return;
  const s = state.step, P = t.padding;
  const [H, W] = t.input_shape;
  const [KH, KW] = t.kernel_shape;
  const cur = t.fits && s > 0 ? t.steps[s - 1] : null;
  const inWindow = (r, c) => cur && r >= cur.top && r < cur.top + KH && c >= cur.left && c < cur.left + KW;
  // the image: editable when no step is shown, the window highlighted otherwise
  fillGrid($("image-grid"), t.padded, {
    classes: (r, c) => [inWindow(r, c) ? "window" : "", r < P || c < P || r >= H + P || c >= W + P ? "pad" : ""].join(" ").trim(),
    editable: false,
  });
  if (!cur) {  // editable cells of the real image (not the padding)
    $("image-grid").querySelectorAll("td").forEach((td) => {
      const r = Number(td.dataset.r) - P, c = Number(td.dataset.c) - P;
      if (r < 0 || c < 0 || r >= H || c >= W) return;
      const input = document.createElement("input"); input.value = td.textContent; td.textContent = "";
      input.addEventListener("change", () => { stepper.image[r][c] = Number(input.value); customImage(); });
      td.appendChild(input);
    });
  }
  fillGrid($("kernel-grid"), stepper.kernel, {
    editable: true,
    onEdit: (r, c, v) => { stepper.kernel[r][c] = Number(v); customKernel(); },
  });
  if (cur) {
    fillGrid($("products-grid"), cur.products, { texts: (r, c) => cur.product_texts[r * KW + c] });
    $("sum").textContent = `output[${cur.row}, ${cur.col}] = ${cur.text}`;
  } else {
    fillGrid($("products-grid"), Array.from({ length: KH }, () => Array(KW).fill(null)));
    $("sum").textContent = t.fits ? "press Step to slide the window to its first position" : "";
  }
  if (t.fits) {
    const [Ho, Wo] = t.output_shape;
    const done = (r, c) => r * Wo + c < s;
    fillGrid($("output-grid"), t.output, {
      texts: (r, c) => (done(r, c) ? t.output_texts[r][c] : ""),
      classes: (r, c) => (cur && r === cur.row && c === cur.col ? "current" : done(r, c) ? "filled" : ""),
    });
    $("step-label").textContent = `step ${s} of ${t.steps.length}` + (Ho * Wo ? "" : "");
  } else {
    $("output-grid").innerHTML = "";
    $("step-label").textContent = "";
  }
  $("scrub").value = s;
  writeHash();
}

function customImage() { state.image = "c:" + gridToText(stepper.image); state.step = 0; writeHash(); $("image-preset").value = "custom"; convolve(); }
function customKernel() { state.kernel = "c:" + gridToText(stepper.kernel); writeHash(); $("kernel-preset").value = "custom"; convolve(); }

function stepBy(delta) {
  const t = stepper.trace;
  if (!t || !t.fits) return;
  state.step = Math.max(0, Math.min(t.steps.length, state.step + delta));
  renderStep();
}

function play() {
  if (stepper.timer) { pause(); return; }
  const t = stepper.trace;
  if (t && t.fits && state.step >= t.steps.length) state.step = 0;
  $("play").textContent = "Pause";
  stepper.timer = setInterval(() => {
    const tr = stepper.trace;
    if (!tr || !tr.fits || state.step >= tr.steps.length) { pause(); return; }
    stepBy(1);
  }, 600);
}

function pause() { clearInterval(stepper.timer); stepper.timer = null; $("play").textContent = "Play"; }

async function setupStepper() {
  const kernels = $("kernel-preset");
  for (const name of Object.keys(INFO.kernels)) kernels.add(new Option(name, name));
  kernels.add(new Option("custom (edit the grid)", "custom"));
  if (INFO.checkpoint && INFO.conv_layers.length) {
    kernels.add(new Option("a learned kernel of the checkpoint", "learned"));
    for (const l of INFO.conv_layers) $("kernel-layer").add(new Option(`${l.layer} (${l.filters} filters)`, String(l.layer)));
    fillLearnedPicker();
  }
  $("image-preset").addEventListener("change", async () => {
    const v = $("image-preset").value;
    if (v === "custom") { customImage(); return; }
    if (v === "drawing" && !stepper.drawingCrop) await cropDrawing();
    state.image = v; state.step = 0; await loadStepperImage(); convolve();
  });
  const resizeImage = () => {
    const rows = Math.max(1, Math.min(16, Number($("image-rows").value) || 1));
    const cols = Math.max(1, Math.min(16, Number($("image-cols").value) || 1));
    stepper.image = resizeGrid(stepper.image, rows, cols); customImage();
  };
  $("image-rows").addEventListener("change", resizeImage);
  $("image-cols").addEventListener("change", resizeImage);
  const learned = () => `L${$("kernel-layer").value}F${$("kernel-filter").value}C${$("kernel-channel").value}`;
  kernels.addEventListener("change", async () => {
    const v = kernels.value;
    if (v === "custom") { customKernel(); $("learned-picker").hidden = true; return; }
    state.kernel = v === "learned" ? learned() : v;
    try { await loadStepperKernel(); } catch (e) { say(e.message, true); return; }
    state.step = 0; convolve();
  });
  for (const id of ["kernel-layer", "kernel-filter", "kernel-channel"]) {
    $(id).addEventListener("change", async () => {
      if (id === "kernel-layer") fillLearnedPicker();
      state.kernel = learned();
      try { await loadStepperKernel(); } catch (e) { say(e.message, true); return; }
      convolve();
    });
  }
  $("kernel-size").addEventListener("change", () => {
    const k = Math.max(1, Math.min(7, Number($("kernel-size").value) || 1));
    stepper.kernel = resizeGrid(stepper.kernel, k, k); customKernel();
  });
  for (const id of ["stride", "padding"]) {
    $(id).addEventListener("change", () => {
      const v = parseInt($(id).value, 10), lo = id === "stride" ? 1 : 0, hi = INFO.limits[id];
      if (Number.isNaN(v)) { $(id).value = state[id]; return; }  // half-typed: keep what was there
      state[id] = Math.max(lo, Math.min(hi, v)); $(id).value = state[id]; state.step = 0; convolve();
    });
  }
  $("step-forward").addEventListener("click", () => stepBy(1));
  $("step-back").addEventListener("click", () => stepBy(-1));
  $("reset").addEventListener("click", () => { pause(); state.step = 0; renderStep(); });
  $("play").addEventListener("click", play);
  $("scrub").addEventListener("input", () => { state.step = Number($("scrub").value); renderStep(); });
  $("stride").value = state.stride; $("padding").value = state.padding;
  await loadStepperImage();
  try { await loadStepperKernel(); } catch (e) { say(e.message, true); state.kernel = "sobel_x"; await loadStepperKernel(); }
  await convolve();
}

// ------------------------------------------------------------------ 2. draw a digit

const drawing = { inFlight: false, dirty: false, inked: false, last: null };

function pngOfPad() { return $("pad").toDataURL("image/png"); }

function clearPad() {
  const ctx = $("pad").getContext("2d");
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 280, 280);
  drawing.inked = false;
  for (const id of ["seen", "saliency"]) $(id).getContext("2d").clearRect(0, 0, 168, 168);
  $("top-classes").innerHTML = ""; $("featuremaps").innerHTML = ""; $("saliency-label").textContent = "";
}

async function predictNow() {
  if (!INFO.checkpoint || !drawing.inked) return;
  if (drawing.inFlight) { drawing.dirty = true; return; }
  drawing.inFlight = true; drawing.dirty = false;
  const started = performance.now();
  try {
    const r = await api("/api/predict", { png: pngOfPad() });
    const ms = performance.now() - started;
    showPrediction(r, ms);
  } catch (e) { say(e.message, true); }
  drawing.inFlight = false;
  if (drawing.dirty) predictNow();
}

function showPrediction(r, ms) {
  drawMap($("seen"), r.image, "gray255");
  drawMap($("saliency"), r.saliency.magnitude, "heat");
  $("saliency-label").textContent = `for class ${r.saliency.name}, the predicted one`;
  const list = $("top-classes");
  list.innerHTML = "";
  for (const t of r.top) {
    const li = document.createElement("li");
    li.dataset.class = t.class;
    li.textContent = `${t.name}  ${(100 * t.probability).toFixed(1)}%`;
    const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = `${Math.round(120 * t.probability)}px`;
    li.appendChild(bar);
    list.appendChild(li);
  }
  $("predict-time").textContent = `round trip ${ms.toFixed(0)} ms (minicnn ${(1000 * r.server_seconds).toFixed(0)} ms)`;
  $("predict-time").dataset.ms = ms.toFixed(1);
  const box = $("featuremaps");
  box.innerHTML = "";
  for (const layer of r.featuremaps) {
    const div = document.createElement("div"); div.className = "layer-maps";
    const h = document.createElement("h4"); h.textContent = `${layer.name}: ${layer.shape.join(" x ")}`;
    div.appendChild(h);
    const maps = document.createElement("div"); maps.className = "maps";
    const side = layer.shape[1] >= 20 ? 56 : 42;
    for (const m of layer.maps) { const c = newCanvas(side, side); drawMap(c, m, "gray"); maps.appendChild(c); }
    div.appendChild(maps); box.appendChild(div);
  }
}

async function cropDrawing() {
  if (!drawing.inked) return;
  try { stepper.drawingCrop = (await api("/api/crop", { png: pngOfPad() })).image; } catch (e) { say(e.message, true); }
}

function setupDraw() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  clearPad();
  const at = (e) => { const b = pad.getBoundingClientRect(); return [(e.clientX - b.left) * 280 / b.width, (e.clientY - b.top) * 280 / b.height]; };
  pad.addEventListener("pointerdown", (e) => {
    pad.setPointerCapture(e.pointerId);
    drawing.last = at(e);
    ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(drawing.last[0], drawing.last[1], 9, 0, 2 * Math.PI); ctx.fill();
    drawing.inked = true;
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing.last) return;
    const p = at(e);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(drawing.last[0], drawing.last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    drawing.last = p;
    predictNow();
  });
  const up = () => { if (drawing.last) { drawing.last = null; predictNow(); } };
  pad.addEventListener("pointerup", up);
  pad.addEventListener("pointercancel", up);
  $("clear").addEventListener("click", clearPad);
  $("to-stepper").addEventListener("click", async () => {
    await cropDrawing();
    if (!stepper.drawingCrop) { say("draw something first"); return; }
    state.image = "c:" + gridToText(stepper.drawingCrop); state.step = 0;
    await loadStepperImage(); show("stepper"); convolve();
  });
  if (!INFO.checkpoint) say(INFO.hint);
}

// ------------------------------------------------------------------ 3. kernels

let KERNELS = null;

async function setupKernels() {
  if (!INFO.checkpoint) { $("kernel-report").textContent = INFO.hint; return; }
  KERNELS = await api("/api/kernels");
  const box = $("kernel-report");
  box.innerHTML = "";
  for (const k of KERNELS.kernels) {
    const pair = document.createElement("div"); pair.className = "kernel";
    pair.appendChild(kernelTile(k.kernel, `filter ${k.filter}`));
    if (k.reference) pair.appendChild(kernelTile(k.reference, `${k.label} ${k.similarity >= 0 ? "+" : ""}${k.similarity.toFixed(2)}`));
    box.appendChild(pair);
  }
  const ev = KERNELS.evolution;
  if (ev && ev.length) {
    $("evolution-box").hidden = false;
    $("evolution").max = ev.length - 1; $("evolution").value = ev.length - 1;
    const showSnap = () => {
      const s = ev[Number($("evolution").value)];
      $("evolution-label").textContent = s.label;
      const b = $("evolution-kernels"); b.innerHTML = "";
      s.kernels.forEach((k, f) => b.appendChild(kernelTile(k, `${s.matches[f].label} ${s.matches[f].similarity.toFixed(2)}`)));
    };
    $("evolution").addEventListener("input", showSnap);
    showSnap();
  } else {
    $("evolution-missing").textContent = KERNELS.evolution_missing || "this run kept no kernel snapshots";
  }
}

// ------------------------------------------------------------------ 4. learn it yourself

const learn = { session: null, losses: [], playing: false, busy: false, updates: [] };

async function trainReset() {
  learn.playing = false; learn.losses = []; learn.updates = [];
  state.task = $("task").value; state.seed = parseInt($("seed").value, 10) || 0; state.lr = parseFloat($("lr").value);
  writeHash();
  try {
    const r = await api("/api/train/new", { task: state.task, seed: state.seed, lr: state.lr });
    learn.session = r.session;
    showTraining(r);
  } catch (e) { say(e.message, true); learn.session = null; }
}

function showTraining(r) {
  learn.losses.push(...r.losses);
  lineChart($("loss-curve"), [{ name: "loss", colour: "#2f80ed", values: learn.losses }], { logY: true });
  const box = $("learn-kernels");
  box.innerHTML = "";
  r.kernels.forEach((k, f) => box.appendChild(kernelTile(k, `${r.matches[f].label} ${r.matches[f].similarity.toFixed(3)}`)));
  box.dataset.step = r.step;
  box.dataset.kernels = JSON.stringify(r.kernels);
  const now = performance.now();
  learn.updates = learn.updates.filter((t) => now - t < 2000); learn.updates.push(now);
  const rate = learn.updates.length > 1 ? (1000 * (learn.updates.length - 1) / (now - learn.updates[0])).toFixed(1) : "-";
  const last = r.losses.length ? r.losses[r.losses.length - 1].toPrecision(4) : "-";
  $("train-status").textContent = `step ${r.step}, loss ${last}, median |similarity| ${r.median_similarity.toFixed(3)}` +
    (learn.playing ? `, ${rate} updates/s` : "");
}

async function trainOnce() {
  if (learn.busy) return;
  if (!learn.session) await trainReset();
  if (!learn.session) return;
  learn.busy = true;
  const steps = Math.max(1, Math.min(INFO.limits.train_steps, parseInt($("train-steps").value, 10) || 1));
  try {
    showTraining(await api("/api/train/step", { session: learn.session, steps }));
  } catch (e) {
    say(e.message, true); learn.playing = false;
    if (/no training session/.test(e.message)) learn.session = null;
  }
  learn.busy = false;
}

async function trainPlay() {
  if (learn.playing) return;
  learn.playing = true;
  while (learn.playing) {
    await trainOnce();
    await new Promise((ok) => requestAnimationFrame(ok));
  }
}

function setupLearn() {
  $("task").value = state.task; $("seed").value = state.seed; $("train-steps").value = state.steps;
  $("lr").value = state.lr || INFO.tasks[state.task].lr;
  const label = () => { $("train-button").textContent = `Train ${$("train-steps").value} steps`; state.steps = parseInt($("train-steps").value, 10) || 1; writeHash(); };
  label();
  $("train-steps").addEventListener("input", label);
  $("task").addEventListener("change", () => { $("lr").value = INFO.tasks[$("task").value].lr; trainReset(); });
  $("lr").addEventListener("change", trainReset);
  $("seed").addEventListener("change", trainReset);
  $("train-button").addEventListener("click", trainOnce);
  $("train-play").addEventListener("click", trainPlay);
  $("train-pause").addEventListener("click", () => { learn.playing = false; });
  $("train-reset").addEventListener("click", trainReset);
}

// ------------------------------------------------------------------ 5. training curves

async function setupCurves() {
  if (!INFO.checkpoint || !INFO.metrics) {
    $("curve-table").textContent = INFO.checkpoint ? "this run has no metrics.json" : INFO.hint;
    return;
  }
  const c = await api("/api/curves");
  lineChart($("curve-loss"), [{ name: "training", colour: "#2f80ed", values: c.loss }, { name: "test", colour: "#eb5757", values: c.test_loss }], { logY: true, xs: c.epoch });
  lineChart($("curve-accuracy"), [{ name: "training", colour: "#2f80ed", values: c.accuracy }, { name: "test", colour: "#eb5757", values: c.test_accuracy }], { xs: c.epoch });
  lineChart($("curve-lr"), [{ name: "lr", colour: "#27ae60", values: c.lr }], { xs: c.epoch });
  const keys = ["epoch", "loss", "test_loss", "accuracy", "test_accuracy", "lr"];
  const table = $("curve-table");
  table.innerHTML = "<tr>" + keys.map((k) => `<th>${k}</th>`).join("") + "</tr>";
  c.epoch.forEach((_, i) => {
    const tr = document.createElement("tr");
    for (const k of keys) { const td = document.createElement("td"); td.textContent = c[k][i] === null ? "" : String(c[k][i]); tr.appendChild(td); }
    table.appendChild(tr);
  });
}

// ------------------------------------------------------------------ views and start

const loaded = {};

async function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  writeHash();
  try {
    if (view === "kernels" && !loaded.kernels) { loaded.kernels = true; await setupKernels(); }
    if (view === "curves" && !loaded.curves) { loaded.curves = true; await setupCurves(); }
    if (view === "learn" && !learn.session) await trainReset();
  } catch (e) { say(e.message, true); }
}

async function start() {
  readHash();
  try { INFO = await api("/api/info"); } catch (e) {
    // 403: no token and no cookie (or an earlier start's): the message says to open the link the terminal printed
    say(e.status === 403 ? "This page cannot use the studio: " + e.message : "the studio server does not answer: " + e.message, true);
    document.body.dataset.refused = "1";
    return;
  }
  $("checkpoint").textContent = INFO.checkpoint ? `checkpoint: ${INFO.checkpoint}` : "no checkpoint";
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  setupDraw();
  setupLearn();
  await setupStepper();
  await show(["stepper", "draw", "kernels", "learn", "curves"].includes(state.view) ? state.view : "stepper");
  document.body.dataset.ready = "1";
}

// a link to another moment pasted into this tab: start again from it
window.addEventListener("hashchange", () => location.reload());
start();
