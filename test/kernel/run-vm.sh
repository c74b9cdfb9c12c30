#!/usr/bin/env bash
# Runs a command from this checkout inside a qemu VM booted with a Debian kernel (default 6.1), and
# exits with the command's exit status: the project's tests on an older kernel, like the vmtest tools
# of libbpf's and Cilium's CI. No /dev/kvm needed (TCG), no disk image: the host's root is shared
# read-only over 9p under a tmpfs overlay, so the VM sees the checkout, node, iproute2 ... at the same
# paths as the host; writes inside the VM are lost at power-off.
#
#   test/kernel/run-vm.sh                                   # smoke check (test/kernel/smoke.sh)
#   test/kernel/run-vm.sh 'node --test dist/test/bpf/'      # a command (bash -c) run from the checkout
#   CMD='uname -r' KVER=6.1 test/kernel/run-vm.sh           # the same through the environment
#
# Environment: KVER (6.1), CMD, TIMEOUT (seconds, 1800), VM_SMP (2), VM_MEM (MiB, 4096),
# VM_ENV (names of more variables to pass into the VM; CI always is, and TERM=dumb when stdout is not
# a terminal, so that a CI log gets no colour escapes), VM_KEEP=1 (keep the
# run directory build/vm/run.*: console.log, cmd, env, status), VM_REFRESH=1 (look for a newer kernel),
# VM_KERNEL_ARGS (replaces "quiet loglevel=3", e.g. "loglevel=7" to see the boot).
# The kernel and initramfs come from fetch-kernel.sh (cached in build/vm/). The command's output
# streams to stdout; a kernel panic, a timeout or a VM that stops without an exit status fails the
# run with a message on stderr (exit 124 for a timeout, 125 for the others).
set -euo pipefail

CHECKOUT=$(cd "$(dirname "$0")/../.." && pwd)
KVER=${KVER:-6.1}
TIMEOUT=${TIMEOUT:-1800}
VM_SMP=${VM_SMP:-2}
VM_MEM=${VM_MEM:-4096}
DEFAULT_CMD=test/kernel/smoke.sh

die() { echo "run-vm: $*" >&2; exit 125; }

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "'$tool' is missing: run 'make deps-kernel'"
	done
}

# Writes the command and the variables passed through into the run directory, read by vm-init.sh.
write_run_files() {
	local run=$1 cmd=$2 name names extra
	read -ra extra <<<"${VM_ENV:-}"
	names=(CI "${extra[@]}")
	printf '%s\n' "$cmd" >"$run/cmd"
	: >"$run/env"
	# The VM's console is a terminal: without one on the host (a CI log), no colour escapes.
	if [[ -t 1 ]]; then names+=(TERM); else printf 'export TERM=dumb\n' >>"$run/env"; fi
	for name in "${names[@]}"; do
		[[ -n ${!name+x} ]] && printf 'export %s=%q\n' "$name" "${!name}" >>"$run/env"
	done
	return 0
}

# Boots the VM; the console (the command's output) goes to stdout and to $run/console.log.
boot() {
	local cache=$1 run=$2 release kernel
	release=$(basename "$cache")
	kernel=$cache/root/boot/vmlinuz-$release
	[[ ! -f $cache/vmlinux ]] || kernel=$cache/vmlinux # decompressed by fetch-kernel.sh: boots faster
	local append="console=ttyS0 ${VM_KERNEL_ARGS:-quiet loglevel=3} panic=-1"
	append+=" xnm_run=$run xnm_mods=$cache/root/lib/modules/$release xnm_init=$CHECKOUT/test/kernel/vm-init.sh"
	# qboot: a minimal firmware for -kernel boots (no SeaBIOS banner or screen-clearing escapes).
	# --foreground: qemu stays in the terminal's process group (else reading a tty stops it: SIGTTIN).
	timeout --foreground -k 10 "$TIMEOUT" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -smp "$VM_SMP" -m "$VM_MEM" \
		-nographic -no-reboot -nic none -vga none -bios qboot.rom \
		-kernel "$kernel" -initrd "$cache/initramfs.cpio.gz" -append "$append" \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$run,mount_tag=xnmrun,security_model=none,multidevs=remap" \
		| tee "$run/console.log"
}

# Turns the VM's outcome into this script's exit status, with a clear message when there is none.
report() {
	local run=$1 qemu_rc=$2 elapsed=$3 status
	if ((qemu_rc == 124 || (qemu_rc == 137 && elapsed >= TIMEOUT))); then
		echo "run-vm: TIMEOUT: the VM did not finish within ${TIMEOUT}s and was killed (TIMEOUT=seconds allows more)" >&2
		return 124
	fi
	status=$(cat "$run/status" 2>/dev/null || true)
	# The marker line on the console, if the status file could not be written.
	[[ -n $status ]] || status=$(tr -d '\r' <"$run/console.log" | sed -n 's/^xnetmon-vm: exit status \([0-9]*\).*/\1/p' | tail -n 1)
	if [[ $status =~ ^[0-9]+$ ]]; then
		echo "run-vm: command exited $status (VM ran ${elapsed}s)" >&2
		return "$status"
	fi
	local panic
	panic=$(grep -m 1 -o 'Kernel panic.*' "$run/console.log" | tr -d '\r' || true)
	if [[ -n $panic ]]; then
		echo "run-vm: the VM's kernel panicked (the console above has the trace): $panic" >&2
	elif grep -q 'xnetmon-vm: initramfs failed' "$run/console.log"; then
		echo "run-vm: the VM's initramfs could not mount the root (see the console above)" >&2
	else
		echo "run-vm: the VM stopped without the command's exit status (qemu exit $qemu_rc)" >&2
	fi
	return 125
}

main() {
	local cmd cache run start rc
	if (($# > 0)); then cmd="$*"; else cmd=${CMD:-$DEFAULT_CMD}; fi
	[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "TIMEOUT '$TIMEOUT' is not a number of seconds"
	[[ $CHECKOUT != *[[:space:]]* ]] || die "the checkout's path '$CHECKOUT' has spaces (the kernel command line cannot carry it)"
	need qemu-system-x86_64 busybox timeout tee
	cache=$("$CHECKOUT/test/kernel/fetch-kernel.sh" "$KVER") || die "no $KVER kernel (fetch-kernel.sh failed)"
	run=$(mktemp -d "$CHECKOUT/build/vm/run.XXXXXX")
	# shellcheck disable=SC2064 # $run is local: expanded now on purpose
	[[ ${VM_KEEP:-0} == 1 ]] || trap "rm -rf '$run'" EXIT
	write_run_files "$run" "$cmd"
	echo "run-vm: booting $(basename "$cache") (qemu TCG, ${VM_SMP} CPUs, ${VM_MEM} MiB, timeout ${TIMEOUT}s)" >&2
	start=$SECONDS
	rc=0
	boot "$cache" "$run" || rc=$? # qemu's (or timeout's) status: tee's is 0
	[[ ! -t 0 ]] || stty sane # qemu -nographic leaves a terminal raw when it is killed
	report "$run" "$rc" $((SECONDS - start))
}

main "$@"
