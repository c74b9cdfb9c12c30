# XNetMon. `make lab` and `make test` work on a fresh Debian 12 machine as root:
# each installs what it lacks (make deps), builds, and runs.
SHELL := /bin/bash
ARCH := $(shell uname -m)
CLANG ?= clang
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -I/usr/include/$(ARCH)-linux-gnu -Ibpf
BPF_OBJS := build/xnetmon.bpf.o build/baseline.bpf.o
DEB_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 nftables iptables iperf3 iputils-ping \
	netsniff-ng tcpdump bird2 linux-libc-dev ethtool procps prometheus jq
# What `make test-kernel` needs: qemu (TCG is enough), a static busybox for the VM's initramfs,
# kmod (depmod for the downloaded kernel's modules, and modprobe inside the VM).
VM_DEB_PACKAGES := qemu-system-x86 busybox-static kmod
KVER ?= 6.1
NODE := node
XNETMON := $(NODE) dist/src/cli/main.js

.PHONY: all deps deps-kernel build bpf ts test test-unit test-integration test-kernel lab bench experiments clean

all: build

# Idempotent: installs only what is missing, then npm ci when node_modules is stale.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then npm ci --no-audit --no-fund; fi
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# Idempotent: the packages that the VM runner lacks, then Debian's newest $(KVER) kernel, downloaded
# and extracted into build/vm/ (not installed on this machine) with its initramfs; a cached one is reused.
deps-kernel:
	@missing=""; for p in $(VM_DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "deps-kernel: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@test/kernel/fetch-kernel.sh $(KVER) >/dev/null

build: bpf ts

bpf: $(BPF_OBJS)

build/%.bpf.o: bpf/%.bpf.c bpf/xnetmon.h bpf/parse.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

ts:
	npx tsc -p tsconfig.json

# On this machine's kernel, every test; then, in a VM on Debian 12's 6.1 (the oldest kernel we
# support, without tcx), the data plane's tests, the lab tests that attach it, and the lab demo.
# Of the isolation tests, the guarantees (no contention, an opponent flooding the CPU or a link);
# the two that measure how closely the law splits a link (within 5 % of half, within 3 points of
# the weights) miss in the VM, whose timers and generators run ~8x slower (docs/operations.md).
KERNEL_TESTS := dist/test/bpf/ dist/test/integration/attach-modes.test.js dist/test/integration/lab-fastpath.test.js dist/test/adversarial/
KERNEL_ISOLATION := --test-name-pattern="no contention|opponent" dist/test/integration/isolation.test.js

test: deps build
	$(NODE) --test --test-concurrency=1 dist/test/unit/ dist/test/bpf/ dist/test/integration/ dist/test/adversarial/
	$(MAKE) --no-print-directory test-kernel KVER=6.1 CMD='node --test --test-concurrency=1 $(KERNEL_TESTS) && node --test $(KERNEL_ISOLATION) && node dist/src/cli/main.js lab demo --quick --report build/lab-report-6.1'

test-unit: build
	$(NODE) --test dist/test/unit/

test-integration: deps build
	$(NODE) --test --test-concurrency=1 dist/test/integration/

# CMD (run by bash from the checkout) in a qemu VM on Debian's $(KVER) kernel; exits with CMD's status.
# Without CMD: test/kernel/smoke.sh. Also TIMEOUT (s), VM_SMP, VM_MEM (MiB): see test/kernel/run-vm.sh.
# CMD reaches the VM as written, not expanded by make: CMD='echo $HOME' prints the VM's HOME.
test-kernel: deps-kernel
	KVER=$(KVER) CMD='$(subst ','\'',$(value CMD))' test/kernel/run-vm.sh

lab: deps build
	$(XNETMON) lab demo

bench: deps build
	$(XNETMON) bench all --write docs/benchmarks.md

experiments: deps build
	$(XNETMON) experiments --write docs/experiments.md

clean:
	rm -rf build dist
