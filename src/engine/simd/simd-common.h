// What both kernel files (kernels.c: training; inference.c: serving) build on: the export
// attribute, the multiply-add, and the register block of their convolutions: 4 rows (output
// pixels, or Winograd tiles) x 8 output channels, eight f32x4 accumulators, each step one
// multiply-add of 4 broadcast inputs by 2 weight vectors.
#ifndef SIMD_COMMON_H
#define SIMD_COMMON_H
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// acc + a * b. Built with -DRELAXED (*-relaxed*.wasm) it is relaxed SIMD's fused multiply-add,
// one instruction where the CPU has FMA; the loaders take that build when the runtime accepts
// it and the plain one otherwise.
#ifdef RELAXED
#define MADD(acc, a, b) wasm_f32x4_relaxed_madd((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif

typedef struct {
  v128_t a0, a1, b0, b1, c0, c1, d0, d1;
} block4x8;

static inline __attribute__((always_inline)) block4x8 block4x8_zero(void) {
  v128_t z = wasm_f32x4_splat(0);
  return (block4x8){z, z, z, z, z, z, z, z};
}

// acc[r][0..8) += p[r] * (w0, w1) for the 4 rows, p[r] the broadcast float at p_r.
static inline __attribute__((always_inline)) void block4x8_step(block4x8* k, const float* p0, const float* p1, const float* p2, const float* p3,
                                                                 const float* w) {
  v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 4);
  v128_t q0 = wasm_v128_load32_splat(p0), q1 = wasm_v128_load32_splat(p1);
  v128_t q2 = wasm_v128_load32_splat(p2), q3 = wasm_v128_load32_splat(p3);
  k->a0 = MADD(k->a0, q0, w0); k->a1 = MADD(k->a1, q0, w1);
  k->b0 = MADD(k->b0, q1, w0); k->b1 = MADD(k->b1, q1, w1);
  k->c0 = MADD(k->c0, q2, w0); k->c1 = MADD(k->c1, q2, w1);
  k->d0 = MADD(k->d0, q3, w0); k->d1 = MADD(k->d1, q3, w1);
}

// Adds a bias (bias0 for channels 0-3, bias1 for 4-7) and applies ReLU, in place.
static inline __attribute__((always_inline)) void block4x8_bias_relu(block4x8* k, v128_t bias0, v128_t bias1) {
  const v128_t z = wasm_f32x4_splat(0);
  k->a0 = wasm_f32x4_max(wasm_f32x4_add(k->a0, bias0), z); k->a1 = wasm_f32x4_max(wasm_f32x4_add(k->a1, bias1), z);
  k->b0 = wasm_f32x4_max(wasm_f32x4_add(k->b0, bias0), z); k->b1 = wasm_f32x4_max(wasm_f32x4_add(k->b1, bias1), z);
  k->c0 = wasm_f32x4_max(wasm_f32x4_add(k->c0, bias0), z); k->c1 = wasm_f32x4_max(wasm_f32x4_add(k->c1, bias1), z);
  k->d0 = wasm_f32x4_max(wasm_f32x4_add(k->d0, bias0), z); k->d1 = wasm_f32x4_max(wasm_f32x4_add(k->d1, bias1), z);
}

// Stores the block's 4 rows, `stride` floats apart.
static inline __attribute__((always_inline)) void block4x8_store(const block4x8* k, float* out, int stride) {
  wasm_v128_store(out, k->a0); wasm_v128_store(out + 4, k->a1);
  wasm_v128_store(out + stride, k->b0); wasm_v128_store(out + stride + 4, k->b1);
  wasm_v128_store(out + 2 * stride, k->c0); wasm_v128_store(out + 2 * stride + 4, k->c1);
  wasm_v128_store(out + 3 * stride, k->d0); wasm_v128_store(out + 3 * stride + 4, k->d1);
}

#endif  // SIMD_COMMON_H
