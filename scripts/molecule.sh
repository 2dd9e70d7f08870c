#!/usr/bin/env bash
# Run molecule scenarios, MOLECULE_JOBS (default 2) at a time, in the order given (longest first).
# Every scenario has its own containers, names and network, so they do not meet. Each scenario's
# output is printed whole when it ends, followed by one line saying how it ended, so the log reads
# scenario by scenario. Exits non-zero when any scenario failed, after all have ended.
# run_one is called through xargs and bash -c, which shellcheck cannot follow.
# shellcheck disable=SC2317,SC2016
set -euo pipefail
jobs=${MOLECULE_JOBS:-2}
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
export logdir

run_one() {
  local s=$1 rc=0 started=$SECONDS
  molecule test -s "$s" >"$logdir/$s.log" 2>&1 || rc=$?
  {
    flock 9
    cat "$logdir/$s.log"
    if ((rc == 0)); then
      echo "== molecule test -s $s: passed in $((SECONDS - started))s"
    else
      echo "== molecule test -s $s: FAILED (exit $rc) after $((SECONDS - started))s"
      echo "$s" >>"$logdir/failed"
    fi
  } 9>"$logdir/print.lock"
  return "$rc"
}
export -f run_one

rc=0
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {} || rc=$?
if [[ -s "$logdir/failed" ]]; then
  echo "== molecule: failed scenarios: $(tr '\n' ' ' <"$logdir/failed")"
  exit 1
fi
exit "$rc"
