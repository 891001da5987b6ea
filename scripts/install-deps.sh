#!/bin/sh
# Installs every Debian 12 package cmpca needs to build, test and benchmark.
# Idempotent; run as root (or with sudo). Used by README's quick start and CI.
set -eu

PKGS="build-essential pkg-config clang-14 libclang-rt-14-dev
 libssl-dev openssl libmicrohttpd-dev libgnutls28-dev libsqlite3-dev sqlite3 libpq-dev
 libinih-dev libjansson-dev libp11-dev libengine-pkcs11-openssl
 softhsm2 opensc libcmocka-dev postgresql curl python3 procps faketime
 libcurl4-openssl-dev"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
