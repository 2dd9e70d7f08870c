# prodgate: the two newcomer commands are `make demo` and `make test`; both do their own set-up.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
export ANSIBLE_NOCOLOR := 1
export PY_COLORS := 0
export NO_COLOR := 1
export ANSIBLE_FORCE_COLOR := 0
LIMIT ?= all
# Longest first (the data tier, then the release), two at a time (scripts/molecule.sh, MOLECULE_JOBS).
SCENARIOS ?= database release $(filter-out database release,$(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml)))))

.PHONY: setup demo test unit lint sanity molecule pytest lab-up lab-down clean ee

setup:
	@scripts/setup.sh

$(BIN)/pytest:
	@scripts/setup.sh

## make demo: bring the lab up and run the main job on it
demo: setup
	@scripts/demo.sh

## make test: everything CI runs (lint, sanity, molecule, then pytest; ends with pytest's summary)
test: setup lint sanity molecule pytest

## make unit: the fast inner loop (unit tests only, no containers)
unit: $(BIN)/pytest
	pytest -q tests/unit

lint:
	ansible-lint --profile production -q

sanity:
	scripts/sanity.sh

molecule:
	@scripts/molecule.sh $(SCENARIOS)

pytest:
	pytest -q -p no:cacheprovider tests/unit tests/integration

## make ee: build the execution environment localhost/prodgate-ee:<version> for AWX (once; docs/awx.md)
ee: setup
	@scripts/build-ee.sh

## make lab-up [LIMIT=app1,db1]: create the lab network and containers (all, or only LIMIT)
lab-up: setup
	ansible-playbook playbooks/lab.yml -e lab_state=started --limit '$(LIMIT)'

## make lab-down: remove every container and the network the lab created
lab-down:
	ansible-playbook playbooks/lab.yml -e lab_state=absent

clean: lab-down
	rm -rf .cache tests/output
