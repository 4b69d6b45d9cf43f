#!/usr/bin/env bash
# `make test`: every check CI runs, each stage timed. A failing stage does not stop the others,
# so one run reports everything; the exit status is non-zero if any failed.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
source .cache/env.sh
stages=(lint sanity unit controller molecule-all)
summary=()
passed=0 failed=0
for stage in "${stages[@]}"; do
  log "stage $stage"
  start=$SECONDS
  if make --no-print-directory "$stage"; then
    passed=$((passed + 1)); result=passed
  else
    failed=$((failed + 1)); result=FAILED
  fi
  summary+=("$(printf '%-14s %-7s %5ds' "$stage" "$result" $((SECONDS - start)))")
done
printf '\n%s\n' "--- make test summary ---"
printf '%s\n' "${summary[@]}"
printf 'stages: %d passed, %d failed\n' "$passed" "$failed"
exit $((failed > 0))
