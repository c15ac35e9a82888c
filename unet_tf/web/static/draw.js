// Drawing the result: the mask overlay and the background blur, on RGBA bytes.

import { CLASS_COLORS, softAlpha } from "./segment.js";

function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  Object.assign(canvas, { width, height });
  return canvas;
}

// Gaussian blur (sigma in pixels) of RGBA data; the canvas works premultiplied, so colours
// come back divided by the blurred alpha: a normalized convolution.
function blurred(data, width, height, sigma) {
  const src = canvasOf(width, height);
  src.getContext("2d").putImageData(new ImageData(data, width, height), 0, 0);
  const dst = canvasOf(width, height);
  const ctx = dst.getContext("2d", { willReadFrequently: true });
  ctx.filter = `blur(${sigma}px)`;
  ctx.drawImage(src, 0, 0);
  return ctx.getImageData(0, 0, width, height).data;
}

/**
 * The background blur of unet_tf.apps.blur.blur_background into `out` (RGBA bytes): a
 * smoothstep soft mask of the kept probability `keep`, feathered, over a background blurred
 * without the subject's colours. strength and feather are Gaussian sigmas as fractions of
 * the photo's shorter side.
 */
export function drawBlur(photo, keep, strength, feather, out) {
  const { width, height, rgba } = photo;
  const n = width * height;
  const short = Math.min(width, height);
  const sigma = strength * short;
  feather *= short;
  let alpha = softAlpha(keep);
  if (feather > 0) {
    const gray = new Uint8ClampedArray(4 * n);
    for (let i = 0; i < n; i++) {
      gray.fill(Math.round(alpha[i] * 255), 4 * i, 4 * i + 3);
      gray[4 * i + 3] = 255;
    }
    const soft = blurred(gray, width, height, feather);
    alpha = Float32Array.from({ length: n }, (_, i) => soft[4 * i] / 255);
  }
  const weighted = new Uint8ClampedArray(rgba);
  for (let i = 0; i < n; i++) weighted[4 * i + 3] = Math.round((1 - alpha[i]) * 255);
  const background = sigma > 0 ? blurred(weighted, width, height, sigma) : rgba;
  const plain = sigma > 0 ? blurred(new Uint8ClampedArray(rgba), width, height, sigma) : rgba;
  for (let i = 0; i < n; i++) {
    const a = alpha[i];
    const bg = background[4 * i + 3] > 0 ? background : plain;
    for (let c = 0; c < 3; c++) {
      out[4 * i + c] = a * rgba[4 * i + c] + (1 - a) * bg[4 * i + c];
    }
    out[4 * i + 3] = 255;
  }
}

/** Class colours over the photo with `opacity` (0: the photo, 1: the mask), into `out`. */
export function drawOverlay(photo, mask, opacity, out) {
  const { rgba } = photo;
  for (let i = 0; i < mask.length; i++) {
    const color = CLASS_COLORS[mask[i] % CLASS_COLORS.length];
    for (let c = 0; c < 3; c++) {
      out[4 * i + c] = rgba[4 * i + c] * (1 - opacity) + color[c] * opacity;
    }
    out[4 * i + 3] = 255;
  }
}
