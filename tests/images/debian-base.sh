#!/usr/bin/env bash
# Makes, once, a tarball of a Debian bookworm minbase root folder and prints its path: every test
# image starts from it, so the test command runs one debootstrap instead of three (about 30 CPU-s
# and a minute each). WEFT_TEST_DEBIAN_BASE picks the path; WEFT_MIRROR the Debian mirror.
set -euo pipefail
base="${WEFT_TEST_DEBIAN_BASE:-/tmp/weft-test-debian-base.tar}"
if [ ! -f "$base" ]; then
    root="$(mktemp -d /tmp/weft-debian-base.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "${WEFT_MIRROR:-http://deb.debian.org/debian}" >&2
    tar -C "$root" -cf "$base.tmp" .
    mv "$base.tmp" "$base"
fi
echo "$base"
