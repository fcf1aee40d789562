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

.PHONY: help venv system-packages collection-link deps demo lab-up lab-down lab-status \
        test unit integration sanity lint changelog-lint bench clean

help:
	@echo "make demo      set up, start the lab estate, run playbooks/weekly.yml against it"
	@echo "make test      set up and run every test (unit, integration, sanity, lint, molecule)"
	@echo "make lab-down  stop everything the lab started"

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

deps: venv system-packages collection-link

demo: deps
	@$(BIN)/python -m lab up
	@$(BIN)/ansible-playbook -i inventory/lab playbooks/weekly.yml
	@$(BIN)/python -m lab report-path

lab-up: deps
	@$(BIN)/python -m lab up

lab-down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m lab down; else echo "lab: nothing to stop (no venv)"; fi

lab-status:
	@$(BIN)/python -m lab status

test: deps
	@scripts/run-tests.sh

unit: deps
	@$(BIN)/pytest tests/unit

integration: deps
	@$(BIN)/pytest tests/integration

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
