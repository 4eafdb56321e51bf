#!/usr/bin/env bash
# Host side of an rlvr machine (called by cloud-init.sh.tftpl, which syncs and shuts down when this ends):
#   1. secrets from Secrets Manager into a root-only env file on tmpfs (never logged, never on disk);
#   2. the run directory restored from S3, so the same command resumes where a previous machine stopped;
#   3. the image built from the repository (infrastructure/Dockerfile);
#   4. the container started for this machine's role: single (the pipeline on every GPU), head (Ray head, then the
#      sweep as Ray tasks) or worker (joins the head);
#   5. meanwhile the outputs are synced to S3 every RLVR_SYNC_EVERY seconds, and a spot interruption notice sends
#      SIGTERM to the pipeline, which saves a checkpoint and stops (rlvr resumes it on the next machine).
set -euo pipefail

: "${RLVR_ROLE:?}" "${RLVR_BUCKET:?}" "${RLVR_RUN_NAME:?}" "${RLVR_OUTPUTS:?}"
sync_every="${RLVR_SYNC_EVERY:-300}"
remote="s3://$RLVR_BUCKET/$RLVR_RUN_NAME/"
repo=/opt/rlvr

env_file=/run/rlvr.env
install -m 600 /dev/null "$env_file"
for arn in ${RLVR_SECRET_ARNS:-}; do
  aws secretsmanager get-secret-value --secret-id "$arn" --query SecretString --output text \
    | python3 -c 'import json, sys; print("\n".join(f"{k}={v}" for k, v in json.load(sys.stdin).items()))' \
    >>"$env_file"
done

mkdir -p "$RLVR_OUTPUTS"
aws s3 sync "$remote" "$RLVR_OUTPUTS" --only-show-errors
chown -R 1000:1000 "$RLVR_OUTPUTS"

docker build -t rlvr -f "$repo/infrastructure/Dockerfile" "$repo"

(while sleep "$sync_every"; do aws s3 sync "$RLVR_OUTPUTS" "$remote" --only-show-errors || true; done) &
syncer=$!

watch_spot() {
  local token code
  while sleep 5; do
    token=$(curl -s -X PUT http://169.254.169.254/latest/api/token \
      -H "X-aws-ec2-metadata-token-ttl-seconds: 300") || continue
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-aws-ec2-metadata-token: $token" \
      http://169.254.169.254/latest/meta-data/spot/instance-action) || continue
    if [ "$code" = "200" ]; then
      echo "rlvr: spot interruption notice: stopping the pipeline (it saves a checkpoint)"
      docker kill --signal TERM rlvr || true
      return
    fi
  done
}
watch_spot &
watcher=$!

common=(--name rlvr --gpus all --network host --shm-size 16g --env-file "$env_file"
  --env RLVR_RUN_NAME --env RLVR_RUN_ARGS_B64 --env RLVR_ACCELERATE -v "$RLVR_OUTPUTS:/outputs")
status=0
case "$RLVR_ROLE" in
  single)
    docker run "${common[@]}" rlvr bash infrastructure/scripts/run.sh || status=$?
    ;;
  head)
    docker run "${common[@]}" --env RLVR_WORKERS rlvr bash infrastructure/scripts/run.sh --ray-head || status=$?
    ;;
  worker)
    docker run "${common[@]}" rlvr ray start --address "$RLVR_HEAD:6379" --block || status=$?
    ;;
  *)
    echo "rlvr: unknown role $RLVR_ROLE" >&2
    status=2
    ;;
esac

kill "$syncer" "$watcher" 2>/dev/null || true
exit "$status"
