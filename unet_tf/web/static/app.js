// The page: load the exported .tflite with LiteRT.js (WASM), segment a photo or the webcam,
// show the mask overlay or the background blur. All numbers come from config.json (training
// size, channels, preprocessing, tensor dtypes and quantization); segment.js does the maths.
//
// For tests and benchmarks the page exposes:
//   window.unetReady            a promise of {model, threads, isolated} once the model loaded
//   window.unetResult           the last result: {name, width, height, classes, mask, timings}
//   window.unetMaskBase64()     the last class mask (uint8, row-major) as base64
//   window.unetSegment(blob)    segment an image file / blob, resolving to unetResult
//   window.unetBenchmark(opts)  median model latency for {runs, threads: [1, 2]}

import { loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";

import { drawBlur, drawOverlay } from "./draw.js";
import * as seg from "./segment.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const state = { photo: null, result: null, logits: null, webcam: null, busy: false };

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// ----------------------------------------------------------------------------- Loading

async function readConfig() {
  const response = await fetch("config.json");
  if (!response.ok) {
    throw new Error(`config.json: HTTP ${response.status}; serve the folder written by ` +
      "unet_tf.web.write_web (unet-tf export --formats tflite,web)");
  }
  const config = await response.json();
  const files = config.export?.tflite ?? {};
  const name = params.get("model") ?? config.web?.model;
  if (!files[name]) {
    throw new Error(`config.json describes the .tflite files ${JSON.stringify(Object.keys(files))}` +
      `; got model=${JSON.stringify(name)}. Pick one of them (?model=FILE)`);
  }
  const pre = config.preprocessing ?? {};
  if ((pre.layout ?? "NHWC") !== "NHWC") {
    throw new Error(`config.json preprocessing.layout is ${pre.layout}; the page feeds NHWC`);
  }
  return { config, name, entry: files[name] };
}

// Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP headers, as
// unet_tf.web.serve sends); elsewhere the single-threaded WASM runs.
async function loadRuntime() {
  const isolated = self.crossOriginIsolated === true;
  if (isolated) {
    try {
      await loadLiteRt("./litert/wasm/", { threads: true });
      return { isolated, threaded: true };
    } catch (error) {
      console.warn("threaded LiteRT.js WASM unavailable, using one thread:", error);
    }
  }
  await loadLiteRt("./litert/wasm/");
  return { isolated, threaded: false };
}

const compiled = new Map(); // threads -> CompiledModel

async function compile(threads) {
  if (!compiled.has(threads)) {
    compiled.set(threads, await loadAndCompile(state.modelUrl, {
      accelerator: "wasm", cpuOptions: { numThreads: threads },
    }));
  }
  return compiled.get(threads);
}

async function init() {
  const { config, name, entry } = await readConfig();
  const runtime = await loadRuntime();
  const wanted = Number(params.get("threads") ?? Math.min(2, navigator.hardwareConcurrency || 1));
  const threads = runtime.threaded ? Math.max(1, wanted) : 1;
  Object.assign(state, { config, entry, threads, runtime, modelUrl: new URL(name, location.href) });
  state.model = await compile(threads);
  const [h, w, c] = entry.input.shape.slice(1);
  state.shape = { h, w, c, classes: entry.output.shape[3] };
  setupControls(config.class_names);
  setStatus(`${name} (${entry.format ?? entry.quantize}) · input ${h}×${w}×${c} · LiteRT.js WASM, ` +
    `${threads} thread${threads > 1 ? "s" : ""}` +
    (runtime.isolated ? "" : " (not cross-origin isolated)") + " · choose or drop a photo");
  return { model: name, threads, isolated: runtime.isolated, threaded: runtime.threaded };
}

// ----------------------------------------------------------------------------- Inference

async function runModel(model, pixels) {
  const { h, w, c } = state.shape;
  const input = new Tensor(seg.toInput(pixels, state.entry.input), [1, h, w, c]);
  try {
    const outputs = await model.run(input);
    const data = outputs[0].toTypedArray().slice();
    for (const t of outputs) t.delete();
    return data;
  } finally {
    input.delete();
  }
}

function keepIndices() {
  return [Number($("keep").value)];
}

async function segment(photo) {
  const { h, w, c, classes } = state.shape;
  const t0 = performance.now();
  const pixels = seg.modelPixels(photo.rgba, photo.height, photo.width, [h, w], c,
    state.config.preprocessing?.resize);
  const t1 = performance.now();
  const output = await runModel(state.model, pixels);
  const t2 = performance.now();
  const logits = seg.toLogits(output, state.entry.output);
  const { mask, keep } = seg.postprocess(logits, h, w, classes, photo.height, photo.width,
    keepIndices());
  const t3 = performance.now();
  state.logits = logits;
  state.result = {
    name: photo.name, width: photo.width, height: photo.height, classes, mask, keep,
    timings: { preprocess: t1 - t0, model: t2 - t1, postprocess: t3 - t2, total: t3 - t0 },
  };
  window.unetResult = state.result;
  return state.result;
}

// PNG pixels arrive unchanged (no colour management); EXIF orientation is applied, as the
// Python predictor's read_image does.
async function decode(blob, name) {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image",
  });
  return fromDrawable(bitmap, bitmap.width, bitmap.height, name);
}

