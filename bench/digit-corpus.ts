// A small corpus of digits that are not MNIST, generated (never stored): digits rendered
// in several fonts and weights, and drawn with a round pen (like the console's) at
// several stroke widths, sizes and positions; each as dark-on-light PNG, inverted
// (light-on-dark) PNG and a low-quality JPEG. Deterministic: same call, same bytes.
// Used by bench/robustness.ts and test/predict-accuracy.test.ts with `?preprocess=mnist`.
import sharp from 'sharp';

export interface CorpusImage {
  label: number;
  /** What kind of image: font:<family> or pen:<width>:<size>:<position>, plus the variant. */
  source: string;
  variant: 'plain' | 'inverted' | 'jpeg';
  bytes: Buffer;
  mime: 'image/png' | 'image/jpeg';
}

/** Hand-drawn digit strokes in a 100×100 box (one path each, like a quick pen stroke). */
export const PEN_DIGITS: readonly string[] = [
  'M50 10 C 22 10, 16 48, 21 72 C 26 95, 74 95, 79 72 C 84 48, 78 10, 50 10 Z',
  'M36 26 L56 10 L56 90',
  'M24 30 C 27 6, 80 6, 74 36 C 69 56, 32 70, 22 90 L 82 90',
  'M26 16 C 60 0, 86 26, 50 48 C 90 55, 80 102, 22 86',
  'M62 90 L62 10 L18 64 L84 64',
  'M78 12 L34 12 L29 46 C 60 34, 86 55, 76 78 C 66 98, 36 96, 22 83',
  'M70 12 C 40 14, 22 45, 25 70 C 28 96, 76 96, 75 70 C 74 49, 40 46, 26 64',
  'M20 12 L80 12 L46 90',
  'M50 48 C 20 40, 22 10, 50 10 C 78 10, 80 40, 50 48 C 16 56, 20 92, 50 92 C 80 92, 84 56, 50 48 Z',
  'M74 36 C 74 10, 28 10, 28 35 C 28 58, 70 58, 74 36 L 71 90',
];

/** Font families and weights librsvg can render with fontconfig (DejaVu ships with Debian's fontconfig). */
export const FONTS = [
  { family: 'DejaVu Sans', weight: 'normal', style: 'normal' },
  { family: 'DejaVu Sans', weight: 'bold', style: 'normal' },
  { family: 'DejaVu Sans', weight: '200', style: 'normal' }, // ExtraLight: hairline strokes
  { family: 'DejaVu Serif', weight: 'normal', style: 'normal' },
  { family: 'DejaVu Serif', weight: 'normal', style: 'italic' },
  { family: 'DejaVu Sans Mono', weight: 'normal', style: 'normal' },
] as const;

const PAPER = '#f4f1ea';
const INK = '#1a1f2b';

function svg(width: number, height: number, body: string, inverted: boolean): Buffer {
  const [paper, ink] = inverted ? [INK, PAPER] : [PAPER, INK];
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${paper}"/>${body.replaceAll('INK', ink)}</svg>`,
  );
}

async function variants(label: number, source: string, make: (inverted: boolean) => Buffer): Promise<CorpusImage[]> {
  const png = (inverted: boolean) => sharp(make(inverted)).png().toBuffer();
  return [
    { label, source, variant: 'plain', bytes: await png(false), mime: 'image/png' },
    { label, source, variant: 'inverted', bytes: await png(true), mime: 'image/png' },
    { label, source, variant: 'jpeg', bytes: await sharp(make(false)).jpeg({ quality: 25 }).toBuffer(), mime: 'image/jpeg' },
  ];
}

/** The whole corpus: 6 fonts × 10 digits × 3 variants + 3 pen widths × 2 sizes × 2 positions × 10 digits × 3 variants = 540 images. */
export async function generateDigitCorpus(): Promise<CorpusImage[]> {
  const images: CorpusImage[] = [];
  for (const font of FONTS) {
    for (let digit = 0; digit < 10; digit++) {
      const text = `<text x="100" y="150" font-family="${font.family}" font-weight="${font.weight}" font-style="${font.style}" font-size="150" text-anchor="middle" fill="INK">${digit}</text>`;
      images.push(...(await variants(digit, `font:${font.family}/${font.weight}/${font.style}`, (inv) => svg(200, 200, text, inv))));
    }
  }
  // Pen strokes on a 320×320 sheet: stroke width in sheet pixels, digit box size, and where it sits.
  for (const width of [3, 10, 22]) {
    for (const size of [70, 240]) {
      for (const [position, x, y] of [['centre', (320 - size) / 2, (320 - size) / 2], ['corner', 18, 320 - size - 18]] as const) {
        for (let digit = 0; digit < 10; digit++) {
          const scale = size / 100;
          const path = `<path d="${PEN_DIGITS[digit]}" transform="translate(${x} ${y}) scale(${scale})" fill="none" stroke="INK" stroke-width="${width / scale}" stroke-linecap="round" stroke-linejoin="round"/>`;
          images.push(...(await variants(digit, `pen:${width}px:${size}px:${position}`, (inv) => svg(320, 320, path, inv))));
        }
      }
    }
  }
  return images;
}
