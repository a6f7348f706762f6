#!/usr/bin/env bash
# Builds the workspace images the session tests use, with the same recipes as
# `weft image build KIND` (host/src/workspace/images/), unless they are already on the engine.
# Runs as root (debootstrap, chroot). Usage: tests/images/workspaces.sh KIND...
set -euo pipefail
recipes="$(cd "$(dirname "$0")/../../host/src/workspace/images" && pwd)"
for kind in "$@"; do
    image="weft/$kind:2"
    if docker image inspect "$image" >/dev/null 2>&1; then
        echo "$image is already built"
        continue
    fi
    root="$(mktemp -d /tmp/weft-image-root.XXXXXX)"
    echo "building $image"
    WEFT_IMAGE="$image" WEFT_ROOT="$root" bash -c "source '$recipes/common.sh'; source '$recipes/$kind.sh'"
    rm -rf "$root"
    echo "built $image"
done
