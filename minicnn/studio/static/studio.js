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

// The one banner, for what concerns the whole page (it cannot use the studio); everything else is said
// beside its field, in its own view, and cleared once it is fixed.
function say(text) {
  const box = $("message");
  box.hidden = !text;
  box.textContent = text || "";
}

function fieldError(id, text) { $(id).textContent = text || ""; }

// ------------------------------------------------------------------ the state in the URL

const state = {
  view: "stepper", image: "small", kernel: null, stride: 1, padding: 0, step: 0,
  bkernel: null, bseed: 0, blr: null, bphase: "dW", bstep: 0, sgd: 0, nudge: null, eps: 0.001,
  task: "sobel", lr: null, seed: 0, steps: 10, speed: 15, at: null,
};
const INTEGERS = ["stride", "padding", "step", "seed", "steps", "bseed", "bstep", "sgd", "at"];
const FLOATS = ["lr", "blr", "eps", "speed"];
const VIEWS = ["stepper", "backward", "draw", "kernels", "learn", "curves"];

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [key, value] of params) {
    if (!(key in state)) continue;
    const v = INTEGERS.includes(key) ? parseInt(value, 10) : FLOATS.includes(key) ? parseFloat(value) : value;
    if (typeof v === "number" && !Number.isFinite(v)) continue;   // a number the link mangled: keep the default
    state[key] = v;
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

// ------------------------------------------------------------------ numbers and colours

// a number as the page writes it: up to 4 decimals, no trailing zeros (the server writes sums the same way)
function four(v) {
  const t = Number(v).toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  return t === "-0" || t === "" ? "0" : t;
}

// a measured value: 4 significant digits (a loss of 1e-9 reads 1e-9, not 0.000)
function sig(v) {
  if (v === null || v === undefined) return "";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(2);
}

function diverging(v, m) {   // blue (negative) - white (0) - red (positive), |v| / m
  const t = Math.max(-1, Math.min(1, m > 0 ? v / m : 0));
  return t >= 0 ? [255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t))]
    : [Math.round(255 * (1 + t)), Math.round(255 * (1 + t)), 255];
}

function grey(v, lo, hi) {   // black (lo) to white (hi)
  const t = hi > lo ? Math.max(0, Math.min(1, (v - lo) / (hi - lo))) : 0;
  const g = Math.round(255 * t);
  return [g, g, g];
}

function heat(v, hi) {  // black -> red -> yellow -> white
  const t = hi > 0 ? Math.max(0, Math.min(1, v / hi)) : 0;
  return [Math.round(255 * Math.min(1, 3 * t)), Math.round(255 * Math.max(0, Math.min(1, 3 * t - 1))),
    Math.round(255 * Math.max(0, 3 * t - 2))];
}

