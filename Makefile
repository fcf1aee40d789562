# streamops.maintenance: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
COLLECTION_LINK := build/collections/ansible_collections/streamops/maintenance

export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv system-packages collection-link awx-collection deps k8s-binaries demo lab-up lab-down lab-status \
        k8s-up k8s-down test unit integration reliability sanity lint changelog-lint bench clean clean-k8s-cache awx-config

help:
	@echo "make demo      set up, start the lab estate, run playbooks/weekly.yml against it"
	@echo "make test      set up and run every test (unit, integration, sanity, lint, molecule)"
	@echo "make lab-down  stop everything the lab started"
	@echo "make k8s-up    only the local Kubernetes 1.20 cluster (make k8s-down stops it)"
	@echo "make reliability  the reliability campaign alone; rewrites the table of docs/reliability.md"
	@echo "make awx-config  the AWX/Tower configuration of INVENTORY (default inventory/example), checked offline"

$(STAMP): requirements.txt requirements-test.txt constraints-test.txt
	@scripts/ensure-python-venv.sh "$(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@echo "venv: installing requirements-test.txt"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
	@touch $@

venv: $(STAMP)

system-packages: venv
	@scripts/ensure-system-packages.sh test

collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

# awx.awx, unpacked alone from the `ansible` wheel on PyPI (Galaxy cannot be reached): the offline check of
# the generated AWX configuration runs its modules. Fetched here, not by a test.
awx-collection: venv collection-link
	@$(BIN)/python -c 'from controller_config.validate import awx_collection; print("awx.awx:", awx_collection())'

deps: venv system-packages collection-link awx-collection

# The AWX/Tower configuration (infra.aap_configuration format) for an inventory's estates, checked offline.
INVENTORY ?= inventory/example
awx-config: deps
	@$(BIN)/python -m controller_config generate --inventory $(INVENTORY) $(if $(SETTINGS),--settings $(SETTINGS))
	@$(BIN)/python -m controller_config validate build/controller/controller_configuration.yml

# Kubernetes 1.20 from Debian's source package, patched (lab/k8s/patches), built
# once into ~/.cache/streamops-maintenance/k8s (STREAMOPS_K8S_CACHE) and reused.
# Before pytest, so the one long build prints its progress here and does not
# count against a test's timeout.
k8s-binaries: deps
	@$(BIN)/python -m lab.k8s build

demo: deps k8s-binaries
	@$(BIN)/python -m lab up
	@$(BIN)/ansible-playbook -i inventory/lab playbooks/weekly.yml
	@$(BIN)/python -m lab report-path

lab-up: deps k8s-binaries
	@$(BIN)/python -m lab up

lab-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m lab down; else echo "lab: nothing to stop (no venv)"; fi

lab-status:
	@$(BIN)/python -m lab status

k8s-up: deps k8s-binaries
	@$(BIN)/python -m lab.k8s up

k8s-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m lab.k8s down; fi

# The execution environment image too: its cold build fetches wheels and packages from the registries,
# which happens here, before any test (the tests then find it in the layer cache).
test: deps k8s-binaries ee
	@scripts/run-tests.sh

unit: deps
	@$(BIN)/pytest tests/unit

integration: deps k8s-binaries
	@$(BIN)/pytest tests/integration

# The reliability campaign alone (docs/reliability.md): faults injected into real services, generated
# input, overlapping runs, secrets; its table is rewritten from this run's cases. make test runs the same
# cases (and writes the table to build/reliability/reliability.md).
reliability: deps k8s-binaries
	@rm -rf build/reliability
	@set +e; $(BIN)/pytest -p no:cacheprovider -m reliability tests/reliability tests/integration; rc=$$?; \
	  $(BIN)/python -m tests.reliability.table --out docs/reliability.md; table_rc=$$?; \
	  exit $$(( rc != 0 || table_rc != 0 ))

sanity: deps
	@scripts/ansible-test-sanity.sh

lint: deps
	@scripts/ansible-lint.sh

changelog-lint: deps
	@scripts/changelog-lint.sh

bench: deps
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: lab-down
	rm -rf build tests/output .pytest_cache reports

# The collection's execution environment (lab/ee, docs/execution-environment.md):
# `ee` builds the image offline on a local Debian base (first run about 2 minutes;
# caches in ~/.cache/streamops-maintenance/ee, STREAMOPS_EE_CACHE); `ee-context`
# only writes build/ee/context, to build on AWX's own base image.
.PHONY: ee ee-context
ee: deps
	@$(BIN)/python -m lab.ee build

ee-context: deps
	@$(BIN)/python -m lab.ee context

# The Kubernetes build cache lives outside the repo; `make clean` keeps it.
clean-k8s-cache:
	rm -rf "$${STREAMOPS_K8S_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/streamops-maintenance/k8s}"
