#!/usr/bin/env bash
# Fetches a Debian kernel for the VM test runner and builds its initramfs, both cached under the
# checkout's build/vm/<release>/ (the kernel package is extracted with dpkg-deb, never installed).
#
#   test/kernel/fetch-kernel.sh 6.1      # prints the cache directory, e.g. build/vm/6.1.0-57-amd64
#
# KVER "6.1" (or "6.1.0") selects the newest linux-image-6.1.0-N-amd64-unsigned in the apt lists.
# A cached kernel of that series is reused without asking apt; VM_REFRESH=1 looks for a newer one.
# The -unsigned flavour is the one with 9p and virtio as modules (-cloud- lacks 9p).
#
# Cache layout: build/vm/<release>/root/ (the extracted package, with modules.dep made by depmod),
# build/vm/<release>/vmlinux (the kernel decompressed, when it can be: a faster boot),
# build/vm/<release>/initramfs.cpio.gz (busybox-static + the modules that mount the root).
set -euo pipefail

CHECKOUT=$(cd "$(dirname "$0")/../.." && pwd)
VM_CACHE="$CHECKOUT/build/vm"
# Modules the initramfs loads (with their dependencies) to mount the host's root over 9p.
INITRAMFS_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

die() { echo "fetch-kernel: $*" >&2; exit 1; }
log() { echo "fetch-kernel: $*" >&2; }

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "'$tool' is missing: run 'make deps-kernel' (it installs qemu-system-x86, busybox-static, kmod)"
	done
}

# "6.1" -> "6.1.0": Debian names its kernel packages by the x.y.0 ABI series.
series_of() {
	local kver=$1
	[[ $kver =~ ^[0-9]+\.[0-9]+(\.0)?$ ]] || die "KVER '$kver' is not of the form 6.1 or 6.1.0"
	[[ $kver == *.*.* ]] && echo "$kver" || echo "$kver.0"
}

# The newest cached release of a series (empty when none is complete).
cached_release() {
	local series=$1 dir
	for dir in "$VM_CACHE/$series"-*-amd64; do
		if [[ -f $dir/.complete ]]; then basename "$dir"; fi
	done | sort -V | tail -n 1
}

# The newest linux-image-<series>-N-amd64-unsigned package that apt knows about.
newest_package() {
	local series=$1 pattern pkg
	pattern="^linux-image-${series//./\\.}-[0-9]+-amd64-unsigned\$"
	pkg=$(apt-cache search --names-only "$pattern" | cut -d' ' -f1 | sort -V | tail -n 1)
	if [[ -z $pkg ]]; then
		log "no $series kernel in the apt lists: apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		pkg=$(apt-cache search --names-only "$pattern" | cut -d' ' -f1 | sort -V | tail -n 1)
	fi
	[[ -n $pkg ]] || die "no package matches $pattern in the apt lists (is Debian's archive reachable?)"
	echo "$pkg"
}

# Downloads and extracts the package into $VM_CACHE/<release>/root, then runs depmod on it.
extract_kernel() {
	local pkg=$1 release=$2 dir=$VM_CACHE/$2 tmp deb
	tmp=$(mktemp -d "$VM_CACHE/download.XXXXXX")
	log "downloading $pkg"
	if ! (cd "$tmp" && apt-get download -qq "$pkg" 2>"$tmp/apt.log"); then
		grep -v 'unsandboxed as root' "$tmp/apt.log" >&2
		rm -rf "$tmp"
		die "apt-get download $pkg failed"
	fi
	deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n 1)
	[[ -n $deb ]] || { rm -rf "$tmp"; die "apt-get download $pkg produced no .deb"; }
	rm -rf "$dir" && mkdir -p "$dir"
	dpkg-deb -x "$deb" "$dir/root"
	rm -rf "$tmp"
	[[ -f $dir/root/boot/vmlinuz-$release ]] || die "$pkg has no boot/vmlinuz-$release"
	depmod -b "$dir/root" "$release"
}

