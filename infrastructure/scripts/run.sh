#!/usr/bin/env bash
# Inside the container: run the pipeline command (RLVR_RUN_ARGS_B64: its overrides, base64) on every GPU of the
# machine, in /outputs/<run name>. The directory is the same on every machine of the run, so rerunning after a
# spot interruption resumes from the latest checkpoint (resume=auto). Overrides are split on spaces.
#   a sweep (-m):    its jobs spread over the GPUs (hydra/launcher=local)
#   several GPUs:    one run with accelerate (launch/$RLVR_ACCELERATE.yaml: ddp, fsdp, zero2, zero3)
#   --ray-head:      start the Ray head, wait for RLVR_WORKERS workers, run the sweep as Ray tasks
set -euo pipefail

read -r -a args <<<"$(printf '%s' "${RLVR_RUN_ARGS_B64:-}" | base64 -d)"
out="/outputs/${RLVR_RUN_NAME:?}"
gpus=$(nvidia-smi -L 2>/dev/null | wc -l)

if [ "${1:-}" = "--ray-head" ]; then
  ray start --head --port 6379
  want=$(( ${RLVR_WORKERS:-0} + 1 ))
  until [ "$(python -c 'import ray; ray.init(address="auto"); print(len(ray.nodes()))')" -ge "$want" ]; do
    sleep 10
  done
  sweep=()
  for arg in "${args[@]}"; do
    if [ "$arg" != "-m" ] && [ "$arg" != "--multirun" ]; then sweep+=("$arg"); fi
  done
  exec python run_pipeline.py -m "${sweep[@]}" hydra/launcher=ray_cluster hydra.launcher.ray.init.address=auto \
    "output_dir=$out"
fi

for arg in "${args[@]}"; do
  if [ "$arg" = "-m" ] || [ "$arg" = "--multirun" ]; then
    exec python run_pipeline.py "${args[@]}" hydra/launcher=local "output_dir=$out"
  fi
done
if [ "$gpus" -gt 1 ]; then
  exec accelerate launch --config_file "launch/${RLVR_ACCELERATE:-ddp}.yaml" --num_processes "$gpus" \
    run_pipeline.py "${args[@]}" "output_dir=$out"
fi
exec python run_pipeline.py "${args[@]}" "output_dir=$out"
