#!/usr/bin/env bash
# Run every Molecule scenario (or those named as arguments), each in full, MOLECULE_JOBS at a time
# (default 2: their container names and networks are disjoint, and most of a scenario's time is
# spent waiting on containers, so two share two cores well). Prints one line per scenario with its
# result and time, in a fixed order. Exits non-zero if any failed.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
jobs=${MOLECULE_JOBS:-2}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { log "MOLECULE_JOBS must be a positive integer, not '$jobs'"; exit 2; }
scenarios=("$@")
# Longest first, so that the last two to start end at about the same time; any new one last.
order=(pool split external_nginx mlflow_postgres mlflow_default oauth2_proxy all_in_one nginx_validate_reload)
if [ ${#scenarios[@]} -eq 0 ]; then
  for s in "${order[@]}" $(ls molecule/*/molecule.yml | cut -d/ -f2); do
    [ -f "molecule/$s/molecule.yml" ] && [[ " ${scenarios[*]} " != *" $s "* ]] && scenarios+=("$s")
  done
fi
out=tests/output/molecule
mkdir -p "$out"

# run_scenario NAME: the whole `molecule test` sequence, its log and a one-line result in $out.
run_scenario() {
  local s=$1 start=$SECONDS result
  if molecule test -s "$s" >"$out/$s.log" 2>&1; then result=passed; else result=FAILED; fi
  printf 'molecule %-26s %-7s %4ds\n' "$s" "$result" $((SECONDS - start)) >"$out/$s.result"
  log "$(cat "$out/$s.result")"
}

rm -f "$out"/*.result
for s in "${scenarios[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  log "molecule scenario $s started (log: $out/$s.log)"
  run_scenario "$s" &
done
wait

failed=0
digests=()
for s in "${scenarios[@]}"; do
  if ! grep -q ' passed ' "$out/$s.result" 2>/dev/null; then
    failed=$((failed + 1))
    printf '\n--- last lines of %s ---\n' "$out/$s.log" >&2
    tail -15 "$out/$s.log" >&2
    # Last, nearest the summary: the last failed tasks (the earlier ones are mostly negative tests
    # that failed on purpose and were rescued or ignored; the log's tail is destroy).
    printf '\n--- last failed tasks in %s ---\n' "$out/$s.log" >&2
    grep -E -A6 '^\[ERROR\]: Task failed|^(fatal|failed): ' "$out/$s.log" | grep -v '^--$' | cut -c1-700 | tail -40 >&2 || true
    digests+=("$s")
  fi
done
# Last of all, since CI shows only the end of this output: the lines of each scenario's last failure
# that say why (its message, and the failures inside a playbook that the failed task ran).
for s in "${digests[@]}"; do
  printf '\n--- why %s failed (from its last failed task) ---\n' "$s" >&2
  awk '/^(fatal|failed): / { block = $0; next } block != "" && /^[ \t]/ { block = block "\n" $0; next }
       block != "" { last = block; block = "" } END { print (block != "" ? block : last) }' "$out/$s.log" |
    grep -E 'FAILED|fatal|msg|ERROR|Error|failed=[1-9]|unreachable=[1-9]|assert' | cut -c1-400 | tail -12 >&2 || true
done
for s in "${scenarios[@]}"; do
  cat "$out/$s.result" 2>/dev/null || printf 'molecule %-26s FAILED (no result)\n' "$s"
done
exit $((failed > 0))
