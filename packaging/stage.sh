#!/usr/bin/env bash
# Installs one of XNetMon's two programs into DESTDIR, the one layout shared by `make install` and
# the Debian packages (packaging/build-deb.sh):
#   host:   PREFIX/lib/xnetmon/{package.json,dist,build/xnetmon.bpf.o,node_modules}, PREFIX/bin/xnetmon,
#           UNITDIR/xnetmon.service, SYSCONFDIR/xnetmon/xnetmon.yaml, PREFIX/share/man/man1/xnetmon.1
#   client: PREFIX/lib/xnetmon-client/{package.json,dist,node_modules}, PREFIX/bin/xnetmon-client,
#           UNITDIR/xnetmon-client.service, SYSCONFDIR/xnetmon/client.yaml, PREFIX/share/man/man1/xnetmon-client.1
# Only what the entry point reaches is copied (packaging/closure.ts): the client carries no libbpf
# binding, no BPF object and no lab. Run from the checkout after `make build` and with the
# production node_modules in PROD_MODULES (the Makefile's build/pkg/prod/node_modules).
# Usage: stage.sh host|client DESTDIR; PREFIX, SYSCONFDIR, UNITDIR, NODE from the environment.
set -euo pipefail
kind=${1:?usage: stage.sh host|client DESTDIR}
destdir=${2?usage: stage.sh host|client DESTDIR}
prefix=${PREFIX:-/usr/local}
sysconfdir=${SYSCONFDIR:-/etc}
unitdir=${UNITDIR:-$prefix/lib/systemd/system}
node=${NODE:-$(command -v node)}
modules=${PROD_MODULES:-build/pkg/prod/node_modules}

case "$kind" in
  host) name=xnetmon; entries=(dist/src/cli/main.js); config=docs/examples/xnetmon.yaml ;;
  client) name=xnetmon-client; entries=(dist/src/cli/client-main.js); config=packaging/xnetmon-client/client.yaml ;;
  *) echo "stage.sh: unknown kind $kind (host or client)" >&2; exit 2 ;;
esac
for needed in dist/build-info.json build/xnetmon.bpf.o "$modules"; do
  [ -e "$needed" ] || { echo "stage.sh: $needed is missing (make build, and make package's production modules)" >&2; exit 1; }
done

lib=$destdir$prefix/lib/$name
rm -rf "$lib"
install -d -m 0755 "$lib/dist" "$lib/node_modules" "$destdir$prefix/bin" "$destdir$unitdir" "$destdir$sysconfdir/xnetmon"

# The modules and packages the entry points reach; package.json marks dist as ES modules and
# is where the loader finds build/ and the metrics find the version.
listing=$(for entry in "${entries[@]}"; do node dist/packaging/closure.js "$entry" "$modules"; done | sort -u)
while read -r what path; do
  case "$what" in
    file) install -D -m 0644 "$path" "$lib/$path" ;;
    package) mkdir -p "$lib/node_modules/$path" && cp -a "$modules/$path/." "$lib/node_modules/$path/" ;;
  esac
done <<< "$listing"
install -m 0644 dist/build-info.json "$lib/dist/build-info.json"
node -e '
  const p = require("./package.json");
  const out = { name: p.name, version: p.version, description: p.description, type: p.type, private: true, license: p.license };
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");' > "$lib/package.json"
chmod 0644 "$lib/package.json"
if [ "$kind" = host ]; then install -D -m 0644 build/xnetmon.bpf.o "$lib/build/xnetmon.bpf.o"; fi

# Nested packages are copied whole above; drop what only builds or documents them: sources
# of native code, TypeScript declarations, source maps, other platforms' prebuilt binaries.
find "$lib/node_modules" -depth \( \
    -name '*.ts' -o -name '*.cts' -o -name '*.mts' -o -name '*.map' -o -name '*.md' -o -name '*.markdown' \
    -o -name '*.cc' -o -name '*.hh' -o -name '*.h' -o -name '*.inc' -o -name '*.S' -o -name '*.asm' -o -name '*.def' \
    -o -name CMakeLists.txt -o -name '.*' -o -name 'musl_*' -o -name '*.html' -o -name test -o -name cnoke.cjs \) \
    ! -path "$lib/node_modules" -exec rm -rf {} +
# koffi ships the sources and headers it builds from when no prebuilt binary fits.
rm -rf "$lib/node_modules/koffi/lib" "$lib/node_modules/koffi/vendor" "$lib/node_modules/koffi/doc"
find "$lib/node_modules" -type d -empty -delete
find "$lib" -type d -exec chmod 0755 {} + && find "$lib" -type f -exec chmod 0644 {} +
# A file that starts with #! is a script: executable, as its first line says.
find "$lib" -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.cjs' -o -name '*.sh' \) -exec grep -l -m1 '^#!' {} + 2>/dev/null \
  | while read -r script; do [ "$(head -c2 "$script")" = '#!' ] && chmod 0755 "$script"; done

write_wrapper() { # NAME ENTRY
  printf '#!/bin/sh\n# %s, installed by XNetMon'\''s packaging/stage.sh.\nexec %s %s "$@"\n' \
    "$1" "$node" "$prefix/lib/$name/$2" > "$destdir$prefix/bin/$1"
  chmod 0755 "$destdir$prefix/bin/$1"
}
if [ "$kind" = host ]; then write_wrapper xnetmon dist/src/cli/main.js; else write_wrapper xnetmon-client dist/src/cli/client-main.js; fi

sed -e "s|@BINDIR@|$prefix/bin|g" -e "s|@SYSCONFDIR@|$sysconfdir|g" "packaging/systemd/$name.service" > "$destdir$unitdir/$name.service"
chmod 0644 "$destdir$unitdir/$name.service"
install -D -m 0644 "packaging/man/$name.1" "$destdir$prefix/share/man/man1/$name.1"
# The example configuration: installed where none is, never over the operator's.
target=$destdir$sysconfdir/xnetmon/$(basename "$config")
if [ ! -e "$target" ]; then install -m 0644 "$config" "$target"; fi
