#!/usr/bin/env bash
# Prints the absolute path of a JDK 17 `java` binary; installs Debian's OpenJDK 17 when none.
#
#   scripts/java.sh          path of the java binary (exit 1 if none can be had)
#   scripts/java.sh --home   its JAVA_HOME (for Maven)
#
# Never trusts PATH: a newer JDK (e.g. Temurin 25) may come first there, and the servers of
# the local stack (Kafka 4.x, Cassandra 5.0) are pinned to 17. JAVA17_HOME overrides the search.
set -euo pipefail

is_java17() {  # the binary runs and reports major version 17
  [[ -x "$1" ]] || return 1
  local settings  # captured first: `grep -q` in a pipe could SIGPIPE java under pipefail
  settings=$("$1" -XshowSettings:properties -version 2>&1) || return 1
  grep -Eq '^[[:space:]]*java\.specification\.version = 17$' <<<"$settings"
}

find_java17() {
  local candidate
  if [[ -n "${JAVA17_HOME:-}" ]]; then
    candidate=$JAVA17_HOME/bin/java
    if is_java17 "$candidate"; then
      echo "$candidate"
      return 0
    fi
    echo "java.sh: JAVA17_HOME=$JAVA17_HOME has no JDK 17 java" >&2
    return 1
  fi
  # Debian's directory first (java-17-openjdk-amd64, -arm64, ...), then any other 17.
  for candidate in /usr/lib/jvm/java-17-openjdk-*/bin/java /usr/lib/jvm/*17*/bin/java; do
    if is_java17 "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

java=$(find_java17) || {
  if [[ -n "${JAVA17_HOME:-}" ]]; then
    exit 1
  fi
  "$(dirname "$0")/need.sh" --packages openjdk-17-jre-headless
  java=$(find_java17) || { echo "java.sh: still no JDK 17 java after apt-get" >&2; exit 1; }
}

java=$(realpath "$java")
if [[ "${1:-}" == "--home" ]]; then
  dirname "$(dirname "$java")"
else
  echo "$java"
fi
