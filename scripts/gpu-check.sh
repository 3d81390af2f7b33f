#!/usr/bin/env bash
# The checks a machine with a real GPU runs (issues #11, #12 and #18): `alexnet doctor`, the WebGPU tests where
# the test build is there, both webgpu runners (compiled and ops) on Dawn's null adapter (host time) and on the GPU
# (`alexnet bench` at batch 64 and 512), 3-epoch `alexnet train --backend webgpu` runs of each on a generated
# full-size archive (50,000 + 10,000 images) printing each epoch's time, and the PyTorch CUDA peer at the same
# batch sizes where python3 has CUDA PyTorch. Speed is read from its output, never asserted: epoch 0 compiles the
# shaders, so compare epochs 1-2. The goals (issue #18): the compiled runner at most 1.5 s an epoch at batch 64
# and 0.25 s at batch 512.
#
# Two ways to run it:
#   npm run gpu-check                      in a checkout after `npm ci` (the tests run too)
#   ALEXNET_BIN=B ALEXNET_FIXTURE=F bash scripts/gpu-check.sh
#                                          on a GPU machine without npm, with a bundled CLI: B runs it
#                                          (`node B ...`), F makes the fixture (`node F ...`); no test build
#                                          there, so the tests are skipped
# Output: everything on stdout/stderr, and a copy of each result under $GPU_CHECK_OUT (default: a temp folder).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${GPU_CHECK_OUT:-$(mktemp -d)}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bin=${ALEXNET_BIN:-bin/alexnet}
fixture_js=${ALEXNET_FIXTURE:-dist/scripts/fixture.js}
cli() { node "$bin" "$@"; }
make_fixture() { node "$fixture_js" "$@"; }
step() { printf '\n== %s\n' "$*" >&2; }
status=0

step "alexnet doctor"
cli doctor | tee "$out/doctor.txt" || status=1

if [ -d node_modules ] && [ -f dist/test/webgpu.test.js ]; then
  step "WebGPU tests (test/webgpu.test.ts) on this machine's adapter"
  ALEXNET_REQUIRE_WEBGPU=1 node --test dist/test/webgpu.test.js 2>&1 | tee "$out/webgpu-tests.txt" | grep -E '^# (tests|pass|fail|skipped)|^not ok' || true
  grep -q '^# fail 0' "$out/webgpu-tests.txt" || status=1
else
  step "WebGPU tests: skipped (no node_modules or test build in this bundle)"
fi

step "webgpu host floor: both runners on Dawn's null adapter (a step's host time alone)"
for runner in compiled ops; do
  ALEXNET_DAWN_FLAGS=backend=null cli bench --backend webgpu --webgpu-runner "$runner" --steps 50 --no-decode --json \
    | tee "$out/bench-null-$runner.json" || status=1
done

for bs in 64 512; do
  for runner in compiled ops; do
    step "alexnet bench --backend webgpu --gpu --webgpu-runner $runner --batch-size $bs"
    cli bench --backend webgpu --gpu --webgpu-runner "$runner" --batch-size "$bs" --steps 20 --no-decode --json \
      | tee "$out/bench-webgpu-$runner-$bs.json" || status=1
  done
done

step "a generated full-size archive (50,000 + 10,000 images)"
make_fixture "$work/big.tgz" --train-per-batch 10000 --test 10000 >/dev/null || status=1
for bs in 64 512; do
  for runner in compiled ops; do
    step "alexnet train --backend webgpu --gpu --webgpu-runner $runner --epochs 3 --batch-size $bs (Time column: compare epochs 1-2)"
    cli train --backend webgpu --gpu --webgpu-runner "$runner" --epochs 3 --batch-size "$bs" --seed 1 --url "$work/big.tgz" \
      --no-verify --data-dir "$work/data" --json | tee "$out/train-webgpu-$runner-$bs.jsonl" || status=1
  done
done

peer=scripts/peers/torch_gpu_epoch.py
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && [ -f "$peer" ]; then
  for bs in 64 512; do
    step "PyTorch CUDA peer, batch $bs"
    python3 "$peer" --batch "$bs" --epochs 3 | tee "$out/torch-gpu-$bs.jsonl" || status=1
  done
else
  step "PyTorch CUDA peer: skipped (no CUDA PyTorch, or no $peer)"
fi

step "results in $out"
exit $status
