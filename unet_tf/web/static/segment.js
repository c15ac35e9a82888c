// The numeric half of the page: pixels -> model input -> class mask, with no DOM access,
// so that it runs the same in a browser tab, a worker or Node.
//
// It reproduces unet_tf's Python TFLite path (unet_tf/predict.py, TFLitePredictor):
//   1. resize the photo to the training size like tf.image.resize(method="bilinear",
//      antialias=True): a triangle filter widened by the shrink factor, half-pixel centres;
//   2. feed the pixel values 0..255 (quantized with the input tensor's scale / zero point
//      for int8 files): unet_tf/1 .tflite files apply config.json's preprocessing scale and
//      offset themselves, so the page does no scaling of its own;
//   3. resize the logits back to the photo like tf.image.resize(method="bilinear") (half-pixel
//      centres, no antialias), then softmax and argmax per pixel.

// tf.image.rgb_to_grayscale's weights, for models trained on one channel.
const GRAY = [0.2989, 0.587, 0.114];

/**
 * Taps of a separable resize along one axis: for each output index, the first input index
 * and the normalized weights of the inputs from there on.
 *
 * antialias=true is TensorFlow's ScaleAndTranslate with a triangle kernel (tf.image.resize
 * with antialias=True); antialias=false is ResizeBilinear with half-pixel centres.
 *
 * Example: axisTaps(4, 2, true) -> [{start: 0, weights: [0.25, 0.75, 0, ...]}, ...]
 */
export function axisTaps(inSize, outSize, antialias) {
  const taps = [];
  const scale = outSize / inSize;
  if (!antialias) {
    const ratio = inSize / outSize;
    for (let x = 0; x < outSize; x++) {
      const centre = (x + 0.5) * ratio - 0.5;
      const floor = Math.floor(centre);
      const lerp = centre - floor;
      const lower = Math.max(floor, 0);
      const upper = Math.min(Math.ceil(centre), inSize - 1);
      taps.push(upper === lower
        ? { start: lower, weights: [1] }
        : { start: lower, weights: [1 - lerp, lerp] });
    }
    return taps;
  }
  const kernelScale = Math.max(1 / scale, 1); // widen the kernel when shrinking
  for (let x = 0; x < outSize; x++) {
    const centre = (x + 0.5) / scale;
    let start = Math.ceil(centre - kernelScale - 0.5);
    let end = Math.floor(centre + kernelScale - 0.5);
    start = Math.min(Math.max(start, 0), inSize - 1);
    end = Math.min(Math.max(end, 0), inSize - 1) + 1;
    const weights = [];
    let total = 0;
    for (let s = start; s < end; s++) {
      const w = Math.max(0, 1 - Math.abs((s + 0.5 - centre) / kernelScale));
      weights.push(w);
      total += w;
    }
    if (total > 0) for (let i = 0; i < weights.length; i++) weights[i] /= total;
    taps.push({ start, weights });
  }
  return taps;
}

/**
 * Separable resize of float pixels [H, W, C] (row-major) to [h, w, C].
 */
export function resizePlanes(data, height, width, channels, outHeight, outWidth, antialias) {
  const rows = axisTaps(height, outHeight, antialias);
  const cols = axisTaps(width, outWidth, antialias);
  // Rows first (output rows x input columns), then columns.
  const tmp = new Float64Array(outHeight * width * channels);
  for (let y = 0; y < outHeight; y++) {
    const { start, weights } = rows[y];
    const dst = y * width * channels;
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k];
      if (w === 0) continue;
      const src = (start + k) * width * channels;
      for (let i = 0; i < width * channels; i++) tmp[dst + i] += w * data[src + i];
    }
  }
  const out = new Float32Array(outHeight * outWidth * channels);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const { start, weights } = cols[x];
      const dst = (y * outWidth + x) * channels;
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let k = 0; k < weights.length; k++) {
          sum += weights[k] * tmp[(y * width + start + k) * channels + c];
        }
        out[dst + c] = sum;
      }
    }
  }
  return out;
}

/**
 * RGBA bytes of a photo (canvas ImageData.data) -> float32 pixels 0..255 [h, w, channels]
 * at the training size, as unet_tf.data.preprocess.resize_image computes them.
 */
