#!/usr/bin/env bash
# The one place the project installs the system programs it runs (Debian packages, apt-get).
#
#   scripts/need.sh PROGRAM[:PACKAGE]...   print each program's absolute path, one a line;
#                                          install PACKAGE (default: PROGRAM) when it is missing
#   scripts/need.sh --packages PACKAGE...  install the packages that are not installed yet
#
# A few programs have no Debian package (or only an old one) and are Go programs: those in
# GO_TOOLS below are built with `go install MODULE@VERSION` into .local/bin of the checkout
# (Go from PATH or /usr/local/go, else Debian's golang-go), where they are looked up too.
#
# Non-interactive and quiet: apt-get's output goes to a temporary log, shown only when it
# fails. `apt-get update` runs once, before the first install. A package's own services are
# never started by its installation (nginx would take port 80): the project runs its servers
# itself, from its own directories. Programs are looked up on PATH and in /usr/sbin and /sbin
# (a non-root PATH often lacks them). Not root: apt-get runs through sudo.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/.local/bin
declare -A GO_TOOLS=([k6]=go.k6.io/k6@v1.8.1)

usage() {
  sed -n '4,5p' "$0" | sed 's/^#   //' >&2
  exit 2
}

find_program() {
  local dir
  command -v "$1" 2>/dev/null && return 0
  for dir in /usr/sbin /sbin /usr/local/sbin "$BIN"; do
    [[ -x $dir/$1 ]] && { echo "$dir/$1"; return 0; }
  done
  return 1
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo -n "$@"
  else
    echo "need.sh: installing needs root (or sudo): $*" >&2
    return 1
  fi
}

# While installing, a policy-rc.d that refuses every service start (Debian's convention; a
# container image usually ships one already, and then it is left as it is).
install_packages() {
  [[ $# -gt 0 ]] || return 0
  local log policy=/usr/sbin/policy-rc.d ours=0 rc=0
  log=$(mktemp)
  echo "need.sh: installing $* (apt-get)" >&2
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy" && ours=1
  fi
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -o Dpkg::Options::=--force-confold "$@"
  } >"$log" 2>&1 || rc=$?
  [[ $ours -eq 1 ]] && as_root rm -f "$policy"
  if [[ $rc -ne 0 ]]; then
    cat "$log" >&2
    rm -f "$log"
    echo "need.sh: apt-get could not install $*" >&2
    return "$rc"
  fi
  rm -f "$log"
}

# Builds a GO_TOOLS program into BIN; one build at a time per checkout (parallel callers wait).
go_install() {
  local program=$1 module=${GO_TOOLS[$1]} go log lock rc=0
  mkdir -p "$BIN"
  exec {lock}>"$BIN/.go-install.lock"
  flock "$lock"
  [[ -x $BIN/$program ]] && return 0
  go=$(command -v go || { [[ -x /usr/local/go/bin/go ]] && echo /usr/local/go/bin/go; } ||
    { install_packages golang-go >&2 && command -v go; }) || {
    echo "need.sh: no Go toolchain to build $program" >&2
    return 1
  }
  echo "need.sh: building $program ($module) into $BIN with $("$go" env GOVERSION)" >&2
  log=$(mktemp)
  GOBIN=$BIN GOFLAGS=-mod=mod CGO_ENABLED=0 "$go" install "$module" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { cat "$log" >&2; echo "need.sh: go install $module failed" >&2; }
  rm -f "$log"
  return "$rc"
}

missing_packages() {
  local package status
  for package in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [[ $status == installed ]] || echo "$package"
  done
}

[[ $# -ge 1 ]] || usage
if [[ $1 == --packages ]]; then
  shift
  mapfile -t wanted < <(missing_packages "$@")
  install_packages "${wanted[@]}"
  exit 0
fi

packages=()
for spec in "$@"; do
  find_program "${spec%%:*}" >/dev/null && continue
  if [[ -n ${GO_TOOLS[${spec%%:*}]:-} ]]; then
    go_install "${spec%%:*}"
  else
    packages+=("${spec#*:}")
  fi
done
install_packages "${packages[@]}"
for spec in "$@"; do
  find_program "${spec%%:*}" || { echo "need.sh: ${spec%%:*} is still missing" >&2; exit 1; }
done
