#!/usr/bin/env bash
# Backs up nextgen_production and tells Guardian, whose prod gate says
# backup_stale without a fresh one: pg_dump -Fc, verified with
# pg_restore --list and a SHA-256, old dumps pruned, then
# POST /api/v1/backups. A dump or check that fails reports nothing.
#
# Settings (environment):
#   NEXTGEN_DATABASE_URL   postgres://… of nextgen_production; else libpq's
#                          PG* variables with NEXTGEN_DATABASE (default nextgen_production)
#   BACKUP_DIR             where dumps go (default /backups)
#   BACKUP_RETENTION_DAYS  dumps older than this are deleted (default 14)
#   GUARDIAN_URL           default http://guardian:9090
#   GUARDIAN_API_TOKEN     required (Guardian refuses reports without it)
#   GUARDIAN_ENVIRONMENT   the environment reported (default prod)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-$EXIT_USAGE}"
}
case ${1:-} in
-h | --help) usage 0 ;;
"") ;;
*) usage ;;
esac

need pg_dump pg_restore sha256sum curl
need_token
database=${NEXTGEN_DATABASE_URL:-${NEXTGEN_DATABASE:-nextgen_production}}
name=${NEXTGEN_DATABASE:-nextgen_production}
dir=${BACKUP_DIR:-/backups}
retention=${BACKUP_RETENTION_DAYS:-14}
environment=${GUARDIAN_ENVIRONMENT:-prod}
[[ $retention =~ ^[1-9][0-9]*$ ]] || die "$EXIT_USAGE" "BACKUP_RETENTION_DAYS must be a whole number of days ≥ 1, not ${retention@Q}"
[[ -d $dir && -w $dir ]] || die "$EXIT_USAGE" "BACKUP_DIR $dir is not a writable directory"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
id="$name-$stamp.dump"
file="$dir/$id"
part="$file.part"
# A dump cut short must never look like a backup.
trap 'rm -f "$part"' EXIT

log "dumping $name to $file"
pg_dump --format=custom --no-owner --dbname="$database" --file="$part" ||
  die "$EXIT_FAILED" "pg_dump of $name failed; nothing was reported to Guardian"
listing=$(pg_restore --list "$part") ||
  die "$EXIT_FAILED" "pg_restore --list cannot read the dump of $name; nothing was reported to Guardian"
entries=$(grep -c -v '^;' <<<"$listing" || true)
[[ $entries -gt 0 ]] || die "$EXIT_FAILED" "the dump of $name lists no objects; nothing was reported to Guardian"
mv "$part" "$file"
(cd "$dir" && sha256sum "$id" >"$id.sha256" && sha256sum --check --quiet "$id.sha256") ||
  die "$EXIT_FAILED" "the checksum of $file does not verify; nothing was reported to Guardian"
completed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "verified: $entries entries, $(du -h "$file" | cut -f1), sha256 $(cut -c1-16 "$file.sha256")…"

# Retention: whole days by modification time; never the dump just made.
find "$dir" -maxdepth 1 -type f \( -name "$name-*.dump" -o -name "$name-*.dump.sha256" -o -name "$name-*.dump.part" \) \
  -mtime "+$((retention - 1))" ! -name "$id" ! -name "$id.sha256" -print -delete |
  while read -r gone; do log "pruned $gone (older than $retention days)"; done

# The id is the file name: reporting the same one twice is harmless, so retry.
body=$(printf '{"environment":"%s","id":"%s","completed_at":"%s","ok":true}' "$environment" "$id" "$completed_at")
answer=$(api_post /api/v1/backups "$body" --retry 3 --retry-connrefused --retry-delay 2) ||
  die "$EXIT_FAILED" "$file is on disk and verified, but Guardian at $GUARDIAN_URL did not record it (${answer:-no answer}): its gate will say backup_stale"
log "reported $id to Guardian ($environment)"
echo "$file"
