#!/usr/bin/env bash
# The kind end-to-end run, step by step (called by .github/workflows/kind-e2e.yml; runnable by hand on a
# machine with Docker, kind, kubectl and jq, after `npm ci`, `docker build -t nba-backfill:e2e .` and
# `kind load docker-image nba-backfill:e2e --name nba-backfill`).
#
# The happy path: emulators, synth, apply, wait, check.
#   run.sh emulators       start the BigQuery, GCS and Pub/Sub emulators in namespace nba-backfill-e2e
#   run.sh synth           synthesize the chart for kind into build/kind-dist (dist/ plus the emulator override)
#   run.sh apply           kubectl apply the manifests, wait for the controller
#   run.sh wait            wait for every Stage 1 Job, the Stage 3 Job the controller creates, and its validation
#   run.sh check           check the tables from inside the cluster: `backfill validate` and row counts
#
# The failure scenario: emulators, fault-synth, apply, expect-failure, retry, fix, wait.
#   run.sh fault-synth     synthesize as `synth` does, with a permanent fault on one date (E2E_FAULT_DATE, default
#                          2021-10-20) in every pod: BACKFILL_FAULTS={"permanent":["<date>"]}, inline JSON through
#                          CHART_EXTRA_ENV (the pods' root filesystem is read-only: no fault file; the JSON holds
#                          no comma, CHART_EXTRA_ENV's pair separator)
#   run.sh expect-failure  the Stage 1 Job fails that date's index alone, after its two attempts; the controller
#                          writes its failure report (ConfigMap <job>-failures) and a DatesFailed Event; the gate
#                          refuses (gate report nba-backfill-gate-<season> with gate-passed "false", a GateFailed
#                          Event) and no Stage 3 Job is created
#   run.sh retry           `backfill retry --cluster` before the fix, from this machine's kubeconfig: the retry Job
#                          takes its settings from the season's Stage 1 Job, the fault with them, so it fails the
#                          date again; reported, and the gate, run again, refuses again
#   run.sh fix             the fix as an operator makes it: the chart synthesized again without the fault and
#                          applied. A pod template cannot change, so the Stage 1 Job gets a new name and loads the
#                          season again (a date's load replaces its rows); the failed Jobs stay for their logs
#   run.sh wait            as above: the failed Jobs are the expected ones, the new Job completes the date, the
#                          gate passes, Stage 3 runs and the controller's validation passes
#
#   run.sh diagnose        print what a person needs when a step failed
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
FAULT_DATE=${E2E_FAULT_DATE:-2021-10-20}
# CHART_EXTRA_ENV splits its NAME=value pairs on commas, so the fault JSON names one date and has no comma.
FAULTS_JSON="{\"permanent\":[\"$FAULT_DATE\"]}"
# What the failure scenario's steps hand to the next one (names of the Jobs expected to fail, the refused gate).
STATE=build/kind-e2e-state
EMULATOR_ENV="BIGQUERY_EMULATOR_HOST=http://bigquery.$E2E_NS.$SVC:9050,STORAGE_EMULATOR_HOST=http://gcs.$E2E_NS.$SVC:4443,PUBSUB_EMULATOR_HOST=pubsub.$E2E_NS.$SVC:8085,METADATA_SERVER_DETECTION=none"

say() { printf '\n== %s\n' "$*"; }
die() {
  printf 'kind-e2e: %s\n' "$*" >&2
  exit 1
}
need() { [[ -n "${!1:-}" ]] || die "$1 is not set ($2)"; }
ok() { printf '   ok: %s\n' "$*"; }

# Complete, Failed or Running, from the Job's conditions.
job_state() {
  kubectl -n "$NS" get job "$1" -o json |
    jq -r '[.status.conditions[]? | select(.status == "True") | .type] |
      if any(.[]; . == "Complete") then "Complete" elif any(.[]; . == "Failed") then "Failed" else "Running" end'
}

deadline=$(($(date +%s) + TIMEOUT_MINUTES * 60))
check_deadline() { (($(date +%s) < deadline)) || die "timed out after ${TIMEOUT_MINUTES} minutes: $*"; }

