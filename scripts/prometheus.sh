#!/usr/bin/env bash
# Prometheus for the local stack (Debian's package, installed by scripts/need.sh when missing),
# in the foreground: `make up` runs it under scripts/supervise.sh like the services.
#
#   scripts/prometheus.sh DIR PORT JOB=HOST:PORT[,HOST:PORT...]...
#
# Writes DIR/prometheus.yml (one scrape job per JOB, every 5 s, the alert rules of
# k8s/monitoring/alerts.yml loaded), keeps its data in DIR/data (2 days) and serves
# http://127.0.0.1:PORT. Job names are the Kubernetes ones (k8s/monitoring/prometheus.yml),
# so the alerts and the Grafana dashboards read the same series here and in a cluster.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RULES=$(cd "$HERE/.." && pwd)/k8s/monitoring/alerts.yml
[[ $# -ge 3 ]] || { sed -n '5p' "$0" | sed 's/^#   //' >&2; exit 2; }
mkdir -p "$1/data"
dir=$(cd "$1" && pwd)
port=$2
shift 2
[[ $port =~ ^[0-9]+$ ]] || { echo "prometheus.sh: bad port: $port" >&2; exit 2; }
PROMETHEUS=$("$HERE/need.sh" prometheus)
{
  printf '# Written by scripts/prometheus.sh; rewritten at every start.\n'
  printf 'global: {scrape_interval: 5s, evaluation_interval: 5s}\n'
  printf 'rule_files: ["%s"]\n' "$RULES"
  printf 'scrape_configs:\n'
  for job in "$@"; do
    name=${job%%=*}
    targets=${job#*=}
    [[ $name =~ ^[a-z][a-z0-9-]*$ && -n $targets && $job == *=* ]] || {
      echo "prometheus.sh: not JOB=HOST:PORT[,...]: $job" >&2
      exit 2
    }
    printf '  - job_name: %s\n    static_configs: [{targets: ["%s"]}]\n' "$name" "${targets//,/\", \"}"
  done
} >"$dir/prometheus.yml"
exec "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --storage.tsdb.retention.time=2d --web.listen-address="127.0.0.1:$port" \
  --web.enable-lifecycle --log.level=warn
