#!/usr/bin/env bash
# Installs what building and testing Strata needs, idempotently:
#   - libclang (pg_query runs bindgen at build time),
#   - OpenSSL headers and pkg-config (TLS via native-tls),
#   - PostgreSQL server binaries (the managed local cluster and the tests),
#   - with STRATA_TEST_PG set, what scripts/pg.sh needs to fetch other versions.
# Installs only what is missing, and only where apt-get is available.
set -euo pipefail

need=()
have_libclang() {
    # bindgen loads libclang.so / libclang-<N>.so; libclang-cpp.so (a different
    # library that other packages pull in) does not do.
    ldconfig -p 2>/dev/null | grep -Eq '(^|/)libclang(-[0-9.]+)?\.so' ||
        compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null ||
        compgen -G '/usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*' >/dev/null
}
have_postgres() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_libclang || need+=(libclang1-14 libclang-common-14-dev)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev pkg-config)
have_postgres || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# scripts/pg.sh (other PostgreSQL versions for the tests) downloads and
# checks packages.
if [ -n "${STRATA_TEST_PG:-}" ]; then
    command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v unzip >/dev/null 2>&1 || need+=(unzip)
fi

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: missing ${need[*]}; install them with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "setup: installing ${need[*]}" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
