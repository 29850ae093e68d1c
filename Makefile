# Dockyard: build, run, test and benchmark.
#
#   make run          install, then serve on localhost:5000 with data in ./data
#   make test         install, then run the test suite on PYTEST_WORKERS processes
#                     (fails if no test ran)
#   make lint         ruff check src tests bench
#   make bench        side-by-side benchmark against CNCF Distribution (full)
#   make bench-quick  the same, ~10x smaller (smoke test, noisy figures)
#   make bench-scale  two nodes on PostgreSQL + S3 behind nginx vs Distribution on that S3, and vs embedded
#   make bench-encryption  encryption at rest on vs off, and a 1 GiB online encryption
#   make bench-scanning  scan time on push, and push latency with scanning on vs off
#   make bench-tasks  ACR Tasks: a quick build from scheduleRun to pushed, vs buildah by hand
#   make bench-geo    geo-replication: lag of 1,000 pushes, push cost, a 1 GiB image
#   make bench-gc     garbage collection: time and memory on 100,000 blobs, pushes during GC
#   make bench-geo-routing  the global endpoint: manifest GETs direct, proxied, redirected
#   make bench-base-trigger  ACR Tasks: from a base image's push to the dependent run's start
#   make bench-portal the portal's server time per page on a repository with 10,000 tags
#   make install      only install: .venv with '.[test]', the apt packages and the portal's htmx
#
# Every target that needs something installs it itself, and does nothing when it
# is already there (a stamp file keyed on pyproject.toml, dpkg-query for apt).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
APT_PACKAGES := skopeo busybox-static postgresql nginx docker-registry apache2-utils wrk softhsm2 buildah podman runc rpm qemu-user-static git chromium

LISTEN ?= localhost:5000
DATA_DIR ?= ./data
PYTEST_ARGS ?=
# Test processes: the suite waits on servers and clients as well as computing, so three
# workers keep 2 cores busier than two do (docs/performance.md). Each test file runs
# whole on one worker (--dist loadfile): a module's server starts once.
PYTEST_WORKERS ?= 3
BENCH_ARGS ?=
DOCKYARD_ARGS ?=
# The portal's one script, from the npm registry at build time (never a CDN at run time):
# this version's package, checked against its digest, gives the file the package serves.
HTMX_VERSION := 2.0.11
HTMX_SHA256 := 165a2655073e9e6e55e307a7c74e8ebcdb76afb7701f9c16cfd106a13add408e
HTMX := src/dockyard/portal/static/htmx.min.js

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: help install apt-packages npm run test lint bench bench-quick bench-scale bench-encryption bench-scanning bench-tasks bench-geo bench-geo-routing bench-gc bench-base-trigger bench-portal clean

help:
	@sed -n 's/^#   make/  make/p' Makefile

install: $(STAMP) apt-packages $(HTMX)

# The venv is (re)built when pyproject.toml changes or the interpreter is gone.
$(STAMP): pyproject.toml
	@if ! $(VENV)/bin/python -c '' 2>/dev/null; then \
		echo "make: creating $(VENV)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); fi
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# apt-get update runs once, and only when a package is missing.
apt-packages:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make: installing apt packages:$$missing"; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

# npm comes with Debian's nodejs (or NodeSource's, which bundles it).
npm:
	@if ! command -v npm >/dev/null; then \
		echo "make: installing nodejs and npm"; \
		apt-get update -q && apt-get install -y -q --no-install-recommends nodejs npm; fi

$(HTMX): Makefile | npm
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent htmx.org@$(HTMX_VERSION) >/dev/null); \
	echo "$(HTMX_SHA256)  $$tmp/htmx.org-$(HTMX_VERSION).tgz" | sha256sum --check --quiet; \
	tar -xzf "$$tmp/htmx.org-$(HTMX_VERSION).tgz" -C "$$tmp" package/dist/htmx.min.js; \
	install -m 0644 "$$tmp/package/dist/htmx.min.js" $@; \
	echo "make: htmx $(HTMX_VERSION) -> $@"

run: install
	$(VENV)/bin/dockyard serve --listen $(LISTEN) --data-dir $(DATA_DIR)

# pytest exits 5 when it collected no test: that must fail loudly, never pass.
test: install
	@rc=0; $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "make test: FAILED: pytest collected no tests" >&2; exit 1; fi; \
	exit "$$rc"

lint: install
	$(VENV)/bin/ruff check src tests bench

# Extra server options: make bench DOCKYARD_ARGS='--workers 2'
# Extra harness options: make bench BENCH_ARGS='--phases pull-large --repeat 5'
bench: install
	$(VENV)/bin/python bench/compare.py $(BENCH_ARGS) -- $(DOCKYARD_ARGS)

bench-quick: install
	$(VENV)/bin/python bench/compare.py --quick $(BENCH_ARGS) -- $(DOCKYARD_ARGS)

# Then, once those servers stopped, the PostgreSQL CPU per GET and idle transactions
# (bench/pg_cost.py). Smoke test: make bench-scale BENCH_ARGS='--quick --repeat 1'.
bench-scale: install
	$(VENV)/bin/python bench/scale.py --pg-cost $(BENCH_ARGS) -- $(DOCKYARD_ARGS)

# Encryption at rest on against off, and a 1 GiB registry's online encryption time
# (bench/encryption.py). Smoke test: make bench-encryption BENCH_ARGS='--quick --repeat 1'.
bench-encryption: install
	$(VENV)/bin/python bench/encryption.py $(BENCH_ARGS)

# Smoke test: make bench-scanning BENCH_ARGS='--pushes 5 --repeat 1 --filler-mb 20'
bench-scanning: install
	$(VENV)/bin/python bench/scanning.py $(BENCH_ARGS)

# Smoke test: make bench-tasks BENCH_ARGS='--repeat 1'
bench-tasks: install
	$(VENV)/bin/python bench/tasks.py $(BENCH_ARGS)

# Smoke test: make bench-geo BENCH_ARGS='--pushes 100 --cost-pushes 30 --repeat 1 --large-mib 128'
bench-geo: install
	$(VENV)/bin/python bench/geo_replication.py $(BENCH_ARGS)

# Smaller registry: make bench-gc BENCH_ARGS='--scale 0.1'
bench-gc: install
	$(VENV)/bin/python bench/gc.py $(BENCH_ARGS)

# Smoke test: make bench-geo-routing BENCH_ARGS='--requests 100'
bench-geo-routing: install
	$(VENV)/bin/python bench/geo_routing.py $(BENCH_ARGS)

# Fewer pushes: make bench-base-trigger BENCH_ARGS='--repeat 2'
bench-base-trigger: install
	$(VENV)/bin/python bench/base_trigger.py $(BENCH_ARGS)

# Smoke test: make bench-portal BENCH_ARGS='--tags 1000 --repeat 5'
bench-portal: install
	$(VENV)/bin/python bench/portal.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
