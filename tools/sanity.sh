#!/usr/bin/env bash
# Build the collection tarball, install it where ansible-core looks for collections, prove its
# plugins load by their full names, and run `ansible-test sanity` on the installed copy
# (ansible-test needs the ansible_collections/<ns>/<name> layout; tests/sanity has no ignores).
source "$(dirname "$0")/common.sh"
out=$(mktemp -d "$CACHE_DIR/sanity.XXXXXX")
trap 'rm -rf "$out"' EXIT
ansible-galaxy collection build --force --output-path "$out" "$REPO_ROOT" >/dev/null
tarball=$(ls "$out"/alcf-mlflow_globus-*.tar.gz)
ansible-galaxy collection install --no-deps --force -p "$out/install" "$tarball" >/dev/null 2>&1
log "built and installed $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

export ANSIBLE_COLLECTIONS_PATH=$out/install
for module in authenticated_emails nginx_validate_reload; do
  ansible-doc "alcf.mlflow_globus.$module" >/dev/null
done
for filter in email_allowlist email_allowlist_diff from_dotenv; do
  ansible-doc -t filter "alcf.mlflow_globus.$filter" >/dev/null
done
ansible localhost -m ansible.builtin.debug \
  -a "msg={{ 'B@x.org, a@x.org' | alcf.mlflow_globus.email_allowlist | join(';') }}" 2>/dev/null \
  | grep -q 'a@x.org;b@x.org' || { echo "filter did not load from the installed tarball" >&2; exit 1; }
log "plugins load by their full names from the installed tarball"

# ansible-test bootstraps pip in its test venvs from a script it downloads from a host we cannot
# reach; give it our stand-in and the pip wheel it needs (see tools/ansible-test-get-pip.py).
pip_version=$(python3 -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; print(g(type("P", (), {"version": ""})())["pip"])')
bootstrap=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$bootstrap")"
cp "$REPO_ROOT/tools/ansible-test-get-pip.py" "$bootstrap"
[ -f "$(dirname "$bootstrap")/pip-$pip_version-py3-none-any.whl" ] \
  || pip download -q --no-deps -d "$(dirname "$bootstrap")" "pip==$pip_version"

cd "$out/install/ansible_collections/alcf/mlflow_globus"
# Our own sources only: the installed tree has no tests/unit (build_ignore), so copy them in.
cp -a "$REPO_ROOT/tests/unit" tests/ 2>/dev/null || true
ansible-test sanity --python "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --venv --color no
