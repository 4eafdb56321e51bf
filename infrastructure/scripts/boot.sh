#!/usr/bin/env bash
# Host side of an rlvr machine (called by cloud-init.sh.tftpl, which pushes the outputs and shuts the machine down
# when this ends; or by tests/integration/test_spot.py with a fake docker, instance metadata and S3):
#   1. the budget of a spot notice checked: seeing it + stopping the pipeline + publishing the checkpoint must fit;
#   2. secrets from Secrets Manager into a root-only file on tmpfs, mounted read-only into the container (never an
#      environment variable of the container, so never in its on-disk config);
#   3. the run directory restored from S3 (s3_checkpoints.py pull: the newest complete checkpoint only);
#   4. the image built from the pinned commit (its dependencies locked: infrastructure/requirements.lock);
#   5. the container started with this role's options (single, head: no GPU, worker); its init (dumb-init) hands
#      a stop signal to run.sh, which passes it to every job;
#   6. while it runs: the newest complete checkpoint published every RLVR_PUSH_EVERY_S seconds (the budget checked
#      against how long that took), and a stop on a spot interruption notice, at the maximum lifetime, or when the
#      run directory has been idle for RLVR_IDLE_MINUTES: SIGTERM to the container, RLVR_STOP_GRACE_S for the
#      pipeline to finish its step and write a checkpoint (else SIGKILL: the step is abandoned, the checkpoint
#      before stands), then publishing with what is left before the termination time.
# `boot.sh --run-options ROLE` prints the container's options for ROLE, one a line, and exits (the tests read it).
set -euo pipefail

notice="${RLVR_NOTICE_S:-120}"        # a spot interruption notice comes this long before the termination
poll="${RLVR_POLL_S:-5}"              # how often the instance metadata is read for one
grace="${RLVR_STOP_GRACE_S:-60}"      # for the pipeline to finish its step, write a checkpoint and exit
margin="${RLVR_MARGIN_S:-10}"         # left unused before the termination time
push_every="${RLVR_PUSH_EVERY_S:-60}"
imds="${RLVR_IMDS:-http://169.254.169.254}"
secrets_dir="${RLVR_SECRETS_DIR:-/run/rlvr}"
publish_budget=$((notice - poll - grace - margin))

log() { echo "rlvr: $(date -u +%H:%M:%S) $*"; }

run_options() {  # $1: role. One option a line (the caller reads them into an array).
  local role="$1"
  printf '%s\n' --name rlvr --rm --user 1000:1000 --cap-drop ALL --security-opt no-new-privileges \
    --shm-size 16g -v "$RLVR_OUTPUTS:/outputs" -v "$secrets_dir/secrets.env:/run/secrets/rlvr.env:ro" \
    --env "RLVR_OUT=/outputs/$RLVR_RUN_NAME" --env RLVR_SECRETS=/run/secrets/rlvr.env \
    --env RLVR_RUN_ARGS_B64 --env RLVR_ACCELERATE --env "RLVR_STOP_GRACE_S=$grace"
  case "$role" in
    single) printf '%s\n' --gpus all ;;  # bridge network: two hops from the instance metadata (hop limit 1)
    # Ray's nodes reach each other on many ports: host network; cloud-init's firewall rule keeps uid 1000 away
    # from the instance metadata, and the user cannot become root (no capabilities, no-new-privileges).
    head) printf '%s\n' --network host --env RLVR_WORKERS ;;
    worker) printf '%s\n' --gpus all --network host --env RLVR_HEAD ;;
    *) echo "rlvr: unknown role $role" >&2; return 2 ;;
  esac
}

if [ "${1:-}" = "--run-options" ]; then
  run_options "$2"
  exit 0
fi

: "${RLVR_ROLE:?}" "${RLVR_BUCKET:?}" "${RLVR_RUN_NAME:?}" "${RLVR_OUTPUTS:?}" "${RLVR_COMMIT:?}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
remote="s3://$RLVR_BUCKET/$RLVR_RUN_NAME/"
run_dir="$RLVR_OUTPUTS/$RLVR_RUN_NAME"  # the pipeline's output_dir (/outputs/<run name> in the container)
s3() { python3 "$repo/infrastructure/scripts/s3_checkpoints.py" "$@"; }
pushes=true
if [ "$RLVR_ROLE" = worker ]; then pushes=false; fi  # a cluster's run directory is shared (EFS): the head pushes

# 1. The budget.
if [ "$publish_budget" -lt 20 ]; then
  echo "rlvr: RLVR_STOP_GRACE_S=$grace leaves $publish_budget s of the ${notice} s notice to publish the checkpoint" \
    "(seeing the notice: ${poll} s, spare: ${margin} s); at least 20 s are needed: lower RLVR_STOP_GRACE_S" >&2
  exit 2
fi
log "budget of a spot notice (${notice} s): up to ${poll} s to see it, ${grace} s for the pipeline to finish its" \
  "step and write a checkpoint, ${publish_budget} s to publish it, ${margin} s spare"

# 2. Secrets: each a JSON map {"NAME": "value"}, written as shell-quoted exports that run.sh sources.
install -d -m 700 "$secrets_dir"
install -m 600 /dev/null "$secrets_dir/secrets.env"
for arn in ${RLVR_SECRET_ARNS:-}; do
  aws secretsmanager get-secret-value --secret-id "$arn" --query SecretString --output text | python3 -c '
