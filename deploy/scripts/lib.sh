# shellcheck shell=bash disable=SC2034 # its constants are used by the scripts that source it
# What every NEXTGEN deploy script shares: messages, exit codes, the
# confirmation, and the calls to Guardian (its gate and its API).
# Sourced, never run.
#
# Exit codes of every script:
#   0 done
#   1 a step failed (the message says which, and what was left in place)
#   2 usage: a bad flag, a missing tool or setting
#   3 refused: wrong confirmation, gate no-go, Guardian unreachable (fail closed)
#   4 Guardian rolled the release back during the rollout
#   5 Guardian paused the rollout; a person decides what comes next

readonly EXIT_FAILED=1 EXIT_USAGE=2 EXIT_REFUSED=3 EXIT_ROLLED_BACK=4 EXIT_PAUSED=5
readonly CONFIRMATION_PHRASE='DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED'
readonly REGISTRY=registry.digitalocean.com/blueocean
readonly PROD_NAMESPACE=blueocean-nextgen-prod
readonly STAGING_NAMESPACE=blueocean-staging-shared
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPTS_DIR
GUARDIAN_URL=${GUARDIAN_URL:-http://guardian:9090}
GUARDIAN_URL=${GUARDIAN_URL%/}

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%SZ)" "${0##*/}" "$*" >&2; }
die() { # die CODE MESSAGE...
  local code=$1
  shift
  log "$*"
  exit "$code"
}

# need COMMAND...: every command must be on PATH.
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "$EXIT_USAGE" "$c is not on PATH; it is needed here"
  done
}

# need_token: mutating Guardian endpoints take the API token.
need_token() {
  [[ -n ${GUARDIAN_API_TOKEN:-} ]] || die "$EXIT_USAGE" "GUARDIAN_API_TOKEN is not set: Guardian refuses backups and migrations without it"
}

# apps_of LIST: "landing,dashboard" -> "landing dashboard", each checked.
apps_of() {
  local list=$1 app out=()
  IFS=, read -r -a parts <<<"$list"
  for app in "${parts[@]}"; do
    case $app in
    landing | dashboard | admin) out+=("$app") ;;
    *) die "$EXIT_USAGE" "unknown app ${app@Q}: the apps are landing, dashboard, admin" ;;
    esac
  done
  [[ ${#out[@]} -gt 0 ]] || die "$EXIT_USAGE" "no app given"
  echo "${out[@]}"
}

# confirm GIVEN: the exact phrase, given by flag/env or typed at the terminal.
confirm() {
  local given=$1
  if [[ -z $given && -t 0 ]]; then
    printf 'This changes NEXTGEN production (about €2.3M ARR).\nType exactly: %s\n> ' "$CONFIRMATION_PHRASE" >&2
    IFS= read -r given || given=
  fi
  [[ $given == "$CONFIRMATION_PHRASE" ]] ||
    die "$EXIT_REFUSED" "refused: the confirmation must be exactly \"$CONFIRMATION_PHRASE\" (typed, or --confirm / NEXTGEN_PROD_CONFIRMATION)"
  log "confirmed"
}

# gate ENV: prints the gate's JSON answer and returns guardian's exit code
# (0 go, 1 no-go, 3 unreachable or garbage).
gate() {
  local rc=0
  guardian gate --url "$GUARDIAN_URL" --environment "$1" --json || rc=$?
  return "$rc"
}

# require_go ENV: go, or a refusal that names every reason.
require_go() {
  local env=$1 answer rc=0
  answer=$(gate "$env" 2>&1) || rc=$?
  case $rc in
  0) log "gate for $env: go" ;;
  1)
    log "gate for $env: no-go"
    jq -r '.reasons[] | "  - \(.code): \(.message)"' <<<"$answer" >&2 || printf '%s\n' "$answer" >&2
    die "$EXIT_REFUSED" "refused: Guardian's gate for $env says no-go"
    ;;
  *)
    printf '%s\n' "$answer" >&2
    die "$EXIT_REFUSED" "refused: Guardian at $GUARDIAN_URL did not answer the gate for $env (fail closed)"
    ;;
  esac
}

# require_reachable: Guardian answers, before anything else is done.
require_reachable() {
  curl --silent --fail --max-time 5 --output /dev/null "$GUARDIAN_URL/healthz" ||
    die "$EXIT_REFUSED" "refused: Guardian at $GUARDIAN_URL does not answer; nothing reaches prod without it (fail closed)"
}

# api_post PATH JSON [CURL_FLAGS...]: POST to Guardian with the token; prints
# the body. No retries by default: a POST that may have landed is not repeated.
api_post() {
  local path=$1 body=$2
  shift 2
  curl --silent --show-error --fail-with-body --max-time 30 "$@" \
    -H "Authorization: Bearer ${GUARDIAN_API_TOKEN}" -H 'Content-Type: application/json' \
    --data "$body" "$GUARDIAN_URL$path"
}

# api_get PATH: GET from Guardian; prints the body.
api_get() {
  curl --silent --show-error --fail-with-body --max-time 30 --retry 3 --retry-connrefused --retry-delay 1 \
    "$GUARDIAN_URL$1"
}
