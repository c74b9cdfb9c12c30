#!/usr/bin/env bash
# The VM test runner's default command: shows which kernel, Node and iproute2 the VM has, and checks
# that what the project's tests need works there (veth via on-demand module loading, bpffs, Node).
set -euo pipefail

check() {
	local what=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok   $what"
	else
		echo "FAIL $what: ${out:-exit $?}"
		failed=$((failed + 1))
	fi
}

failed=0
uname -r
node --version
ip -V
check "veth pair (ip link add name vm0 type veth peer name vm1)" ip link add name vm0 type veth peer name vm1
check "veth pair removed" ip link del vm0
check "bpffs mounted at /sys/fs/bpf" test "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs
check "node -e 'console.log(1)'" node -e 'console.log(1)'
echo "smoke: $((4 - failed)) passed, $failed failed"
((failed == 0))
