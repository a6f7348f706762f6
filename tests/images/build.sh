#!/usr/bin/env bash
# Builds the container images the tests use, locally (there is no registry to pull from), once:
# an image already on the engine is kept.
#
#   weft-test/busybox:1   a 2 MB rootfs of Debian's busybox-static (every applet linked), users
#                         root and weft (1000)
#   weft-test/healthy:1   the same with a Docker health check: healthy once /tmp/healthy exists
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
