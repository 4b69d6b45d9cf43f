#!/usr/bin/env bash
# Build the collection tarball, install it where ansible-core looks for collections, prove its
# plugins load by their full names, and run `ansible-test sanity` on the installed copy
# (ansible-test needs the ansible_collections/<ns>/<name> layout; tests/sanity has no ignores).
source "$(dirname "$0")/common.sh"
out=$(mktemp -d "$CACHE_DIR/sanity.XXXXXX")
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out" "$REPO_ROOT" >/dev/null
tarball=$(ls "$out"/alcf-mlflow_globus-*.tar.gz)
ansible-galaxy collection install --no-deps --force -p "$out/install" "$tarball" >/dev/null
log "built and installed $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

export ANSIBLE_COLLECTIONS_PATH=$out/install
for module in authenticated_emails nginx_validate_reload; do
  ansible-doc "alcf.mlflow_globus.$module" >/dev/null
done
for filter in email_allowlist email_allowlist_diff; do
  ansible-doc -t filter "alcf.mlflow_globus.$filter" >/dev/null
done
ansible localhost -m ansible.builtin.debug \
  -a "msg={{ 'B@x.org, a@x.org' | alcf.mlflow_globus.email_allowlist }}" 2>/dev/null \
  | grep -q '"a@x.org",' || { echo "filter did not load from the installed tarball" >&2; exit 1; }
log "plugins load by their full names from the installed tarball"

cd "$out/install/ansible_collections/alcf/mlflow_globus"
# Our own sources only: the installed tree has no tests/unit (build_ignore), so copy them in.
cp -a "$REPO_ROOT/tests/unit" tests/ 2>/dev/null || true
ansible-test sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --venv --color no
