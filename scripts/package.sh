#!/usr/bin/env bash
# Builds the Debian package: target/debian/wasmbeat_<version>_<arch>.deb
#
#   scripts/package.sh            # release build (what ships)
#   WASMBEAT_PACKAGE_PROFILE=dev scripts/package.sh   # quick, for trying the packaging itself
#
# The package holds the daemon (built-in agents embedded) and the agent
# compiler it runs in a child process, its systemd
# unit, man pages and shell completions generated from the CLI model,
# heartbeat's tool names (cl_status, hb_standby, hb_takeover) as links to
# it, example configuration under /usr/share/doc/wasmbeat/examples, and
# /var/cache/wasmbeat. It Conflicts/Replaces Debian's `heartbeat`: see
# docs/install-debian.md for the node-by-node migration.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${WASMBEAT_PACKAGE_PROFILE:-release}"
case "$profile" in
release | dev) dir="$(scripts/build.sh "$profile")" ;;
*) echo "WASMBEAT_PACKAGE_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
bin=$dir/wasmbeat
compiler=$dir/wasmbeat-compile

version="$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="wasmbeat"))')-1"
arch="$(dpkg --print-architecture)"
out=target/debian
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN"

install -D -m 0755 "$bin" "$stage/usr/sbin/wasmbeat"
strip --strip-unneeded "$stage/usr/sbin/wasmbeat"
# A helper, not a command: where the daemon looks for it.
install -D -m 0755 "$compiler" "$stage/usr/libexec/wasmbeat/wasmbeat-compile"
strip --strip-unneeded "$stage/usr/libexec/wasmbeat/wasmbeat-compile"
# heartbeat's tools, where heartbeat's package puts them; the binary acts
# on the name it was called by.
install -d "$stage/usr/bin" "$stage/usr/share/heartbeat"
ln -s ../sbin/wasmbeat "$stage/usr/bin/cl_status"
ln -s ../../sbin/wasmbeat "$stage/usr/share/heartbeat/hb_standby"
ln -s ../../sbin/wasmbeat "$stage/usr/share/heartbeat/hb_takeover"

install -D -m 0644 packaging/debian/wasmbeat.service "$stage/lib/systemd/system/wasmbeat.service"

docs="$(mktemp -d)"
trap 'rm -rf "$docs"' EXIT
"$bin" generate-docs "$docs"
install -d "$stage/usr/share/man/man8"
for page in "$docs"/man8/*.8; do
    gzip -9n <"$page" >"$stage/usr/share/man/man8/$(basename "$page").gz"
done
install -d "$stage/usr/share/man/man1"
gzip -9n <packaging/debian/cl_status.1 >"$stage/usr/share/man/man1/cl_status.1.gz"
install -D -m 0644 "$docs/completions/wasmbeat" "$stage/usr/share/bash-completion/completions/wasmbeat"
install -D -m 0644 "$docs/completions/_wasmbeat" "$stage/usr/share/zsh/vendor-completions/_wasmbeat"
install -D -m 0644 "$docs/completions/wasmbeat.fish" "$stage/usr/share/fish/vendor_completions.d/wasmbeat.fish"

doc="$stage/usr/share/doc/wasmbeat"
install -D -m 0644 packaging/debian/copyright "$doc/copyright"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 docs/install-debian.md "$doc/install-debian.md"
install -D -m 0644 docs/heartbeat-tools.md "$doc/heartbeat-tools.md"
for f in packaging/debian/examples/ha.d/*; do
    install -D -m 0644 "$f" "$doc/examples/ha.d/$(basename "$f")"
done
# A changelog is required by policy; the git history is the real one.
{
    echo "wasmbeat ($version) unstable; urgency=medium"
    echo
    echo "  * Package built from commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
    echo
    echo " -- wasmbeat developers <wasmbeat@users.noreply.example>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$doc/changelog.Debian.gz"

install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/wasmbeat"
install -d -m 0755 "$stage/var/cache/wasmbeat"

for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$stage/DEBIAN/$script"
done

# The C library version the binaries need, from their versioned symbols;
# packed relative relocations (GLIBC_ABI_DT_RELR) need glibc 2.36.
glibc="$( (objdump -T "$stage/usr/sbin/wasmbeat" "$stage/usr/libexec/wasmbeat/wasmbeat-compile" | grep -o 'GLIBC_[0-9.]*[0-9]' | sed 's/GLIBC_//'
    if objdump -p "$stage/usr/sbin/wasmbeat" | grep -q GLIBC_ABI_DT_RELR; then echo 2.36; fi) | sort -V | tail -1)"
installed_size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: wasmbeat
Version: $version
Architecture: $arch
Maintainer: wasmbeat developers <wasmbeat@users.noreply.example>
Installed-Size: $installed_size
Depends: libc6 (>= $glibc), libgcc-s1
Conflicts: heartbeat
Replaces: heartbeat
Section: admin
Priority: optional
Description: active/passive IP failover daemon compatible with heartbeat
 wasmbeat reads Linux-HA heartbeat's ha.cf, haresources and authkeys
 unchanged, speaks heartbeat 3.0.6's wire protocol (a mixed cluster works
 during a node-by-node migration), and moves virtual IPs and services to
 the surviving node. Its resource agents are sandboxed WebAssembly
 components with per-agent capability grants.
 .
 This package replaces Debian's heartbeat package and provides its
 cl_status, hb_standby and hb_takeover commands.
CONTROL

deb="$out/wasmbeat_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
