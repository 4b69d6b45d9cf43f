#!/usr/bin/env bash
# Run every Molecule scenario (or those named as arguments), each in full, and print one line per
# scenario with its result and time. Exits non-zero if any failed.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
scenarios=("$@")
# Every scenario: the plugin's first, then the roles', then the whole service; any new one last.
order=(nginx_validate_reload oauth2_proxy all_in_one split external_nginx mlflow_default mlflow_postgres)
if [ ${#scenarios[@]} -eq 0 ]; then
  for s in "${order[@]}" $(ls molecule/*/molecule.yml | cut -d/ -f2); do
    [ -f "molecule/$s/molecule.yml" ] && [[ " ${scenarios[*]} " != *" $s "* ]] && scenarios+=("$s")
  done
fi
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