import json, re, shlex, sys
for key, value in json.load(sys.stdin).items():
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        sys.exit(f"rlvr: a secret key must be an environment variable name, got {key!r}")
    print(f"export {key}={shlex.quote(str(value))}")' >>"$secrets_dir/secrets.env"
done
chown 1000:1000 "$secrets_dir/secrets.env"

# 3. The run directory, as far as a previous machine got.
mkdir -p "$RLVR_OUTPUTS"
if $pushes; then s3 pull "$remote" "$run_dir"; fi
chown -R 1000:1000 "$RLVR_OUTPUTS"

# 4. The image of the pinned commit.
docker build --build-arg "RLVR_COMMIT=$RLVR_COMMIT" -t "rlvr:$RLVR_COMMIT" -f "$repo/infrastructure/Dockerfile" "$repo"

# 5. The container.
mapfile -t options < <(run_options "$RLVR_ROLE")
case "$RLVR_ROLE" in
  head) command=(--ray-head) ;;
  worker) command=(--ray-worker) ;;
  *) command=() ;;
esac
export RLVR_RUN_ARGS_B64="${RLVR_RUN_ARGS_B64:-}" RLVR_ACCELERATE="${RLVR_ACCELERATE:-ddp}"
export RLVR_WORKERS="${RLVR_WORKERS:-0}" RLVR_HEAD="${RLVR_HEAD:-}"
docker run "${options[@]}" "rlvr:$RLVR_COMMIT" bash infrastructure/scripts/run.sh "${command[@]}" &
container=$!
log "container started ($RLVR_ROLE)"

# 6. Watching it.
spot_notice() {  # prints the termination time (epoch seconds) when a spot interruption notice is out
  local token action
  token=$(curl -sf -m 2 -X PUT "$imds/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || return 1
  action=$(curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/meta-data/spot/instance-action") ||
    return 1
  python3 -c 'import datetime, json, sys
print(int(datetime.datetime.strptime(json.loads(sys.argv[1])["time"], "%Y-%m-%dT%H:%M:%SZ")
          .replace(tzinfo=datetime.timezone.utc).timestamp()))' "$action"
}

pusher=""
push_in_background() {
  if [ -n "$pusher" ] && kill -0 "$pusher" 2>/dev/null; then return; fi
  setsid python3 "$repo/infrastructure/scripts/s3_checkpoints.py" push "$run_dir" "$remote" \
    --budget "$publish_budget" &
  pusher=$!
}
stop_pusher() {  # the whole process group: the script and its aws processes
  if [ -n "$pusher" ] && kill -0 "$pusher" 2>/dev/null; then
    kill -TERM -- "-$pusher" 2>/dev/null || true
    wait "$pusher" 2>/dev/null || true
  fi
  pusher=""
}

stop_run() {  # $1: why, $2: the termination time (epoch seconds)
  local why="$1" ends="$2" began waited=0 status=0
  began=$(date +%s)
  log "$why: stopping the pipeline (termination in $((ends - began)) s)"
  stop_pusher
  docker kill --signal TERM rlvr >/dev/null 2>&1 || true
  while kill -0 "$container" 2>/dev/null && [ "$waited" -lt "$grace" ]; do
    sleep 1
    waited=$((waited + 1))
  done
  if kill -0 "$container" 2>/dev/null; then
    log "the pipeline did not stop within ${grace} s: killed (the step is abandoned; the checkpoint before stands)"
    docker kill rlvr >/dev/null 2>&1 || true
  fi
  wait "$container" || status=$?
  log "the pipeline stopped after $(($(date +%s) - began)) s (status $status)"
  if $pushes; then
    s3 push "$run_dir" "$remote" --deadline "$((ends - margin))" || log "the last push did not complete"
  fi
  log "stopped: $(($(date +%s) - began)) s after the $why, $((ends - $(date +%s))) s before the termination"
}

started=$(date +%s)
lifetime_end=$((started + ${RLVR_MAX_HOURS:-24} * 3600))
idle_s=$((${RLVR_IDLE_MINUTES:-120} * 60))
next_push=$((started + push_every))
while kill -0 "$container" 2>/dev/null; do
  sleep "$poll"
  now=$(date +%s)
  if ends=$(spot_notice); then
    stop_run "spot interruption notice" "$ends"
    exit 143
  fi
  if [ "$now" -ge "$lifetime_end" ]; then
    stop_run "maximum lifetime (RLVR_MAX_HOURS=${RLVR_MAX_HOURS:-24})" "$((now + notice))"
    exit 143
  fi
  if [ "$idle_s" -gt 0 ] && [ "$now" -ge "$((started + idle_s))" ] &&
    [ -z "$(find "$RLVR_OUTPUTS" -newermt "@$((now - idle_s))" -print -quit)" ]; then
    stop_run "no file of the run changed for ${RLVR_IDLE_MINUTES:-120} minutes" "$((now + notice))"
    exit 143
  fi
  if $pushes && [ "$now" -ge "$next_push" ]; then
    push_in_background
    next_push=$((now + push_every))
  fi
done

status=0
wait "$container" || status=$?
log "the pipeline ended (status $status)"
stop_pusher
if $pushes; then s3 push "$run_dir" "$remote"; fi
exit "$status"
