#!/usr/bin/env bash
# What a change to the records or claims does to the report: the living-review step of CI.
#
#   scripts/living_review.sh BASE_REF [OUT]
#
# Writes OUT/base-report (the records and claims of BASE_REF, a git ref), OUT/report (the
# working tree's, opening with "Since the previous report" and the claims' history in
# OUT/history), and OUT/diff.json, OUT/diff.txt (trialmeta diff). Both reports are made by
# the working tree's code, so the diff shows what the data and claims change. Exit status:
# 0 (verdicts may have changed: OUT/verdicts-changed says 0 or 1), 2 on bad input.
# Environment: TRIALMETA (the command, default .venv/bin/trialmeta), REPORT_ARGS (extra
# report options, e.g. fewer draws for a quick check), CACHE (default .trialmeta-cache).
set -euo pipefail
base_ref=${1:?usage: scripts/living_review.sh BASE_REF [OUT]}
out=${2:-living-review}
tm=${TRIALMETA:-.venv/bin/trialmeta}
cache=${CACHE:-.trialmeta-cache}
read -r -a extra <<< "${REPORT_ARGS:-}"
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
git archive "$base_ref" data | tar -x -C "$base"
mkdir -p "$out"
"$tm" report "$base/data/ketamine_trials.csv" --claims "$base/data/claims/ketamine.yaml" \
  --out "$out/base-report" --cache "$cache" --quiet "${extra[@]}"
"$tm" report data/ketamine_trials.csv --claims data/claims/ketamine.yaml \
  --out "$out/report" --cache "$cache" --quiet --previous "$out/base-report" \
  --history "$out/history" "${extra[@]}"
set +e
"$tm" diff "$out/base-report" "$out/report" --json > "$out/diff.json"
status=$?
"$tm" diff "$out/base-report" "$out/report" > "$out/diff.txt"
set -e
if [ "$status" -gt 1 ]; then
  echo "trialmeta diff failed (exit $status)" >&2
  exit "$status"
fi
echo "$status" > "$out/verdicts-changed"
cat "$out/diff.txt"
