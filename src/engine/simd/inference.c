// WebAssembly SIMD kernels for serving: the forward pass of a seed-net-family model whose
// BatchNorms are folded into its convs (src/serving/fold.ts), run one image at a time so
// that its activations stay in cache. src/serving/folded-forward.mjs drives them.
//
// The 3x3 convs with 4 or more input channels use Winograd's F(2x2, 3x3) (Lavin & Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of outputs is
// computed from its 4x4 input patch with 16 multiplications per (input, output) channel
// pair instead of 36, which makes the multiplications 2.25x fewer; the transforms are
// additions. The first conv (one input channel) is direct. Results equal a direct conv's up
// to float rounding (the serving tests compare them with the model's own forward pass and
// with onnxruntime).
//
// Layout: NHWC images seen as [pixels, channels]; channel counts are multiples of 4 (the
// seed and compact nets' are). The module owns no memory: every buffer is the caller's, in
// the memory it imports. Build: build.sh beside this file.
#include "simd-common.h"

static inline v128_t bias_relu(v128_t acc, v128_t bias) { return wasm_f32x4_max(wasm_f32x4_add(acc, bias), wasm_f32x4_splat(0)); }

// ------------------------------------------------------------------ direct 3x3 conv

// 4 output pixels x 4 output channels of a valid 3x3 conv, plus bias, through ReLU.
static inline void direct_px4_o4(const float* in_px, int in_row, int C, const float* w, int O, v128_t bias, float* out, int O_stride) {
  v128_t a = wasm_f32x4_splat(0), b = a, c_ = a, d = a;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      const float* p = in_px + i * in_row + j * C;
      const float* wt = w + (i * 3 + j) * C * O;
      for (int c = 0; c < C; c++) {
        v128_t wv = wasm_v128_load(wt + c * O);
        a = MADD(a, wasm_v128_load32_splat(p + c), wv);
        b = MADD(b, wasm_v128_load32_splat(p + C + c), wv);
        c_ = MADD(c_, wasm_v128_load32_splat(p + 2 * C + c), wv);
        d = MADD(d, wasm_v128_load32_splat(p + 3 * C + c), wv);
      }
    }
  }
  wasm_v128_store(out, bias_relu(a, bias));
  wasm_v128_store(out + O_stride, bias_relu(b, bias));
  wasm_v128_store(out + 2 * O_stride, bias_relu(c_, bias));
  wasm_v128_store(out + 3 * O_stride, bias_relu(d, bias));
}

// 4 output pixels x 8 output channels (fewer loads per multiply-add than two 4 x 4 blocks).
static inline __attribute__((always_inline)) void direct_px4_o8(const float* in_px, int in_row, const int C, const float* w, int O, v128_t bias0,
                                                                 v128_t bias1, float* out, int O_stride) {
  block4x8 k = block4x8_zero();
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      const float* p = in_px + i * in_row + j * C;
      const float* wt = w + (i * 3 + j) * C * O;
      for (int c = 0; c < C; c++) block4x8_step(&k, p + c, p + C + c, p + 2 * C + c, p + 3 * C + c, wt + c * O);
    }
  }
  block4x8_bias_relu(&k, bias0, bias1);
  block4x8_store(&k, out, O_stride);
}

