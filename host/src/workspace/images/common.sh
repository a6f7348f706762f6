# Shared by the image recipes: a minimal Debian root folder with the host's CA bundle, and
# packing a root folder into a local image. Run as root; `##STEP` lines drive the progress bar.
set -euo pipefail
: "${WEFT_IMAGE:?}" "${WEFT_ROOT:?}" "${WEFT_MIRROR:=http://deb.debian.org/debian}"

step() { echo "##STEP $*"; }

in_root() { chroot "$WEFT_ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# WEFT_DEBIAN_BASE may name a tarball of such a root made earlier (the test command builds
# several images from one debootstrap); it is unpacked instead.
debian_root() {
    step "debootstrap Debian bookworm (minbase)"
    if [ -n "${WEFT_DEBIAN_BASE:-}" ]; then
        tar -C "$WEFT_ROOT" -xf "$WEFT_DEBIAN_BASE"
    else
        debootstrap --variant=minbase bookworm "$WEFT_ROOT" "$WEFT_MIRROR"
    fi
    # Outgoing HTTPS may go through a proxy whose CA only the host trusts; the build uses the
    # host's bundle (kept apart: installing ca-certificates rewrites the usual one).
    cp /etc/ssl/certs/ca-certificates.crt "$WEFT_ROOT/etc/weft-build-ca.crt"
    mount -t proc proc "$WEFT_ROOT/proc"
    trap 'umount "$WEFT_ROOT/proc" 2>/dev/null || true' EXIT
}

apt_in_root() {
    in_root apt-get update -qq
    in_root apt-get install -y -qq --no-install-recommends "$@"
}

# The workspace user: uid 1000, home /workspace.
workspace_user() {
    in_root useradd --uid 1000 --create-home --home-dir /home/weft --shell /bin/bash weft
    mkdir -p "$WEFT_ROOT/workspace"
    chown 1000:1000 "$WEFT_ROOT/workspace"
}

# pack ENTRYPOINT-JSON CMD-JSON: the root folder as image $WEFT_IMAGE.
pack() {
    step "pack the root folder into $WEFT_IMAGE"
    umount "$WEFT_ROOT/proc" 2>/dev/null || true
    in_root apt-get clean 2>/dev/null || true
    rm -rf "$WEFT_ROOT"/var/lib/apt/lists/* "$WEFT_ROOT"/root/.cache "$WEFT_ROOT/etc/weft-build-ca.crt"
    tar -C "$WEFT_ROOT" -c . | docker import \
        -c "ENTRYPOINT $1" -c "CMD $2" -c 'USER 1000' -c 'WORKDIR /workspace' \
        -c 'ENV HOME=/home/weft LANG=C.UTF-8 PATH=/opt/venv/bin:/opt/code-server/bin:/usr/local/bin:/usr/bin:/bin' \
        -c 'EXPOSE 8888' - "$WEFT_IMAGE" >/dev/null
}
