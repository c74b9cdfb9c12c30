# XNetMon. `make lab` and `make test` work on a fresh Debian 12 machine as root:
# each installs what it lacks (make deps), builds, and runs.
SHELL := /bin/bash
ARCH := $(shell uname -m)
CLANG ?= clang
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -I/usr/include/$(ARCH)-linux-gnu -Ibpf
BPF_OBJS := build/xnetmon.bpf.o build/baseline.bpf.o
DEB_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 nftables iptables iperf3 iputils-ping \
	netsniff-ng tcpdump bird2 linux-libc-dev ethtool procps prometheus jq chromium
# What `make test-kernel` needs: qemu (TCG is enough), a static busybox for the VM's initramfs,
# kmod (depmod for the downloaded kernel's modules, and modprobe inside the VM).
VM_DEB_PACKAGES := qemu-system-x86 busybox-static kmod
# What `make package` needs besides dpkg-deb (dpkg is in every Debian): lintian checks the packages.
PACKAGE_DEB_PACKAGES := lintian
KVER ?= 6.1
NODE := node
XNETMON := $(NODE) dist/src/cli/main.js

.PHONY: all deps deps-kernel deps-package build bpf ts lint test test-unit test-integration test-kernel lab bench experiments \
	package package-debs install install-client uninstall clean

# make install: a source install under PREFIX (and DESTDIR), in the packages' layout (packaging/stage.sh).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
# Production dependencies only (npm ci --omit=dev), for the packages and make install.
PROD_MODULES := build/pkg/prod/node_modules

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

# Idempotent: what `make package` needs (lintian).
deps-package:
	@missing=""; for p in $(PACKAGE_DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "deps-package: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

build: bpf ts dist/build-info.json

bpf: $(BPF_OBJS)

build/%.bpf.o: bpf/%.bpf.c bpf/xnetmon.h bpf/parse.h
	@mkdir -p build
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

ts:
	npx tsc -p tsconfig.json

# The version and the BPF object's build id that `--version` prints (src/cli/version.ts).
dist/build-info.json: build/xnetmon.bpf.o package.json
	@mkdir -p dist
	@printf '{"version":"%s","bpfBuildId":"%s"}\n' "$$($(NODE) -p 'require("./package.json").version')" \
		"$$(sha256sum build/xnetmon.bpf.o | cut -c1-16)" > $@

$(PROD_MODULES)/.package-lock.json: package.json package-lock.json
	rm -rf build/pkg/prod && mkdir -p build/pkg/prod && cp package.json package-lock.json build/pkg/prod/
	cd build/pkg/prod && npm ci --omit=dev --ignore-scripts --no-audit --no-fund
	touch $@

# build/xnetmon_VERSION_amd64.deb (host) and build/xnetmon-client_VERSION_amd64.deb (virtual router),
# checked by lintian. package-debs packs the current build without rebuilding it (the package test uses it).
package: deps-package build package-debs

package-debs: $(PROD_MODULES)/.package-lock.json dist/build-info.json
	@packaging/build-deb.sh host build
	@packaging/build-deb.sh client build
	lintian --fail-on error build/xnetmon_$$($(NODE) -p 'require("./package.json").version')_amd64.deb \
		build/xnetmon-client_$$($(NODE) -p 'require("./package.json").version')_amd64.deb

# A source install: the host's program under $(DESTDIR)$(PREFIX), units in $(UNITDIR),
# the example configuration in $(SYSCONFDIR)/xnetmon unless one is there. install-client: the router's only.
install: build $(PROD_MODULES)/.package-lock.json
	PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) UNITDIR=$(UNITDIR) packaging/stage.sh host "$(DESTDIR)"

install-client: build $(PROD_MODULES)/.package-lock.json
	PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) UNITDIR=$(UNITDIR) packaging/stage.sh client "$(DESTDIR)"

# Removes what install and install-client put; $(SYSCONFDIR)/xnetmon (configuration, keys) is the operator's.
uninstall:
	rm -rf "$(DESTDIR)$(PREFIX)/lib/xnetmon" "$(DESTDIR)$(PREFIX)/lib/xnetmon-client"
	rm -f "$(DESTDIR)$(PREFIX)/bin/xnetmon" "$(DESTDIR)$(PREFIX)/bin/xnetmon-client" \
		"$(DESTDIR)$(UNITDIR)/xnetmon.service" "$(DESTDIR)$(UNITDIR)/xnetmon-client.service" \
		"$(DESTDIR)$(PREFIX)/share/man/man1/xnetmon.1" "$(DESTDIR)$(PREFIX)/share/man/man1/xnetmon-client.1"

# On this machine's kernel, every test; then, in a VM on Debian 12's 6.1 (the oldest kernel we
# support, without tcx), the data plane's tests, the lab and integration tests that attach it or
# run the daemon, the adversarial tests, the isolation guarantees and the lab demo. Every group
# runs, and the VM part fails if any did (docs/operations.md, "Testing on other kernels").
# Left to the host, as they test no kernel interface the others do not and take too long under
# TCG: the reconcile model test (50 random steps, over 20 min in the VM), the packages (npm ci
# alone takes 4 min there) and the lab report's browser test. Of the isolation tests, the
# guarantees (no contention, an opponent flooding the CPU or a link); the two that measure how
# closely the law splits a link miss in the VM, whose timers and generators run ~8x slower.
KERNEL_TESTS := dist/test/bpf/ dist/test/integration/attach-modes.test.js dist/test/integration/lab-fastpath.test.js
KERNEL_INTEGRATION := $(addprefix dist/test/integration/,accounting.test.js client-watcher.test.js daemon.test.js \
	manager-dataplane.test.js manager-quota.test.js prometheus.test.js reconcile-live.test.js reconcile.test.js \
	secure-update.test.js)
KERNEL_ADVERSARIAL := dist/test/adversarial/frames.test.js dist/test/adversarial/update-flood.test.js
KERNEL_ISOLATION := --test-name-pattern="no contention|opponent" dist/test/integration/isolation.test.js
KERNEL_CMD := rc=0; node --test --test-concurrency=1 $(KERNEL_TESTS) $(KERNEL_INTEGRATION) || rc=1; \
	node --test --test-concurrency=1 $(KERNEL_ADVERSARIAL) || rc=1; node --test $(KERNEL_ISOLATION) || rc=1; \
	node dist/src/cli/main.js lab demo --quick --report build/lab-report-6.1 || rc=1; exit $$rc

test: deps lint deps-package build
	$(NODE) --test --test-concurrency=1 dist/test/unit/ dist/test/bpf/ dist/test/integration/ dist/test/adversarial/
	$(MAKE) --no-print-directory test-kernel KVER=6.1 TIMEOUT=3600 CMD='$(KERNEL_CMD)'

# Lint and format check (Biome, biome.json; npm run format fixes the format): first in make test, as it
# takes seconds. Needs node_modules only (npm ci).
lint:
	npm run --silent lint

# Pure logic: needs the TypeScript build only (no BPF objects, no root; node_modules from npm ci).
test-unit: ts
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
