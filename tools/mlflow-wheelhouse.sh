#!/usr/bin/env bash
# Wheels for the mlflow_globus role's air-gapped install path (mlflow_globus_pip_wheelhouse):
# MLflow (the pinned release and an older one, for the upgrade test), its dependencies and the
# PostgreSQL driver, downloaded once on the controller so that test containers install with
# `pip install --no-index --find-links` instead of each fetching ~200 MB from the index.
# Wheels only, for the containers' interpreter (Debian bookworm: CPython 3.11, glibc 2.36), so
# nothing is compiled on a host. Cached by the versions; a directory that exists is complete (it
# is renamed into place at the end). Prints the directory.
source "$(dirname "$0")/common.sh"
MLFLOW_OLD_VERSION=${MLFLOW_OLD_VERSION:-3.16.1}
# The PostgreSQL driver SQLAlchemy 2.1 (MLflow's) uses for postgresql:// URIs is psycopg 3.
PSYCOPG_VERSION=${PSYCOPG_VERSION:-3.3.9}
PYTHON=${PYTHON:-python3}
# pip does not widen --platform to older glibc levels by itself: list every one the host accepts.
target=(--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311)
for glibc_minor in $(seq 36 -1 5); do target+=(--platform "manylinux_2_${glibc_minor}_x86_64"); done
for legacy in manylinux2014 manylinux2010 manylinux1; do target+=(--platform "${legacy}_x86_64"); done
dir=$CACHE_DIR/wheels/mlflow-$MLFLOW_VERSION+$MLFLOW_OLD_VERSION-psycopg-$PSYCOPG_VERSION-cp311-manylinux_2_36_x86_64
if [ -d "$dir" ]; then echo "$dir"; exit 0; fi

log "mlflow wheelhouse: downloading mlflow $MLFLOW_VERSION and $MLFLOW_OLD_VERSION (about 200 MB)"
mkdir -p "$CACHE_DIR/wheels"
work=$(mktemp -d "$CACHE_DIR/wheels/.download.XXXXXX")
trap 'rm -rf "$work"' EXIT
# One resolution per MLflow release: the two pins conflict in a single one.
for version in "$MLFLOW_VERSION" "$MLFLOW_OLD_VERSION"; do
  "$PYTHON" -m pip download --quiet --disable-pip-version-check "${target[@]}" --dest "$work" \
    "mlflow==$version" "psycopg[binary]==$PSYCOPG_VERSION" >&2
done
chmod 0755 "$work"
mv "$work" "$dir"
echo "$dir"
