#!/usr/bin/env bash
# The staging-shared business validation: `guardian probe` runs every staging
# check once (revenue, payments, domains with its 230, customers,
# affiliation, admin) through nextgen.staging-shared.local and prints the
# table; any slow or failed check fails the validation.
#
# Usage: test-staging-shared.sh [nextgen]
# Environment: STAGING_VALIDATION_CONFIG (default: the overlay's validation.yaml)
# Exit: 0 every check good; 1 a check is bad; 2 usage or a bad config.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-nextgen} in
nextgen) ;;
-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
*) die "$EXIT_USAGE" "unknown argument ${1@Q}; usage: test-staging-shared.sh [nextgen]" ;;
esac
need guardian
config=${STAGING_VALIDATION_CONFIG:-$SCRIPTS_DIR/../kubernetes/overlays/staging-shared/validation.yaml}
[[ -r $config ]] || die "$EXIT_USAGE" "cannot read the validation config $config"

log "business validation with $config"
rc=0
guardian probe -c "$config" || rc=$?
case $rc in
0) log "business validation passed" ;;
1) die "$EXIT_FAILED" "business validation FAILED: the checks marked bad above are out of budget or wrong" ;;
*) die "$EXIT_USAGE" "guardian probe could not run the validation (exit $rc)" ;;
esac
