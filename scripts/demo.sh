#!/bin/sh
# One command for the main job: installs the Debian packages, builds cmpca,
# creates a demo PKI in ./cmpca-demo (operator CAs, a vendor CA, three
# registered devices) and runs the server on 127.0.0.1:8080. It prints the
# openssl cmp command that enrolls a demo device. Extra arguments go to
# `cmpca demo` (e.g. --port 8081, --dir DIR).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
make -j"$(nproc)" build/release/cmpca build/release/cmpenroll
exec ./build/release/cmpca demo "$@"