const css = (rgb) => `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
const dark = (rgb) => 0.3 * rgb[0] + 0.59 * rgb[1] + 0.11 * rgb[2] < 110;
const maxAbs = (values) => Math.max(0, ...values.flat(2).map((v) => Math.abs(v)));
const range = (values) => { const f = values.flat(2); return [Math.min(...f), Math.max(...f)]; };

// a colour legend: the scale as a bar and its numeric range, under what it explains
function legend(box, kind, lo, hi, what) {
  box.innerHTML = "";
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return;
  const bar = document.createElement("canvas");
  bar.width = 90; bar.height = 10;
  const ctx = bar.getContext("2d");
  for (let i = 0; i < 90; i++) {
    const t = i / 89;
    ctx.fillStyle = css(kind === "diverging" ? diverging(2 * t - 1, 1) : kind === "heat" ? heat(t, 1) : grey(t, 0, 1));
    ctx.fillRect(i, 0, 1, 10);
  }
  const left = document.createElement("span"), right = document.createElement("span");
  left.className = "lo"; right.className = "hi";
  if (kind === "diverging") { left.textContent = sig(-hi); right.textContent = "+" + sig(hi); } else { left.textContent = sig(lo); right.textContent = sig(hi); }
  const text = document.createElement("span");
  text.textContent = kind === "diverging" ? `${what}: blue negative, white 0, red positive` :
    kind === "heat" ? `${what}` : `${what}: black lowest, white highest`;
  box.append(left, bar, right, text);
  box.dataset.kind = kind; box.dataset.lo = kind === "diverging" ? -hi : lo; box.dataset.hi = hi;
}

function drawMap(canvas, values, mode, lo, hi) {
  const H = values.length, W = values[0].length;
  if (lo === undefined) [lo, hi] = range(values);
  const m = Math.max(Math.abs(lo), Math.abs(hi));
  const small = document.createElement("canvas");
  small.width = W; small.height = H;
  const ctx = small.getContext("2d");
  const img = ctx.createImageData(W, H);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const v = values[r][c];
      const rgb = mode === "heat" ? heat(v, hi) : mode === "gray255" ? [v, v, v] : mode === "diverging" ? diverging(v, m) : grey(v, lo, hi);
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

function kernelTile(kernel, caption, m) {
  const box = document.createElement("div");
  box.className = "kernel";
  const c = newCanvas(54, 54);
  drawMap(c, kernel, "diverging", -m, m);
  box.appendChild(c);
  const text = document.createElement("div");
  text.textContent = caption;
  box.appendChild(text);
  return box;
}

function lineChart(canvas, series, { logY = false, xs = null, mark = null } = {}) {
  const ctx = canvas.getContext("2d");
  // the series' names sit in a band above the plot, where no line runs
  const W = canvas.width, H = canvas.height, left = 46, bottom = 22, top = 10 + 13 * series.length, right = 8;
  ctx.clearRect(0, 0, W, H);
  const tf = (v) => (logY ? Math.log10(v) : v);
  const all = series.flatMap((s) => s.values.filter((v) => v !== null && (!logY || v > 0)).map(tf));
  if (!all.length) return;
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(...series.map((s) => s.values.length));
  const x0 = xs ? xs[0] : 0, x1 = xs ? xs[xs.length - 1] : n - 1;
  // one point (a 1-epoch run) sits in the middle instead of on the axis
  const X = (i) => (x1 === x0 ? (left + W - right) / 2 : left + (W - left - right) * ((xs ? xs[i] : i) - x0) / (x1 - x0));
  const Y = (v) => top + (H - top - bottom) * (1 - (tf(v) - lo) / (hi - lo));
  ctx.strokeStyle = "#99a"; ctx.fillStyle = "#445"; ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(left, top); ctx.lineTo(left, H - bottom); ctx.lineTo(W - right, H - bottom); ctx.stroke();
  const label = (v) => (logY ? sig(Math.pow(10, v)) : sig(v));
  ctx.fillText(label(hi), 2, top + 8); ctx.fillText(label(lo), 2, H - bottom);
  ctx.fillText(String(x0), left, H - 6); if (x1 !== x0) ctx.fillText(String(x1), W - right - 30, H - 6);
  if (mark !== null) {
    ctx.strokeStyle = "#f2a900"; ctx.beginPath(); ctx.moveTo(X(mark), top); ctx.lineTo(X(mark), H - bottom); ctx.stroke();
  }
  series.forEach((s, k) => {
    ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = 1.5; ctx.beginPath();
    let started = false;
    const points = [];
    s.values.forEach((v, i) => {
      if (v === null || (logY && v <= 0)) return;
      points.push([X(i), Y(v)]);
      if (started) ctx.lineTo(X(i), Y(v)); else { ctx.moveTo(X(i), Y(v)); started = true; }
    });
    ctx.stroke();
    if (points.length <= 30) for (const [px, py] of points) { ctx.beginPath(); ctx.arc(px, py, 3, 0, 2 * Math.PI); ctx.fill(); }
    ctx.fillText(s.name, W - right - 90, 11 + 13 * k);
  });
}

// ------------------------------------------------------------------ grids of numbers

// The size of a grid's cells, from its largest side (it must fit its box) and its longest number (every
// digit must show): the same in editing and in stepping, so that nothing moves between the two.
function cellSize(rows, cols, texts, box = 330) {
  const side = Math.max(14, Math.min(34, Math.floor(box / Math.max(rows, cols))));
  const longest = Math.max(1, ...texts.map((t) => String(t).length));
  let font = Math.max(9, Math.min(13, Math.round(side * 0.42)));
  // long numbers in a wide grid: a smaller font before a grid wider than its box (never below 8 px)
  const fits = Math.floor((box / cols - 5) / (longest * 0.62));
  if (Math.ceil(longest * font * 0.62) + 6 > Math.max(side, box / cols)) font = Math.max(8, Math.min(font, fits));
  return { w: Math.max(side, Math.ceil(longest * font * 0.62) + 6), h: side, font };
}

function sizeGrid(table, size) {
  table.style.setProperty("--cell-w", size.w + "px");
  table.style.setProperty("--cell-h", size.h + "px");
  table.style.setProperty("--font", size.font + "px");
}

// table: fill with values; texts(r, c) the text, colour(r, c) an [r, g, b] background, classes(r, c) more classes
function fillGrid(table, values, { texts = null, colour = null, classes = null, size = null, editable = null, data = true } = {}) {
  table.innerHTML = "";
  const rows = values.length, cols = rows ? values[0].length : 0;
  const all = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) all.push(texts ? texts(r, c) : (values[r][c] === null ? "" : String(values[r][c])));
  sizeGrid(table, size || cellSize(rows, cols, all));
  values.forEach((row, r) => {
    const tr = document.createElement("tr");
    row.forEach((v, c) => {
      const td = document.createElement("td");
      td.dataset.r = r; td.dataset.c = c;
      if (data && typeof v === "number") td.dataset.value = v;
      const k = classes ? classes(r, c) : "";
      if (k) td.className = k;
      const rgb = colour ? colour(r, c) : null;
      if (rgb) { td.style.background = css(rgb); if (dark(rgb)) td.style.color = "#fff"; }
      const text = all[r * cols + c];
      if (editable && editable(r, c)) {
        const input = document.createElement("input");
        input.value = text;
        input.setAttribute("aria-label", `row ${r + 1}, column ${c + 1}`);
        input.addEventListener("change", () => editable(r, c)(input.value));
        td.appendChild(input);
      } else {
        td.textContent = text;
      }
      tr.appendChild(td);
    });
    table.appendChild(tr);
  });
}

// the first cell of a grid that is not a number, in the learner's words; null when every cell is one
function gridProblem(grid) {
  for (let r = 0; r < grid.length; r++) {
    for (let c = 0; c < grid[r].length; c++) {
      const v = grid[r][c];
      if (typeof v === "number" && Number.isFinite(v)) continue;
      const text = String(v).trim();
      return text === "" ? `row ${r + 1}, column ${c + 1} is empty` :
        `row ${r + 1}, column ${c + 1} is not a number ("${text.slice(0, 12)}")`;
    }
  }
  return null;
}

const parseCell = (text) => (text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text);

function resizeGrid(grid, rows, cols) {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) =>
    (grid[r] && grid[r][c] !== undefined ? grid[r][c] : 0)));
}

// ------------------------------------------------------------------ images and kernels by name

const drawingCrop = { grid: null };

// an image's name in the URL -> its grid: "small", "step", "d:<grid>" (a crop of a drawing), "c:<grid>" (typed)
function imageGrid(name) {
  if (name === "small" || name === "step") return INFO.images[name].map((row) => row.slice());
  if (name.startsWith("c:") || name.startsWith("d:")) return textToGrid(name.slice(2));
  if (name === "drawing" && drawingCrop.grid) return drawingCrop.grid.map((row) => row.slice());
  return null;
}

const exampleKernel = (image) => INFO.example_kernels[image] || "edge_bright_left";
const presetName = (name) => INFO.kernel_aliases[name] || name;

// ------------------------------------------------------------------ 1. the convolution stepper

const stepper = { image: null, kernel: null, trace: null, timer: null, request: 0 };

function loadStepperImage() {
  let grid = imageGrid(state.image);
  if (!grid) {
    fieldError("stepper-error", state.image === "drawing" ? "draw a digit first (Draw a digit), then come back: the stepper uses a crop of it"
      : `the link's image "${state.image.slice(0, 20)}" is none the studio knows: showing the 5x5 example`);
    state.image = "small"; grid = imageGrid("small");
  }
  stepper.image = grid; stepper.imageName = state.image;
  $("image-preset").value = state.image.startsWith("c:") ? "custom" : state.image.startsWith("d:") ? "drawing" : state.image;
  $("image-rows").value = stepper.image.length; $("image-cols").value = stepper.image[0].length;
}

async function loadStepperKernel() {
  if (state.kernel === null) state.kernel = exampleKernel(state.image);
  state.kernel = presetName(state.kernel);
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
    fieldError("stepper-error", `the link's kernel "${k.slice(0, 20)}" is none the studio knows` +
      (INFO.checkpoint ? "" : " (a learned kernel needs a checkpoint)") + `: showing ${exampleKernel(state.image)}`);
    state.kernel = exampleKernel(state.image);
    return loadStepperKernel();
  }
  $("learned-picker").classList.toggle("invisible", $("kernel-preset").value !== "learned");
  $("kernel-size").value = stepper.kernel.length;
}