// The one-input-channel conv (the first): 4 output pixels x 8 output channels, each input
// row's 6 pixels loaded once for its 3 taps.
static inline void direct_c1_px4_o8(const float* in_px, int in_row, const float* w, int O, v128_t bias0, v128_t bias1, float* out) {
  block4x8 k = block4x8_zero();
  for (int i = 0; i < 3; i++) {
    const float* row = in_px + i * in_row;
    v128_t s[6];
    for (int q = 0; q < 6; q++) s[q] = wasm_v128_load32_splat(row + q);
    for (int j = 0; j < 3; j++) {
      v128_t w0 = wasm_v128_load(w + (i * 3 + j) * O), w1 = wasm_v128_load(w + (i * 3 + j) * O + 4);
      k.a0 = MADD(k.a0, s[j], w0); k.a1 = MADD(k.a1, s[j], w1);
      k.b0 = MADD(k.b0, s[j + 1], w0); k.b1 = MADD(k.b1, s[j + 1], w1);
      k.c0 = MADD(k.c0, s[j + 2], w0); k.c1 = MADD(k.c1, s[j + 2], w1);
      k.d0 = MADD(k.d0, s[j + 3], w0); k.d1 = MADD(k.d1, s[j + 3], w1);
    }
  }
  block4x8_bias_relu(&k, bias0, bias1);
  block4x8_store(&k, out, O);
}

// One output pixel x 4 output channels.
static inline void direct_px1_o4(const float* in_px, int in_row, int C, const float* w, int O, v128_t bias, float* out) {
  v128_t a = wasm_f32x4_splat(0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      for (int c = 0; c < C; c++) a = MADD(a, wasm_v128_load32_splat(in_px + i * in_row + j * C + c), wasm_v128_load(w + ((i * 3 + j) * C + c) * O));
  wasm_v128_store(out, bias_relu(a, bias));
}

// out = ReLU(conv3x3_valid(in, w) + bias) for one h x w x C image; w is [3][3][C][O], O % 4 == 0.
EXPORT(conv3x3_direct)
void conv3x3_direct(const float* in, int h, int w, int C, const float* k, const float* bias, int O, float* out) {
  const int oh = h - 2, ow = w - 2, in_row = w * C;
  for (int y = 0; y < oh; y++) {
    const float* in_y = in + y * in_row;
    float* out_y = out + y * ow * O;
    for (int o = 0; o < O;) {
      const int eight = o + 8 <= O;
      v128_t b0 = wasm_v128_load(bias + o), b1 = eight ? wasm_v128_load(bias + o + 4) : b0;
      int x = 0;
      // Blocks of 4 pixels; a ragged end is one more block shifted left (recomputing a few pixels).
      for (; ow >= 4 && x < ow; x += 4) {
        if (x + 4 > ow) x = ow - 4;
        // The first conv's single input channel gets its own kernel.
        if (eight && C == 1) direct_c1_px4_o8(in_y + x, in_row, k + o, O, b0, b1, out_y + x * O + o);
        else if (eight) direct_px4_o8(in_y + x * C, in_row, C, k + o, O, b0, b1, out_y + x * O + o, O);
        else direct_px4_o4(in_y + x * C, in_row, C, k + o, O, b0, out_y + x * O + o, O);
      }
      for (; x < ow; x++) {
        direct_px1_o4(in_y + x * C, in_row, C, k + o, O, b0, out_y + x * O + o);
        if (eight) direct_px1_o4(in_y + x * C, in_row, C, k + o + 4, O, b1, out_y + x * O + o + 4);
      }
      o += eight ? 8 : 4;
    }
  }
}

// ------------------------------------------------------------------ Winograd F(2x2, 3x3)

// u[xi][c][o] = (G g G^T)[xi] for each filter g = k[:, :, c, o], G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
EXPORT(winograd_filter)
void winograd_filter(const float* k, int C, int O, float* u) {
  for (int c = 0; c < C; c++) {
    for (int o = 0; o < O; o++) {
      float g[3][3], t[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) g[i][j] = k[((i * 3 + j) * C + c) * O + o];
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++) u[((i * 4 + j) * C + c) * O + o] = r[j];
      }
    }
  }
}

// The output tiles of an oh x ow output: 2x2 blocks, the last row and column shifted back by
// one when a size is odd (their overlap is computed twice, which avoids padding).
static inline int tile_origin(int t, int n) { return 2 * t + 2 <= n ? 2 * t : n - 2; }

