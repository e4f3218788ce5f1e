// WebAssembly SIMD kernels that run on the tfjs wasm backend's own heap (the module imports
// its memory). They fuse the elementwise work of a conv block's training step that tfjs
// would otherwise spread over a dozen kernels (ReLU -> BatchNorm on batch statistics ->
// Dropout, forward and backward), and compute stride-1 convolutions and their filter
// gradient, the bulk of a training step, faster than the generic paths.
// Build: src/engine/simd/build.sh (clang --target=wasm32 -msimd128); output kernels*.wasm.
//
// Layout: activations are NHWC, seen as [pixels, channels]. The SIMD paths need channels % 4
// == 0; other channel counts take the scalar paths (same results up to rounding).
//
// Dropout masks are a pure function of (key, flat element index), so every slice of a tensor
// (one per thread) and every backend draws the same mask; `first` is a slice's flat index of
// its first element. The forward kernel also stores the mask (a byte per element) for the
// backward kernels: keep(i) = hash(i, key) < threshold, with threshold =
// keepProbability * 2^32. dropout-mask.ts implements the same hash in JS.
#include <stdint.h>

#include "simd-common.h"

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

static inline uint32_t keep_hash(uint32_t i, uint32_t key) { return fmix32(i * 0x9e3779b1u + key); }

static inline v128_t fmix32x4(v128_t h) {
  h = wasm_v128_xor(h, wasm_u32x4_shr(h, 16));
  h = wasm_i32x4_mul(h, wasm_i32x4_splat((int32_t)0x85ebca6bu));
  h = wasm_v128_xor(h, wasm_u32x4_shr(h, 13));
  h = wasm_i32x4_mul(h, wasm_i32x4_splat((int32_t)0xc2b2ae35u));
  h = wasm_v128_xor(h, wasm_u32x4_shr(h, 16));
  return h;
}

// All-ones lanes where element i0..i0+3 is kept.
static inline v128_t keep_mask4(uint32_t i0, uint32_t key, uint32_t threshold) {
  v128_t idx = wasm_i32x4_add(wasm_i32x4_splat((int32_t)i0), wasm_i32x4_make(0, 1, 2, 3));
  v128_t h = wasm_i32x4_add(wasm_i32x4_mul(idx, wasm_i32x4_splat((int32_t)0x9e3779b1u)), wasm_i32x4_splat((int32_t)key));
  return wasm_u32x4_lt(fmix32x4(h), wasm_i32x4_splat((int32_t)threshold));
}

// threshold 0 means "no dropout" (every element kept); real thresholds are >= 1.
static inline int is_kept(uint32_t i, uint32_t key, uint32_t threshold) {
  return threshold == 0 || keep_hash(i, key) < threshold;
}

// Pixels summed in float32 before flushing into the double totals.
#define BLOCK 64

// ------------------------------------------------------------------ forward

// sum[c] = sum over pixels of relu(z), sumsq[c] = sum of relu(z)^2.
EXPORT(relu_stats)
void relu_stats(const float* z, int pixels, int channels, double* sum, double* sumsq) {
  for (int c = 0; c < channels; c++) sum[c] = sumsq[c] = 0;
  if (channels % 4 != 0) {
    for (int p = 0; p < pixels; p++) {
      for (int c = 0; c < channels; c++) {
        float a = z[p * channels + c];
        a = a > 0 ? a : 0;
        sum[c] += a;
        sumsq[c] += (double)a * a;
      }
    }
    return;
  }
  // Pixel blocks outside, channel groups inside: a block stays in L1 across the groups.
  const v128_t zero = wasm_f32x4_splat(0);
  for (int p0 = 0; p0 < pixels; p0 += BLOCK) {
    int p1 = p0 + BLOCK < pixels ? p0 + BLOCK : pixels;
    for (int c = 0; c < channels; c += 4) {
      v128_t s = zero, q = zero;
      for (int p = p0; p < p1; p++) {
        v128_t a = wasm_f32x4_max(wasm_v128_load(z + p * channels + c), zero);
        s = wasm_f32x4_add(s, a);
        q = wasm_f32x4_add(q, wasm_f32x4_mul(a, a));
      }
      sum[c + 0] += wasm_f32x4_extract_lane(s, 0);
      sum[c + 1] += wasm_f32x4_extract_lane(s, 1);
      sum[c + 2] += wasm_f32x4_extract_lane(s, 2);
      sum[c + 3] += wasm_f32x4_extract_lane(s, 3);
      sumsq[c + 0] += wasm_f32x4_extract_lane(q, 0);
      sumsq[c + 1] += wasm_f32x4_extract_lane(q, 1);
      sumsq[c + 2] += wasm_f32x4_extract_lane(q, 2);
      sumsq[c + 3] += wasm_f32x4_extract_lane(q, 3);
    }
  }
}

