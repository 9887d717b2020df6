#!/usr/bin/env bash
# Deploys a NEXTGEN release to prod with Guardian as the gate and the guard:
#   1. the exact confirmation "DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED"
#      (typed at the terminal, or --confirm / NEXTGEN_PROD_CONFIRMATION for CI)
#   2. a backup of nextgen_production (backup-nextgen-prod.sh), reported to Guardian
#   3. Guardian's prod gate must say go
#   4. a migration declared per app, so Guardian guards it from the first second
#   5. kubectl set image, then kubectl rollout status while Guardian watches
#   6. the migrations kept open --bake-seconds more (30), then finished;
#      if Guardian paused or rolled back, say so and fail
#
# Usage: deploy-nextgen-prod.sh --image-tag TAG [--apps landing,dashboard,admin]
#                               [--confirm PHRASE] [--timeout 10m] [--bake-seconds 30]
# Environment: GUARDIAN_URL (default http://guardian:9090), GUARDIAN_API_TOKEN,
#   and the backup's settings (NEXTGEN_DATABASE_URL, BACKUP_DIR, …).
# Exit: 0 deployed; 1 a step failed; 2 usage; 3 refused; 4 Guardian rolled
#   the release back; 5 Guardian paused the rollout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-$EXIT_USAGE}"
}

tag='' apps='landing,dashboard,admin' given=${NEXTGEN_PROD_CONFIRMATION:-} timeout=10m bake=30
while [[ $# -gt 0 ]]; do
  case $1 in
  --image-tag) tag=${2:-}; shift 2 || usage ;;
  --apps) apps=${2:-}; shift 2 || usage ;;
  --confirm) given=${2:-}; shift 2 || usage ;;
  --timeout) timeout=${2:-}; shift 2 || usage ;;
  --bake-seconds) bake=${2:-}; shift 2 || usage ;;
  -h | --help) usage 0 ;;
  *) log "unknown argument ${1@Q}"; usage ;;
  esac
done
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "$EXIT_USAGE" "--image-tag must be a Docker tag, not ${tag@Q}"
[[ $bake =~ ^[0-9]+$ ]] || die "$EXIT_USAGE" "--bake-seconds must be a whole number of seconds, not ${bake@Q}"
read -r -a app_list <<<"$(apps_of "$apps")"
need guardian kubectl curl jq

confirm "$given"
need_token
require_reachable
log "backup before the deploy"
"$SCRIPTS_DIR/backup-nextgen-prod.sh" >/dev/null || die "$EXIT_FAILED" "no deploy without a backup: the backup failed"
require_go prod

# "Since the start" is read on Guardian's clock (the first migration's
# started_at), so a runner whose clock runs ahead cannot hide what it did.
since=''
migrations=()
finish_migrations() {
  local id
  for id in "${migrations[@]}"; do
    api_post "/api/v1/migrations/$id/finish" '{}' --retry 3 --retry-connrefused --retry-delay 1 >/dev/null ||
      log "could not finish migration $id: Guardian disarms it by itself after 6 h"
  done
  migrations=()
}
trap finish_migrations EXIT

for app in "${app_list[@]}"; do
  target="$PROD_NAMESPACE/Deployment/nextgen-$app"
  body=$(jq -cn --arg t "$target" --arg d "deploy nextgen-$app:$tag (deploy-nextgen-prod.sh by ${USER:-ci})" \
    '{target: $t, description: $d, on_breach: "rollback"}')
  answer=$(api_post /api/v1/migrations "$body") ||
    die "$EXIT_REFUSED" "refused: Guardian did not take the migration of $target, so nothing would guard it: $answer"
  migrations+=("$(jq -r .id <<<"$answer")")
  [[ -n $since ]] || since=$(jq '.migration.started_at | sub("\\.[0-9]+"; "") | fromdateiso8601' <<<"$answer")
  log "Guardian guards $target (migration ${migrations[-1]})"
done

for app in "${app_list[@]}"; do
  kubectl -n "$PROD_NAMESPACE" set image "deployment/nextgen-$app" "nextgen-$app=$REGISTRY/nextgen-$app:$tag" ||
    die "$EXIT_FAILED" "kubectl set image failed for nextgen-$app; apps before it are rolling out under Guardian"
done
rollout_failed=()
for app in "${app_list[@]}"; do
  log "waiting for nextgen-$app (at most $timeout)"
  kubectl -n "$PROD_NAMESPACE" rollout status "deployment/nextgen-$app" --timeout="$timeout" || rollout_failed+=("$app")
done
# A breach that shows in the first seconds of full traffic is still the
# release's: the migrations stay open a little longer.
log "rolled out; Guardian keeps guarding for ${bake}s"
sleep "$bake"
finish_migrations

# A rollout that "completes" may have completed Guardian's rollback: ask it
# what it did since the start, and wait for an action it has begun (an
# intent without a result yet) to be recorded.
verdict() {
  jq -c --argjson since "$since" --arg ns "$PROD_NAMESPACE" --arg apps "${app_list[*]}" '
    def key: .id | sub(":[^:]*$"; "");
    def line: "  - \(.at) \(.action) \(.target): \(.detail)";
    ($apps | split(" ") | map("\($ns)/Deployment/nextgen-\(.)")) as $targets
    | [.actions[]
       | select(.target as $t | $targets | any(.[]; . == $t))
       | select((.at | sub("\\.[0-9]+"; "") | fromdateiso8601) >= $since)] as $mine
    | ($mine | map(select(.outcome != "intent" and .outcome != "retry") | key)) as $done
    | { rolled_back: [$mine[] | select(.action == "rollback" and .outcome == "ok") | line],
        paused: [$mine[] | select(.action == "pause" and .outcome == "ok") | line],
        pending: [$mine[] | select(.outcome == "intent") | select(key as $k | $done | any(.[]; . == $k) | not) | line] }'
}
for _ in $(seq 60); do
  if ! actions=$(api_get /api/v1/actions) || ! answer=$(verdict <<<"$actions"); then
    die "$EXIT_FAILED" "cannot ask Guardian what it did during the rollout; look at $GUARDIAN_URL/api/v1/actions before going on"
  fi
  [[ $(jq '.pending | length' <<<"$answer") -gt 0 ]] || break
  sleep 1
done
if [[ $(jq '.pending | length' <<<"$answer") -gt 0 ]]; then
  jq -r '.pending[]' <<<"$answer" >&2
  die "$EXIT_FAILED" "Guardian began acting on $tag (above) and has not said how it ended within 60 s; look at $GUARDIAN_URL/api/v1/actions"
fi
if [[ $(jq '.rolled_back | length' <<<"$answer") -gt 0 ]]; then
  jq -r '.rolled_back[]' <<<"$answer" >&2
  die "$EXIT_ROLLED_BACK" "Guardian ROLLED BACK $tag: a business check broke during the rollout (above); the previous release is running"
fi
if [[ $(jq '.paused | length' <<<"$answer") -gt 0 ]]; then
  jq -r '.paused[]' <<<"$answer" >&2
  die "$EXIT_PAUSED" "Guardian PAUSED the rollout of $tag (above): resume with kubectl rollout resume, or undo with rollback-nextgen-prod.sh"
fi
[[ ${#rollout_failed[@]} -eq 0 ]] ||
  die "$EXIT_FAILED" "the rollout of ${rollout_failed[*]} did not finish within $timeout; Guardian did not act; see kubectl -n $PROD_NAMESPACE get pods"
log "deployed $tag to ${app_list[*]}; Guardian saw no breach"
