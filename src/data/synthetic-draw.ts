// The built-in data set: procedurally drawn cartoon cat and dog faces, written as real JPEG files
// in a folder-per-class layout (cat/, dog/) so they go through the same loader as photos.
//
// Class cues (kept strong so a small ViT at 32 px learns them fast):
//   cat: pointed triangular ears on top of the head, almond eyes with slit pupils, a small pink
//        nose and whiskers;
//   dog: long rounded ears hanging down the sides of the head, a longer light muzzle below it,
//        a big dark nose, round dark eyes, often a pink tongue.
// Nuisance factors, drawn the same way for both classes: position, size, rotation (+-20 deg), fur
// colours from one shared palette, background gradient, background blobs, pixel noise and JPEG
// quality. Faces are rasterised at 3x and area-downsampled, so edges are antialiased.
//
// The drawing, platform-neutral (the browser demo trains on it too); synthetic.ts writes it as JPEG files.
import type { RgbImage } from './decode.ts';
import { resizeRgb } from './resize.ts';
import { gaussian, mixSeed, rng, uniform } from './random.ts';

const SUPERSAMPLE = 3;

type Rgb = [number, number, number];
type Ellipse = { kind: 'ellipse'; cx: number; cy: number; rx: number; ry: number; rot: number; color: Rgb };
type Shape =
  | (Ellipse & { cos: number; sin: number })
  | { kind: 'triangle'; p: [number, number][]; color: Rgb }
  | { kind: 'segment'; a: [number, number]; b: [number, number]; halfWidth: number; color: Rgb };

const FUR: Rgb[] = [
  [222, 140, 62], [130, 130, 136], [48, 44, 42], [236, 234, 228], [118, 78, 48],
  [232, 202, 152], [198, 158, 84], [92, 92, 100], [170, 110, 70],
];

const clamp255 = (v: number) => Math.max(0, Math.min(255, v));
const shade = (c: Rgb, f: number): Rgb => [clamp255(c[0] * f), clamp255(c[1] * f), clamp255(c[2] * f)];
const mix = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
const luminance = (c: Rgb) => 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function randomColor(r: () => number): Rgb {
  return [uniform(r, 20, 240), uniform(r, 20, 240), uniform(r, 20, 240)];
}

function furColor(r: () => number): Rgb {
  const base = pick(r, FUR);
  return [clamp255(base[0] + uniform(r, -18, 18)), clamp255(base[1] + uniform(r, -18, 18)), clamp255(base[2] + uniform(r, -18, 18))];
}

function ellipse(e: Omit<Ellipse, 'kind'>): Shape {
  return { kind: 'ellipse', ...e, cos: Math.cos(e.rot), sin: Math.sin(e.rot) };
}

/** Face parts in head-local units (head radius 1, y down), painted in order. */
function catShapes(r: () => number, fur: Rgb): Shape[] {
  const shapes: Shape[] = [];
  const earInner: Rgb = mix(fur, [240, 160, 170], 0.6);
  const tipX = uniform(r, 0.65, 0.85), tipY = uniform(r, -1.55, -1.35);
  for (const s of [-1, 1]) {
    shapes.push({ kind: 'triangle', p: [[s * 0.95, -0.25], [s * 0.15, -0.9], [s * tipX, tipY]], color: fur });
    shapes.push({ kind: 'triangle', p: [[s * 0.78, -0.45], [s * 0.35, -0.82], [s * (tipX - 0.02), tipY + 0.3]], color: earInner });
  }
  shapes.push(ellipse({ cx: 0, cy: 0, rx: 1.0, ry: 0.88, rot: 0, color: fur }));
  if (r() < 0.5) shapes.push(ellipse({ cx: 0, cy: 0.42, rx: 0.42, ry: 0.3, rot: 0, color: mix(fur, [245, 245, 240], 0.6) }));
  const iris: Rgb = pick(r, [[120, 200, 60], [230, 200, 40], [90, 170, 210], [200, 150, 40]]);
  for (const s of [-1, 1]) {
    shapes.push(ellipse({ cx: s * 0.38, cy: -0.12, rx: 0.2, ry: 0.15, rot: s * -0.25, color: iris }));
    shapes.push(ellipse({ cx: s * 0.38, cy: -0.12, rx: 0.045, ry: 0.14, rot: 0, color: [15, 15, 15] }));
  }
  shapes.push({ kind: 'triangle', p: [[-0.11, 0.2], [0.11, 0.2], [0, 0.33]], color: [235, 130, 150] });
  const line: Rgb = [40, 30, 30];
  shapes.push({ kind: 'segment', a: [0, 0.33], b: [0, 0.45], halfWidth: 0.025, color: line });
  shapes.push({ kind: 'segment', a: [0, 0.45], b: [-0.16, 0.53], halfWidth: 0.025, color: line });
  shapes.push({ kind: 'segment', a: [0, 0.45], b: [0.16, 0.53], halfWidth: 0.025, color: line });
  const whisker: Rgb = luminance(fur) > 140 ? [35, 35, 35] : [245, 245, 245];
  for (const s of [-1, 1]) {
    for (const dy of [-0.12, 0.02, 0.16]) {
      shapes.push({ kind: 'segment', a: [s * 0.25, 0.38 + dy * 0.3], b: [s * uniform(r, 1.25, 1.45), 0.3 + dy * 1.6], halfWidth: 0.03, color: whisker });
    }
  }
  return shapes;
}

