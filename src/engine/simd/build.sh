#!/usr/bin/env bash
# Rebuilds the SIMD kernels (kernels.c) into the .wasm files the engine loads:
#   kernels.wasm / kernels-shared.wasm                  plain SIMD (heap unshared / shared)
#   kernels-relaxed.wasm / kernels-relaxed-shared.wasm  with relaxed-SIMD fused multiply-add
#   inference.wasm / inference-relaxed.wasm             serving's forward pass (inference.c), on its own memory
# "shared" is for the threaded tfjs wasm build, whose heap is a shared memory.
# Needs clang >= 16 and wasm-ld (Debian: apt-get install clang-19 lld-19). The outputs are
# committed, so running the project does not need them.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/lib/llvm-19/bin"
CLANG=${CLANG:-$(command -v clang-19 || command -v clang)}
# No stack and no data: the module runs on tfjs's heap, so it must not own any of it.
FLAGS=(--target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin -Wall -Werror
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=0)
SHARED=(-matomics -mbulk-memory -Wl,--shared-memory -Wl,--max-memory=4294967296)
RELAXED=(-mrelaxed-simd -DRELAXED)
"$CLANG" "${FLAGS[@]}" -o kernels.wasm kernels.c
"$CLANG" "${FLAGS[@]}" "${SHARED[@]}" -o kernels-shared.wasm kernels.c
"$CLANG" "${FLAGS[@]}" "${RELAXED[@]}" -o kernels-relaxed.wasm kernels.c
"$CLANG" "${FLAGS[@]}" "${SHARED[@]}" "${RELAXED[@]}" -o kernels-relaxed-shared.wasm kernels.c
"$CLANG" "${FLAGS[@]}" -o inference.wasm inference.c
"$CLANG" "${FLAGS[@]}" "${RELAXED[@]}" -o inference-relaxed.wasm inference.c
for f in kernels*.wasm inference*.wasm; do
  # The module must not touch memory it does not own: no data segments, no stack pointer.
  # (Read whole before grep: with pipefail, grep -q ending the pipe early would make a match read as none.)
  disassembly=$(llvm-objdump -d "$f")
  sections=$(llvm-objdump -h "$f")
  if grep -q 'global\.[gs]et' <<<"$disassembly"; then echo "$f uses a global (stack?)" >&2; exit 1; fi
  if grep -qw DATA <<<"$sections"; then echo "$f has a data segment" >&2; exit 1; fi
done
echo "built $(ls kernels*.wasm inference*.wasm | tr '\n' ' ')"
