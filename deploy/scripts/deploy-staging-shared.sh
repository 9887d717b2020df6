#!/usr/bin/env bash
# Deploys NEXTGEN to the shared staging environment, in its slot only:
#   1. Guardian's staging-shared gate must say go; outside 12:00–15:00
#      Europe/Paris (NEXTSTEP owns 09:00–12:00) it says outside_window
#   2. kubectl apply -k of the staging-shared overlay (and the image tag, if given)
#   3. kubectl rollout status of each app
#   4. the business validation, test-staging-shared.sh
#
# Usage: deploy-staging-shared.sh [nextgen] [--image-tag TAG] [--timeout 10m]
# Environment: GUARDIAN_URL (default http://guardian:9090; the staging guardian),
#   STAGING_OVERLAY (default: deploy/kubernetes/overlays/staging-shared)
# Exit: 0 deployed and validated; 1 a step or the validation failed; 2 usage;
#   3 refused (outside the slot, another no-go, Guardian unreachable).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-$EXIT_USAGE}"
}

tag='' timeout=10m
while [[ $# -gt 0 ]]; do
  case $1 in
  nextgen) shift ;;
  --image-tag) tag=${2:-}; shift 2 || usage ;;
  --timeout) timeout=${2:-}; shift 2 || usage ;;
  -h | --help) usage 0 ;;
  *) log "unknown argument ${1@Q}"; usage ;;
  esac
done
[[ -z $tag || $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "$EXIT_USAGE" "--image-tag must be a Docker tag, not ${tag@Q}"
need guardian kubectl jq
overlay=${STAGING_OVERLAY:-$SCRIPTS_DIR/../kubernetes/overlays/staging-shared}
[[ -d $overlay ]] || die "$EXIT_USAGE" "no overlay at $overlay"

require_go staging-shared

apps=(landing dashboard admin)
kubectl apply -k "$overlay" || die "$EXIT_FAILED" "kubectl apply -k $overlay failed"
if [[ -n $tag ]]; then
  for app in "${apps[@]}"; do
    kubectl -n "$STAGING_NAMESPACE" set image "deployment/nextgen-$app" "nextgen-$app=$REGISTRY/nextgen-$app:$tag" ||
      die "$EXIT_FAILED" "kubectl set image failed for nextgen-$app"
  done
fi
for app in "${apps[@]}"; do
  log "waiting for nextgen-$app (at most $timeout)"
  kubectl -n "$STAGING_NAMESPACE" rollout status "deployment/nextgen-$app" --timeout="$timeout" ||
    die "$EXIT_FAILED" "the rollout of nextgen-$app in staging-shared did not finish within $timeout"
done

"$SCRIPTS_DIR/test-staging-shared.sh" || die "$EXIT_FAILED" "deployed to staging-shared, but the business validation failed: do not promote this release"
log "staging-shared runs ${tag:-the overlay images} and passed the business validation"