# Waits until a Job is Complete or Failed, showing its progress; prints nothing else.
wait_job_end() {
  local job=$1
  while [[ "$(job_state "$job")" == Running ]]; do
    check_deadline "job $job"
    kubectl -n "$NS" get job "$job" \
      -o jsonpath='{.metadata.name}: {.status.succeeded} succeeded, completed {.status.completedIndexes}, failed {.status.failedIndexes}{"\n"}' >&2
    sleep 20
  done
}

# The command that shows every attempt of one index of a Job, whole, each line prefixed by its pod.
logs_command() {
  printf 'kubectl logs -n %s -l batch.kubernetes.io/job-name=%s,batch.kubernetes.io/job-completion-index=%s --tail=-1 --prefix' \
    "$NS" "$1" "$2"
}
index_logs() {
  kubectl logs -n "$NS" -l "batch.kubernetes.io/job-name=$1,batch.kubernetes.io/job-completion-index=$2" --tail=-1 --prefix
}

# "<season> <template configmap> <stage 3 job>" for each season, from the Stage 3 templates in the cluster.
stage3_jobs() {
  kubectl -n "$NS" get configmap -l app.kubernetes.io/component=stage3-template -o json |
    jq -r '.items[] | "\(.metadata.labels["nba-backfill/season"]) \(.metadata.name) \(.data["job.json"] | fromjson | .metadata.name)"'
}
stage3_job_of() { stage3_jobs | awk -v s="$1" '$1 == s { print $3 }'; }

gate_configmap() { printf 'nba-backfill-gate-%s' "${1/-/}"; }
# An annotation of the season's gate report; empty while there is none.
gate_annotation() {
  kubectl -n "$NS" get configmap "$(gate_configmap "$1")" -o json 2>/dev/null |
    jq -r --arg a "$2" '.metadata.annotations[$a] // ""' || true
}

