#!/usr/bin/env bash
# What a change to the records or claims does to the report: the living-review step of CI.
#
#   scripts/living_review.sh BASE_REF [OUT] [RECORDS] [CLAIMS]
#
# RECORDS and CLAIMS are paths in the repository (default: the bundled ketamine files, or
# the RECORDS and CLAIMS environment variables). Writes OUT/base-report (the records and
# claims as they stand at BASE_REF, a git ref), OUT/report (the working tree's, opening with
# "Since the previous report" and the claims' history in OUT/history), and OUT/diff.json,
# OUT/diff.txt (trialmeta diff). Both reports are made by the working tree's code, so the
# diff shows what the data and claims change. Exit status: 0 (verdicts may have changed:
# OUT/verdicts-changed says 0 or 1), 2 on bad input. Environment: TRIALMETA (the command,
# default .venv/bin/trialmeta), REPORT_ARGS (extra report options, e.g. fewer draws for a
# quick check), CACHE (default .trialmeta-cache).
set -euo pipefail
base_ref=${1:?usage: scripts/living_review.sh BASE_REF [OUT] [RECORDS] [CLAIMS]}
out=${2:-living-review}
records=${3:-${RECORDS:-data/ketamine_trials.csv}}
claims=${4:-${CLAIMS:-data/claims/ketamine.yaml}}
tm=${TRIALMETA:-.venv/bin/trialmeta}
cache=${CACHE:-.trialmeta-cache}
read -r -a extra <<< "${REPORT_ARGS:-}"
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
# the records and the claims' folder (a claims file names its published results beside it)
git archive "$base_ref" "$records" "$(dirname "$claims")" | tar -x -C "$base"
mkdir -p "$out"
"$tm" report "$base/$records" --claims "$base/$claims" \
  --out "$out/base-report" --cache "$cache" --quiet "${extra[@]}"
"$tm" report "$records" --claims "$claims" \
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