function fillLearnedPicker() {
  const layer = INFO.conv_layers.find((l) => l.layer === Number($("kernel-layer").value)) || INFO.conv_layers[0];
  const options = (select, n) => {
    const keep = select.value;
    select.innerHTML = "";
    for (let i = 0; i < n; i++) select.add(new Option(String(i), String(i)));
    select.value = keep !== "" && Number(keep) < n ? keep : "0";   // never left without a value
  };
  options($("kernel-filter"), layer.filters);
  options($("kernel-channel"), layer.channels);
}

// what the stepper shows while a grid holds a cell that is not a number: the grids, no stale result
function showProblem() {
  const imageProblem = gridProblem(stepper.image), kernelProblem = gridProblem(stepper.kernel);
  fieldError("image-error", imageProblem ? "image: " + imageProblem : "");
  fieldError("kernel-error", kernelProblem ? "kernel: " + kernelProblem : "");
  return imageProblem || kernelProblem;
}

async function convolve() {
  const id = ++stepper.request;
  if (showProblem()) { stepper.trace = null; renderStep(); return; }
  let trace;
  try {
    trace = await api("/api/convolve", { image: stepper.image, kernel: stepper.kernel, stride: state.stride, padding: state.padding });
  } catch (e) {
    if (id !== stepper.request) return;
    fieldError("stepper-error", e.message); stepper.trace = null; renderStep(); return;
  }
  if (id !== stepper.request) return;  // a newer request is on its way
  if (!$("stepper-error").dataset.keep) fieldError("stepper-error", "");
  delete $("stepper-error").dataset.keep;
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
  const d = trace.conv2d_max_difference;
  $("conv-check").textContent = trace.fits ? "minicnn's Conv2D gives the same output: " +
    (d === 0 ? "exactly" : `to within ${d.toExponential(1)} (the last digits of a float)`) : "";
  renderStep();
}

function renderStep() {
  const t = stepper.trace;
  const img = stepper.image, ker = stepper.kernel;
  if (!t) {   // no valid result: the grids stay editable, the rest is empty (never the previous answer)
    const numbers = img.flat().filter((v) => typeof v === "number");
    fillGrid($("image-grid"), img, {
      size: cellSize(img.length + 2 * state.padding, img[0].length + 2 * state.padding, img.flat().map(String)),
      classes: (r, c) => (typeof img[r][c] === "number" ? "" : "bad"),
      editable: (r, c) => (v) => { stepper.image[r][c] = parseCell(v); customImage(); },
      colour: (r, c) => (typeof img[r][c] === "number" ? grey(img[r][c], Math.min(...numbers), Math.max(...numbers)) : null),
    });
    fillGrid($("kernel-grid"), ker, {
      classes: (r, c) => (typeof ker[r][c] === "number" ? "" : "bad"),
      editable: (r, c) => (v) => { stepper.kernel[r][c] = parseCell(v); customKernel(); },
    });
    fillGrid($("products-grid"), ker.map((row) => row.map(() => null)));
    $("output-grid").innerHTML = ""; $("sum").textContent = ""; $("conv-check").textContent = "";
    $("step-label").textContent = ""; $("output-legend").innerHTML = "";
    writeHash();
    return;
  }
  const s = state.step, P = t.padding;
  const [H, W] = t.input_shape;
  const [KH, KW] = t.kernel_shape;
  const cur = t.fits && s > 0 ? t.steps[s - 1] : null;
  const inWindow = (r, c) => cur && r >= cur.top && r < cur.top + KH && c >= cur.left && c < cur.left + KW;
  const isPad = (r, c) => r < P || c < P || r >= H + P || c >= W + P;
  const [lo, hi] = range(img);
  // the image: every real cell editable (typing starts again from step 0), the window outlined
  fillGrid($("image-grid"), t.padded, {
    classes: (r, c) => [inWindow(r, c) ? "window" : "", isPad(r, c) ? "pad" : ""].join(" ").trim(),
    colour: (r, c) => (isPad(r, c) ? [238, 240, 244] : grey(t.padded[r][c], lo, hi)),
    editable: (r, c) => (isPad(r, c) ? null : (v) => { stepper.image[r - P][c - P] = parseCell(v); customImage(); }),
  });
  legend($("image-legend"), "grey", lo, hi, "image");
  const km = maxAbs(ker);
  fillGrid($("kernel-grid"), ker, {
    colour: (r, c) => diverging(ker[r][c], km),
    editable: (r, c) => (v) => { stepper.kernel[r][c] = parseCell(v); customKernel(); },
  });
  legend($("kernel-legend"), "diverging", -km, km, "kernel");
  if (cur) {
    const pm = maxAbs(cur.products);
    fillGrid($("products-grid"), cur.products, { texts: (r, c) => cur.product_texts[r * KW + c], colour: (r, c) => diverging(cur.products[r][c], pm) });
    $("sum").textContent = `output[${cur.row}, ${cur.col}] = ${cur.text}`;
  } else {
    fillGrid($("products-grid"), Array.from({ length: KH }, () => Array(KW).fill(null)),
      { size: cellSize(KH, KW, t.steps && t.steps.length ? t.steps.flatMap((x) => x.product_texts) : ["0"]) });
    $("sum").textContent = t.fits ? "press Step to slide the window to its first position" : "";
  }
  if (t.fits) {
    const [, Wo] = t.output_shape;
    const done = (r, c) => r * Wo + c < s;
    const om = maxAbs(t.output);
    fillGrid($("output-grid"), t.output, {
      texts: (r, c) => (done(r, c) ? t.output_texts[r][c] : ""),
      size: cellSize(t.output.length, Wo, t.output_texts.flat()),
      colour: (r, c) => (done(r, c) ? diverging(t.output[r][c], om) : null),
      classes: (r, c) => (cur && r === cur.row && c === cur.col ? "current" : done(r, c) ? "filled" : ""),
    });
    legend($("output-legend"), "diverging", -om, om, "output");
    $("step-label").textContent = `step ${s} of ${t.steps.length}`;
  } else {
    $("output-grid").innerHTML = ""; $("output-legend").innerHTML = "";
    $("step-label").textContent = "";
  }
  $("scrub").value = s;
  writeHash();
}

function customImage() {
  state.step = 0;
  if (!gridProblem(stepper.image)) {
    state.image = stepper.imageName = "c:" + gridToText(stepper.image);
    $("image-preset").value = "custom";
  }
  writeHash(); convolve();
}

function customKernel() {
  if (!gridProblem(stepper.kernel)) {
    state.kernel = "c:" + gridToText(stepper.kernel);
    $("kernel-preset").value = "custom"; $("learned-picker").classList.add("invisible");
  }
  writeHash(); convolve();
}

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

