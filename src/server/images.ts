/**
 * The image work ComfyUI's file routes do with PIL, for PNG files (with `fast-png`): a mask
 * upload's alpha put onto the original image (keeping the original's text chunks, the
 * embedded workflow), and `/view`'s `channel=rgb` / `channel=a` views.
 * @module
 */
import { convertIndexedToRgb, decode, encode, hasPngSignature, type DecodedPng } from "fast-png";

/** Whether the bytes are a PNG file. */
export function isPng(bytes: Uint8Array): boolean {
  return hasPngSignature(bytes);
}

/** A decoded PNG as 8-bit RGBA pixels. @throws {Error} for a bit depth below 8 outside palettes. */
function rgba(png: DecodedPng): Uint8Array {
  const n = png.width * png.height;
  let src: ArrayLike<number> = png.data;
  let channels = png.channels;
  if (png.palette) {
    src = convertIndexedToRgb(png);
    channels = src.length / n;
  } else if (png.depth < 8) {
    throw new Error(`PNG files of ${png.depth}-bit grey are not supported here`);
  }
  const shift = !png.palette && png.depth === 16 ? 8 : 0;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const at = (c: number) => (src[i * channels + c]! >> shift) & 255;
    if (channels <= 2) {
      const g = at(0);
      out.set([g, g, g, channels === 2 ? at(1) : 255], i * 4);
    } else out.set([at(0), at(1), at(2), channels === 4 ? at(3) : 255], i * 4);
  }
  return out;
}

/**
 * The original image with the mask's alpha as its own (ComfyUI's `/upload/mask`): an RGBA
 * PNG keeping the original's text chunks.
 * @throws {Error} when the two are not PNG files of the same size.
 */
export function applyMaskAlpha(original: Uint8Array, mask: Uint8Array): Uint8Array {
  const a = decode(original);
  const m = decode(mask);
  if (a.width !== m.width || a.height !== m.height) throw new Error(`the mask is ${m.width}×${m.height}, the image ${a.width}×${a.height}`);
  const out = rgba(a);
  const alpha = rgba(m);
  for (let i = 3; i < out.length; i += 4) out[i] = alpha[i]!;
  return encode({ width: a.width, height: a.height, data: out, depth: 8, channels: 4, text: a.text });
}

/** `/view?channel=rgb`: the image without alpha; `channel=a`: black with the image's alpha. */
export function channelView(image: Uint8Array, channel: "rgb" | "a"): Uint8Array {
  const png = decode(image);
  const px = rgba(png);
  const n = png.width * png.height;
  if (channel === "rgb") {
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) out.set(px.subarray(i * 4, i * 4 + 3), i * 3);
    return encode({ width: png.width, height: png.height, data: out, depth: 8, channels: 3 });
  }
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) out[i * 4 + 3] = px[i * 4 + 3]!;
  return encode({ width: png.width, height: png.height, data: out, depth: 8, channels: 4 });
}
