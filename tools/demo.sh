#!/usr/bin/env bash
# `make demo`: the Molecule scenario `split` brought up and converged — three containers on this
# machine (the MLflow VM, the external nginx, an OpenID Connect provider standing in for Globus)
# with the names and group_vars of inventories/local, and site.yml run against them exactly as
# an operator runs it. `tools/demo.sh destroy` (make demo-destroy) removes them.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
source .cache/env.sh
if [ "${1:-up}" = destroy ]; then exec molecule destroy -s split; fi

molecule create -s split
molecule prepare -s split --force
molecule converge -s split

cat <<'MSG'

  MLflow behind (stand-in) Globus sign-in is up:

      https://localhost/

  The certificate is self-signed: accept it in the browser. On the provider's page type
  alice@example.org (on the allowlist) and press Authorize; bob@example.org is allowed too,
  anyone else is refused.

  Health checks:  source .cache/env.sh && ansible-playbook -i inventories/local playbooks/healthcheck.yml
  Remove it all:  make demo-destroy
MSG