function kernelOptions(select, { learned, random }) {
  for (const name of Object.keys(INFO.kernels)) select.add(new Option(INFO.kernel_labels[name], name));
  if (random) select.add(new Option("random (from a seed)", "random"));
  if (learned && INFO.checkpoint && INFO.conv_layers.length) select.add(new Option("a learned kernel of the checkpoint", "learned"));
}

async function setupStepper() {
  const kernels = $("kernel-preset");
  kernelOptions(kernels, { learned: true });
  kernels.add(new Option("custom (edit the grid)", "custom"));
  if (INFO.checkpoint && INFO.conv_layers.length) {
    for (const l of INFO.conv_layers) $("kernel-layer").add(new Option(`${l.layer} (${l.filters} filters)`, String(l.layer)));
    fillLearnedPicker();
  }
  $("image-preset").addEventListener("change", async () => {
    const v = $("image-preset").value;
    if (v === "custom") { customImage(); return; }
    if (v === "drawing") {
      if (!drawingCrop.grid) await cropDrawing();
      if (!drawingCrop.grid) { fieldError("stepper-error", "draw a digit first (Draw a digit), then come back: the stepper uses a crop of it"); $("image-preset").value = "custom"; return; }
      state.image = "d:" + gridToText(drawingCrop.grid);
    } else {
      state.image = v;
      if (!state.kernel || INFO.kernels[state.kernel]) { state.kernel = exampleKernel(v); await loadStepperKernel(); }
    }
    state.step = 0; loadStepperImage(); convolve();
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
    if (v === "custom") { customKernel(); return; }
    if (v === "learned") fillLearnedPicker();
    state.kernel = v === "learned" ? learned() : v;
    try { await loadStepperKernel(); } catch (e) { fieldError("kernel-error", e.message); return; }
    state.step = 0; convolve();
  });
  for (const id of ["kernel-layer", "kernel-filter", "kernel-channel"]) {
    $(id).addEventListener("change", async () => {
      if (id === "kernel-layer") fillLearnedPicker();
      state.kernel = learned();
      try { await loadStepperKernel(); } catch (e) { fieldError("kernel-error", e.message); return; }
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
  loadStepperImage();
  try { await loadStepperKernel(); } catch (e) {
    fieldError("stepper-error", e.message); state.kernel = exampleKernel(state.image); await loadStepperKernel();
  }
  if ($("stepper-error").textContent) $("stepper-error").dataset.keep = "1";   // the link's problem, said once
  await convolve();
}

// ------------------------------------------------------------------ 2. the backward stepper

const back = { trace: null, timer: null, request: 0 };

function backwardKernelChoice() {
  // none chosen here: the forward stepper's kernel when it is a preset (a link's kernel=...), else the example's
  if (state.bkernel === null) state.bkernel = state.kernel && INFO.kernels[presetName(state.kernel)] ? presetName(state.kernel) : exampleKernel(state.image);
  state.bkernel = presetName(state.bkernel);
  return state.bkernel;
}

async function backwardRequest() {
  const image = imageGrid(state.image);
  if (!image) throw new Error(`the image "${state.image.slice(0, 20)}" is none the studio knows; pick one above`);
  const body = { image, sgd_steps: state.sgd };
  if (state.blr !== null) body.lr = state.blr;   // none: the studio picks one this image's SGD converges with
  const k = backwardKernelChoice();
  if (k === "random") body.random_seed = state.bseed;
  else if (INFO.kernels[k]) body.kernel = INFO.kernels[k];
  else if (k.startsWith("c:")) body.kernel = textToGrid(k.slice(2));
  else if (/^L0F\d+$/.test(k) && INFO.checkpoint) body.kernel = (await api("/api/kernel", { layer: INFO.conv_layers[0].layer, filter: Number(k.slice(3)), channel: 0 })).kernel;
  else throw new Error(`the starting kernel "${k.slice(0, 20)}" is none the studio knows; pick one above`);
  if (state.nudge) {
    const [row, col] = state.nudge.split(",").map(Number);
    body.nudge = { row, col, eps: state.eps };
  }
  return api("/api/backward", body);
}

async function backward() {
  const id = ++back.request;
  let trace;
  try { trace = await backwardRequest(); } catch (e) {
    if (id !== back.request) return;
    fieldError("backward-error", e.message); back.trace = null; renderBackward(); return;
  }
  if (id !== back.request) return;
  fieldError("backward-error", "");
  back.trace = trace; back.image = state.image;
  state.blr = trace.sgd.lr; $("b-lr").value = trace.sgd.lr;
  const stable = trace.sgd.stable_lr;
  if (stable !== null && trace.sgd.lr >= stable) {
    fieldError("backward-error", `with the learning rate ${trace.sgd.lr}, SGD on this image diverges: it converges only below ` +
      `${sig(stable)} (2 / the loss's largest curvature); try ${trace.sgd.suggested_lr}`);
  }
  renderBackward();
}

function backwardSteps() {
  const t = back.trace;
  return !t ? 0 : state.bphase === "dx" ? t.dx_cells.length : t.dW_cells.length;
}

function renderBackward() {
  const t = back.trace;
  const ids = ["b-input", "b-delta", "b-products", "b-grad", "b-fmap", "b-target", "b-now", "b-next", "b-kernel-plain", "b-flipped"];
  if (!t) {
    for (const id of ids) $(id).innerHTML = "";
    for (const id of ["b-sum", "b-sgd-label", "b-nudge", "b-step-label"]) $(id).textContent = "";
    writeHash();
    return;
  }
  const dx = state.bphase === "dx";
  const n = backwardSteps();
  state.bstep = Math.max(0, Math.min(state.bstep, n));
  const s = state.bstep;
  const cells = dx ? t.dx_cells : t.dW_cells;
  const cur = s > 0 ? cells[s - 1] : null;
  const H = t.image.length, W = t.image[0].length, Ho = t.delta.length, Wo = t.delta[0].length;
  const [lo, hi] = range(t.image);
  const dm = maxAbs(t.delta);
  $("b-flip-box").hidden = !dx;
  $("b-delta-box").hidden = false;
  if (!dx) {
    // dL/dW[i, j]: delta times the window of x at (i, j), summed
    $("b-in-caption").textContent = cur ? `image x, the window at (${cur.row}, ${cur.col}) that meets δ` : "image x";
    fillGrid($("b-input"), t.image, {
      colour: (r, c) => grey(t.image[r][c], lo, hi),
      classes: (r, c) => (cur && r >= cur.top && r < cur.top + Ho && c >= cur.left && c < cur.left + Wo ? "window" : ""),
    });
    legend($("b-input-legend"), "grey", lo, hi, "image");
    $("b-delta-caption").textContent = "δ = dL/dmap = 2 (map − Sobel x's map) / cells";
    fillGrid($("b-delta"), t.delta, { texts: (r, c) => four(t.delta[r][c]), colour: (r, c) => diverging(t.delta[r][c], dm),
      classes: () => (cur ? "window" : "") });
    $("b-products-caption").textContent = cur ? `δ[r, c] × x[r + ${cur.row}, c + ${cur.col}]` : "δ × the window (press Step)";
    const pm = cur ? maxAbs(cur.products) : 0;
    fillGrid($("b-products"), cur ? cur.products : t.delta.map((row) => row.map(() => null)), {
      texts: (r, c) => (cur ? cur.product_texts[r * Wo + c] : ""), colour: (r, c) => (cur ? diverging(cur.products[r][c], pm) : null),
      size: cellSize(Ho, Wo, t.dW_cells.flatMap((x) => x.product_texts), 260),
    });
    const gm = maxAbs(t.dW);
    $("b-grad-caption").textContent = "dL/dW, cell by cell";
    fillGrid($("b-grad"), t.dW, {
      texts: (r, c) => (r * 3 + c < s ? four(t.dW[r][c]) : ""),
      colour: (r, c) => (r * 3 + c < s ? diverging(t.dW[r][c], gm) : null),
      classes: (r, c) => (cur && r === cur.row && c === cur.col ? "current" : ""),
      size: cellSize(3, 3, t.dW.flat().map(four)),
    });
    legend($("b-grad-legend"), "diverging", -gm, gm, "dL/dW");
    $("b-sum").textContent = cur ? `dL/dW[${cur.row}, ${cur.col}] = ${cur.text}   (Conv2D.backward: ${four(t.dW[cur.row][cur.col])})` :
      "press Step: dL/dW[0, 0] is the sum of δ times the top-left window of the image";
  } else {
    // dL/dx: the full convolution, delta padded with 2 rings of zeros, the kernel turned 180 degrees
    const P = 2, pad = t.delta_padded;
    $("b-in-caption").textContent = "δ padded with 2 rings of zeros";
    const isPad = (r, c) => r < P || c < P || r >= Ho + P || c >= Wo + P;
    fillGrid($("b-input"), pad, {
      texts: (r, c) => four(pad[r][c]),
      colour: (r, c) => (isPad(r, c) ? [238, 240, 244] : diverging(pad[r][c], dm)),
      classes: (r, c) => [cur && r >= cur.top && r < cur.top + 3 && c >= cur.left && c < cur.left + 3 ? "window" : "", isPad(r, c) ? "pad" : ""].join(" ").trim(),
    });
    legend($("b-input-legend"), "diverging", -dm, dm, "δ");
    $("b-delta-box").hidden = true;
    const km = maxAbs(t.kernel);
    const small = cellSize(3, 3, t.kernel.flat().map(four), 130);
    fillGrid($("b-kernel-plain"), t.kernel, { texts: (r, c) => four(t.kernel[r][c]), colour: (r, c) => diverging(t.kernel[r][c], km), size: small });
    fillGrid($("b-flipped"), t.flipped, { texts: (r, c) => four(t.flipped[r][c]), colour: (r, c) => diverging(t.flipped[r][c], km), size: small });
    $("b-products-caption").textContent = cur ? `window × turned kernel, for dL/dx[${cur.row}, ${cur.col}]` : "window × turned kernel (press Step)";
    const pm = cur ? maxAbs(cur.products) : 0;
    fillGrid($("b-products"), cur ? cur.products : [[null, null, null], [null, null, null], [null, null, null]], {
      texts: (r, c) => (cur ? cur.product_texts[r * 3 + c] : ""), colour: (r, c) => (cur ? diverging(cur.products[r][c], pm) : null),
      size: cellSize(3, 3, t.dx_cells.flatMap((x) => x.product_texts), 150),
    });
    const gm = maxAbs(t.dx);
    $("b-grad-caption").textContent = "dL/dx, cell by cell";
    fillGrid($("b-grad"), t.dx, {
      texts: (r, c) => (r * W + c < s ? four(t.dx[r][c]) : ""),
      colour: (r, c) => (r * W + c < s ? diverging(t.dx[r][c], gm) : null),
      classes: (r, c) => (cur && r === cur.row && c === cur.col ? "current" : ""),
      size: cellSize(H, W, t.dx.flat().map(four), 260),
    });
    legend($("b-grad-legend"), "diverging", -gm, gm, "dL/dx");
    $("b-sum").textContent = cur ? `dL/dx[${cur.row}, ${cur.col}] = ${cur.text}   (Conv2D.backward: ${four(t.dx[cur.row][cur.col])})` :
      "press Step: dL/dx is δ, padded, slid under the kernel turned 180 degrees";
  }
  if (cur) { $("b-sum").dataset.total = cur.total; } else { delete $("b-sum").dataset.total; }
  // pointing at a product outlines the two numbers it multiplies
  if (cur) {
    const pairs = dx ? [["b-input", (r, c) => [cur.top + r, cur.left + c]], ["b-flipped", (r, c) => [r, c]]]
      : [["b-delta", (r, c) => [r, c]], ["b-input", (r, c) => [cur.top + r, cur.left + c]]];
    $("b-products").querySelectorAll("td").forEach((td) => {
      const r = Number(td.dataset.r), c = Number(td.dataset.c);
      const cells = () => pairs.map(([id, at]) => { const [i, j] = at(r, c); return $(id).querySelector(`td[data-r="${i}"][data-c="${j}"]`); });
      td.title = dx ? `δ_pad[${cur.top + r}, ${cur.left + c}] × turned kernel[${r}, ${c}]` : `δ[${r}, ${c}] × x[${cur.top + r}, ${cur.left + c}]`;
      td.addEventListener("mouseenter", () => { for (const x of cells()) if (x) x.classList.add("pick"); td.classList.add("pick"); });
      td.addEventListener("mouseleave", () => { for (const x of cells()) if (x) x.classList.remove("pick"); td.classList.remove("pick"); });
    });
  }
  $("b-step-label").textContent = `step ${s} of ${n}`;
  // the maps, and one SGD step
  const mm = Math.max(maxAbs(t.fmap), maxAbs(t.target));
  fillGrid($("b-fmap"), t.fmap, { texts: (r, c) => four(t.fmap[r][c]), colour: (r, c) => diverging(t.fmap[r][c], mm) });
  fillGrid($("b-target"), t.target, { texts: (r, c) => four(t.target[r][c]), colour: (r, c) => diverging(t.target[r][c], mm) });
  const km = Math.max(maxAbs(t.kernel), maxAbs(t.sgd.next.kernel));
  const picked = state.nudge ? state.nudge.split(",").map(Number) : null;
  fillGrid($("b-now"), t.kernel, {
    texts: (r, c) => four(t.kernel[r][c]), colour: (r, c) => diverging(t.kernel[r][c], km),
    classes: (r, c) => (picked && picked[0] === r && picked[1] === c ? "pick" : ""),
  });
  $("b-now").querySelectorAll("td").forEach((td) => td.addEventListener("click", () => {
    state.nudge = `${td.dataset.r},${td.dataset.c}`; backward();
  }));
  fillGrid($("b-next"), t.sgd.next.kernel, { texts: (r, c) => four(t.sgd.next.kernel[r][c]), colour: (r, c) => diverging(t.sgd.next.kernel[r][c], km) });
  $("b-now-caption").textContent = `kernel after ${t.sgd.steps} SGD step${t.sgd.steps === 1 ? "" : "s"} (click a weight to nudge it)`;
  const label = $("b-sgd-label");
  label.textContent = `cosine to Sobel x: ${t.sgd.cosine.toFixed(4)} now → ${t.sgd.next.cosine.toFixed(4)} after the step;  ` +
    `loss ${sig(t.sgd.loss)} → ${sig(t.sgd.next.loss)}   (lr ${t.sgd.lr})`;
  label.dataset.cosine = t.sgd.cosine; label.dataset.next = t.sgd.next.cosine;
  lineChart($("b-cosines"), [{ name: "cosine", colour: "#2f80ed", values: t.sgd.history.map((h) => h.cosine) }]);
  const nudge = $("b-nudge");
  if (t.nudge) {
    const u = t.nudge;
    nudge.textContent = `w[${u.row}, ${u.col}] ± ε: L(w+ε) − L(w) = ${sig(u.loss_plus - u.loss)}, L(w) − L(w−ε) = ${sig(u.loss - u.loss_minus)}; ` +
      `measured ΔL = their mean = ${sig(u.delta_loss)}; ε · dL/dw = ${sig(u.predicted)} (dL/dw = ${four(u.gradient)} from the backward pass); ` +
      `ratio ${(u.delta_loss / u.predicted).toFixed(6)}`;
    nudge.dataset.deltaLoss = u.delta_loss; nudge.dataset.predicted = u.predicted; nudge.dataset.gradient = u.gradient; nudge.dataset.eps = u.eps;
  } else {
    nudge.textContent = "click a weight of the kernel now: the loss is measured with it moved by +ε and −ε";
    for (const k of ["deltaLoss", "predicted", "gradient", "eps"]) delete nudge.dataset[k];
  }
  writeHash();
}

function backStepBy(delta) {
  if (!back.trace) return;
  state.bstep = Math.max(0, Math.min(backwardSteps(), state.bstep + delta));
  renderBackward();
}

function backPause() { clearInterval(back.timer); back.timer = null; $("b-play").textContent = "Play"; }

async function setupBackward() {
  const select = $("b-kernel");
  kernelOptions(select, { random: true });
  if (INFO.checkpoint && INFO.conv_layers.length && INFO.conv_layers[0].channels === 1 && INFO.conv_layers[0].height === 3) {
    for (let f = 0; f < INFO.conv_layers[0].filters; f++) select.add(new Option(`learned: filter ${f} of the first layer`, `L0F${f}`));
  }
  const sync = () => {
    const k = backwardKernelChoice();
    if ([...select.options].some((o) => o.value === k)) select.value = k;
    $("b-seed-box").classList.toggle("invisible", k !== "random");
    if (state.image.startsWith("c:") && !$("b-image").querySelector("option[value=custom]")) {
      $("b-image").add(new Option("the convolution stepper's image", "custom"));
    }
    $("b-image").value = state.image.startsWith("d:") ? "drawing" : state.image.startsWith("c:") ? "custom" : state.image;
    $("b-seed").value = state.bseed; if (state.blr !== null) $("b-lr").value = state.blr; $("b-phase").value = state.bphase; $("b-eps").value = state.eps;
  };
  sync();
  back.sync = sync;
  const restart = () => { backPause(); state.bstep = 0; state.sgd = 0; sync(); backward(); };
  $("b-image").addEventListener("change", async () => {
    const v = $("b-image").value;
    if (v === "drawing") {
      if (!drawingCrop.grid) await cropDrawing();
      if (!drawingCrop.grid) { fieldError("backward-error", "draw a digit first (Draw a digit), then come back: this uses a crop of it"); sync(); return; }
      state.image = "d:" + gridToText(drawingCrop.grid);
    } else if (v !== "custom") { state.image = v; }
    state.blr = null;   // the studio picks a learning rate that converges on this image
    restart();
  });
  select.addEventListener("change", () => { state.bkernel = select.value; state.nudge = null; restart(); });
  $("b-seed").addEventListener("change", () => { state.bseed = parseInt($("b-seed").value, 10) || 0; restart(); });
  $("b-lr").addEventListener("change", () => {
    const v = parseFloat($("b-lr").value);
    if (!(v >= 1e-5 && v <= 1)) { fieldError("backward-error", `the learning rate must be a number from 0.00001 to 1, got "${$("b-lr").value}"`); return; }
    state.blr = v; state.sgd = 0; backward();
  });
  $("b-phase").addEventListener("change", () => { backPause(); state.bphase = $("b-phase").value; state.bstep = 0; renderBackward(); });
  $("b-eps").addEventListener("change", () => {
    const v = parseFloat($("b-eps").value);
    if (!(Math.abs(v) >= 1e-8 && Math.abs(v) <= 1)) { fieldError("backward-error", `ε must be a number from 0.00000001 to 1, got "${$("b-eps").value}"`); return; }
    state.eps = Math.abs(v); backward();
  });
  $("b-step-forward").addEventListener("click", () => backStepBy(1));
  $("b-step-back").addEventListener("click", () => backStepBy(-1));
  $("b-reset").addEventListener("click", () => { backPause(); state.bstep = 0; renderBackward(); });
  $("b-play").addEventListener("click", () => {
    if (back.timer) { backPause(); return; }
    if (state.bstep >= backwardSteps()) state.bstep = 0;
    $("b-play").textContent = "Pause";
    back.timer = setInterval(() => { if (state.bstep >= backwardSteps()) backPause(); else backStepBy(1); }, 700);
  });
  const sgd = (k) => { state.sgd = Math.max(0, Math.min(INFO.limits.sgd_steps, state.sgd + k)); backward(); };
  $("b-sgd").addEventListener("click", () => sgd(1));
  $("b-sgd10").addEventListener("click", () => sgd(10));
  $("b-sgd-back").addEventListener("click", () => sgd(-1));
}

// ------------------------------------------------------------------ 3. draw a digit

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
    fieldError("draw-error", "");
  } catch (e) { fieldError("draw-error", e.message); }
  drawing.inFlight = false;
  if (drawing.dirty) predictNow();
}

function showPrediction(r, ms) {
  drawMap($("seen"), r.image, "gray255");
  legend($("seen-legend"), "grey", 0, 255, "pixels");
  const top = Math.max(...r.saliency.magnitude.flat());
  drawMap($("saliency"), r.saliency.magnitude, "heat", 0, top);
  $("saliency-label").textContent = `for class ${r.saliency.name}, the predicted one; black 0, white ${sig(top)}`;
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
    const [lo, hi] = range(layer.maps);
    const h = document.createElement("h4"); h.textContent = `${layer.name}: ${layer.shape.join(" x ")}`;
    const key = document.createElement("div"); key.className = "legend";
    legend(key, "grey", lo, hi, "activation");
    div.append(h, key);
    const maps = document.createElement("div"); maps.className = "maps";
    const side = layer.shape[1] >= 20 ? 56 : 42;
    for (const m of layer.maps) { const c = newCanvas(side, side); drawMap(c, m, "gray", lo, hi); maps.appendChild(c); }
    div.appendChild(maps); box.appendChild(div);
  }
}

