#!/usr/bin/env bash
# Everything the tests and the demo need, from scratch on a fresh Debian 12 machine, cached
# outside the repo: Debian packages, the controller virtualenv, the systemd base image, the
# oauth2-proxy builds (the pinned release and the one before it, for the upgrade test) and the S3
# gateway's build. Writes .cache/env.sh for the Makefile to source. Safe to run again.
source "$(dirname "$0")/common.sh"
"$REPO_ROOT/tools/debian-packages.sh"
# The base images (one per Debian release) and the Go builds need nothing from the virtualenv: on a
# fresh machine they run beside it (each a few minutes), and each prints the path of what it made.
built=$(mktemp -d)
trap 'kill $(jobs -rp) 2>/dev/null || true; rm -rf "$built"' EXIT
image_jobs=()
for release in "${DEBIAN_RELEASES[@]}"; do
  "$REPO_ROOT/tools/base-image.sh" "$release" >"$built/image-$release" & image_jobs+=($!)
done
"$REPO_ROOT/tools/oauth2-proxy-build.sh" >"$built/oauth2-proxy" & oauth2_proxy_job=$!
OAUTH2_PROXY_VERSION=$OAUTH2_PROXY_PREVIOUS_VERSION "$REPO_ROOT/tools/oauth2-proxy-build.sh" \
  >"$built/oauth2-proxy-previous" & oauth2_proxy_previous_job=$!
"$REPO_ROOT/tools/s3-server-build.sh" >"$built/s3-server" & s3_server_job=$!
venv=$("$REPO_ROOT/tools/venv.sh")
# promtool (the tests check and unit-test the alert rules with it) from Debian's package, not installed.
prometheus_dir=$("$REPO_ROOT/tools/promtool.sh")
for release in "${DEBIAN_RELEASES[@]}"; do
  PYTHON="$venv/bin/python" "$REPO_ROOT/tools/mlflow-wheelhouse.sh" "$release" >"$built/wheelhouse-$release"
done
for job in "${image_jobs[@]}"; do
  wait "$job" || { log "a base image build failed (its output is above)"; exit 1; }
done
wait "$oauth2_proxy_job" || { log "the oauth2-proxy build failed (its output is above)"; exit 1; }
wait "$oauth2_proxy_previous_job" \
  || { log "the build of oauth2-proxy $OAUTH2_PROXY_PREVIOUS_VERSION failed (its output is above)"; exit 1; }
wait "$s3_server_job" || { log "the versitygw build failed (its output is above)"; exit 1; }
image=$(cat "$built/image-bookworm") image_trixie=$(cat "$built/image-trixie")
oauth2_proxy_archive=$(cat "$built/oauth2-proxy")
# One container of each image on a podman network, so that a podman that cannot start any says
# so here, with its own error, rather than in every Molecule scenario.
for each in "$image" "$image_trixie"; do
  podman run --rm --network podman "$each" /bin/true \
    || { log "podman cannot start a container from $each (its error is above; see tools/containers.conf)"; exit 1; }
done

# ansible-core finds collections by their ansible_collections/<ns>/<name> path: point one at
# this checkout (ansible-lint uses the same .ansible/ layout).
mkdir -p "$REPO_ROOT/.ansible/collections/ansible_collections/alcf"
ln -sfn ../../../.. "$REPO_ROOT/.ansible/collections/ansible_collections/alcf/mlflow_globus"

# The test containers are reached with community.docker's connection, which pipelines a module
# into one `exec -i` (as SSH does on a real host) where containers.podman's copies it in and out
# with six podman calls. It runs `docker`: here that is podman, under the name it expects.
shim_dir=$CACHE_DIR/bin
mkdir -p "$shim_dir"
ln -sfn "$(command -v podman)" "$shim_dir/docker"

mkdir -p "$REPO_ROOT/.cache"
cat > "$REPO_ROOT/.cache/env.sh" <<ENV
# Written by tools/setup.sh; sourced by the Makefile.
export PATH="$venv/bin:$shim_dir:\$PATH"
export VIRTUAL_ENV="$venv"
export CONTAINERS_CONF="$CONTAINERS_CONF"
export ANSIBLE_COLLECTIONS_PATH="$REPO_ROOT/.ansible/collections"
export MLFLOW_GLOBUS_CACHE="$CACHE_DIR"
# Debian 12 (bookworm) is every platform's image unless a scenario names Debian 13's (trixie).
export MLFLOW_GLOBUS_BASE_IMAGE="$image"
export MLFLOW_GLOBUS_BASE_IMAGE_TRIXIE="$image_trixie"
export MLFLOW_GLOBUS_OAUTH2_PROXY_ARCHIVE="$oauth2_proxy_archive"
# The release before the role's pin, for the oauth2-proxy upgrade test.
export MLFLOW_GLOBUS_OAUTH2_PROXY_PREVIOUS_ARCHIVE="$(cat "$built/oauth2-proxy-previous")"
export MLFLOW_GLOBUS_OAUTH2_PROXY_PREVIOUS_VERSION="$OAUTH2_PROXY_PREVIOUS_VERSION"
# versitygw (tools/s3-server-build.sh): the S3-compatible object store the tests put beside MLflow.
export MLFLOW_GLOBUS_S3_SERVER="$(cat "$built/s3-server")"
export MLFLOW_GLOBUS_WHEELHOUSE="$(cat "$built/wheelhouse-bookworm")"
export MLFLOW_GLOBUS_WHEELHOUSE_TRIXIE="$(cat "$built/wheelhouse-trixie")"
export MLFLOW_GLOBUS_PREVIOUS_MLFLOW_VERSION="$MLFLOW_PREVIOUS_VERSION"
export MLFLOW_GLOBUS_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
# Debian's promtool and prometheus, unpacked (tools/promtool.sh): tests/unit/prometheus, tests/playbooks.
export MLFLOW_GLOBUS_PROMTOOL="$prometheus_dir/promtool"
export MLFLOW_GLOBUS_PROMETHEUS="$prometheus_dir/prometheus"
ENV
log "setup done: venv $venv, images $image $image_trixie"