// y = keep ? relu(z) * scale[c] + shift[c] : 0   (scale and shift include 1/keepProbability)
// With dropout (threshold != 0) the mask is also written, one byte per element (0 or 0xff),
// for the backward kernels.
EXPORT(relu_bn_dropout)
void relu_bn_dropout(const float* z, float* y, int pixels, int channels, const float* scale, const float* shift,
                     uint32_t key, uint32_t threshold, uint32_t first, uint8_t* mask) {
  if (channels % 4 != 0) {
    for (int p = 0; p < pixels; p++) {
      for (int c = 0; c < channels; c++) {
        int i = p * channels + c;
        float a = z[i] > 0 ? z[i] : 0;
        int kept = is_kept(first + (uint32_t)i, key, threshold);
        if (threshold != 0) mask[i] = kept ? 0xff : 0;
        y[i] = kept ? a * scale[c] + shift[c] : 0;
      }
    }
    return;
  }
  const v128_t zero = wasm_f32x4_splat(0);
  for (int p = 0; p < pixels; p++) {
    int base = p * channels;
    for (int c = 0; c < channels; c += 4) {
      v128_t a = wasm_f32x4_max(wasm_v128_load(z + base + c), zero);
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(a, wasm_v128_load(scale + c)), wasm_v128_load(shift + c));
      if (threshold != 0) {
        v128_t keep = keep_mask4(first + (uint32_t)(base + c), key, threshold);
        v = wasm_v128_and(v, keep);
        v128_t bytes = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(keep, keep), zero);
        wasm_v128_store32_lane(mask + base + c, bytes, 0);
      }
      wasm_v128_store(y + base + c, v);
    }
  }
}

// The 4 lanes of a stored mask as all-ones / all-zeros (mask == 0: no dropout, all kept).
static inline v128_t load_mask4(const uint8_t* mask, int i) {
  if (!mask) return wasm_i32x4_splat(-1);
  v128_t bytes = wasm_v128_load32_zero(mask + i);
  return wasm_i32x4_extend_low_i16x8(wasm_i16x8_extend_low_i8x16(bytes));
}

// ------------------------------------------------------------------ backward