function dogShapes(r: () => number, fur: Rgb): Shape[] {
  const shapes: Shape[] = [];
  const earColor: Rgb = r() < 0.5 ? shade(fur, uniform(r, 0.45, 0.75)) : furColor(r);
  const muzzle: Rgb = mix(fur, [240, 232, 215], uniform(r, 0.45, 0.8));
  shapes.push(ellipse({ cx: 0, cy: 0, rx: 0.9, ry: 0.95, rot: 0, color: fur }));
  // Floppy ears: long ellipses from the top of the head hanging down its sides, drawn over it.
  const earLen = uniform(r, 0.75, 0.9), spread = uniform(r, 0.15, 0.35);
  for (const s of [-1, 1]) {
    shapes.push(ellipse({ cx: s * 0.92, cy: 0.1, rx: 0.3, ry: earLen, rot: s * -spread, color: earColor }));
  }
  shapes.push(ellipse({ cx: 0, cy: 0.55, rx: 0.48, ry: 0.42, rot: 0, color: muzzle }));
  for (const s of [-1, 1]) {
    shapes.push(ellipse({ cx: s * 0.34, cy: -0.22, rx: 0.13, ry: 0.13, rot: 0, color: [30, 20, 15] }));
    shapes.push(ellipse({ cx: s * 0.34 + 0.04, cy: -0.26, rx: 0.04, ry: 0.04, rot: 0, color: [250, 250, 250] }));
  }
  shapes.push(ellipse({ cx: 0, cy: 0.3, rx: 0.24, ry: 0.16, rot: 0, color: [22, 18, 18] }));
  const line: Rgb = [35, 25, 25];
  shapes.push({ kind: 'segment', a: [0, 0.44], b: [0, 0.68], halfWidth: 0.03, color: line });
  if (r() < 0.6) shapes.push(ellipse({ cx: uniform(r, -0.08, 0.08), cy: 0.9, rx: 0.15, ry: 0.2, rot: 0, color: [232, 100, 120] }));
  shapes.push({ kind: 'segment', a: [-0.28, 0.74], b: [0.28, 0.74], halfWidth: 0.03, color: line });
  return shapes;
}

function inside(s: Shape, u: number, v: number): boolean {
  if (s.kind === 'ellipse') {
    const dx = u - s.cx, dy = v - s.cy;
    const x = s.cos * dx + s.sin * dy, y = -s.sin * dx + s.cos * dy;
    return (x * x) / (s.rx * s.rx) + (y * y) / (s.ry * s.ry) <= 1;
  }
  if (s.kind === 'triangle') {
    const [a, b, c] = s.p;
    const d1 = (u - b[0]) * (a[1] - b[1]) - (a[0] - b[0]) * (v - b[1]);
    const d2 = (u - c[0]) * (b[1] - c[1]) - (b[0] - c[0]) * (v - c[1]);
    const d3 = (u - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (v - a[1]);
    return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
  }
  const [ax, ay] = s.a, [bx, by] = s.b;
  const dx = bx - ax, dy = by - ay;
  const t = Math.max(0, Math.min(1, ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)));
  const ex = u - ax - t * dx, ey = v - ay - t * dy;
  return ex * ex + ey * ey <= s.halfWidth * s.halfWidth;
}