# The Events of one Job with one reason, as JSON lines (core/v1 fields, or events.k8s.io/v1 ones).
job_events() {
  kubectl -n "$NS" get events -o json |
    jq -c --arg job "$1" --arg reason "$2" '.items[]
      | select(((.involvedObject // .regarding).name) == $job and .reason == $reason)
      | { type, reason, message: (.message // .note) }'
}

# The index of a date in a Stage 1 or retry Job's plan ConfigMap.
index_of_date() {
  kubectl -n "$NS" get configmap "$1-plan" -o json |
    jq -r --arg d "$2" '.data["job-plan.json"] | fromjson | .dates | index($d) // empty'
}

# The Stage 1 Job of a season in the synthesized files.
synthesized_stage1_job() {
  sed -n 's/.*"jobName": "\(nba-stage1-[^"]*\)".*/\1/p' "$OUT/40-stage1-$1.k8s.yaml" | head -n 1
}

state_get() { cat "$STATE/$1" 2>/dev/null || true; }
state_set() {
  mkdir -p "$STATE"
  printf '%s\n' "$2" >"$STATE/$1"
}
expect_failed() {
  mkdir -p "$STATE"
  printf '%s\n' "$1" >>"$STATE/expected-failed-jobs"
}
is_expected_failed() { grep -qxF "$1" "$STATE/expected-failed-jobs" 2>/dev/null; }
need_fault_state() {
  [[ -n "$(state_get faulty-job)" ]] || die "no fault injected: run \`run.sh fault-synth\` and \`run.sh apply\` first"
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
  for _ in $(seq 1 30); do
    if curl -sf http://127.0.0.1:4443/storage/v1/b >/dev/null; then break; fi
    sleep 1
  done
  curl -sf -X POST "http://127.0.0.1:4443/storage/v1/b?project=$PROJECT" \
    -H 'Content-Type: application/json' -d "{\"name\":\"$BUCKET\"}" >/dev/null ||
    curl -sf "http://127.0.0.1:4443/storage/v1/b/$BUCKET" >/dev/null || die "could not create bucket $BUCKET"
}

# The chart for kind into $OUT: the image loaded into kind, the adapters pointed at the emulators, and `extra`
# (CHART_EXTRA_ENV) in every pod.
synthesize() {
  local extra=$1
  rm -rf "$OUT"
  CHART_IMAGE="$IMAGE" \
    CHART_IMAGE_PULL_POLICY=IfNotPresent \
    CHART_GCP_PROJECT="$PROJECT" \
    CHART_GCS_BUCKET="$BUCKET" \
    CHART_SEASONS="$SEASONS" \
    CHART_STAGE1_PARALLELISM="${E2E_PARALLELISM:-2}" \
    CHART_EXTRA_ENV="$extra" \
    node build/charts-src/synth.js --out "$OUT"
  say "how the kind manifests differ from dist/ (image, project, emulator variables, seasons)"
  diff -ru dist "$OUT" | grep '^[-+][^-+]' | sort | uniq -c | sort -rn | head -40 || true
}

cmd_synth() {
  say "synthesizing the chart for kind into $OUT"
  rm -rf "$STATE"
  synthesize "$EMULATOR_ENV"
}

cmd_fault_synth() {
  say "synthesizing the chart for kind into $OUT, with a permanent fault on $FAULT_DATE in every pod"
  rm -rf "$STATE"
  synthesize "$EMULATOR_ENV,BACKFILL_FAULTS=$FAULTS_JSON"
  local season="" s
  IFS=',' read -ra seasons <<<"$SEASONS"
  for s in "${seasons[@]}"; do
    s=${s// /}
    # A line of the plan's date list (the fault's own JSON holds the date too, on its env line).
    if grep -Eq "^ +\"$FAULT_DATE\",?$" "$OUT/40-stage1-$s.k8s.yaml"; then season=$s; fi
  done
  [[ -n "$season" ]] || die "E2E_FAULT_DATE=$FAULT_DATE is not a date of the Stage 1 plans of $SEASONS"
  grep -qF "$FAULTS_JSON" "$OUT/40-stage1-$season.k8s.yaml" || die "the Stage 1 Job of $season does not carry $FAULTS_JSON"
  local job
  job=$(synthesized_stage1_job "$season")
  [[ -n "$job" ]] || die "no Stage 1 Job name in $OUT/40-stage1-$season.k8s.yaml"
  state_set fault-season "$season"
  state_set faulty-job "$job"
  ok "Stage 1 job $job of $season carries BACKFILL_FAULTS=$FAULTS_JSON; apply it with \`run.sh apply\`"
}

cmd_apply() {
  say "kubectl apply -f $OUT/"
  kubectl apply -f "$OUT/"
  kubectl -n "$NS" rollout status deploy/nba-backfill-controller --timeout=5m
}

# The failure report of a finished Job that failed `date` (and nothing else) on `attempts` attempts of exit 1.
check_failure_report() {
  local job=$1 date=$2 index=$3 attempts=$4
  local cm="$job-failures" uid report logs
  logs=$(logs_command "$job" "$index")
  say "the controller's failure report of $job: configmap $cm and a DatesFailed Event"
  until kubectl -n "$NS" get configmap "$cm" >/dev/null 2>&1; do
    check_deadline "the controller wrote no failure report $cm"
    sleep 10
  done
  uid=$(kubectl -n "$NS" get job "$job" -o jsonpath='{.metadata.uid}')
  report=$(kubectl -n "$NS" get configmap "$cm" -o json)
  jq -r '.data["failures.txt"]' <<<"$report"
  jq -e --arg uid "$uid" '.metadata.labels["nba-backfill/report"] == "failures"
    and .metadata.annotations["nba-backfill/job-uid"] == $uid' <<<"$report" >/dev/null ||
    die "configmap $cm is not the failure report of job $job (uid $uid)"
  jq -e --arg d "$date" --argjson i "$index" --argjson n "$attempts" --arg logs "$logs" '
    .data["failures.json"] | fromjson
    | (.failed | length) == 1 and (.undated | length) == 0
      and .failed[0].date == $d and .failed[0].index == $i and .failed[0].attempts == $n
      and .failed[0].exitCodes == [range($n) | 1] and .failed[0].reason == "BackoffLimitExceeded"
      and .failed[0].logs == $logs and (.failed[0].error // "" | test("injected fault"))' <<<"$report" >/dev/null ||
    die "the failure report $cm does not name $date (index $index, $attempts attempts of exit 1, the injected fault, its logs command)"
  ok "$cm: $date, index $index, $attempts attempts, BackoffLimitExceeded, the injected fault, and: $logs"
  local events
  events=$(job_events "$job" DatesFailed)
  printf '%s\n' "$events"
  jq -se --arg m "$date (index $index: $logs)" --arg cm "configmap $cm" \
    'length == 1 and .[0].type == "Warning" and (.[0].message | contains($m) and contains($cm))' <<<"$events" >/dev/null ||
    die "no Warning Event DatesFailed on job $job naming $date, its logs command and $cm"
  ok "Event DatesFailed on job $job"
  kubectl -n "$NS" logs deploy/nba-backfill-controller --tail=-1 |
    jq -R -c --arg job "$job" --arg d "$date" 'fromjson? | select(.msg == "date failed" and .job == $job and .date == $d)
      | { msg, date, index, processor, reason, attempts, logs }' | grep . ||
    die "the controller logged no \"date failed\" line for $date of $job"
}

# Waits for the season's gate report under a gate key other than `old`; it must refuse, naming `date`.
check_gate_refused() {
  local season=$1 date=$2 old=$3 last_job=$4
  local cm key stage3
  cm=$(gate_configmap "$season")
  say "the gate refuses $season: configmap $cm, a GateFailed Event, no Stage 3 Job"
  until key=$(gate_annotation "$season" nba-backfill/gate-key) && [[ -n "$key" && "$key" != "$old" ]] &&
    [[ -n "$(gate_annotation "$season" nba-backfill/gate-passed)" ]]; do
    check_deadline "no new gate report $cm (the gate runs once every Stage 1 and retry Job of $season ended)"
    sleep 10
  done
  kubectl -n "$NS" get configmap "$cm" -o json | jq -r '.data["gate.txt"]'
  [[ "$(gate_annotation "$season" nba-backfill/gate-passed)" == false ]] ||
    die "the gate of $season passed with $date failing (configmap $cm)"
  kubectl -n "$NS" get configmap "$cm" -o json | jq -e --arg d "$date" '.data["gate.json"] | fromjson
    | .passed == false and ([.tables[].missingDates[], .runProblems[].date] | unique) == [$d]' >/dev/null ||
    die "the gate report $cm does not name $date, and $date alone, as incomplete"
  ok "$cm: gate-passed \"false\", gate-key $key, $date the one incomplete date"
  job_events "$last_job" GateFailed | jq -se --arg d "$date" 'length >= 1 and any(.[]; .message | contains($d))' >/dev/null ||
    die "no GateFailed Event on job $last_job naming $date"
  ok "Event GateFailed on job $last_job"
  stage3=$(stage3_job_of "$season")
  # The controller creates Stage 3 in the pass that publishes a passing gate: give a wrong one time to show.
  sleep 30
  if kubectl -n "$NS" get job "$stage3" >/dev/null 2>&1; then die "Stage 3 job $stage3 was created though the gate refused"; fi
  ok "no Stage 3 job $stage3"
  state_set refused-gate-key "$key"
}

cmd_expect_failure() {
  need_fault_state
  local season job index completions
  season=$(state_get fault-season)
  job=$(state_get faulty-job)
  say "Stage 1 job $job: the fault fails $FAULT_DATE, every other date loads"
  kubectl -n "$NS" get job "$job" -o json |
    jq -e --arg v "$FAULTS_JSON" 'any(.spec.template.spec.containers[0].env[]; .name == "BACKFILL_FAULTS" and .value == $v)' \
      >/dev/null || die "job $job in the cluster does not carry BACKFILL_FAULTS=$FAULTS_JSON"
  index=$(index_of_date "$job" "$FAULT_DATE")
  [[ -n "$index" ]] || die "$FAULT_DATE is not in the plan of $job (configmap $job-plan)"
  wait_job_end "$job"
  [[ "$(job_state "$job")" == Failed ]] || die "job $job ended $(job_state "$job"): the fault on $FAULT_DATE did not fail it"
  kubectl -n "$NS" get job "$job" -o json | jq -c '{ completions: .spec.completions, succeeded: .status.succeeded,
    failed: .status.failed, completedIndexes: .status.completedIndexes, failedIndexes: .status.failedIndexes,
    conditions: [.status.conditions[]? | select(.status == "True") | { type, reason }] }'
  completions=$(kubectl -n "$NS" get job "$job" -o jsonpath='{.spec.completions}')
  kubectl -n "$NS" get job "$job" -o json | jq -e --arg i "$index" --argjson n "$completions" '
    .status.failedIndexes == $i and .status.succeeded == $n - 1
    and any(.status.conditions[]; .type == "Failed" and .status == "True" and .reason == "FailedIndexes")' >/dev/null ||
    die "job $job: expected index $index ($FAULT_DATE) failed alone and $((completions - 1)) indexes complete"
  ok "failedIndexes \"$index\" ($FAULT_DATE), $((completions - 1)) of $completions indexes complete, reason FailedIndexes"

  say "the pods of index $index: two attempts (backoffLimitPerIndex 1), exit 1 (retriable), the injected fault"
  kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$job,batch.kubernetes.io/job-completion-index=$index" -o json |
    jq -e '[.items[].status.containerStatuses[0].state.terminated.exitCode] == [1, 1]' >/dev/null ||
    die "index $index of $job: expected two pods that exited 1"
  printf '$ %s\n' "$(logs_command "$job" "$index")"
  local logs
  logs=$(index_logs "$job" "$index")
  grep -F '"outcome":"failed"' <<<"$logs" | cut -c1-400 || true
  grep -q "injected fault: .* for $FAULT_DATE fails on every attempt" <<<"$logs" || die "the pods of index $index do not log the injected fault"
  grep -q '"retryLimitReached":true' <<<"$logs" || die "the last attempt of index $index does not say the retry limit was reached"
  ok "both attempts logged the injected fault; the second reached the retry limit"

  check_failure_report "$job" "$FAULT_DATE" "$index" 2
  check_gate_refused "$season" "$FAULT_DATE" "" "$job"
  expect_failed "$job"
}

cmd_retry() {
  need_fault_state
  local season faulty out job
  season=$(state_get fault-season)
  faulty=$(state_get faulty-job)
  say "backfill retry --cluster --season $season, before the fix (this machine's kubeconfig)"
  out=$(node build/cli/main.js retry --cluster --season "$season" --namespace "$NS") || die "backfill retry --cluster failed"
  printf '%s\n' "$out"
  job=$(sed -n 's/.*: retry job \(nba-retry-[^ ]*\) created .*/\1/p' <<<"$out")
  [[ -n "$job" ]] || die "backfill retry --cluster created no retry job for $FAULT_DATE"
  grep -qF "settings from $faulty" <<<"$out" || die "the retry job did not take its settings from $faulty"
  kubectl -n "$NS" get configmap "$job-plan" -o json | jq -e --arg d "$FAULT_DATE" \
    '.data["job-plan.json"] | fromjson | .dates == [$d]' >/dev/null || die "retry job $job is not for $FAULT_DATE alone"
  kubectl -n "$NS" get job "$job" -o json | jq -e --arg v "$FAULTS_JSON" \
    'any(.spec.template.spec.containers[0].env[]; .name == "BACKFILL_FAULTS" and .value == $v)' >/dev/null ||
    die "retry job $job does not carry its model's BACKFILL_FAULTS"
  ok "retry job $job: $FAULT_DATE, with the settings of $faulty, BACKFILL_FAULTS included"
  wait_job_end "$job"
  [[ "$(job_state "$job")" == Failed ]] || die "retry job $job ended $(job_state "$job") with the fault still in its settings"
  ok "retry job $job failed: the cause is in the settings it copied"
  check_failure_report "$job" "$FAULT_DATE" 0 2
  check_gate_refused "$season" "$FAULT_DATE" "$(state_get refused-gate-key)" "$job"
  expect_failed "$job"
}

cmd_fix() {
  need_fault_state
  local season faulty job
  season=$(state_get fault-season)
  faulty=$(state_get faulty-job)
  say "the fix: the chart synthesized again without the fault, then applied"
  synthesize "$EMULATOR_ENV"
  if grep -rlF BACKFILL_FAULTS "$OUT"; then die "the manifests in $OUT still set BACKFILL_FAULTS"; fi
  job=$(synthesized_stage1_job "$season")
  [[ -n "$job" && "$job" != "$faulty" ]] || die "the Stage 1 job of $season kept its name $faulty without the fault"
  ok "no pod sets BACKFILL_FAULTS; the Stage 1 job of $season is now $job (was $faulty: its pod template changed)"
  state_set fixed-job "$job"
  cmd_apply
  say "the Stage 1 jobs of $season now (kubectl apply prunes nothing: the failed ones stay, with their pods' logs)"
  kubectl -n "$NS" get jobs -l "app.kubernetes.io/component=stage1,nba-backfill/season=$season" \
    -o custom-columns='NAME:.metadata.name,CREATED:.metadata.creationTimestamp,COMPLETED:.status.completedIndexes,FAILED:.status.failedIndexes'
}

# After the fix: the new Stage 1 Job loaded the date the fault failed.
check_recovered() {
  local job=$1 index
  index=$(index_of_date "$job" "$FAULT_DATE")
  [[ -n "$index" ]] || die "$FAULT_DATE is not in the plan of $job"
  kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$job,batch.kubernetes.io/job-completion-index=$index" \
    --field-selector=status.phase=Succeeded -o name | grep . >/dev/null || die "no pod of $job loaded $FAULT_DATE (index $index)"
  printf '$ %s\n' "$(logs_command "$job" "$index")"
  local logs
  logs=$(index_logs "$job" "$index")
  grep -F '"outcome":"succeeded"' <<<"$logs" | cut -c1-400 || true
  if grep -q 'injected fault' <<<"$logs"; then die "index $index of $job still met the injected fault"; fi
  ok "$job loaded $FAULT_DATE (index $index) without the fault"
}

cmd_wait() {
  say "Stage 1: every date of $SEASONS"
  local jobs state
  jobs=$(kubectl -n "$NS" get jobs -l app.kubernetes.io/component=stage1 -o jsonpath='{.items[*].metadata.name}')
  [[ -n "$jobs" ]] || die "no Stage 1 Job in namespace $NS"
  for job in $jobs; do
    wait_job_end "$job"
    state=$(job_state "$job")
    if [[ "$state" == Failed ]]; then
      failed=$(kubectl -n "$NS" get job "$job" -o jsonpath='{.status.failedIndexes}')
      if is_expected_failed "$job"; then
        echo "Stage 1 job $job: Failed, as expected (the injected fault; failed indexes: ${failed:-none})"
        continue
      fi
      echo "Stage 1 job $job failed; failed indexes: ${failed:-none}"
      echo "logs of an index: $(logs_command "$job" '<index>')"
      die "Stage 1 job $job failed"
    fi
    echo "Stage 1 job $job: Complete"
  done
  if [[ -n "$(state_get fixed-job)" ]]; then check_recovered "$(state_get fixed-job)"; fi

  say "Stage 3: created by the controller once the gate passes"
  local rows
  mapfile -t rows < <(stage3_jobs)
  for row in "${rows[@]}"; do
    read -r season template job <<<"$row"
    until kubectl -n "$NS" get job "$job" >/dev/null 2>&1; do
      check_deadline "the controller did not create $job from $template (gate report: configmap $(gate_configmap "$season"))"
      sleep 15
    done
    [[ "$(gate_annotation "$season" nba-backfill/gate-passed)" == true ]] ||
      die "Stage 3 job $job exists but the gate report $(gate_configmap "$season") does not say it passed"
    local refused
    refused=$(state_get refused-gate-key)
    if [[ -n "$refused" && "$(state_get fault-season)" == "$season" ]]; then
      [[ "$(gate_annotation "$season" nba-backfill/gate-key)" != "$refused" ]] ||
        die "the gate of $season passed under the key it refused"
      kubectl -n "$NS" get configmap "$(gate_configmap "$season")" -o json | jq -r '.data["gate.txt"]'
    fi
    ok "gate report $(gate_configmap "$season"): passed"
    wait_job_end "$job"
    if [[ "$(job_state "$job")" == Failed ]]; then
      kubectl -n "$NS" get pods -l "batch.kubernetes.io/job-name=$job" \
        -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.message}{"\n"}{end}' || true
      echo "its logs: kubectl logs -n $NS -l batch.kubernetes.io/job-name=$job --tail=-1 --prefix"
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
  say "cluster"
  kubectl version
  kubectl get nodes -o wide
  say "what the failure scenario's steps recorded ($STATE)"
  for f in "$STATE"/*; do [[ -f "$f" ]] && printf '%s: %s\n' "${f##*/}" "$(tr '\n' ' ' <"$f")"; done
  say "namespace $NS"
  kubectl -n "$NS" get all,configmaps,events --sort-by=.metadata.creationTimestamp
  kubectl -n "$NS" get jobs -o custom-columns='NAME:.metadata.name,COMPONENT:.metadata.labels.app\.kubernetes\.io/component,SUCCEEDED:.status.succeeded,FAILED:.status.failed,COMPLETED:.status.completedIndexes,FAILED-INDEXES:.status.failedIndexes'
  say "Warning events"
  kubectl -n "$NS" get events --field-selector type=Warning
  say "the controller's reports (failure logs, gate, Stage 3 results, validation)"
  kubectl -n "$NS" get configmaps -l app.kubernetes.io/managed-by=nba-backfill-controller -o json |
    jq -r '.items[] | "--- configmap \(.metadata.name) \(.metadata.annotations // {} | tojson)",
      if .metadata.labels["nba-backfill/report"] == "validation" then
        .data["summary.json"] | fromjson | { passed, dates, stage3: (.stage3 // {} | del(.msPerDate)), failing: [.checks[] | select(.passed | not)] } | tojson
      else .data["failures.txt"] // .data["gate.txt"] // .data["message.txt"] // "" end'
  say "the controller's log"
  kubectl -n "$NS" logs deploy/nba-backfill-controller --tail=300
  kubectl -n "$NS" logs deploy/nba-backfill-controller --previous --tail=100 2>/dev/null
  say "failed indexes of the Stage 1 and retry jobs (the last lines of each; the whole: the printed command)"
  local job index
  for job in $(kubectl -n "$NS" get jobs -l app.kubernetes.io/component=stage1 -o jsonpath='{.items[*].metadata.name}'); do
    for index in $(kubectl -n "$NS" get job "$job" -o json |
      jq -r '.status.failedIndexes // "" | split(",")[] | select(. != "")
        | if test("-") then (split("-") | map(tonumber) | range(.[0]; .[1] + 1)) else tonumber end' | head -5); do
      printf -- '--- %s index %s\n$ %s\n' "$job" "$index" "$(logs_command "$job" "$index")"
      index_logs "$job" "$index" | tail -n 40
    done
  done
  say "Stage 3 and other failed pods"
  for pod in $(kubectl -n "$NS" get pods --field-selector=status.phase=Failed -l 'app.kubernetes.io/component!=stage1' -o name | head -5); do
    echo "--- $pod: $(kubectl -n "$NS" get "$pod" -o jsonpath='{.status.containerStatuses[0].state.terminated.message}')"
    kubectl -n "$NS" logs "$pod" --tail=100
  done
  say "pods not running or done (image pulls, volumes, scheduling)"
  for pod in $(kubectl -n "$NS" get pods --field-selector=status.phase=Pending -o name | head -5); do
    kubectl -n "$NS" describe "$pod" | tail -n 25
  done
  say "emulators"
  kubectl -n "$E2E_NS" get pods
  kubectl -n "$E2E_NS" logs deploy/bigquery --tail=100
  return 0
}

case "${1:-}" in
emulators | synth | apply | wait | check | diagnose) "cmd_$1" ;;
fault-synth) cmd_fault_synth ;;
expect-failure) cmd_expect_failure ;;
retry) cmd_retry ;;
fix) cmd_fix ;;
*) die "usage: $0 emulators|synth|fault-synth|apply|expect-failure|retry|fix|wait|check|diagnose" ;;
esac
