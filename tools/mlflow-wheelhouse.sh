#!/usr/bin/env bash
# Wheels for the mlflow_globus role's air-gapped install path (mlflow_globus_pip_wheelhouse):
# MLflow (the pinned release and the previous one, for the upgrade test), its dependencies, the
# PostgreSQL driver, the S3 client (for artifacts in an object store) and the Prometheus exporter
# (for the role's metrics), downloaded once on the controller so that test containers install with
# `pip install --no-index --find-links` instead of each fetching ~200 MB from the index.
# Wheels only, for the interpreter of the Debian RELEASE's containers (bookworm, the default:
# CPython 3.11, glibc 2.36; trixie: CPython 3.13, glibc 2.41), so nothing is compiled on a host.
# Cached by the versions; a directory that exists is complete (it is renamed into place at the
# end). Prints the directory.
source "$(dirname "$0")/common.sh"
release=${1:-${DEBIAN_RELEASES[0]}}
case $release in
  bookworm) python_version=3.11 glibc_max=36 ;;
  trixie) python_version=3.13 glibc_max=41 ;;
  *) log "mlflow wheelhouse: no Debian release '$release' here (known: ${DEBIAN_RELEASES[*]})"; exit 2 ;;
esac
abi=cp${python_version/./}
# The PostgreSQL driver the role installs for postgresql:// stores (a pip requirement).
POSTGRES_DRIVER=${POSTGRES_DRIVER:-$(role_default mlflow_globus mlflow_globus_postgres_driver)}
# The S3 client the role installs when artifacts go to an s3:// store (a pip requirement).
S3_DRIVER=${S3_DRIVER:-$(role_default mlflow_globus mlflow_globus_s3_driver)}
# What MLflow's --expose-prometheus needs when the role's metrics are on (a pip requirement).
PROMETHEUS_EXPORTER=${PROMETHEUS_EXPORTER:-$(role_default mlflow_globus mlflow_globus_prometheus_exporter)}
PYTHON=${PYTHON:-python3}
# pip does not widen --platform to older glibc levels by itself: list every one the host accepts.
target=(--only-binary=:all: --implementation cp --python-version "$python_version" --abi "$abi")
for glibc_minor in $(seq "$glibc_max" -1 5); do target+=(--platform "manylinux_2_${glibc_minor}_x86_64"); done
for legacy in manylinux2014 manylinux2010 manylinux1; do target+=(--platform "${legacy}_x86_64"); done
dir=$CACHE_DIR/wheels/mlflow-auth-$MLFLOW_VERSION+$MLFLOW_PREVIOUS_VERSION-$(printf %s "$POSTGRES_DRIVER" | tr -cs 'A-Za-z0-9.' -)-$(printf %s "$S3_DRIVER" | tr -cs 'A-Za-z0-9.' -)-$(printf %s "$PROMETHEUS_EXPORTER" | tr -cs 'A-Za-z0-9.' -)-$abi-manylinux_2_${glibc_max}_x86_64
if [ -d "$dir" ]; then echo "$dir"; exit 0; fi

log "mlflow wheelhouse: downloading mlflow $MLFLOW_VERSION and $MLFLOW_PREVIOUS_VERSION for $abi (about 200 MB)"
mkdir -p "$CACHE_DIR/wheels"
work=$(mktemp -d "$CACHE_DIR/wheels/.download.XXXXXX")
trap 'rm -rf "$work"' EXIT
# One resolution per MLflow release: the two pins conflict in a single one.
for version in "$MLFLOW_VERSION" "$MLFLOW_PREVIOUS_VERSION"; do
  "$PYTHON" -m pip download --quiet --disable-pip-version-check "${target[@]}" --dest "$work" \
    "mlflow[auth]==$version" "$POSTGRES_DRIVER" "$S3_DRIVER" "$PROMETHEUS_EXPORTER" >&2
done
chmod 0755 "$work"
mv "$work" "$dir"
echo "$dir"