// With g = keep ? dy * invKeep : 0 (keep from the forward's mask) and a = relu(z):
//   dbeta[c] = sum g,   dgammaRaw[c] = sum g * a   (the caller turns the latter into sum g * xhat)
EXPORT(relu_bn_dropout_grad_sums)
void relu_bn_dropout_grad_sums(const float* dy, const float* z, const uint8_t* mask, int pixels, int channels,
                               float inv_keep, double* dbeta, double* dga) {
  for (int c = 0; c < channels; c++) dbeta[c] = dga[c] = 0;
  if (channels % 4 != 0) {
    for (int p = 0; p < pixels; p++) {
      for (int c = 0; c < channels; c++) {
        int i = p * channels + c;
        if (mask && !mask[i]) continue;
        float g = dy[i] * inv_keep;
        float a = z[i] > 0 ? z[i] : 0;
        dbeta[c] += g;
        dga[c] += (double)g * a;
      }
    }
    return;
  }
  const v128_t zero = wasm_f32x4_splat(0);
  const v128_t ik = wasm_f32x4_splat(inv_keep);
  for (int p0 = 0; p0 < pixels; p0 += BLOCK) {
    int p1 = p0 + BLOCK < pixels ? p0 + BLOCK : pixels;
    for (int c = 0; c < channels; c += 4) {
      v128_t sb = zero, sg = zero;
      for (int p = p0; p < p1; p++) {
        int i = p * channels + c;
        v128_t g = wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(dy + i), ik), load_mask4(mask, i));
        v128_t a = wasm_f32x4_max(wasm_v128_load(z + i), zero);
        sb = wasm_f32x4_add(sb, g);
        sg = wasm_f32x4_add(sg, wasm_f32x4_mul(g, a));
      }
      dbeta[c + 0] += wasm_f32x4_extract_lane(sb, 0);
      dbeta[c + 1] += wasm_f32x4_extract_lane(sb, 1);
      dbeta[c + 2] += wasm_f32x4_extract_lane(sb, 2);
      dbeta[c + 3] += wasm_f32x4_extract_lane(sb, 3);
      dga[c + 0] += wasm_f32x4_extract_lane(sg, 0);
      dga[c + 1] += wasm_f32x4_extract_lane(sg, 1);
      dga[c + 2] += wasm_f32x4_extract_lane(sg, 2);
      dga[c + 3] += wasm_f32x4_extract_lane(sg, 3);
    }
  }
}

// dz = z > 0 ? A[c] * g + B[c] * z + C[c] : 0,   g = keep ? dy * invKeep : 0
EXPORT(relu_bn_dropout_grad_apply)
void relu_bn_dropout_grad_apply(const float* dy, const float* z, const uint8_t* mask, float* dz, int pixels,
                                int channels, const float* A, const float* B, const float* C, float inv_keep) {
  if (channels % 4 != 0) {
    for (int p = 0; p < pixels; p++) {
      for (int c = 0; c < channels; c++) {
        int i = p * channels + c;
        float g = !mask || mask[i] ? dy[i] * inv_keep : 0;
        dz[i] = z[i] > 0 ? A[c] * g + B[c] * z[i] + C[c] : 0;
      }
    }
    return;
  }
  const v128_t zero = wasm_f32x4_splat(0);
  const v128_t ik = wasm_f32x4_splat(inv_keep);
  for (int p = 0; p < pixels; p++) {
    int base = p * channels;
    for (int c = 0; c < channels; c += 4) {
      int i = base + c;
      v128_t g = wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(dy + i), ik), load_mask4(mask, i));
      v128_t zi = wasm_v128_load(z + i);
      v128_t v = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(A + c), g), wasm_f32x4_mul(wasm_v128_load(B + c), zi)),
                                wasm_v128_load(C + c));
      wasm_v128_store(dz + i, wasm_v128_and(v, wasm_f32x4_gt(zi, zero)));
    }
  }
}

// ------------------------------------------------------------------ conv forward

// 4 output pixels x 8 output channels of a valid stride-1 conv, over all taps and inputs.
// Always inlined so that a constant C (see conv2d_valid) turns every offset into an immediate.
static inline __attribute__((always_inline)) void conv_px4_o8(const float* in_px, int in_row, const int C, const float* w,
                                                               int kh, int kw, int O, float* out, int O_stride) {
  block4x8 k = block4x8_zero();
  for (int i = 0; i < kh; i++) {
    for (int j = 0; j < kw; j++) {
      const float* p = in_px + i * in_row + j * C;
      const float* wt = w + (i * kw + j) * C * O;
      for (int c = 0; c < C; c++) block4x8_step(&k, p + c, p + C + c, p + 2 * C + c, p + 3 * C + c, wt + c * O);
    }
  }
  block4x8_store(&k, out, O_stride);
}

