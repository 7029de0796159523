#!/usr/bin/env bash
# The kind end-to-end run, step by step (called by .github/workflows/kind-e2e.yml; runnable by hand on a
# machine with Docker, kind, kubectl and jq, after `npm ci`, `docker build -t nba-backfill:e2e .` and
# `kind load docker-image nba-backfill:e2e --name nba-backfill`):
#
#   run.sh emulators   start the BigQuery, GCS and Pub/Sub emulators in namespace nba-backfill-e2e
#   run.sh synth       synthesize the chart for kind into build/kind-dist (dist/ plus the emulator override)
#   run.sh apply       kubectl apply the manifests, wait for the controller
#   run.sh wait        wait for every Stage 1 Job, the Stage 3 Job the controller creates, and its validation
#   run.sh check       check the tables from inside the cluster: `backfill validate` and row counts
#   run.sh diagnose    print what a person needs when a step failed
set -euo pipefail
cd "$(dirname "$0")/../.."

NS=nba-backfill
E2E_NS=nba-backfill-e2e
PROJECT=${E2E_PROJECT:-e2e-project}
BUCKET=${E2E_BUCKET:-e2e-bucket}
SEASONS=${E2E_SEASONS:-2021-22}
IMAGE=${E2E_IMAGE:-nba-backfill:e2e}
OUT=build/kind-dist
TIMEOUT_MINUTES=${E2E_TIMEOUT_MINUTES:-90}
SVC=svc.cluster.local

say() { printf '\n== %s\n' "$*"; }
die() {
  printf 'kind-e2e: %s\n' "$*" >&2
  exit 1
}
need() { [[ -n "${!1:-}" ]] || die "$1 is not set ($2)"; }

# Complete, Failed or Running, from the Job's conditions.
job_state() {
  kubectl -n "$NS" get job "$1" -o json |
    jq -r '[.status.conditions[]? | select(.status == "True") | .type] |
      if any(.[]; . == "Complete") then "Complete" elif any(.[]; . == "Failed") then "Failed" else "Running" end'
}

deadline=$(($(date +%s) + TIMEOUT_MINUTES * 60))
check_deadline() { (($(date +%s) < deadline)) || die "timed out after ${TIMEOUT_MINUTES} minutes: $*"; }

stage3_jobs() {
  kubectl -n "$NS" get configmap -l app.kubernetes.io/component=stage3-template -o json |
    jq -r '.items[] | "\(.metadata.labels["nba-backfill/season"]) \(.metadata.name) \(.data["job.json"] | fromjson | .metadata.name)"'
}

cmd_emulators() {
  need BIGQUERY_EMULATOR_IMAGE 'an image of goccy/bigquery-emulator; see docs/kubernetes.md'
  need GCS_EMULATOR_IMAGE 'an image of fsouza/fake-gcs-server'
  need PUBSUB_EMULATOR_IMAGE 'an image with the Cloud SDK Pub/Sub emulator'
  say "emulators in namespace $E2E_NS"
  sed -e "s|__BIGQUERY_IMAGE__|$BIGQUERY_EMULATOR_IMAGE|" -e "s|__GCS_IMAGE__|$GCS_EMULATOR_IMAGE|" \
    -e "s|__PUBSUB_IMAGE__|$PUBSUB_EMULATOR_IMAGE|" -e "s|__PROJECT__|$PROJECT|g" \
    .github/kind-e2e/emulators.yaml | kubectl apply -f -
  for d in bigquery gcs pubsub; do kubectl -n "$E2E_NS" rollout status "deploy/$d" --timeout=10m; done
  say "bucket gs://$BUCKET"
  kubectl -n "$E2E_NS" port-forward svc/gcs 4443:4443 >/tmp/kind-e2e-port-forward.log 2>&1 &
  local pf=$!
  trap 'kill $pf 2>/dev/null || true' RETURN
  for _ in $(seq 1 30); do curl -sf http://127.0.0.1:4443/storage/v1/b >/dev/null && break || sleep 1; done
  curl -sf -X POST "http://127.0.0.1:4443/storage/v1/b?project=$PROJECT" \
    -H 'Content-Type: application/json' -d "{\"name\":\"$BUCKET\"}" >/dev/null ||
    curl -sf "http://127.0.0.1:4443/storage/v1/b/$BUCKET" >/dev/null || die "could not create bucket $BUCKET"
}

cmd_synth() {
  say "synthesizing the chart for kind into $OUT"
  # The same chart as dist/, with the image loaded into kind and the adapters pointed at the emulators.
  CHART_IMAGE="$IMAGE" \
    CHART_IMAGE_PULL_POLICY=IfNotPresent \
    CHART_GCP_PROJECT="$PROJECT" \
    CHART_GCS_BUCKET="$BUCKET" \
    CHART_SEASONS="$SEASONS" \
    CHART_STAGE1_PARALLELISM="${E2E_PARALLELISM:-2}" \
    CHART_EXTRA_ENV="BIGQUERY_EMULATOR_HOST=http://bigquery.$E2E_NS.$SVC:9050,STORAGE_EMULATOR_HOST=http://gcs.$E2E_NS.$SVC:4443,PUBSUB_EMULATOR_HOST=pubsub.$E2E_NS.$SVC:8085,METADATA_SERVER_DETECTION=none" \
    node build/charts-src/synth.js --out "$OUT"
  say "how the kind manifests differ from dist/ (image, project, emulator variables, seasons)"
  diff -ru dist "$OUT" | grep '^[-+][^-+]' | sort | uniq -c | sort -rn | head -40 || true
}

cmd_apply() {
  say "kubectl apply -f $OUT/"
  kubectl apply -f "$OUT/"
  kubectl -n "$NS" rollout status deploy/nba-backfill-controller --timeout=5m
}

