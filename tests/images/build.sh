#!/usr/bin/env bash
# Builds the container images the tests use, locally (there is no registry to pull from), once:
# an image already on the engine is kept.
#
#   weft-test/busybox:1   a 2 MB rootfs of Debian's busybox-static (every applet linked), users
#                         root and weft (1000)
#   weft-test/healthy:1   the same with a Docker health check: healthy once /tmp/healthy exists
#   weft-test/python:1    Debian bookworm minbase with python3 (standard library), user weft (1000)
#   weft-test/upstream:1  Debian's nginx and a WebSocket echo server: the proxy benchmark's upstream
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

# weft-test/upstream:1: a fast upstream for the proxy benchmark (host/benches/proxy.rs), user
# weft (1000), on port 8888: Debian's nginx serving /small.txt (64 bytes) and /big.bin (64 MiB),
# taking PUTs under /up/ (WebDAV, written to /tmp), and passing /ws to a WebSocket echo server
# (Python's standard library) on 127.0.0.1:8889.
if ! have weft-test/upstream:1; then
    base="$("$(dirname "$0")/debian-base.sh")"
    root="$(mktemp -d /tmp/weft-upstream-root.XXXXXX)"
    tar -C "$root" -xf "$base"
    chroot "$root" apt-get update -qq
    # No service starts inside the chroot (nginx's postinst would start one on the host's port 80).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light python3 >/dev/null
    rm "$root/usr/sbin/policy-rc.d"
    chroot "$root" apt-get clean
    chroot "$root" useradd --uid 1000 --create-home --home-dir /home/weft --shell /bin/sh weft
    mkdir -p "$root/workspace" && chown 1000:1000 "$root/workspace"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    cat >"$root/etc/nginx/upstream.conf" <<'NGINX'
daemon off;
worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    server {
        listen 8888;
        root /tmp/www;
        location /up/ { dav_methods PUT; client_max_body_size 0; client_body_buffer_size 1m; }
        location /ws {
            proxy_pass http://127.0.0.1:8889;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
            proxy_read_timeout 1h;
        }
    }
}
NGINX
    cat >"$root/usr/local/bin/echo-ws.py" <<'PYTHON'
"""A WebSocket echo server (RFC 6455, text and binary frames, no fragments) on 127.0.0.1:8889."""
import asyncio, base64, hashlib, struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

async def serve(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    try:
        while True:
            b0, b1 = await reader.readexactly(2)
            n = b1 & 127
            if n == 126:
                (n,) = struct.unpack(">H", await reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack(">Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if b1 & 128 else b""
            data = await reader.readexactly(n)
            if mask and n:
                key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
                data = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")
            op = b0 & 15
            if op == 8:
                writer.write(b"\x88\x00")
                break
            op = 10 if op == 9 else op
            if n < 126:
                head = struct.pack(">BB", 0x80 | op, n)
            elif n < 65536:
                head = struct.pack(">BBH", 0x80 | op, 126, n)
            else:
                head = struct.pack(">BBQ", 0x80 | op, 127, n)
            writer.write(head + data)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 8889)
    await server.serve_forever()

asyncio.run(main())
PYTHON
    cat >"$root/usr/local/bin/upstream" <<'SH'
#!/bin/sh
set -e
mkdir -p /tmp/www/up
printf '%064d' 0 >/tmp/www/small.txt
head -c 67108864 /dev/zero >/tmp/www/big.bin
python3 /usr/local/bin/echo-ws.py &
exec nginx -c /etc/nginx/upstream.conf
SH
    chmod 755 "$root/usr/local/bin/upstream"
    tar -C "$root" -c . | docker import -c 'CMD ["/usr/local/bin/upstream"]' -c 'USER 1000' -c 'WORKDIR /workspace' \
        -c 'ENV HOME=/home/weft LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' - weft-test/upstream:1 >/dev/null
    rm -rf "$root"
    echo "built weft-test/upstream:1"
fi