// v[xi][t][c] = (B^T d B)[xi] for each tile t's 4x4 input patch d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
static void input_transform(const float* in, int w, int C, int oh, int ow, float* v, int tiles) {
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, plane = tiles * C;
  for (int ty = 0; ty < th; ty++) {
    const int oy = tile_origin(ty, oh);
    for (int tx = 0; tx < tw; tx++) {
      const int ox = tile_origin(tx, ow), t = ty * tw + tx;
      const float* patch = in + (oy * w + ox) * C;
      float* dst = v + t * C;
      for (int c = 0; c < C; c += 4) {
        v128_t d[4][4], r[4][4];
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) d[i][j] = wasm_v128_load(patch + (i * w + j) * C + c);
        for (int j = 0; j < 4; j++) {
          r[0][j] = wasm_f32x4_sub(d[0][j], d[2][j]);
          r[1][j] = wasm_f32x4_add(d[1][j], d[2][j]);
          r[2][j] = wasm_f32x4_sub(d[2][j], d[1][j]);
          r[3][j] = wasm_f32x4_sub(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; i++) {
          float* row = dst + i * 4 * plane + c;
          wasm_v128_store(row, wasm_f32x4_sub(r[i][0], r[i][2]));
          wasm_v128_store(row + plane, wasm_f32x4_add(r[i][1], r[i][2]));
          wasm_v128_store(row + 2 * plane, wasm_f32x4_sub(r[i][2], r[i][1]));
          wasm_v128_store(row + 3 * plane, wasm_f32x4_sub(r[i][1], r[i][3]));
        }
      }
    }
  }
}

// m[t][o..o+8) = sum over c of a[t][c] * b[c][o..o+8) for 4 tiles t (rows of a, C apart).
static inline __attribute__((always_inline)) void gemm_t4_o8(const float* a, const float* b, const int C, int O, float* m) {
  block4x8 k = block4x8_zero();
  for (int c = 0; c < C; c++) block4x8_step(&k, a + c, a + C + c, a + 2 * C + c, a + 3 * C + c, b + c * O);
  block4x8_store(&k, m, O);
}

// `rows` (1..4) tiles x 4 output channels.
static inline void gemm_tn_o4(const float* a, const float* b, int C, int O, float* m, int rows) {
  for (int r = 0; r < rows; r++) {
    v128_t acc = wasm_f32x4_splat(0);
    for (int c = 0; c < C; c++) acc = MADD(acc, wasm_v128_load32_splat(a + r * C + c), wasm_v128_load(b + c * O));
    wasm_v128_store(m + r * O, acc);
  }
}

// m[xi] = v[xi] x u[xi] for each of the transform's positions: [tiles, C] x [C, O].
static void winograd_gemm(const float* v, const float* u, int C, int O, float* m, int tiles, int positions) {
  for (int xi = 0; xi < positions; xi++) {
    const float* a = v + xi * tiles * C;
    const float* b = u + xi * C * O;
    float* dst = m + xi * tiles * O;
    int t = 0;
    // Blocks of 4 tiles; a ragged end is one more block shifted back (recomputing a few tiles).
    for (; tiles >= 4 && t < tiles; t += 4) {
      if (t + 4 > tiles) t = tiles - 4;
      int o = 0;
      for (; o + 8 <= O; o += 8) {
        // The seed and compact nets' channel counts get unrolled copies.
        if (C == 16) gemm_t4_o8(a + t * C, b + o, 16, O, dst + t * O + o);
        else if (C == 32) gemm_t4_o8(a + t * C, b + o, 32, O, dst + t * O + o);
        else gemm_t4_o8(a + t * C, b + o, C, O, dst + t * O + o);
      }
      for (; o < O; o += 4) gemm_tn_o4(a + t * C, b + o, C, O, dst + t * O + o, 4);
    }
    if (t < tiles)
      for (int o = 0; o < O; o += 4) gemm_tn_o4(a + t * C, b + o, C, O, dst + t * O + o, tiles - t);
  }
}

