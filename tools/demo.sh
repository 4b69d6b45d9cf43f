#!/usr/bin/env bash
# `make demo`: three containers on this machine — the MLflow VM, the external nginx and an OpenID
# Connect provider standing in for Globus — then site.yml against inventories/local, exactly as an
# operator runs it. `make demo-destroy` (tools/demo.sh destroy) removes them.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
network=mg-demo
subnet=10.89.77.0/24
declare -A address=([mg-demo-idp]=10.89.77.10 [mg-demo-nginx]=10.89.77.20 [mg-demo-vm]=10.89.77.30)

destroy() {
  for name in "${!address[@]}"; do podman rm -f --time 5 "$name" >/dev/null 2>&1 || true; done
  podman network rm -f "$network" >/dev/null 2>&1 || true
}

if [ "${1:-up}" = destroy ]; then destroy; log "demo removed"; exit 0; fi

source .cache/env.sh
destroy
podman network create --subnet "$subnet" "$network" >/dev/null
for name in "${!address[@]}"; do
  ports=()
  # The public entrypoint is https://localhost/ on this machine.
  [ "$name" = mg-demo-nginx ] && ports=(-p 127.0.0.1:443:443 -p 127.0.0.1:80:80)
  podman run -d --name "$name" --hostname "$name" --network "$network" --ip "${address[$name]}" \
    "${ports[@]}" --privileged --systemd=always "$MLFLOW_GLOBUS_BASE_IMAGE" /lib/systemd/systemd >/dev/null
done
for name in "${!address[@]}"; do
  podman exec "$name" systemctl is-system-running --wait >/dev/null || true
done
log "containers up: ${!address[*]}"

ansible-playbook -i inventories/local molecule/resources/oidc_provider.yml
ansible-playbook -i inventories/local site.yml

cat <<MSG

  MLflow behind (stand-in) Globus sign-in is up:

      https://localhost/

  The certificate is self-signed: accept it in the browser. At the sign-in page type
  alice@example.org (on the allowlist) as the user; bob@example.org is allowed too, anyone else
  is refused. Health checks:  source .cache/env.sh && ansible-playbook -i inventories/local playbooks/healthcheck.yml
  Remove it all:              make demo-destroy
MSG