/** Bounding circle of a shape in local units, for a cheap reject. */
function bounds(s: Shape): { x: number; y: number; r2: number } {
  if (s.kind === 'ellipse') return { x: s.cx, y: s.cy, r2: Math.max(s.rx, s.ry) ** 2 };
  const pts = s.kind === 'triangle' ? s.p : [s.a, s.b];
  const x = pts.reduce((a, p) => a + p[0], 0) / pts.length, y = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  const pad = s.kind === 'segment' ? s.halfWidth : 0;
  return { x, y, r2: Math.max(...pts.map((p) => Math.hypot(p[0] - x, p[1] - y) + pad)) ** 2 };
}

/** Draw one face as a size x size RGB image. */
export function drawSyntheticFace(kind: 'cat' | 'dog', size: number, r: () => number): RgbImage {
  const W = size * SUPERSAMPLE;
  // Background: two-colour linear gradient at a random angle plus a few blobs.
  const bg0 = randomColor(r), bg1 = randomColor(r);
  const angle = uniform(r, 0, 2 * Math.PI), ca = Math.cos(angle), sa = Math.sin(angle);
  const blobs = Array.from({ length: Math.floor(uniform(r, 0, 5)) }, () => ({
    x: uniform(r, 0, W), y: uniform(r, 0, W), r: uniform(r, 0.05, 0.2) * W, color: randomColor(r),
  }));
  // Face placement, identical distributions for both classes.
  const radius = uniform(r, 0.2, 0.28) * W;
  const cx = uniform(r, 0.38, 0.62) * W, cy = uniform(r, 0.45, 0.6) * W;
  const rot = uniform(r, -20, 20) * (Math.PI / 180), cr = Math.cos(rot), sr = Math.sin(rot);
  const fur = furColor(r);
  const shapes = kind === 'cat' ? catShapes(r, fur) : dogShapes(r, fur);
  const boxes = shapes.map(bounds);
  const faceR2 = Math.max(...boxes.map((b) => Math.hypot(b.x, b.y) + Math.sqrt(b.r2))) ** 2;

  const big = new Uint8Array(W * W * 3);
  for (let y = 0; y < W; y++) {
    for (let x = 0; x < W; x++) {
      const t = Math.max(0, Math.min(1, 0.5 + (((x / W - 0.5) * ca + (y / W - 0.5) * sa) * 1.2)));
      let col: Rgb = mix(bg0, bg1, t);
      for (const b of blobs) if ((x - b.x) ** 2 + (y - b.y) ** 2 <= b.r * b.r) col = b.color;
      // Pixel -> head-local coordinates (undo translation, rotation, scale).
      const px = (x + 0.5 - cx) / radius, py = (y + 0.5 - cy) / radius;
      const u = cr * px + sr * py, v = -sr * px + cr * py;
      for (let k = 0; u * u + v * v <= faceR2 && k < shapes.length; k++) {
        const bx = u - boxes[k].x, by = v - boxes[k].y;
        if (bx * bx + by * by > boxes[k].r2) continue;
        if (inside(shapes[k], u, v)) col = shapes[k].color;
      }
      const o = (y * W + x) * 3;
      big[o] = col[0];
      big[o + 1] = col[1];
      big[o + 2] = col[2];
    }
  }
  const data = resizeRgb({ width: W, height: W, data: big }, size, size);
  const sigma = uniform(r, 0, 12);
  if (sigma > 0.5) for (let i = 0; i < data.length; i++) data[i] = clamp255(Math.round(data[i] + sigma * gaussian(r)));
  return { width: size, height: size, data };
}


export const SYNTHETIC_CLASSES = ['cat', 'dog'] as const;

/** Image `index` of class `label` (0 cat, 1 dog) for a seed, and the JPEG quality it is written with. */
export function syntheticSample(seed: number, label: number, index: number, size: number): { image: RgbImage; quality: number } {
  const r = rng(mixSeed(seed, label, index, 0xca7d06));
  const image = drawSyntheticFace(SYNTHETIC_CLASSES[label], size, r);
  return { image, quality: Math.round(uniform(r, 70, 95)) };
}