// out = ReLU(A^T m A + bias) for each tile, A^T = [1 1 1 0; 0 1 -1 -1].
static void output_transform(const float* m, const float* bias, int O, int oh, int ow, float* out, int tiles) {
  const int th = (oh + 1) / 2, tw = (ow + 1) / 2, plane = tiles * O;
  for (int ty = 0; ty < th; ty++) {
    const int oy = tile_origin(ty, oh);
    for (int tx = 0; tx < tw; tx++) {
      const int ox = tile_origin(tx, ow), t = ty * tw + tx;
      const float* src = m + t * O;
      float* dst = out + (oy * ow + ox) * O;
      for (int o = 0; o < O; o += 4) {
        v128_t s[2][4];
        for (int j = 0; j < 4; j++) {
          v128_t m0 = wasm_v128_load(src + j * plane + o), m1 = wasm_v128_load(src + (4 + j) * plane + o);
          v128_t m2 = wasm_v128_load(src + (8 + j) * plane + o), m3 = wasm_v128_load(src + (12 + j) * plane + o);
          s[0][j] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
          s[1][j] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
        }
        v128_t b = wasm_v128_load(bias + o);
        for (int r = 0; r < 2; r++) {
          float* row = dst + r * ow * O + o;
          wasm_v128_store(row, bias_relu(wasm_f32x4_add(wasm_f32x4_add(s[r][0], s[r][1]), s[r][2]), b));
          wasm_v128_store(row + O, bias_relu(wasm_f32x4_sub(wasm_f32x4_sub(s[r][1], s[r][2]), s[r][3]), b));
        }
      }
    }
  }
}

// Scratch floats conv3x3_winograd needs in each of v and m for an h x w input: 16 * tiles * max(C, O).
EXPORT(winograd_scratch)
int winograd_scratch(int h, int w, int C, int O) {
  return 16 * ((h - 1) / 2) * ((w - 1) / 2) * (C > O ? C : O);
}

// out = ReLU(conv3x3_valid(in, g) + bias) for one h x w x C image (h, w >= 4), with u the
// filter transformed by winograd_filter; C % 4 == 0 and O % 4 == 0.
EXPORT(conv3x3_winograd)
void conv3x3_winograd(const float* in, int h, int w, int C, const float* u, const float* bias, int O, float* v, float* m, float* out) {
  const int oh = h - 2, ow = w - 2, tiles = ((oh + 1) / 2) * ((ow + 1) / 2);
  input_transform(in, w, C, oh, ow, v, tiles);
  winograd_gemm(v, u, C, O, m, tiles, 16);
  output_transform(m, bias, O, oh, ow, out, tiles);
}

// ------------------------------------------------------------------ Winograd F(4x4, 3x3)
// The same scheme on 4x4 output blocks from 6x6 patches (interpolation points 0, 1, -1, 2,
// -2 and infinity): 36 multiplications per channel pair for 16 outputs instead of 144,
// 4x fewer; its transforms are longer and its rounding errors a few times larger than
// F(2x2, 3x3)'s, still far below what changes a prediction.

// u[xi][c][o] = (G g G^T)[xi], G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
// (Loops fully unrolled so that the small arrays stay in locals: the module has no stack.)
#define G_ROW(t, g0, g1, g2)                      \
  do {                                            \
    (t)[0] = (g0) / 4;                            \
    (t)[1] = -((g0) + (g1) + (g2)) / 6;           \
    (t)[2] = -((g0) - (g1) + (g2)) / 6;           \
    (t)[3] = (g0) / 24 + (g1) / 12 + (g2) / 6;    \
    (t)[4] = (g0) / 24 - (g1) / 12 + (g2) / 6;    \
    (t)[5] = (g2);                                \
  } while (0)

