# XNetMon. `make lab` and `make test` work on a fresh Debian 12 machine as root:
# each installs what it lacks (make deps), builds, and runs.
SHELL := /bin/bash
ARCH := $(shell uname -m)
CLANG ?= clang
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -I/usr/include/$(ARCH)-linux-gnu -Ibpf
BPF_OBJS := build/xnetmon.bpf.o build/baseline.bpf.o
DEB_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 nftables iptables iperf3 iputils-ping \
	netsniff-ng tcpdump bird2 linux-libc-dev ethtool procps
NODE := node
XNETMON := $(NODE) dist/src/cli/main.js

.PHONY: all deps build bpf ts test test-unit test-integration lab bench experiments clean

all: build

# Idempotent: installs only what is missing, then npm ci when node_modules is stale.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

build: bpf ts

bpf: $(BPF_OBJS)

build/%.bpf.o: bpf/%.bpf.c bpf/xnetmon.h bpf/parse.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

ts:
	npx tsc -p tsconfig.json

test: deps build
	$(NODE) --test --test-concurrency=1 dist/test/unit/ dist/test/bpf/ dist/test/integration/ dist/test/adversarial/

test-unit: build
	$(NODE) --test dist/test/unit/

test-integration: deps build
	$(NODE) --test --test-concurrency=1 dist/test/integration/

lab: deps build
	$(XNETMON) lab demo

bench: deps build
	$(XNETMON) bench all --write docs/benchmarks.md

experiments: deps build
	$(XNETMON) experiments --write docs/experiments.md

clean:
	rm -rf build dist
