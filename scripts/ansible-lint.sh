#!/usr/bin/env bash
# Run ansible-lint (production profile, offline; config in .ansible-lint) over the
# streamops.maintenance repo. Extra args go to ansible-lint (e.g. a path, -f pep8).
#
# Galaxy is unreachable, so nothing may be installed: `offline: true` in
# .ansible-lint (plus --offline here) stops requirement installs, and
# ANSIBLE_COLLECTIONS_PATH points at build/collections, where
# ansible_collections/streamops/maintenance is a symlink to this checkout
# (created here if missing, same as `make collection-link`), so
# streamops.maintenance.* references resolve to the working tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
LINT="$VENV/bin/ansible-lint"
[[ -x "$LINT" ]] || { echo "[lint] ERROR: $LINT not found (run 'make venv' first)" >&2; exit 2; }

# ansible-lint warns unless its own venv's bin is on PATH
export PATH="$VENV/bin:$PATH"

LINK="$ROOT/build/collections/ansible_collections/streamops/maintenance"
if [[ "$(readlink "$LINK" 2>/dev/null || true)" != "$ROOT" ]]; then
    echo "[lint] link ${LINK#"$ROOT"/} -> $ROOT"
    mkdir -p "$(dirname "$LINK")"
    ln -sfn "$ROOT" "$LINK"
fi

export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$ROOT/ansible.cfg}"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"
# ansible-lint's own cache (ansible-compat installs this collection into $ANSIBLE_HOME/collections and reads it
# first): not ~/.ansible, where every molecule scenario reinstalls the collection, so a lint beside molecule
# (make test runs them in parallel lanes) once read a half-installed copy ("could not resolve the
# module_defaults group streamops.maintenance.prometheus").
export ANSIBLE_HOME="$ROOT/build/ansible-lint-home"
# no Galaxy: keep ansible-galaxy from trying a server even if something calls it
export ANSIBLE_GALAXY_SERVER_LIST="${ANSIBLE_GALAXY_SERVER_LIST:-}"

cd "$ROOT"
echo "[lint] ansible-lint --offline $* (profile production, ANSIBLE_COLLECTIONS_PATH=$ANSIBLE_COLLECTIONS_PATH)"
rc=0
"$LINT" --offline "$@" || rc=$?
echo "[lint] exit $rc"
exit "$rc"
