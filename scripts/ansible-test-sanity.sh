#!/usr/bin/env bash
# Run `ansible-test sanity` for streamops.maintenance without GitHub/Galaxy/ci-files access.
#
#   scripts/ansible-test-sanity.sh                  # all sanity tests, Python 3.11
#   scripts/ansible-test-sanity.sh --test pylint    # extra args go to ansible-test
#
# Steps (all idempotent):
#   1. rsync the repo into build/ansible-test/ansible_collections/streamops/maintenance
#      (ansible-test needs a real ansible_collections/<ns>/<name> path; a symlink fails).
#      The copy gets its own `git init` (no commit): ansible-test then lists files with
#      `git ls-files --cached --others --exclude-standard` *in the copy*, i.e. exactly
#      the files the repo's .gitignore does not ignore. Without it ansible-test walks up
#      to /work/main/.git, where build/ is ignored, and would see no files at all.
#   2. Offline pip bootstrap: every sanity venv runs ~/.ansible/test/cache/get_pip_<ver>.py,
#      which ansible-test otherwise downloads from ci-files.testing.ansible.com.
#      We place a stand-in that installs pip from a wheel fetched once from PyPI.
#   3. ansible-test sanity --venv --python <ver> [extra args]; exit with its status.
#
# Env overrides: VENV (default <repo>/.venv), SANITY_PYTHON (default 3.11),
#                STREAMOPS_WHEEL_CACHE (default ~/.cache/streamops-maintenance/wheels).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
ANSIBLE_TEST="$VENV/bin/ansible-test"
SANITY_PYTHON="${SANITY_PYTHON:-3.11}"
NAMESPACE=streamops
NAME=maintenance
BUILD_ROOT="$ROOT/build/ansible-test"
COLL_DIR="$BUILD_ROOT/ansible_collections/$NAMESPACE/$NAME"
WHEEL_CACHE="${STREAMOPS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamops-maintenance/wheels}"
AT_CACHE="$HOME/.ansible/test/cache"

say() { printf '[sanity] %s\n' "$*"; }
die() { printf '[sanity] ERROR: %s\n' "$*" >&2; exit 2; }

[[ -x "$ANSIBLE_TEST" ]] || die "$ANSIBLE_TEST not found (run 'make venv' first)"
command -v rsync >/dev/null || die "rsync not found (apt-get install rsync)"
command -v git >/dev/null || die "git not found (apt-get install git)"
# ansible-test and the tools it starts expect the venv's bin on PATH
export PATH="$VENV/bin:$PATH"

start=$SECONDS

# --- 1. sync the collection into a real ansible_collections/ tree -------------
say "sync $ROOT -> ${COLL_DIR#"$ROOT"/}"
mkdir -p "$COLL_DIR"
# Excluded paths are also protected from --delete, so the copy keeps its own
# .git and ansible-test's tests/output between runs.
rsync -a --delete \
    --exclude=/.venv \
    --exclude=/build \
    --exclude=/tests/output \
    --exclude=/.git \
    --exclude=/reports \
    --exclude=/lab/state \
    --exclude=__pycache__ \
    --exclude='*.py[co]' \
    --exclude=.pytest_cache \
    --exclude=.molecule \
    "$ROOT/" "$COLL_DIR/"
if [[ ! -d "$COLL_DIR/.git" ]]; then
    say "git init in the copy (file list = repo files not ignored by .gitignore)"
    git -C "$COLL_DIR" -c init.defaultBranch=main init -q
fi
nfiles="$(git -C "$COLL_DIR" ls-files --cached --others --exclude-standard | wc -l)"
say "ansible-test will see $nfiles files"

# --- 2. offline pip bootstrap for ansible-test's venvs --------------------------
PIP_VERSION="$("$PY" - <<'EOF' 2>/dev/null || true
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])
EOF
)"
if [[ -z "$PIP_VERSION" ]]; then
    # fallback: parse the source (default_packages = dict(pip='24.2', ...))
    at_src="$("$PY" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')"
    PIP_VERSION="$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$at_src/_internal/python_requirements.py" | head -n1)"
fi
[[ -n "$PIP_VERSION" ]] || die "cannot determine the pip version ansible-test expects"

WHEEL="$WHEEL_CACHE/pip-$PIP_VERSION-py3-none-any.whl"
if [[ ! -f "$WHEEL" ]]; then
    say "download pip==$PIP_VERSION wheel -> $WHEEL_CACHE"
    mkdir -p "$WHEEL_CACHE"
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$WHEEL_CACHE" "pip==$PIP_VERSION"
fi
[[ -f "$WHEEL" ]] || die "expected wheel not found: $WHEEL"

GET_PIP="$AT_CACHE/get_pip_${PIP_VERSION//./_}.py"
WHEEL_REPR="$("$PY" -c 'import sys; print(repr(sys.argv[1]))' "$WHEEL")"
mkdir -p "$AT_CACHE"
tmp="$(mktemp "$AT_CACHE/.get_pip.XXXXXX")"
cat >"$tmp" <<EOF
"""Offline stand-in for get-pip.py (pip $PIP_VERSION), written by streamops.maintenance
scripts/ansible-test-sanity.sh. ansible-test runs it as __main__ with get-pip.py's
arguments, e.g. '--disable-pip-version-check pip==$PIP_VERSION --no-setuptools --no-wheel'.
Like get-pip.py it imports pip from a wheel and runs 'pip install', but only from the
local wheel directory (no network)."""
import os
import sys

WHEEL = $WHEEL_REPR


def main():
    if not os.path.isfile(WHEEL):
        sys.exit('pip wheel missing: %s (re-run scripts/ansible-test-sanity.sh)' % WHEEL)
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    sys.path.insert(0, WHEEL)
    from pip._internal.cli.main import main as pip_main
    sys.exit(pip_main(['install', '--no-index', '--find-links', os.path.dirname(WHEEL)] + args))


if __name__ == '__main__':
    main()
EOF
if cmp -s "$tmp" "$GET_PIP"; then
    rm -f "$tmp"
else
    mv -f "$tmp" "$GET_PIP"
    say "wrote pip bootstrap stand-in $GET_PIP"
fi
say "pip bootstrap: $GET_PIP (pip $PIP_VERSION from $WHEEL)"

# --- 3. run ansible-test ---------------------------------------------------------
say "cd ${COLL_DIR#"$ROOT"/} && ansible-test sanity --venv --python $SANITY_PYTHON $*"
cd "$COLL_DIR"
set +e
"$ANSIBLE_TEST" sanity --venv --python "$SANITY_PYTHON" "$@"
rc=$?
set -e
say "ansible-test sanity exit $rc after $((SECONDS - start))s (results: ${COLL_DIR#"$ROOT"/}/tests/output/)"
exit "$rc"
