#!/usr/bin/env bash
# Every test: unit, static gates (ansible-test sanity, ansible-lint, changelog lint, ansible-doc),
# molecule scenarios, and integration tests against real services the harness starts and always stops.
#
# With no arguments (make test) the suite runs as two pytest processes side by side, because on two
# cores it is mostly waiting: the services lane (molecule, integration) waits on Kubernetes rollouts,
# containers and playbook runs, while the static lane (unit tests, sanity, lint, ansible-doc) only
# computes and needs no service. The static lane's output goes to build/test-logs/static.log and is
# printed after the services lane ends; the exit status is non-zero when either lane fails (pytest's 5,
# "no tests ran", fails too). With arguments, one pytest process runs exactly what they name.
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
# The static lane, then the reliability lane in the same background job: the campaign's own servers
# (PostgreSQL, Redis, S3, ACME, Prometheus on free ports; no Docker, no Kubernetes) beside the services lane,
# which mostly waits on rollouts and playbooks.
(
    set +e
    .venv/bin/pytest -p no:cacheprovider --durations=15 tests/unit tests/static
    unit_rc=$?
    echo
    echo "================ reliability lane (tests/reliability) ================"
    .venv/bin/pytest -p no:cacheprovider --durations=15 tests/reliability
    reliability_rc=$?
    exit $(( unit_rc != 0 || reliability_rc != 0 ))
) >"$static_log" 2>&1 &
static_pid=$!
# An interrupted run must not leave the static lane running behind it.
trap 'kill "$static_pid" 2>/dev/null || true' EXIT

set +e
.venv/bin/pytest --durations=30 tests/molecule tests/integration
services_rc=$?
wait "$static_pid"
static_rc=$?
set -e
trap - EXIT

echo
echo "================ static and reliability lanes (unit tests, static gates, campaign): $static_log ================"
cat "$static_log"
echo
echo "================ reliability campaign: figures of this run ================"
set +e
.venv/bin/python -m tests.reliability.table --out build/reliability/reliability.md
table_rc=$?
set -e
echo
echo "make test: services lane exit $services_rc, static and reliability lanes exit $static_rc, campaign table exit $table_rc, $(( (SECONDS - started) / 60 )) min"
if [[ $services_rc -ne 0 || $static_rc -ne 0 || $table_rc -ne 0 ]]; then
    exit 1
fi