export function modelPixels(rgba, height, width, size, channels, resize = "bilinear") {
  if (resize !== "bilinear") {
    throw new Error(`config.json preprocessing.resize is "${resize}"; this page implements ` +
      '"bilinear" (tf.image.resize bilinear, antialias=True) only');
  }
  if (channels !== 1 && channels !== 3) {
    throw new Error(`config.json input_channels is ${channels}; the page feeds 1 or 3 channels`);
  }
  const n = height * width;
  const planes = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    if (channels === 3) {
      planes[3 * i] = r;
      planes[3 * i + 1] = g;
      planes[3 * i + 2] = b;
    } else {
      planes[i] = GRAY[0] * r + GRAY[1] * g + GRAY[2] * b;
    }
  }
  return resizePlanes(planes, height, width, channels, size[0], size[1], true);
}

// Round half to even, as numpy's rint (the Python predictor quantizes with it).
function rint(v) {
  const r = Math.round(v);
  return (Math.abs(v % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/**
 * Float pixels -> the typed array the model's input tensor takes, from config.json's
 * tensor description ({dtype, quantization: {scale, zero_point} | null}).
 */
export function toInput(pixels, tensor) {
  if (tensor.dtype === "float32") return pixels;
  const ranges = { uint8: [0, 255, Uint8Array], int8: [-128, 127, Int8Array] };
  if (!(tensor.dtype in ranges)) {
    throw new Error(`input dtype ${tensor.dtype} is not supported; use a fp32, fp16 or int8 ` +
      "unet_tf export (float32 or uint8 input)");
  }
  const [lo, hi, Type] = ranges[tensor.dtype];
  const { scale, zero_point: zero } = tensor.quantization ?? { scale: 0, zero_point: 0 };
  const out = new Type(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const q = scale ? pixels[i] / scale + zero : pixels[i];
    out[i] = Math.min(hi, Math.max(lo, rint(q)));
  }
  return out;
}

/** The model's output typed array -> float32 logits (dequantized for int8 files). */
export function toLogits(output, tensor) {
  const q = tensor.quantization;
  if (!q || !q.scale) return Float32Array.from(output);
  const out = new Float32Array(output.length);
  for (let i = 0; i < output.length; i++) out[i] = (output[i] - q.zero_point) * q.scale;
  return out;
}

/**
 * Logits [h, w, K] -> {mask: Uint8Array [H, W], keep: Float32Array [H, W]} at the photo's
 * size: bilinear logits (half-pixel centres), argmax (first class wins ties, as tf.argmax)
 * and the summed softmax probability of the classes in `keep` (indices).
 */
export function postprocess(logits, h, w, classes, height, width, keep = []) {
  const rows = axisTaps(h, height, false);
  const cols = axisTaps(w, width, false);
  const mask = new Uint8Array(height * width);
  const kept = new Float32Array(height * width);
  const isKept = new Uint8Array(classes);
  for (const k of keep) isKept[k] = 1;
  // Rows are interpolated once per output row, columns per output pixel.
  const row = new Float64Array(w * classes);
  const value = new Float64Array(classes);
  for (let y = 0; y < height; y++) {
    row.fill(0);
    const ry = rows[y];
    for (let k = 0; k < ry.weights.length; k++) {
      const weight = ry.weights[k];
      const src = (ry.start + k) * w * classes;
      for (let i = 0; i < w * classes; i++) row[i] += weight * logits[src + i];
    }
    for (let x = 0; x < width; x++) {
      const cx = cols[x];
      value.fill(0);
      for (let k = 0; k < cx.weights.length; k++) {
        const weight = cx.weights[k];
        const src = (cx.start + k) * classes;
        for (let c = 0; c < classes; c++) value[c] += weight * row[src + c];
      }
      let best = 0;
      for (let c = 1; c < classes; c++) if (value[c] > value[best]) best = c;
      let total = 0, keptSum = 0;
      for (let c = 0; c < classes; c++) {
        const e = Math.exp(value[c] - value[best]);
        total += e;
        if (isKept[c]) keptSum += e;
      }
      mask[y * width + x] = best;
      kept[y * width + x] = keptSum / total;
    }
  }
  return { mask, keep: kept };
}

/** smoothstep of the kept probability over [low, high], as unet_tf.apps.blur.soft_mask. */
export function softAlpha(kept, low = 0.3, high = 0.7) {
  const alpha = new Float32Array(kept.length);
  for (let i = 0; i < kept.length; i++) {
    const t = Math.min(1, Math.max(0, (kept[i] - low) / (high - low)));
    alpha[i] = t * t * (3 - 2 * t);
  }
  return alpha;
}

/** tab10, the class colours of unet_tf.viz.class_colors. */
export const CLASS_COLORS = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];