async function cropDrawing() {
  if (!drawing.inked) return;
  try { drawingCrop.grid = (await api("/api/crop", { png: pngOfPad() })).image; } catch (e) { fieldError("draw-error", e.message); }
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
  $("clear").addEventListener("click", () => { clearPad(); fieldError("draw-error", ""); });
  $("to-stepper").addEventListener("click", async () => {
    await cropDrawing();
    if (!drawingCrop.grid) { fieldError("draw-error", "draw something first: the stepper steps through a crop of it"); return; }
    state.image = "d:" + gridToText(drawingCrop.grid); state.step = 0;
    loadStepperImage(); await show("stepper"); convolve();
  });
  if (!INFO.checkpoint) fieldError("draw-error", INFO.hint);
}

// ------------------------------------------------------------------ 4. kernels

let KERNELS = null;

async function setupKernels() {
  if (!INFO.checkpoint) { $("kernel-report").textContent = INFO.hint; return; }
  KERNELS = await api("/api/kernels");
  const box = $("kernel-report");
  box.innerHTML = "";
  const m = maxAbs(KERNELS.kernels.map((k) => k.kernel));
  legend($("kernels-legend"), "diverging", -m, m, "weights (the Sobel matches on their own scale)");
  for (const k of KERNELS.kernels) {
    const pair = document.createElement("div"); pair.className = "kernel";
    pair.appendChild(kernelTile(k.kernel, `filter ${k.filter}`, m));
    if (k.reference) pair.appendChild(kernelTile(k.reference, `${k.label} ${k.similarity >= 0 ? "+" : ""}${k.similarity.toFixed(2)}`, maxAbs(k.reference)));
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
      const sm = maxAbs(s.kernels);
      s.kernels.forEach((k, f) => b.appendChild(kernelTile(k, `${s.matches[f].label} ${s.matches[f].similarity.toFixed(2)}`, sm)));
    };
    $("evolution").addEventListener("input", showSnap);
    showSnap();
  } else {
    $("evolution-missing").textContent = KERNELS.evolution_missing || "this run kept no kernel snapshots";
  }
}

