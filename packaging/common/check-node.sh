# Node.js 20 or later as /usr/bin/node (the one the wrapper runs), checked before anything is
# unpacked: dpkg -i checks Depends: only after unpacking, so without this a machine with
# Debian 12's own nodejs 18 would get the files and a package that cannot be configured.
node_version=$(/usr/bin/node --version 2>/dev/null || true)
node_major=${node_version#v}
node_major=${node_major%%.*}
case "$node_major" in
  '' | *[!0-9]*)
    echo "$package: needs Node.js 20 or later as /usr/bin/node, and there is none: install nodejs (>= 20) first" >&2
    exit 1 ;;
esac
if [ "$node_major" -lt 20 ]; then
  echo "$package: needs Node.js 20 or later, and /usr/bin/node is $node_version: install nodejs (>= 20) first" >&2
  exit 1
fi
