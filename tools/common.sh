# Sourced by the tools/*.sh scripts and the Makefile: where the expensive things are cached.
# Every cache lives outside the repo and is keyed by what produced it, so a new clone reuses it
# and a changed recipe or pin builds a new one beside the old.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${MLFLOW_GLOBUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alcf-mlflow-globus}
OAUTH2_PROXY_VERSION=${OAUTH2_PROXY_VERSION:-7.15.3}
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}
export CONTAINERS_CONF=$REPO_ROOT/tools/containers.conf
# Logs are read as files: no colour codes in them.
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
mkdir -p "$CACHE_DIR"

# key FILE...: a short hash of the files' contents, to name a cache entry.
key() { cat "$@" | sha256sum | cut -c1-12; }

log() { printf '==> %s\n' "$*" >&2; }