cmd_wait() {
  say "Stage 1: every date of $SEASONS"
  local jobs
  jobs=$(kubectl -n "$NS" get jobs -l app.kubernetes.io/component=stage1 -o jsonpath='{.items[*].metadata.name}')
  [[ -n "$jobs" ]] || die "no Stage 1 Job in namespace $NS"
  for job in $jobs; do
    while :; do
      state=$(job_state "$job")
      [[ "$state" != Running ]] && break
      check_deadline "Stage 1 job $job"
      kubectl -n "$NS" get job "$job" -o jsonpath='{.metadata.name}: {.status.succeeded} succeeded, completed {.status.completedIndexes}{"\n"}'
      sleep 20
    done
    if [[ "$state" == Failed ]]; then
      failed=$(kubectl -n "$NS" get job "$job" -o jsonpath='{.status.failedIndexes}')
      echo "Stage 1 job $job failed; failed indexes: ${failed:-none}"
      echo "logs of an index: kubectl logs -n $NS -l batch.kubernetes.io/job-name=$job,batch.kubernetes.io/job-completion-index=<index> --tail=-1 --prefix"
      die "Stage 1 job $job failed"
    fi
    echo "Stage 1 job $job: Complete"
  done

  say "Stage 3: created by the controller once the gate passes"
  local rows
  mapfile -t rows < <(stage3_jobs)
  for row in "${rows[@]}"; do
    read -r season template job <<<"$row"
    until kubectl -n "$NS" get job "$job" >/dev/null 2>&1; do
      check_deadline "the controller did not create $job from $template (gate report: configmap nba-backfill-gate-${season/-/})"
      sleep 15
    done
    while [[ "$(job_state "$job")" == Running ]]; do
      check_deadline "Stage 3 job $job"
      sleep 20
    done
    if [[ "$(job_state "$job")" == Failed ]]; then
      kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$job" \
        -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.message}{"\n"}{end}' || true
      die "Stage 3 job $job of $season failed"
    fi
    echo "Stage 3 job $job: Complete"

    say "Stage 4: the controller's validation report (configmap $job-validation)"
    until kubectl -n "$NS" get configmap "$job-validation" >/dev/null 2>&1; do
      check_deadline "no validation report for $job"
      sleep 10
    done
    passed=$(kubectl -n "$NS" get configmap "$job-validation" -o json | jq -r '.metadata.annotations["nba-backfill/passed"]')
    kubectl -n "$NS" get configmap "$job-validation" -o json | jq -r '.data["summary.json"]'
    [[ "$passed" == true ]] || die "the controller's Stage 4 validation of $season did not pass"
  done
}

# A one-pod Job from the season's Stage 3 template (same image, settings and security), running `args`.
run_check_job() {
  local template=$1 name=$2
  shift 2
  local args
  args=$(jq -n -c '$ARGS.positional' --args -- "$@")
  kubectl -n "$NS" get configmap "$template" -o json | jq -r '.data["job.json"]' |
    jq --arg name "$name" --argjson args "$args" '
      .metadata.name = $name
      | .metadata.labels["app.kubernetes.io/component"] = "e2e-check"
      | .spec.template.metadata.labels["app.kubernetes.io/component"] = "e2e-check"
      | .spec.template.spec.containers[0].command = (["node", "build/cli/main.js"] + $args)' |
    kubectl -n "$NS" apply -f -
  while [[ "$(job_state "$name")" == Running ]]; do
    check_deadline "check job $name"
    sleep 5
  done
  kubectl -n "$NS" logs "job/$name" --tail=-1
  [[ "$(job_state "$name")" == Complete ]] || die "check job $name failed"
}

cmd_check() {
  local rows
  mapfile -t rows < <(stage3_jobs)
  for row in "${rows[@]}"; do
    read -r season template _job <<<"$row"
    slug=${season/-/}
    say "backfill validate --season $season (Stage 4 again, from a pod of its own)"
    run_check_job "$template" "e2e-validate-$slug" validate --season "$season" --season-type regular

    say "row counts of $season"
    sql="SELECT 'nba_raw.nbac_player_boxscore' AS t, COUNT(*) AS n FROM nba_raw.nbac_player_boxscore WHERE season = '$season'
      UNION ALL SELECT 'nba_analytics.player_game_summary', COUNT(*) FROM nba_analytics.player_game_summary WHERE season = '$season'
      UNION ALL SELECT 'nba_precompute.ml_feature_store', COUNT(*) FROM nba_precompute.ml_feature_store WHERE season = '$season'"
    run_check_job "$template" "e2e-rows-$slug" query "$sql" --format json
    empty=$(kubectl -n "$NS" logs "job/e2e-rows-$slug" --tail=-1 | jq -r '.[] | select((.n | tonumber) == 0) | .t')
    [[ -z "$empty" ]] || die "tables with no rows for $season: $empty"
  done
  say "every check passed"
}

cmd_diagnose() {
  set +e
  kubectl get nodes -o wide
  kubectl -n "$NS" get all,configmaps,events --sort-by=.metadata.creationTimestamp
  kubectl -n "$NS" get events --field-selector type=Warning
  kubectl -n "$NS" logs deploy/nba-backfill-controller --tail=300
  for pod in $(kubectl -n "$NS" get pods --field-selector=status.phase=Failed -o name | head -5); do
    echo "--- $pod"
    kubectl -n "$NS" logs "$pod" --tail=100
  done
  kubectl -n "$E2E_NS" get pods
  kubectl -n "$E2E_NS" logs deploy/bigquery --tail=100
}

case "${1:-}" in
emulators | synth | apply | wait | check | diagnose) "cmd_$1" ;;
*) die "usage: $0 emulators|synth|apply|wait|check|diagnose" ;;
esac
