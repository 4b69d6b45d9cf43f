# Developer entry points. `make test` is what CI runs (.ci/run); `make demo` is the main job.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := source .cache/env.sh &&
SCENARIO ?= default

.PHONY: help setup test lint sanity unit controller molecule molecule-all e2e demo demo-destroy docs clean build

help:
	@echo "make demo          deploy the whole stack onto local containers and print the URL"
	@echo "make demo-destroy  remove the demo containers"
	@echo "make test          everything CI runs: lint, sanity, unit, every Molecule scenario"
	@echo "make lint | sanity | unit | controller | molecule SCENARIO=name | molecule-all | build | docs"

# Re-run setup when its inputs change; `make setup` forces it (it is idempotent and cached).
.cache/env.sh: requirements.txt $(wildcard tools/*.sh tools/*.conf)
	@tools/setup.sh

setup:
	@tools/setup.sh

test: setup
	@tools/test-all.sh

lint: .cache/env.sh
	$(ENV) ansible-lint --profile production
	$(ENV) antsibull-changelog lint

sanity: .cache/env.sh
	$(ENV) tools/sanity.sh

unit: .cache/env.sh
	$(ENV) pytest tests/unit tests/playbooks

# A controller install alone, in a new virtualenv: ansible-core, the collection's tarball, its collections.
controller: .cache/env.sh
	$(ENV) pytest -p no:cacheprovider tests/controller

molecule: .cache/env.sh
	$(ENV) molecule test -s $(SCENARIO)

molecule-all: .cache/env.sh
	$(ENV) tools/molecule-all.sh

e2e: .cache/env.sh
	$(ENV) tools/molecule-all.sh split

# The architecture diagram: docs/architecture.svg is generated from docs/architecture.dot (commit both).
docs:
	@command -v dot >/dev/null || { echo "make docs needs Graphviz's dot (Debian: apt-get install graphviz)" >&2; exit 1; }
	dot -Tsvg docs/architecture.dot -o docs/architecture.svg

build: .cache/env.sh
	$(ENV) ansible-galaxy collection build --force --output-path build/

demo: setup
	@tools/demo.sh

demo-destroy: .cache/env.sh
	@tools/demo.sh destroy

clean:
	rm -rf build/ .cache/ .ansible/ tests/output/
