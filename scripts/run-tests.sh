#!/usr/bin/env bash
# Every test: unit, static gates (ansible-test sanity, ansible-lint, changelog lint, ansible-doc),
# molecule scenarios, and integration tests against real services the harness starts and always stops.
#
# With no arguments (make test) the suite runs as two jobs side by side, because on two cores it is mostly
# waiting:
# - the services lane: molecule and every test marked `platform` (tests/conftest.py: it needs the Docker
#   engine or the Kubernetes cluster, which exist once); it waits on rollouts, containers and playbooks;
# - in the background, the static lane (unit tests, sanity, lint, ansible-doc: computes, needs no service),
#   then the servers lane: every other integration test and the reliability campaign (tests/reliability),
#   on PostgreSQL, Redis, S3, ACME and Prometheus servers this process starts for itself on free ports.
# The background job's output goes to build/test-logs/static.log and is printed after the services lane
# ends. The campaign's cases of this run make the table build/reliability/reliability.md. The exit status is
# non-zero when a lane fails (pytest's 5, "no tests ran", fails too) or the campaign table has a figure that
# is not 0. With arguments, one pytest process runs exactly what they name.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$PWD/build/collections"
export AWS_EC2_METADATA_DISABLED=true

if [[ $# -gt 0 ]]; then
    exec .venv/bin/pytest "$@"
fi

mkdir -p build/test-logs
static_log=build/test-logs/static.log
started=$SECONDS
# The reliability campaign's cases (tests/reliability/campaign.py) of this run only.
rm -rf build/reliability
(
    set +e
    .venv/bin/pytest -p no:cacheprovider --durations=15 tests/unit tests/static
    unit_rc=$?
    echo
    echo "================ servers lane (integration tests without the platform, tests/reliability) ================"
    .venv/bin/pytest -p no:cacheprovider --durations=30 -m "not platform" tests/integration tests/reliability
    reliability_rc=$?
    exit $(( unit_rc != 0 || reliability_rc != 0 ))
) >"$static_log" 2>&1 &
static_pid=$!
# An interrupted run must not leave the background lanes running behind it.
trap 'pkill -TERM -P "$static_pid" 2>/dev/null; kill "$static_pid" 2>/dev/null || true' EXIT

set +e
.venv/bin/pytest --durations=30 -m platform tests/molecule tests/integration
services_rc=$?
wait "$static_pid"
static_rc=$?
set -e
trap - EXIT

echo
echo "================ static and servers lanes (unit tests, static gates, integration without the platform, campaign): $static_log ================"
cat "$static_log"
echo
echo "================ reliability campaign: figures of this run ================"
set +e
.venv/bin/python -m tests.reliability.table --out build/reliability/reliability.md
table_rc=$?
set -e
echo
echo "make test: services lane exit $services_rc, static and servers lanes exit $static_rc, campaign table exit $table_rc, $(( (SECONDS - started) / 60 )) min"
if [[ $services_rc -ne 0 || $static_rc -ne 0 || $table_rc -ne 0 ]]; then
    exit 1
fi