// `pixels` (1..4) output pixels x 4 output channels.
static inline void conv_pxn_o4(const float* in_px, int in_row, int C, const float* w, int kh, int kw, int O, float* out,
                               int O_stride, int pixels) {
  for (int q = 0; q < pixels; q++) {
    v128_t acc = wasm_f32x4_splat(0);
    for (int i = 0; i < kh; i++) {
      for (int j = 0; j < kw; j++) {
        const float* p = in_px + i * in_row + (j + q) * C;
        const float* wt = w + (i * kw + j) * C * O;
        for (int c = 0; c < C; c++) acc = MADD(acc, wasm_f32x4_splat(p[c]), wasm_v128_load(wt + c * O));
      }
    }
    wasm_v128_store(out + q * O_stride, acc);
  }
}

// Valid, stride-1 NHWC conv (callers pad): out[n, y, x, o] = sum over i, j, c of
// in[n, y + i, x + j, c] * w[i, j, c, o]. Needs O % 4 == 0.
EXPORT(conv2d_valid)
void conv2d_valid(const float* in, const float* w, float* out, int batch, int in_h, int in_w, int C, int kh, int kw,
                  int O) {
  const int out_h = in_h - kh + 1, out_w = in_w - kw + 1;
  const int in_row = in_w * C;
  for (int n = 0; n < batch; n++) {
    for (int y = 0; y < out_h; y++) {
      const float* in_y = in + ((long)n * in_h + y) * in_row;
      float* out_y = out + ((long)n * out_h + y) * out_w * O;
      // Blocks of 4 pixels; a ragged end is covered by one more block shifted left to end at
      // the last pixel (recomputing a few pixels) rather than by the slow single-pixel path.
      int x = 0;
      for (; x < out_w && out_w >= 4; x += 4) {
        if (x + 4 > out_w) x = out_w - 4;
        int o = 0;
        for (; o + 8 <= O; o += 8) {
          const float* px = in_y + x * C;
          float* dst = out_y + x * O + o;
          // The seed net's channel counts get unrolled copies.
          if (C == 16) conv_px4_o8(px, in_row, 16, w + o, kh, kw, O, dst, O);
          else if (C == 32) conv_px4_o8(px, in_row, 32, w + o, kh, kw, O, dst, O);
          else conv_px4_o8(px, in_row, C, w + o, kh, kw, O, dst, O);
        }
        for (; o < O; o += 4) conv_pxn_o4(in_y + x * C, in_row, C, w + o, kh, kw, O, out_y + x * O + o, O, 4);
      }
      if (x < out_w) {
        for (int o = 0; o < O; o += 4) conv_pxn_o4(in_y + x * C, in_row, C, w + o, kh, kw, O, out_y + x * O + o, O, out_w - x);
      }
    }
  }
}

// Zero padding of an NHWC batch: out is [batch, h + top + bottom, w + left + right, C].
EXPORT(pad_nhwc)
void pad_nhwc(const float* in, float* out, int batch, int h, int w, int C, int top, int bottom, int left, int right) {
  const int ph = h + top + bottom, pw = w + left + right;
  for (int n = 0; n < batch; n++) {
    for (int y = 0; y < ph; y++) {
      float* row = out + ((long)n * ph + y) * pw * C;
      int sy = y - top;
      if (sy < 0 || sy >= h) {
        for (int k = 0; k < pw * C; k++) row[k] = 0;
        continue;
      }
      for (int k = 0; k < left * C; k++) row[k] = 0;
      const float* src = in + ((long)n * h + sy) * w * C;
      float* dst = row + left * C;
      int k = 0;
      for (; k + 4 <= w * C; k += 4) wasm_v128_store(dst + k, wasm_v128_load(src + k));
      for (; k < w * C; k++) dst[k] = src[k];
      for (k = (left + w) * C; k < pw * C; k++) row[k] = 0;
    }
  }
}