EXPORT(winograd4_filter)
void winograd4_filter(const float* k, int C, int O, float* u) {
  for (int c = 0; c < C; c++) {
    for (int o = 0; o < O; o++) {
      float t[3][6], r[6];
#pragma clang loop unroll(full)
      for (int j = 0; j < 3; j++) G_ROW(t[j], k[(j * C + c) * O + o], k[((3 + j) * C + c) * O + o], k[((6 + j) * C + c) * O + o]);
#pragma clang loop unroll(full)
      for (int i = 0; i < 6; i++) {
        G_ROW(r, t[0][i], t[1][i], t[2][i]);
#pragma clang loop unroll(full)
        for (int j = 0; j < 6; j++) u[((i * 6 + j) * C + c) * O + o] = r[j];
      }
    }
  }
}

static inline int tile4_origin(int t, int n) { return 4 * t + 4 <= n ? 4 * t : n - 4; }

// B^T d for one column d[0..5] of a patch (B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
// 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]).
static inline __attribute__((always_inline)) void bt_column(const v128_t* d, v128_t* r) {
  const v128_t two = wasm_f32x4_splat(2), four = wasm_f32x4_splat(4), five = wasm_f32x4_splat(5);
  v128_t d4_d2 = wasm_f32x4_sub(d[4], d[2]), d3_d1 = wasm_f32x4_sub(d[3], d[1]);
  r[0] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d[0]), wasm_f32x4_mul(five, d[2])), d[4]);
  r[1] = wasm_f32x4_sub(wasm_f32x4_add(d[3], d[4]), wasm_f32x4_mul(four, wasm_f32x4_add(d[1], d[2])));
  r[2] = wasm_f32x4_add(wasm_f32x4_sub(d[4], d[3]), wasm_f32x4_mul(four, wasm_f32x4_sub(d[1], d[2])));
  r[3] = wasm_f32x4_add(d4_d2, wasm_f32x4_mul(two, d3_d1));
  r[4] = wasm_f32x4_sub(d4_d2, wasm_f32x4_mul(two, d3_d1));
  r[5] = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d[1]), wasm_f32x4_mul(five, d[3])), d[5]);
}

static void input_transform4(const float* in, int w, int C, int oh, int ow, float* v, int tiles) {
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4, plane = tiles * C;
  for (int ty = 0; ty < th; ty++) {
    const int oy = tile4_origin(ty, oh);
    for (int tx = 0; tx < tw; tx++) {
      const int ox = tile4_origin(tx, ow), t = ty * tw + tx;
      const float* patch = in + (oy * w + ox) * C;
      float* dst = v + t * C;
      for (int c = 0; c < C; c += 4) {
        v128_t cols[6][6];  // cols[j] = B^T applied to column j of the patch
        for (int j = 0; j < 6; j++) {
          v128_t d[6];
          for (int i = 0; i < 6; i++) d[i] = wasm_v128_load(patch + (i * w + j) * C + c);
          bt_column(d, cols[j]);
        }
        for (int i = 0; i < 6; i++) {
          v128_t d[6], r[6];
          for (int j = 0; j < 6; j++) d[j] = cols[j][i];
          bt_column(d, r);
          for (int j = 0; j < 6; j++) wasm_v128_store(dst + (i * 6 + j) * plane + c, r[j]);
        }
      }
    }
  }
}

// A^T m for one column m[0..5] (A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]).
static inline __attribute__((always_inline)) void at_column(const v128_t* m, v128_t* y) {
  v128_t p12 = wasm_f32x4_add(m[1], m[2]), d12 = wasm_f32x4_sub(m[1], m[2]);
  v128_t p34 = wasm_f32x4_add(m[3], m[4]), d34 = wasm_f32x4_sub(m[3], m[4]);
  y[0] = wasm_f32x4_add(wasm_f32x4_add(m[0], p12), p34);
  y[1] = wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(2), d34));
  y[2] = wasm_f32x4_add(p12, wasm_f32x4_mul(wasm_f32x4_splat(4), p34));
  y[3] = wasm_f32x4_add(wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(8), d34)), m[5]);
}

