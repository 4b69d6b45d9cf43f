#!/usr/bin/env bash
# The controller virtualenv from requirements.txt, keyed by its hash. Prints its path.
source "$(dirname "$0")/common.sh"
venv=$CACHE_DIR/venv-$(key "$REPO_ROOT/requirements.txt")
if [ ! -x "$venv/bin/.complete" ]; then
  log "virtualenv: building $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q -r "$REPO_ROOT/requirements.txt" >&2
  printf '#!/bin/sh\n' > "$venv/bin/.complete" && chmod +x "$venv/bin/.complete"
fi
echo "$venv"