// ------------------------------------------------------------------ conv filter gradient

// 8 (or 4) output channels of one tap's dW for 4 input channels, accumulated over one row:
// acc[k][o] += x[t, c + k] * dy[t, o] for t < len.
static inline void fgrad_c4o8(const float* xs, int xstep, const float* ds, int dstep, int len, float* w, int O) {
  v128_t a00 = wasm_v128_load(w + 0 * O), a01 = wasm_v128_load(w + 0 * O + 4);
  v128_t a10 = wasm_v128_load(w + 1 * O), a11 = wasm_v128_load(w + 1 * O + 4);
  v128_t a20 = wasm_v128_load(w + 2 * O), a21 = wasm_v128_load(w + 2 * O + 4);
  v128_t a30 = wasm_v128_load(w + 3 * O), a31 = wasm_v128_load(w + 3 * O + 4);
  for (int t = 0; t < len; t++) {
    v128_t xv = wasm_v128_load(xs + t * xstep);
    v128_t d0 = wasm_v128_load(ds + t * dstep), d1 = wasm_v128_load(ds + t * dstep + 4);
    v128_t x0 = wasm_i32x4_shuffle(xv, xv, 0, 0, 0, 0);
    v128_t x1 = wasm_i32x4_shuffle(xv, xv, 1, 1, 1, 1);
    v128_t x2 = wasm_i32x4_shuffle(xv, xv, 2, 2, 2, 2);
    v128_t x3 = wasm_i32x4_shuffle(xv, xv, 3, 3, 3, 3);
    a00 = MADD(a00, x0, d0); a01 = MADD(a01, x0, d1);
    a10 = MADD(a10, x1, d0); a11 = MADD(a11, x1, d1);
    a20 = MADD(a20, x2, d0); a21 = MADD(a21, x2, d1);
    a30 = MADD(a30, x3, d0); a31 = MADD(a31, x3, d1);
  }
  wasm_v128_store(w + 0 * O, a00); wasm_v128_store(w + 0 * O + 4, a01);
  wasm_v128_store(w + 1 * O, a10); wasm_v128_store(w + 1 * O + 4, a11);
  wasm_v128_store(w + 2 * O, a20); wasm_v128_store(w + 2 * O + 4, a21);
  wasm_v128_store(w + 3 * O, a30); wasm_v128_store(w + 3 * O + 4, a31);
}

// One input channel, 4 output channels: acc[o] += x[t] * dy[t, o].
static inline void fgrad_c1o4(const float* xs, int xstep, const float* ds, int dstep, int len, float* w) {
  v128_t acc = wasm_v128_load(w);
  for (int t = 0; t < len; t++) acc = MADD(acc, wasm_f32x4_splat(xs[t * xstep]), wasm_v128_load(ds + t * dstep));
  wasm_v128_store(w, acc);
}

// One input channel, 16 output channels: four independent accumulators, so the multiply-adds
// overlap instead of waiting on each other (the first layer, one input channel, was
// latency-bound on fgrad_c1o4). Each output's sum runs over t in the same order.
static inline void fgrad_c1o16(const float* xs, int xstep, const float* ds, int dstep, int len, float* w) {
  v128_t a0 = wasm_v128_load(w), a1 = wasm_v128_load(w + 4), a2 = wasm_v128_load(w + 8), a3 = wasm_v128_load(w + 12);
  for (int t = 0; t < len; t++) {
    const float* d = ds + t * dstep;
    v128_t x = wasm_v128_load32_splat(xs + t * xstep);
    a0 = MADD(a0, x, wasm_v128_load(d));
    a1 = MADD(a1, x, wasm_v128_load(d + 4));
    a2 = MADD(a2, x, wasm_v128_load(d + 8));
    a3 = MADD(a3, x, wasm_v128_load(d + 12));
  }
  wasm_v128_store(w, a0); wasm_v128_store(w + 4, a1); wasm_v128_store(w + 8, a2); wasm_v128_store(w + 12, a3);
}

