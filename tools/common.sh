# Sourced by the tools/*.sh scripts and the Makefile: where the expensive things are cached.
# Every cache lives outside the repo and is keyed by what produced it, so a new clone reuses it
# and a changed recipe or pin builds a new one beside the old.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_DIR=${MLFLOW_GLOBUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alcf-mlflow-globus}
# role_default ROLE VARIABLE: a plain value from a role's defaults, the one home of the version pins.
role_default() {
  sed -n "s/^$2: *[\"']\{0,1\}\([^\"']*\)[\"']\{0,1\} *\$/\1/p" "$REPO_ROOT/roles/$1/defaults/main.yml"
}
OAUTH2_PROXY_VERSION=${OAUTH2_PROXY_VERSION:-$(role_default oauth2_proxy oauth2_proxy_version)}
MLFLOW_VERSION=${MLFLOW_VERSION:-$(role_default mlflow_globus mlflow_globus_version)}
# The release the upgrade tests start from (Molecule reads it as MLFLOW_GLOBUS_PREVIOUS_MLFLOW_VERSION).
MLFLOW_PREVIOUS_VERSION=${MLFLOW_PREVIOUS_VERSION:-3.16.1}
# oauth2-proxy's release before the role's pin, for the upgrade test (MLFLOW_GLOBUS_OAUTH2_PROXY_PREVIOUS_*).
OAUTH2_PROXY_PREVIOUS_VERSION=${OAUTH2_PROXY_PREVIOUS_VERSION:-7.15.2}
# The S3 gateway the tests use as the object store for artifacts (tools/s3-server-build.sh).
VERSITYGW_VERSION=${VERSITYGW_VERSION:-1.8.0}
# The Debian releases the test containers run: the first is the default platform's.
DEBIAN_RELEASES=(bookworm trixie)
export CONTAINERS_CONF=$REPO_ROOT/tools/containers.conf
# Logs are read as files: no colour codes in them.
export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
mkdir -p "$CACHE_DIR"

# key FILE...: a short hash of the files' contents, to name a cache entry.
key() { cat "$@" | sha256sum | cut -c1-12; }

log() { printf '==> %s\n' "$*" >&2; }
