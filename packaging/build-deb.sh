#!/usr/bin/env bash
# Builds build/NAME_VERSION_amd64.deb for the host (xnetmon) or the router (xnetmon-client) with
# dpkg-deb: the files of packaging/stage.sh under /usr and /etc, the documentation Debian asks for
# (copyright with the licence of every bundled npm package, changelog), the maintainer scripts
# of packaging/NAME/, md5sums and conffiles. Run from the checkout by `make package`.
# Usage: build-deb.sh host|client OUTDIR; DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail
kind=${1:?usage: build-deb.sh host|client OUTDIR}
outdir=${2:?usage: build-deb.sh host|client OUTDIR}
case "$kind" in
  host) name=xnetmon ;;
  client) name=xnetmon-client ;;
  *) echo "build-deb.sh: unknown kind $kind (host or client)" >&2; exit 2 ;;
esac
version=$(node -p 'require("./package.json").version')
changelog_version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/changelog)
if [ "$version" != "$changelog_version" ]; then
  echo "build-deb.sh: package.json says $version but packaging/changelog's latest entry is $changelog_version: add an entry" >&2
  exit 1
fi
maintainer=${DEB_MAINTAINER:-XNetMon developers <xnetmon@example.org>}
root=build/deb/$name
rm -rf "$root"
mkdir -p "$root"
PREFIX=/usr SYSCONFDIR=/etc UNITDIR=/lib/systemd/system NODE=/usr/bin/node packaging/stage.sh "$kind" "$root"
lib=$root/usr/lib/$name

# Documentation: Debian wants copyright and changelog, compressed docs, no docs elsewhere.
doc=$root/usr/share/doc/$name
install -d -m 0755 "$doc"
gzip -9n < packaging/changelog > "$doc/changelog.gz"
gzip -9n "$root/usr/share/man/man1/$name.1"
if [ "$kind" = host ]; then
  for page in README.md docs/operations.md docs/config.md docs/protocol.md docs/security.md; do
    gzip -9n < "$page" > "$doc/$(basename "$page").gz"
  done
  install -d -m 0755 "$doc/examples" && gzip -9n < docs/examples/xnetmon.yaml > "$doc/examples/xnetmon.yaml.gz"
fi
{
  cat <<COPYRIGHT
XNetMon: isolation and plane separation for virtual routers sharing one host.

Copyright: the XNetMon developers
License: GPL-2 (GPL-2.0-only)

This program is free software; you can redistribute it and/or modify it under the terms of
the GNU General Public License version 2 as published by the Free Software Foundation.
On Debian systems, the complete text of the GNU General Public License version 2 can be found
in /usr/share/common-licenses/GPL-2.

Bundled npm packages, under /usr/lib/$name/node_modules, each with its licence as it ships it:
COPYRIGHT
  for manifest in $(find "$lib/node_modules" -name package.json -path '*/node_modules/*/package.json' | sort); do
    dir=$(dirname "$manifest")
    [ "$(basename "$(dirname "$dir")")" = node_modules ] || [ "$(basename "$(dirname "$(dirname "$dir")")")" = node_modules ] || continue
    license=$(node -e 'const p = require(process.argv[1]); if (!p.name || !p.version) process.exit(3); console.log(`${p.name} ${p.version}: ${p.license ?? "see below"}`);' "$PWD/$manifest") || continue
    printf '\n%s\n' "$license"
    case "$license" in
      *Apache-2.0*) echo "  On Debian systems, the complete text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0." ;;
      *)
        for text in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/license*; do
          if [ -f "$text" ]; then sed 's/^/  /' "$text"; fi
        done ;;
    esac
  done
} > "$doc/copyright"
# Their licences are in the copyright file now, where Debian looks for them.
find "$lib/node_modules" -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' \) -delete
# Lintian overrides, each with its reason.
install -d -m 0755 "$root/usr/share/lintian/overrides"
{
  echo "# The wrapper runs /usr/bin/node, so the preinst checks that one, not the first node on PATH."
  echo "$name: command-with-path-in-maintainer-script /usr/bin/node (plain script) *"
  if [ "$kind" = host ]; then
    echo "# eBPF bytecode, loaded into the kernel by libbpf: an ELF for the BPF machine on every architecture."
    echo "$name: binary-from-other-architecture [usr/lib/$name/build/xnetmon.bpf.o]"
  fi
} > "$root/usr/share/lintian/overrides/$name"
find "$root/usr/share" -type d -exec chmod 0755 {} + && find "$root/usr/share" -type f -exec chmod 0644 {} +

# Control: size, scripts (the Node.js check shared by both preinsts), conffiles, md5sums.
install -d -m 0755 "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$maintainer/" "packaging/$name/control" > "$root/DEBIAN/control"
for script in preinst postinst prerm postrm; do
  sed -e '/^#CHECK_NODE#$/{r packaging/common/check-node.sh' -e 'd}' "packaging/$name/$script" > "$root/DEBIAN/$script"
  chmod 0755 "$root/DEBIAN/$script"
done
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$outdir"
dpkg-deb --root-owner-group -Zxz --build "$root" "$outdir/${name}_${version}_amd64.deb" > /dev/null
echo "$outdir/${name}_${version}_amd64.deb"
