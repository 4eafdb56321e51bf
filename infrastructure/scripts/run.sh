#!/usr/bin/env bash
# Inside the container, under its init (dumb-init --single-child, the image's entry point), which hands SIGTERM to
# this script only. Runs the pipeline command (RLVR_RUN_ARGS_B64: its overrides, base64, split on spaces) in
# RLVR_OUT, the same directory on every machine of the run, so rerunning after a stop resumes (resume=auto):
#   one GPU or none:  one process
#   several GPUs:     one run with accelerate (launch/$RLVR_ACCELERATE.yaml: ddp, fsdp, zero2, zero3)
#   a sweep (-m):     its jobs spread over the GPUs (hydra/launcher=local)
#   --ray-head:       start the Ray head, wait for RLVR_WORKERS workers, run the sweep as Ray tasks
#   --ray-worker:     join the Ray head at RLVR_HEAD and run the tasks it sends
# On SIGTERM (the machine is going away) every job gets it: each rlvr job process lists itself in RLVR_JOBS_DIR
# (rlvr.cli), so the signal reaches a sweep's worker processes, every rank and the Ray tasks, none of which is
# this script's child, and `stop` there keeps jobs that have not started from starting. Each job finishes its step,
# writes a checkpoint and exits. accelerate's launcher gets it too and waits RLVR_STOP_GRACE_S for its ranks
# (TORCH_ELASTIC_SHUTDOWN_TIMEOUT; torch's default is 30 s); a Ray worker is drained first so that Ray retries its
# stopped tasks on other machines.
set -euo pipefail

out="${RLVR_OUT:?}"
grace="${RLVR_STOP_GRACE_S:-60}"
export RLVR_JOBS_DIR="${RLVR_JOBS_DIR:-/tmp/rlvr-jobs}" TORCH_ELASTIC_SHUTDOWN_TIMEOUT="$grace"
mkdir -p "$RLVR_JOBS_DIR"
rm -f "$RLVR_JOBS_DIR/stop"
if [ -n "${RLVR_SECRETS:-}" ] && [ -f "$RLVR_SECRETS" ]; then
  # shellcheck source=/dev/null
  . "$RLVR_SECRETS"  # `export NAME='value'` lines written by boot.sh
fi
read -r -a args <<<"$(printf '%s' "${RLVR_RUN_ARGS_B64:-}" | base64 -d)"
gpus=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)

# The functions below run from the trap (shellcheck does not follow it).
# shellcheck disable=SC2329
jobs_running() {
  local entry
  for entry in "$RLVR_JOBS_DIR"/[0-9]*; do
    if [ -e "$entry" ] && kill -0 "${entry##*/}" 2>/dev/null; then return 0; fi
  done
  return 1
}

# shellcheck disable=SC2329
stop_jobs() {
  local entry
  touch "$RLVR_JOBS_DIR/stop"
  for entry in "$RLVR_JOBS_DIR"/[0-9]*; do
    if [ -e "$entry" ]; then kill -TERM "${entry##*/}" 2>/dev/null || true; fi
  done
}

mode="single"
if [ "${1:-}" = "--ray-head" ]; then
  mode="head"
elif [ "${1:-}" = "--ray-worker" ]; then
  mode="worker"
else
  for arg in "${args[@]}"; do
    if [ "$arg" = "-m" ] || [ "$arg" = "--multirun" ]; then mode="sweep"; fi
  done
  if [ "$mode" = single ] && [ "$gpus" -gt 1 ]; then mode="accelerate"; fi
fi

child=""
# shellcheck disable=SC2329
on_stop() {
  if [ -z "$child" ]; then exit 143; fi  # stopped before anything started
  echo "rlvr: stop signal: every job finishes its step, writes a checkpoint and exits"
  case "$mode" in
    worker)
      ray drain-node --reason DRAIN_NODE_REASON_PREEMPTION --reason-message "the machine is going away" \
        --deadline-remaining-seconds "$grace" >/dev/null 2>&1 || echo "rlvr: ray drain-node failed"
      stop_jobs
      local waited=0
      while jobs_running && [ "$waited" -lt "$grace" ]; do
        sleep 1
        waited=$((waited + 1))
      done
      ray stop --force >/dev/null 2>&1 || true
      ;;
    accelerate)
      stop_jobs
      kill -TERM "$child" 2>/dev/null || true  # the elastic agent: waits for its ranks, then exits
      ;;
    head)
      stop_jobs
      kill -TERM "$child" 2>/dev/null || true  # the sweep's driver: the workers' jobs keep their checkpoints
      ;;
    *)
      stop_jobs  # a sweep's driver is left to finish: its running jobs stop, the others do not start
      ;;
  esac
}
trap on_stop TERM INT

case "$mode" in
  head)
    ray start --head --port 6379
    want=$((${RLVR_WORKERS:-0} + 1))
    until [ "$(python -c 'import ray; ray.init(address="auto"); print(len(ray.nodes()))')" -ge "$want" ]; do
      sleep 10
    done
    sweep=()
    for arg in "${args[@]}"; do
      if [ "$arg" != "-m" ] && [ "$arg" != "--multirun" ]; then sweep+=("$arg"); fi
    done
    python run_pipeline.py -m "${sweep[@]}" hydra/launcher=ray_cluster hydra.launcher.ray.init.address=auto \
      "output_dir=$out" &
    ;;
  worker)
    ray start --address "${RLVR_HEAD:?}:6379" --block &
    ;;
  sweep)
    python run_pipeline.py "${args[@]}" hydra/launcher=local "output_dir=$out" &
    ;;
  accelerate)
    accelerate launch --config_file "launch/${RLVR_ACCELERATE:-ddp}.yaml" --num_processes "$gpus" \
      run_pipeline.py "${args[@]}" "output_dir=$out" &
    ;;
  single)
    python run_pipeline.py "${args[@]}" "output_dir=$out" &
    ;;
esac
child=$!

# `wait` returns early when a signal is trapped: wait again until the child has really ended, then once more for
# its own status (bash keeps it) in case the trap cut the last wait short.
status=0
while :; do
  wait "$child" || status=$?
  if ! kill -0 "$child" 2>/dev/null; then break; fi
done
final=0
wait "$child" 2>/dev/null || final=$?
if [ "$final" -ne 127 ]; then status=$final; fi
exit "$status"
