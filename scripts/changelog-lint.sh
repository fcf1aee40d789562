#!/usr/bin/env bash
# Lint the antsibull-changelog setup of streamops.maintenance:
#   - changelogs/fragments/*.yml (section names, RST) via `antsibull-changelog lint`
#   - changelogs/changelog.yaml via `antsibull-changelog lint-changelog-yaml`
# Extra args are passed to `antsibull-changelog lint` (e.g. -v, or fragment paths).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CHANGELOG="$VENV/bin/antsibull-changelog"
[[ -x "$CHANGELOG" ]] || { echo "[changelog] ERROR: $CHANGELOG not found (run 'make venv' first)" >&2; exit 2; }
export PATH="$VENV/bin:$PATH"
cd "$ROOT"

echo "[changelog] antsibull-changelog lint $*"
rc=0
"$CHANGELOG" lint "$@" || rc=$?
echo "[changelog] antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml"
"$CHANGELOG" lint-changelog-yaml changelogs/changelog.yaml || rc=$?
echo "[changelog] exit $rc"
exit "$rc"
