#!/usr/bin/env bash
# Run every Molecule scenario (or those named as arguments), each in full, and print one line per
# scenario with its result and time. Exits non-zero if any failed.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=($(ls molecule/*/molecule.yml | cut -d/ -f2))
mkdir -p tests/output/molecule
results=()
failed=0
for s in "${scenarios[@]}"; do
  log "molecule scenario $s (log: tests/output/molecule/$s.log)"
  start=$SECONDS
  if molecule test -s "$s" >"tests/output/molecule/$s.log" 2>&1; then
    results+=("$(printf 'molecule %-26s passed  %4ds' "$s" $((SECONDS - start)))")
  else
    failed=$((failed + 1))
    results+=("$(printf 'molecule %-26s FAILED  %4ds' "$s" $((SECONDS - start)))")
    tail -60 "tests/output/molecule/$s.log" >&2
  fi
done
printf '%s\n' "${results[@]}"
exit $((failed > 0))