static void output_transform4(const float* m, const float* bias, int O, int oh, int ow, float* out, int tiles) {
  const int th = (oh + 3) / 4, tw = (ow + 3) / 4, plane = tiles * O;
  for (int ty = 0; ty < th; ty++) {
    const int oy = tile4_origin(ty, oh);
    for (int tx = 0; tx < tw; tx++) {
      const int ox = tile4_origin(tx, ow), t = ty * tw + tx;
      const float* src = m + t * O;
      float* dst = out + (oy * ow + ox) * O;
      for (int o = 0; o < O; o += 4) {
        v128_t cols[6][4];  // cols[j] = A^T applied to column j of the tile's 6x6 products
        for (int j = 0; j < 6; j++) {
          v128_t col[6];
          for (int i = 0; i < 6; i++) col[i] = wasm_v128_load(src + (i * 6 + j) * plane + o);
          at_column(col, cols[j]);
        }
        v128_t b = wasm_v128_load(bias + o);
        for (int r = 0; r < 4; r++) {
          v128_t row[6], y[4];
          for (int j = 0; j < 6; j++) row[j] = cols[j][r];
          at_column(row, y);
          for (int q = 0; q < 4; q++) wasm_v128_store(dst + (r * ow + q) * O + o, bias_relu(y[q], b));
        }
      }
    }
  }
}

// Scratch floats conv3x3_winograd4 needs in each of v and m: 36 * tiles * max(C, O).
EXPORT(winograd4_scratch)
int winograd4_scratch(int h, int w, int C, int O) {
  return 36 * ((h + 1) / 4) * ((w + 1) / 4) * (C > O ? C : O);
}

// As conv3x3_winograd, on 4x4 output blocks: needs h, w >= 6 (outputs at least 4x4), u from winograd4_filter.
EXPORT(conv3x3_winograd4)
void conv3x3_winograd4(const float* in, int h, int w, int C, const float* u, const float* bias, int O, float* v, float* m, float* out) {
  const int oh = h - 2, ow = w - 2, tiles = ((oh + 3) / 4) * ((ow + 3) / 4);
  input_transform4(in, w, C, oh, ow, v, tiles);
  winograd_gemm(v, u, C, O, m, tiles, 36);
  output_transform4(m, bias, O, oh, ow, out, tiles);
}

// ------------------------------------------------------------------ pooling

// 2x2 average pool, stride 2, valid: out is (h / 2) x (w / 2) x C.
EXPORT(avg_pool2)
void avg_pool2(const float* in, int h, int w, int C, float* out) {
  const v128_t quarter = wasm_f32x4_splat(0.25f);
  for (int y = 0; y < h / 2; y++)
    for (int x = 0; x < w / 2; x++)
      for (int c = 0; c < C; c += 4) {
        const float* p = in + ((2 * y) * w + 2 * x) * C + c;
        v128_t sum = wasm_f32x4_add(wasm_f32x4_add(wasm_v128_load(p), wasm_v128_load(p + C)),
                                    wasm_f32x4_add(wasm_v128_load(p + w * C), wasm_v128_load(p + w * C + C)));
        wasm_v128_store(out + (y * (w / 2) + x) * C + c, wasm_f32x4_mul(sum, quarter));
      }
}

// out[c] = mean over the pixels of in[p][c] (global average pool).
EXPORT(mean_pixels)
void mean_pixels(const float* in, int pixels, int C, float* out) {
  const v128_t scale = wasm_f32x4_splat(1.0f / (float)pixels);
  for (int c = 0; c < C; c += 4) {
    v128_t sum = wasm_f32x4_splat(0);
    for (int p = 0; p < pixels; p++) sum = wasm_f32x4_add(sum, wasm_v128_load(in + p * C + c));
    wasm_v128_store(out + c, wasm_f32x4_mul(sum, scale));
  }
}
