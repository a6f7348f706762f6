#!/usr/bin/env bash
# Builds the container images the tests use, locally (there is no registry to pull from), once:
# an image already on the engine is kept.
#
#   weft-test/busybox:1   a 2 MB rootfs of Debian's busybox-static (every applet linked), users
#                         root and weft (1000)
#   weft-test/healthy:1   the same with a Docker health check: healthy once /tmp/healthy exists
#   weft-test/python:1    Debian bookworm minbase with python3 (standard library), user weft (1000)
set -euo pipefail

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have weft-test/busybox:1; then
    busybox=/bin/busybox
    if ! "$busybox" --list >/dev/null 2>&1 || ldd "$busybox" >/dev/null 2>&1; then
        echo "tests/images/build.sh: needs a static /bin/busybox (Debian's busybox-static)" >&2
        exit 1
    fi
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root"/{bin,etc,tmp,root,home/weft}
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nweft:x:1000:1000:weft:/home/weft:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\nweft:x:1000:\n' >"$root/etc/group"
    chmod 1777 "$root/tmp"
    chown 1000:1000 "$root/home/weft"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - weft-test/busybox:1 >/dev/null
    echo "built weft-test/busybox:1"
fi

if ! have weft-test/healthy:1; then
    context="$(mktemp -d)"
    cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM weft-test/busybox:1
HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD test -f /tmp/healthy
CMD ["sh", "-c", "sleep 1; touch /tmp/healthy; exec sleep 100000"]
DOCKERFILE
    DOCKER_BUILDKIT=0 docker build -q -t weft-test/healthy:1 "$context" >/dev/null
    rm -rf "$context"
    echo "built weft-test/healthy:1"
fi

# weft-test/python:1: Debian's python3 (standard library only) on a minbase root, user weft
# (1000), for container-job and python-script nodes, from the shared Debian root (debian-base.sh).
if ! have weft-test/python:1; then
    base="$("$(dirname "$0")/debian-base.sh")"
    root="$(mktemp -d /tmp/weft-python-root.XXXXXX)"
    tar -C "$root" -xf "$base"
    chroot "$root" apt-get update -qq
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null
    chroot "$root" apt-get clean
    chroot "$root" useradd --uid 1000 --create-home --home-dir /home/weft --shell /bin/sh weft
    mkdir -p "$root/workspace" && chown 1000:1000 "$root/workspace"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import -c 'CMD ["python3"]' -c 'USER 1000' -c 'WORKDIR /workspace' \
        -c 'ENV HOME=/home/weft LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin' - weft-test/python:1 >/dev/null
    rm -rf "$root"
    echo "built weft-test/python:1"
fi