// ------------------------------------------------------------------ 5. learn it yourself

const learn = { session: null, losses: [], playing: false, busy: false, shown: null, request: 0 };

async function trainReset() {
  learn.playing = false; learn.losses = []; learn.shown = null;
  state.task = $("task").value; state.seed = parseInt($("seed").value, 10) || 0; state.lr = parseFloat($("lr").value);
  state.at = null;
  writeHash();
  try {
    const r = await api("/api/train/new", { task: state.task, seed: state.seed, lr: state.lr });
    learn.session = r.session;
    showTraining(r);
    if (!$("learn-error").dataset.keep) fieldError("learn-error", "");
    delete $("learn-error").dataset.keep;
  } catch (e) { fieldError("learn-error", e.message); learn.session = null; }
}

function showKernels(r, step, loss) {
  const box = $("learn-kernels");
  box.innerHTML = "";
  const m = maxAbs(r.kernels);
  legend($("learn-legend"), "diverging", -m, m, "weights");
  r.kernels.forEach((k, f) => box.appendChild(kernelTile(k, `${r.matches[f].label} ${r.matches[f].similarity.toFixed(3)}`, m)));
  box.dataset.step = step;
  box.dataset.kernels = JSON.stringify(r.kernels);
  box.dataset.loss = loss === null || loss === undefined ? "" : String(loss);
}