# Decompresses the kernel into $dir/vmlinux (an ELF that qemu boots through its PVH entry): TCG
# spends about 3 s decompressing a bzImage at each boot. Only for an XZ bzImage with CONFIG_PVH=y
# (Debian's); otherwise the VM boots vmlinuz as it is.
extract_vmlinux() {
	local dir=$VM_CACHE/$1 release=$1 image offset
	image=$dir/root/boot/vmlinuz-$release
	offset=$(grep -abo -m 1 $'\xfd7zXZ\x00' "$image" | head -n 1 | cut -d: -f1)
	if [[ -z $offset ]] || ! grep -q '^CONFIG_PVH=y' "$dir/root/boot/config-$release"; then
		touch "$dir/vmlinux.none"
		return 0
	fi
	# xz stops reading at the end of its stream: tail's SIGPIPE is expected.
	if { tail -c +"$((offset + 1))" "$image" || true; } | xz -dc --single-stream >"$dir/vmlinux.tmp" 2>/dev/null &&
		[[ $(head -c 4 "$dir/vmlinux.tmp") == $'\x7fELF' ]]; then
		mv "$dir/vmlinux.tmp" "$dir/vmlinux"
	else
		rm -f "$dir/vmlinux.tmp"
		touch "$dir/vmlinux.none" # not tried again
		log "could not decompress $image: the VM boots it compressed (about 3 s slower)"
	fi
}

# Lists, in load order, the module files that INITRAMFS_MODULES need (builtins are skipped).
initramfs_module_files() {
	local root=$1 release=$2 mod
	for mod in "${INITRAMFS_MODULES[@]}"; do
		modprobe -d "$root" -S "$release" --show-depends "$mod" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++'
}

# Builds initramfs.cpio.gz: busybox-static, the modules (decompressed) and test/kernel/initramfs-init.
build_initramfs() {
	local dir=$VM_CACHE/$1 release=$1 stage busybox file n=0
	busybox=$(command -v busybox) # busybox-static's: it conflicts with the dynamic busybox package
	stage=$(mktemp -d "$VM_CACHE/initramfs.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,lower,rw,newroot,run,modules}
	cp "$busybox" "$stage/bin/busybox"
	ln -s busybox "$stage/bin/sh"
	mknod -m 600 "$stage/dev/console" c 5 1
	mknod -m 666 "$stage/dev/null" c 1 3
	cp "$CHECKOUT/test/kernel/initramfs-init" "$stage/init"
	chmod 755 "$stage/init"
	while read -r file; do
		n=$((n + 1))
		local dest
		dest="$stage/modules/$(printf '%02d' "$n")-$(basename "${file%%.ko*}").ko"
		case $file in
		*.ko.xz) xz -dc "$file" >"$dest" ;;
		*.ko.zst) zstd -qdc "$file" >"$dest" ;;
		*.ko.gz) gzip -dc "$file" >"$dest" ;;
		*) cp "$file" "$dest" ;;
		esac
	done < <(initramfs_module_files "$dir/root" "$release")
	((n > 0)) || die "found none of ${INITRAMFS_MODULES[*]} in $release's modules"
	(cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$dir/initramfs.cpio.gz.tmp"
	mv "$dir/initramfs.cpio.gz.tmp" "$dir/initramfs.cpio.gz"
	rm -rf "$stage"
	log "initramfs with $n modules: $dir/initramfs.cpio.gz"
}

main() {
	local kver=${1:-6.1} series release pkg
	need apt-get apt-cache dpkg-deb depmod modprobe busybox gzip xz
	series=$(series_of "$kver")
	mkdir -p "$VM_CACHE"
	release=$(cached_release "$series")
	if [[ -z $release || ${VM_REFRESH:-0} == 1 ]]; then
		pkg=$(newest_package "$series")
		release=${pkg#linux-image-}
		release=${release%-unsigned}
		if [[ ! -f $VM_CACHE/$release/.complete ]]; then
			extract_kernel "$pkg" "$release"
			extract_vmlinux "$release"
			touch "$VM_CACHE/$release/.complete"
		fi
	fi
	[[ -f $VM_CACHE/$release/vmlinux || -f $VM_CACHE/$release/vmlinux.none ]] || extract_vmlinux "$release"
	# The initramfs depends on the init script too: rebuild it when that changed.
	if [[ ! -f $VM_CACHE/$release/initramfs.cpio.gz ||
		$CHECKOUT/test/kernel/initramfs-init -nt $VM_CACHE/$release/initramfs.cpio.gz ]]; then
		build_initramfs "$release"
	fi
	echo "$VM_CACHE/$release"
}

main "$@"