function fromDrawable(source, width, height, name) {
  const canvas = document.createElement("canvas");
  Object.assign(canvas, { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0);
  return { name, width, height, canvas, rgba: ctx.getImageData(0, 0, width, height).data };
}

async function segmentBlob(blob, name = blob.name ?? "photo") {
  stopWebcam();
  state.photo = await decode(blob, name);
  const result = await segment(state.photo);
  render();
  return result;
}

// ----------------------------------------------------------------------------- Drawing

function render() {
  const { photo, result } = state;
  if (!photo || !result) return;
  const view = document.querySelector("input[name=view]:checked").value;
  const canvas = $("view");
  Object.assign(canvas, { width: photo.width, height: photo.height });
  const image = new ImageData(photo.width, photo.height);
  const out = image.data;
  if (view === "blur") {
    drawBlur(photo, result.keep, Number($("strength").value), Number($("feather").value), out);
  } else {
    const opacity = view === "mask" ? 1 : view === "photo" ? 0 : Number($("opacity").value);
    drawOverlay(photo, result.mask, opacity, out);
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  const t = result.timings;
  $("timing").textContent = `${result.width}×${result.height} · model ${t.model.toFixed(1)} ms ` +
    `· resize in ${t.preprocess.toFixed(1)} ms · logits out ${t.postprocess.toFixed(1)} ms` +
    (state.webcam ? ` · ${state.fps?.toFixed(1) ?? "…"} frames/s` : "");
}

// ----------------------------------------------------------------------------- Controls

function setupControls(classNames) {
  const keep = $("keep");
  classNames.forEach((name, i) => keep.add(new Option(name, String(i))));
  // Keep the first class that is not the background, as a portrait mode would.
  const subject = classNames.findIndex((n) => !/^(background|bg)$/i.test(n));
  keep.value = String(Math.max(0, subject));
  $("legend").replaceChildren(...classNames.map((name, i) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.style.background = `rgb(${seg.CLASS_COLORS[i % seg.CLASS_COLORS.length]})`;
    item.append(swatch, name);
    return item;
  }));
  for (const id of ["strength", "feather", "opacity"]) {
    const input = $(id);
    const show = () => { input.nextElementSibling.value = input.value; };
    show();
    input.addEventListener("input", () => { show(); render(); });
  }
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", render);
  }
  keep.addEventListener("change", () => {
    const { result, logits, shape } = state;
    if (!result) return;
    result.keep = seg.postprocess(logits, shape.h, shape.w, shape.classes, result.height,
      result.width, keepIndices()).keep;
    render();
  });
  $("file").addEventListener("change", (event) => {
    const [file] = event.target.files;
    event.target.value = ""; // choosing the same file again fires "change" again
    if (file) segmentBlob(file).catch(fail);
  });
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) segmentBlob(file).catch(fail);
  });
  $("webcam").addEventListener("click", () => (state.webcam ? stopWebcam() : startWebcam()));
}

async function startWebcam() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error("no webcam API here: the page must come from https:// or localhost");
  }
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  state.webcam = stream;
  $("webcam").textContent = "Stop the webcam";
  let last = performance.now();
  const frame = async () => {
    if (state.webcam !== stream) return;
    state.photo = fromDrawable(video, video.videoWidth, video.videoHeight, "webcam");
    await segment(state.photo).catch((error) => { stopWebcam(); fail(error); });
    const now = performance.now();
    state.fps = 1000 / (now - last);
    last = now;
    render();
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

function stopWebcam() {
  if (!state.webcam) return;
  for (const track of state.webcam.getTracks()) track.stop();
  state.webcam = null;
  $("webcam").textContent = "Use the webcam";
}

function fail(error) {
  console.error(error);
  window.unetError = String(error.message ?? error);
  setStatus(`Error: ${window.unetError}`, true);
}

// ----------------------------------------------------------------------------- Hooks

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Rounds alternate between the thread counts, so that load from other processes on the
// machine falls on all of them alike.
async function benchmark({ runs = 20, warmup = 10, threads = [1, 2] } = {}) {
  const { h, w, c } = state.shape;
  const pixels = state.photo
    ? seg.modelPixels(state.photo.rgba, state.photo.height, state.photo.width, [h, w], c)
    : new Float32Array(h * w * c).fill(128);
  const usable = threads.filter((n) => n === 1 || state.runtime.threaded);
  const models = [];
  for (const n of usable) models.push(await compile(n));
  for (const model of models) for (let i = 0; i < warmup; i++) await runModel(model, pixels);
  const times = usable.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (let m = 0; m < models.length; m++) {
      const start = performance.now();
      await runModel(models[m], pixels);
      times[m].push(performance.now() - start);
    }
  }
  return threads.map((n) => {
    const m = usable.indexOf(n);
    if (m < 0) return { threads: n, skipped: "the page is not cross-origin isolated" };
    return { threads: n, runs, median_ms: median(times[m]), min_ms: Math.min(...times[m]) };
  });
}

window.unetMaskBase64 = () => {
  const mask = state.result?.mask;
  if (!mask) return null;
  let text = "";
  for (let i = 0; i < mask.length; i += 0x8000) {
    text += String.fromCharCode(...mask.subarray(i, i + 0x8000));
  }
  return btoa(text);
};
window.unetSegment = (blob, name) => segmentBlob(blob, name);
window.unetBenchmark = benchmark;
window.unetReady = init();
window.unetReady.catch(fail);