function showTraining(r) {
  learn.losses.push(...r.losses);
  const last = r.losses.length ? r.losses[r.losses.length - 1] : (learn.losses.length ? learn.losses[learn.losses.length - 1] : null);
  $("timeline").max = r.step; $("timeline").value = r.step;
  learn.shown = null;
  if (state.at !== null) { state.at = null; writeHash(); }   // training again: the timeline is at its end
  lineChart($("loss-curve"), [{ name: "loss", colour: "#2f80ed", values: learn.losses }], { logY: true });
  showKernels(r, r.step, last);
  $("timeline-label").textContent = `step ${r.step} of ${r.step} (the latest)`;
  $("train-status").textContent = `step ${r.step}, loss ${last === null ? "-" : sig(last)}, median |similarity| ${r.median_similarity.toFixed(3)}`;
  $("train-status").dataset.loss = last === null ? "" : last;
}

async function showTimeline(step) {
  if (!learn.session) return;
  const id = ++learn.request;
  try {
    const r = await api("/api/train/at", { session: learn.session, step });
    if (id !== learn.request) return;
    learn.shown = step;
    state.at = step === Number($("timeline").max) ? null : step; writeHash();
    showKernels(r, r.step, r.loss);
    lineChart($("loss-curve"), [{ name: "loss", colour: "#2f80ed", values: learn.losses }], { logY: true, mark: step > 0 ? step - 1 : 0 });
    $("timeline-label").textContent = `step ${r.step} of ${r.steps}: loss ${r.loss === null ? "- (not trained yet)" : sig(r.loss)}`;
  } catch (e) { fieldError("learn-error", e.message); }
}

