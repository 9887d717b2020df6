#!/usr/bin/env bash
# Pictures of both dashboards from real data, for the README:
# `guardian demo` (the bad-rollout story: a payments fault, a pause, a
# rollback, notifications, recovery) scraped every second by a real
# Prometheus with alerts/guardian-rules.yml, then every panel's queries
# drawn by plot.py into dashboards/img/*.png.
#
# Needs: a release build (cargo build --release), Debian's prometheus,
# python3 with matplotlib. Usage: dashboards/render/render.sh [DEMO_DURATION]
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${1:-90s}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

./target/release/guardian demo --duration "$duration" >"$work/demo.log" 2>&1 &
demo=$!
for _ in $(seq 100); do
  api=$(grep -o 'guardian API: *http://[0-9.:]*' "$work/demo.log" | grep -o '[0-9.]*:[0-9]*$' || true)
  [[ -n $api ]] && break
  sleep 0.2
done
[[ -n ${api:-} ]] || { echo "the demo did not start:" >&2; cat "$work/demo.log" >&2; exit 1; }
start=$(date +%s)

cp alerts/guardian-rules.yml "$work/rules.yml"
cat >"$work/prometheus.yml" <<EOF
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [rules.yml]
scrape_configs:
  - job_name: guardian
    static_configs: [{ targets: ['$api'] }]
EOF
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work" && prometheus --config.file=prometheus.yml --storage.tsdb.path=data \
  --web.listen-address="127.0.0.1:$port" >prometheus.log 2>&1) &

wait "$demo" || { echo "the demo failed:" >&2; cat "$work/demo.log" >&2; exit 1; }
end=$(date +%s)
grep '>>>' "$work/demo.log"

mkdir -p dashboards/img
for d in nextgen-business-slos guardian-rollouts; do
  python3 dashboards/render/plot.py --prometheus "http://127.0.0.1:$port" \
    --dashboard "dashboards/$d.json" --environment prod --start "$start" --end "$end" \
    --out "dashboards/img/$d.png"
done
