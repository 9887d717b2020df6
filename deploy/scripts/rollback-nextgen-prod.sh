#!/usr/bin/env bash
# Undoes the last NEXTGEN prod release by hand (kubectl rollout undo), with
# the deploy's safeguards:
#   1. the exact confirmation "DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED"
#   2. a backup of nextgen_production first, reported to Guardian
#   3. Guardian must answer its prod gate (unreachable = refused); a no-go is
#      shown but does not stop an undo, which exists to end a breach — except
#      rollout_in_progress, when a person or Guardian is already changing prod
#   4. never after Guardian's own rollback of the same app: undoing that would
#      bring back the release Guardian removed (--to-revision N to insist)
#
# Usage: rollback-nextgen-prod.sh [--apps landing,dashboard,admin]
#                                 [--to-revision N] [--confirm PHRASE] [--timeout 10m]
# Exit: 0 rolled back; 1 a step failed; 2 usage; 3 refused.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-$EXIT_USAGE}"
}

apps='landing,dashboard,admin' given=${NEXTGEN_PROD_CONFIRMATION:-} revision='' timeout=10m
while [[ $# -gt 0 ]]; do
  case $1 in
  --apps) apps=${2:-}; shift 2 || usage ;;
  --to-revision) revision=${2:-}; shift 2 || usage ;;
  --confirm) given=${2:-}; shift 2 || usage ;;
  --timeout) timeout=${2:-}; shift 2 || usage ;;
  -h | --help) usage 0 ;;
  *) log "unknown argument ${1@Q}"; usage ;;
  esac
done
read -r -a app_list <<<"$(apps_of "$apps")"
if [[ -n $revision ]]; then
  [[ $revision =~ ^[1-9][0-9]*$ ]] || die "$EXIT_USAGE" "--to-revision must be a revision number, not ${revision@Q}"
  [[ ${#app_list[@]} -eq 1 ]] || die "$EXIT_USAGE" "--to-revision names one app's revision: give exactly one app with --apps"
fi
need guardian kubectl curl jq

confirm "$given"
need_token
require_reachable
log "backup before the rollback"
"$SCRIPTS_DIR/backup-nextgen-prod.sh" >/dev/null || die "$EXIT_FAILED" "no rollback without a backup: the backup failed"

rc=0
answer=$(gate prod 2>&1) || rc=$?
case $rc in
0) log "gate for prod: go" ;;
1)
  log "gate for prod: no-go (shown; an undo may be what ends it)"
  jq -r '.reasons[] | "  - \(.code): \(.message)"' <<<"$answer" >&2
  if jq -e '.reasons | any(.code == "rollout_in_progress")' <<<"$answer" >/dev/null; then
    die "$EXIT_REFUSED" "refused: a rollout is in progress in prod; wait for it, or for Guardian, before undoing anything"
  fi
  ;;
*)
  printf '%s\n' "$answer" >&2
  die "$EXIT_REFUSED" "refused: Guardian at $GUARDIAN_URL did not answer the gate for prod (fail closed)"
  ;;
esac

for app in "${app_list[@]}"; do
  deployment=$(kubectl -n "$PROD_NAMESPACE" get "deployment/nextgen-$app" -o json) ||
    die "$EXIT_FAILED" "cannot read deployment/nextgen-$app in $PROD_NAMESPACE"
  current=$(jq -r '.metadata.annotations["deployment.kubernetes.io/revision"] // ""' <<<"$deployment")
  from=$(jq -r '.metadata.annotations["guardian.blueocean.io/rolled-back-from"] // ""' <<<"$deployment")
  # Guardian's rollback brings the old template back as revision from + 1.
  if [[ -n $from && -z $revision && $current == $((from + 1)) ]]; then
    die "$EXIT_REFUSED" "refused: Guardian already rolled nextgen-$app back from revision $from; an undo now would bring that release back (use --to-revision N to choose one)"
  fi
done

for app in "${app_list[@]}"; do
  undo=(kubectl -n "$PROD_NAMESPACE" rollout undo "deployment/nextgen-$app")
  [[ -z $revision ]] || undo+=("--to-revision=$revision")
  "${undo[@]}" || die "$EXIT_FAILED" "kubectl rollout undo failed for nextgen-$app"
  log "nextgen-$app: undo sent"
done
failed=()
for app in "${app_list[@]}"; do
  kubectl -n "$PROD_NAMESPACE" rollout status "deployment/nextgen-$app" --timeout="$timeout" || failed+=("$app")
done
[[ ${#failed[@]} -eq 0 ]] || die "$EXIT_FAILED" "the undo of ${failed[*]} did not finish within $timeout; see kubectl -n $PROD_NAMESPACE get pods"
log "rolled back ${app_list[*]}; Guardian's gate now:"
gate prod | jq -r '"  \(.decision)", (.reasons[] | "  - \(.code): \(.message)")' >&2 || true
