// Test support: the pixels of a PNG (8-bit greyscale, RGB or RGBA, not interlaced), decoded with
// node:zlib alone: enough to tell a rendered page from a blank one.
import { inflateSync } from 'node:zlib';

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, row by row. */
  rgba: Buffer;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a),
    pb = Math.abs(p - b),
    pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePng(file: Buffer): Image {
  if (file.length < 8 || !file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG: bad signature');
  let width = 0,
    height = 0,
    colorType = -1;
  const data: Buffer[] = [];
  for (let at = 8; at + 8 <= file.length; ) {
    const length = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const body = file.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8],
        interlace = body[12];
      colorType = body[9]!;
      if (depth !== 8 || interlace !== 0 || ![0, 2, 6].includes(colorType)) {
        throw new Error(`PNG depth ${depth}, colour type ${colorType}, interlace ${interlace}: not decoded here`);
      }
    } else if (type === 'IDAT') {
      data.push(body);
    } else if (type === 'IEND') {
      break;
    }
    at += 12 + length;
  }
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : 1;
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  if (raw.length < height * (stride + 1))
    throw new Error(`PNG data holds ${raw.length} bytes, ${height} rows of ${stride + 1} expected`);
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const above = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels]! : 0,
        b = above[x]!,
        c = x >= channels ? above[x - channels]! : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      if (predictor === undefined) throw new Error(`PNG row ${y}: unknown filter ${filter}`);
      out[x] = (row[x]! + predictor) & 0xff;
    }
  }
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const p = pixels.subarray(i * channels, (i + 1) * channels);
    rgba[i * 4] = p[0]!;
    rgba[i * 4 + 1] = channels === 1 ? p[0]! : p[1]!;
    rgba[i * 4 + 2] = channels === 1 ? p[0]! : p[2]!;
    rgba[i * 4 + 3] = channels === 4 ? p[3]! : 255;
  }
  return { width, height, rgba };
}

/** Pixels within `tolerance` (per channel) of the colour `#rrggbb`. */
export function countColour(image: Image, hex: string, tolerance = 24): number {
  const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < image.width * image.height; i++) {
    if (want.every((v, c) => Math.abs(image.rgba[i * 4 + c]! - v) <= tolerance)) n++;
  }
  return n;
}
