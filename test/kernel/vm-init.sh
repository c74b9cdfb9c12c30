#!/usr/bin/env bash
# Second-stage init of the VM test runner: runs as PID 1 inside the VM, on the overlay of the host's
# root that the initramfs prepared. Mounts the pseudo file systems (proc, sys, devtmpfs, /run,
# bpffs, cgroup2, debugfs, tracefs), brings lo up, runs the command that run-vm.sh wrote into the
# run directory ($xnm_run/cmd) from the checkout, writes its exit status to $xnm_run/status and as
# a marker line on the console, then powers the VM off.
# Not -e: whatever happens, PID 1 must reach the power-off (if it exits, the kernel panics).
set -uo pipefail

CHECKOUT=$(cd "${0%/*}/../.." && pwd)

# busybox-static's applets: under TCG each exec of a dynamically linked tool over 9p costs ~0.2 s.
mount() { busybox mount "$@"; }

mount_pseudo_fs() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	busybox mkdir -p /dev/pts /dev/shm
	mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm
	mount -t tmpfs -o mode=755 tmpfs /run
	# No tmpfs over /tmp: the overlay root already takes writes there, and a checkout under /tmp
	# (mktemp -d, as CI's clone may be) must stay visible.
	mount -t bpf -o mode=700 bpf /sys/fs/bpf
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
	[[ -e /dev/fd ]] || busybox ln -s /proc/self/fd /dev/fd
}

set_environment() {
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export HOME=/root LANG=C.UTF-8 USER=root
	unset xnm_run xnm_mods xnm_init
	# The variables that run-vm.sh passes through (CI, VM_ENV's list; TERM=dumb for a CI log).
	# shellcheck disable=SC1091
	[[ -f $RUN_DIR/env ]] && source "$RUN_DIR/env"
}

power_off() {
	sync
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger
	sleep 60
}

main() {
	local status uptime cmd
	RUN_DIR=${xnm_run:?the kernel command line has no xnm_run}
	mount_pseudo_fs
	exec </dev/console >/dev/console 2>&1 # the initramfs's /dev/console is gone: tty and isatty see this one
	busybox stty -F /dev/console -onlcr 2>/dev/null # no \r in the host's log
	busybox hostname xnetmon-vm
	busybox ip link set lo up
	set_environment
	cd "$CHECKOUT" || { echo "xnetmon-vm: no checkout at $CHECKOUT"; power_off; }
	read -r uptime _ </proc/uptime
	cmd=$(<"$RUN_DIR/cmd")
	echo "xnetmon-vm: kernel $(</proc/sys/kernel/osrelease), up ${uptime}s, running: $cmd"
	bash -c "$cmd"
	status=$?
	echo "$status" >"$RUN_DIR/status"
	read -r uptime _ </proc/uptime
	echo "xnetmon-vm: exit status $status (up ${uptime}s)"
	power_off
}

main
