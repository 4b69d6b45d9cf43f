#!/usr/bin/env bash
# `make e2e`: bring up the split demo deployment (tools/demo.sh), run tests/e2e against it with a
# real browser and the MLflow client, keep logs and screenshots in tests/output/e2e/, tear down.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
source .cache/env.sh
mkdir -p tests/output/e2e
trap '"$REPO_ROOT/tools/demo.sh" destroy' EXIT
"$REPO_ROOT/tools/demo.sh" >tests/output/e2e/deploy.log 2>&1 || { tail -60 tests/output/e2e/deploy.log >&2; exit 1; }
log "deployed (log: tests/output/e2e/deploy.log); running tests/e2e"
status=0
pytest tests/e2e -p no:cacheprovider || status=$?
ansible-playbook -i inventories/local playbooks/logs.yml -e logs_dir="$REPO_ROOT/tests/output/e2e/triage" \
  >/dev/null 2>&1 || true
exit $status