async function trainSteps(steps) {
  if (learn.busy) return;
  if (!learn.session) await trainReset();
  if (!learn.session) return;
  learn.busy = true;
  try {
    showTraining(await api("/api/train/step", { session: learn.session, steps }));
    fieldError("learn-error", "");
  } catch (e) {
    fieldError("learn-error", e.message); learn.playing = false;
    if (/no training session/.test(e.message)) learn.session = null;
  }
  learn.busy = false;
}

// Play trains `speed` steps a second: each tick trains what the time since the last one is worth
async function trainPlay() {
  if (learn.playing) return;
  learn.playing = true;
  let owed = 0, last = performance.now();
  while (learn.playing) {
    await new Promise((ok) => setTimeout(ok, 50));
    const now = performance.now();
    owed = Math.min(owed + state.speed * (now - last) / 1000, INFO.limits.train_steps);
    last = now;
    const n = Math.floor(owed);
    if (n >= 1) { owed -= n; await trainSteps(n); }
  }
}

function setupLearn() {
  const task = String(state.task).toLowerCase();
  if (!(task in INFO.tasks)) {
    fieldError("learn-error", `the link asks for the task "${String(state.task).slice(0, 20)}"; the tasks are ` +
      `${Object.keys(INFO.tasks).join(", ")}: showing sobel`);
    $("learn-error").dataset.keep = "1";
    state.task = "sobel";
  } else { state.task = task; }
  $("task").value = state.task; $("seed").value = state.seed; $("train-steps").value = state.steps;
  $("lr").value = state.lr || INFO.tasks[state.task].lr;
  if (![...$("speed").options].some((o) => Number(o.value) === state.speed)) state.speed = 15;
  $("speed").value = String(state.speed);
  const label = () => { $("train-button").textContent = `Train ${$("train-steps").value} steps`; state.steps = parseInt($("train-steps").value, 10) || 1; writeHash(); };
  label();
  $("train-steps").addEventListener("input", label);
  $("task").addEventListener("change", () => { $("lr").value = INFO.tasks[$("task").value].lr; trainReset(); });
  $("lr").addEventListener("change", trainReset);
  $("seed").addEventListener("change", trainReset);
  $("speed").addEventListener("change", () => { state.speed = Number($("speed").value); writeHash(); });
  $("train-button").addEventListener("click", () => trainSteps(Math.max(1, Math.min(INFO.limits.train_steps, parseInt($("train-steps").value, 10) || 1))));
  $("train-play").addEventListener("click", trainPlay);
  $("train-pause").addEventListener("click", () => { learn.playing = false; });
  $("train-reset").addEventListener("click", trainReset);
  $("timeline").addEventListener("input", () => { learn.playing = false; showTimeline(Number($("timeline").value)); });
}

// a link with a timeline position: train that many steps from the seed (exact: same seed, same steps), show it
async function openLearn() {
  const at = state.at;
  await trainReset();
  if (at && learn.session) {
    let left = at;
    while (left > 0 && learn.session) {
      const n = Math.min(left, INFO.limits.train_steps);
      const before = Number($("timeline").max);
      await trainSteps(n);
      const done = Number($("timeline").max) - before;
      if (done <= 0) break;
      left -= done;
    }
    await showTimeline(Math.min(at, Number($("timeline").max)));
  }
}

// ------------------------------------------------------------------ 6. training curves

async function setupCurves() {
  if (!INFO.checkpoint || !INFO.metrics) {
    $("curve-table").textContent = INFO.checkpoint ? "this run has no metrics.json" : INFO.hint;
    return;
  }
  const c = await api("/api/curves");
  lineChart($("curve-loss"), [{ name: "training", colour: "#2f80ed", values: c.loss }, { name: "test", colour: "#eb5757", values: c.test_loss }], { logY: true, xs: c.epoch });
  lineChart($("curve-accuracy"), [{ name: "training", colour: "#2f80ed", values: c.accuracy }, { name: "test", colour: "#eb5757", values: c.test_accuracy }], { xs: c.epoch });
  lineChart($("curve-lr"), [{ name: "lr", colour: "#27ae60", values: c.lr }], { xs: c.epoch });
  const columns = [["epoch", "epoch", String], ["loss", "training loss", sig], ["test_loss", "test loss", sig],
    ["accuracy", "training accuracy", (v) => (100 * v).toFixed(2) + "%"], ["test_accuracy", "test accuracy", (v) => (100 * v).toFixed(2) + "%"],
    ["lr", "lr at the epoch's end", sig]];
  const table = $("curve-table");
  table.innerHTML = "<tr>" + columns.map(([, name]) => `<th>${name}</th>`).join("") + "</tr>";
  c.epoch.forEach((_, i) => {
    const tr = document.createElement("tr");
    for (const [key, , format] of columns) {
      const td = document.createElement("td"); td.textContent = c[key][i] === null ? "" : format(c[key][i]); tr.appendChild(td);
    }
    table.appendChild(tr);
  });
}

// ------------------------------------------------------------------ views and start

const loaded = {};

async function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  if (view !== "stepper") pause();
  if (view !== "backward") backPause();
  writeHash();
  try {
    if (view === "kernels" && !loaded.kernels) { loaded.kernels = true; await setupKernels(); }
    if (view === "curves" && !loaded.curves) { loaded.curves = true; await setupCurves(); }
    if (view === "backward" && (!back.trace || back.image !== state.image)) {
      if (back.trace) state.blr = null;   // another image (picked in the other stepper): its own learning rate
      back.sync(); await backward();
    }
    if (view === "stepper" && stepper.image && stepper.imageName !== state.image && !gridProblem(stepper.image)) {
      state.step = 0; loadStepperImage(); await convolve();
    }
    if (view === "learn" && !learn.session) await openLearn();
  } catch (e) { fieldError(view + "-error", e.message); }
}

async function start() {
  readHash();
  try { INFO = await api("/api/info"); } catch (e) {
    // 403: no token and no cookie (or an earlier start's): the message says to open the link the terminal printed
    say(e.status === 403 ? "This page cannot use the studio: " + e.message : "the studio server does not answer: " + e.message);
    document.body.dataset.refused = "1";
    return;
  }
  $("checkpoint").textContent = INFO.checkpoint ? `checkpoint: ${INFO.checkpoint}` : "no checkpoint";
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  setupDraw();
  setupLearn();
  await setupStepper();
  await setupBackward();
  await show(VIEWS.includes(state.view) ? state.view : "stepper");
  document.body.dataset.ready = "1";
}

// a link to another moment pasted into this tab: start again from it
window.addEventListener("hashchange", () => location.reload());
start();