// Filter gradient of a stride-1 NHWC conv: dW[i, j, c, o] = sum over n, y, x of
// x[n, y + i - top, x + j - left, c] * dy[n, y, x, o]  (positions outside x are zero padding).
// Works row by row so each row's x and dy stay in cache while every tap is accumulated.
EXPORT(conv2d_filter_grad)
void conv2d_filter_grad(const float* x, const float* dy, float* dw, int batch, int in_h, int in_w, int C, int out_h,
                        int out_w, int O, int kh, int kw, int top, int left) {
  const int taps = kh * kw;
  for (int i = 0; i < taps * C * O; i++) dw[i] = 0;
  for (int n = 0; n < batch; n++) {
    for (int y = 0; y < out_h; y++) {
      const float* dyrow = dy + ((long)n * out_h + y) * out_w * O;
      for (int i = 0; i < kh; i++) {
        int xr = y + i - top;
        if (xr < 0 || xr >= in_h) continue;
        const float* xrow = x + ((long)n * in_h + xr) * in_w * C;
        for (int j = 0; j < kw; j++) {
          int x0 = left - j > 0 ? left - j : 0;
          int x1 = in_w + left - j < out_w ? in_w + left - j : out_w;
          if (x0 >= x1) continue;
          const float* xs = xrow + (x0 + j - left) * C;
          const float* ds = dyrow + x0 * O;
          const int len = x1 - x0;
          float* w = dw + (i * kw + j) * C * O;
          if (O % 4 != 0) {
            for (int t = 0; t < len; t++)
              for (int c = 0; c < C; c++)
                for (int o = 0; o < O; o++) w[c * O + o] += xs[t * C + c] * ds[t * O + o];
            continue;
          }
          int c = 0;
          for (; c + 4 <= C; c += 4) {
            int o = 0;
            for (; o + 8 <= O; o += 8) fgrad_c4o8(xs + c, C, ds + o, O, len, w + c * O + o, O);
            for (; o < O; o += 4)
              for (int k = 0; k < 4; k++) fgrad_c1o4(xs + c + k, C, ds + o, O, len, w + (c + k) * O + o);
          }
          for (; c < C; c++) {
            int o = 0;
            for (; o + 16 <= O; o += 16) fgrad_c1o16(xs + c, C, ds + o, O, len, w + c * O + o);
            for (; o < O; o += 4) fgrad_c1o4(xs + c, C, ds + o, O, len, w + c * O + o);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------ pooling

// Gradient of a non-overlapping k x k average pool (stride k, no padding) on NHWC:
// dx[n, y*k+u, x*k+v, c] = dy[n, y, x, c] / (k*k); rows/cols past the last window get 0.
EXPORT(avg_pool_grad_tiled)
void avg_pool_grad_tiled(const float* dy, float* dx, int batch, int in_h, int in_w, int channels, int k) {
  const int out_h = in_h / k, out_w = in_w / k;
  const float w = 1.0f / (float)(k * k);
  for (int n = 0; n < batch; n++) {
    for (int yy = 0; yy < in_h; yy++) {
      int oy = yy / k;
      float* drow = dx + ((long)n * in_h + yy) * in_w * channels;
      const float* grow = dy + ((long)n * out_h + oy) * out_w * channels;
      for (int xx = 0; xx < in_w; xx++) {
        int ox = xx / k;
        float* d = drow + (long)xx * channels;
        if (oy >= out_h || ox >= out_w) {
          for (int c = 0; c < channels; c++) d[c] = 0;
          continue;
        }
        const float* g = grow + (long)ox * channels;
        int c = 0;
        for (; c + 4 <= channels; c += 4) wasm_v128_store(d + c, wasm_f32x4_mul(wasm_v128_load(g + c), wasm_f32x4_splat(w)));
        for (; c < channels; c++) d[c] = g[c] * w;
      }
    }
  }
}
