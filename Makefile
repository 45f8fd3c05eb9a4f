# Developer entry points. Every target is a thin wrapper over a script or a SwiftPM command.
# The Swift toolchain is looked up on PATH, then in /opt/swift/usr/bin.

SHELL := /bin/bash
export PATH := $(if $(wildcard /opt/swift/usr/bin),/opt/swift/usr/bin:)$(PATH)
SWIFT ?= swift
FORMAT_PATHS := Package.swift Sources Tests

.PHONY: help deps services services-stop build release test run bench format lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-14s %s\n", $$1, $$2 }'

deps: ## install missing Debian packages (apt), check the Swift toolchain
	scripts/dev/install-deps.sh

services: ## start RabbitMQ + Redis, or reuse the ones already running
	scripts/dev/services.sh start

services-stop: ## stop the servers `make services` started (never shared ones)
	scripts/dev/services.sh stop

build: ## debug build, including tests
	$(SWIFT) build --build-tests

release: ## optimized build of klaviyo-relay and klaviyo-sim
	$(SWIFT) build -c release --product klaviyo-relay
	$(SWIFT) build -c release --product klaviyo-sim

test: ## everything CI runs (installs deps, starts servers, builds, tests)
	scripts/test.sh

run: ## run the relay locally against klaviyo-sim
	scripts/dev/run-local.sh

bench: ## throughput benchmarks
	scripts/bench/relay.sh

format: ## rewrite Swift sources with swift-format (.swift-format)
	@if $(SWIFT) format --version >/dev/null 2>&1; then \
		$(SWIFT) format format --in-place --parallel --recursive $(FORMAT_PATHS); \
	else echo "swift format not available (ships with Swift >= 6); skipping"; fi

lint: ## check formatting like CI: warnings are errors
	$(SWIFT) format lint --strict --parallel --recursive $(FORMAT_PATHS)

clean: ## remove build products (var/ keeps pid files of running servers, so it stays)
	rm -rf .build
