#!/usr/bin/env bash
# The checking tools the deployment tests run, pinned, installed into .local/tools/ on first
# use (system programs come from scripts/need.sh; Python tools from pyproject's dev extras):
#
#   scripts/tools.sh kubeconform       print the path of kubeconform (Go module, `go install`)
#   scripts/tools.sh k8s-schemas       print the directory of the Kubernetes JSON schemas in
#                                      kubeconform's layout (from the kubernetes-validate package)
#   scripts/tools.sh compose-schema    print the path of the compose-spec JSON schema (the copy
#                                      the compose-go module ships, as Docker Compose validates)
#   scripts/tools.sh promtool-k8s      print the path of a promtool built from Prometheus's
#                                      source WITH Kubernetes discovery (Debian's has none)
#
# Each prints one absolute path on stdout; what it downloads or builds goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS=$ROOT/.local/tools
KUBECONFORM_VERSION=v0.7.0
COMPOSE_GO_VERSION=v2.10.2
# Prometheus 3.16's module version (Prometheus tags its Go module v0.<major*100+minor>.<patch>).
PROMETHEUS_MODULE_VERSION=v0.316.0
# The Kubernetes version the manifests are checked against (schemas of kubernetes-validate).
KUBERNETES_VERSION=1.33.0
mkdir -p "$TOOLS/bin"

go_program() {
  local go
  go=$(command -v go || true)
  [[ -n $go ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
  [[ -n $go ]] || go=$(scripts/need.sh go:golang-go)
  echo "$go"
}

# go_tool NAME PACKAGE VERSION: `go install` PACKAGE@VERSION once into .local/tools/bin as
# NAME-VERSION (a version bump installs beside the old one); prints its path.
go_tool() {
  local bin=$TOOLS/bin/$1-$3
  if [[ ! -x $bin ]]; then
    echo "tools.sh: go install $1@$3" >&2
    GOBIN=$TOOLS/gobin "$(go_program)" install "$2@$3" >&2
    mv "$TOOLS/gobin/$1" "$bin"
  fi
  echo "$bin"
}

case ${1:-} in
  kubeconform)
    go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
    ;;
  k8s-schemas)
    dir=$TOOLS/kubernetes-schemas
    stamp=$dir/.built-$KUBERNETES_VERSION
    if [[ ! -f $stamp ]]; then
      scripts/bootstrap.sh >&2
      rm -rf "$dir"
      .venv/bin/python scripts/tools/k8s_schemas.py "$KUBERNETES_VERSION" "$dir" >&2
      touch "$stamp"
    fi
    echo "$dir"
    ;;
  compose-schema)
    # `go mod download` verifies the module against the checksum database (go.sum of the world)
    dir=$(GOFLAGS=-mod=mod "$(go_program)" mod download -json \
      "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -f $dir/schema/compose-spec.json ]] || { echo "tools.sh: no compose-spec.json in $dir" >&2; exit 1; }
    echo "$dir/schema/compose-spec.json"
    ;;
  promtool-k8s)
    # Built from source: about 2 GB of modules and a long compile (15-40 min on 2 cores), so
    # `make check-k8s-prometheus` runs it on demand and CI does not (docs/runbooks/deploy.md).
    go_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_MODULE_VERSION"
    ;;
  *)
    sed -n '5,13p' "$0" | sed 's/^#   //' >&2
    exit 2
    ;;
esac
