#!/usr/bin/env bash
# Runs every Weft test on a fresh machine of this kind, or on one already set up: installs and
# starts what the tests need (idempotently), then checks formatting and lints and runs the suite.
#
#   tests/run.sh              everything
#   tests/run.sh ARGS         extra arguments for `cargo test` (e.g. -- a_test_name)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m==> [%4ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages the tests need, installed in one apt run: every `apt-get update` costs seconds.
postgres_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true; }
setup_packages() {
    local missing=()
    # The real git client (the versioning tests clone and push with it; Weft serves through its
    # http-backend).
    if ! command -v git >/dev/null 2>&1 || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
        missing+=(git)
    fi
    local pg; pg="$(postgres_bin)"
    [ -n "$pg" ] && [ -x "$pg/pg_ctl" ] || missing+=(postgresql)
    command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || missing+=(docker.io)
    # The test images' rootfs, and the container firewall Weft installs and the network namespaces
    # the isolation tests build (a fake metadata service behind a veth pair).
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    # The workspace images' root file systems.
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    # Headless Chromium for the tests whose victim is a browser.
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} from Debian's packages"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The wasm32-wasip2 target: rust-toolchain.toml lists it, but rustup does not always install it.
setup_rust() {
    rustup target add wasm32-wasip2 >/dev/null
}

# A throwaway PostgreSQL cluster on a private port, trusted local access only.
PG_PORT="${WEFT_TEST_PG_PORT:-55432}"
PG_DIR="${WEFT_TEST_PG_DIR:-/tmp/weft-test-pg}"
setup_postgres() {
    local bin; bin="$(postgres_bin)"
    local run=()
    if [ "$(id -u)" -eq 0 ]; then run=(runuser -u postgres --); fi
    if ! "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
        if [ ! -f "$PG_DIR/PG_VERSION" ]; then
            log "creating a PostgreSQL test cluster in $PG_DIR"
            rm -rf "$PG_DIR"
            mkdir -p "$PG_DIR"
            [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_DIR"
            "${run[@]}" "$bin/initdb" -D "$PG_DIR" -U postgres --auth=trust >/dev/null
        fi
        log "starting PostgreSQL on port $PG_PORT"
        "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" \
            -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=off" \
            -w start >/dev/null
    fi
    export WEFT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT"
}

# A Docker engine (Debian's docker.io), started if no daemon answers.
setup_docker() {
    if ! as_root docker info >/dev/null 2>&1; then
        log "starting dockerd"
        as_root sh -c 'nohup dockerd >/tmp/weft-test-dockerd.log 2>&1 </dev/null &'
        local waited=0
        until as_root docker info >/dev/null 2>&1; do
            if [ "$waited" -ge 60 ]; then
                echo "dockerd did not answer within 60 s; its log:" >&2
                tail -n 40 /tmp/weft-test-dockerd.log >&2 || true
                exit 1
            fi
            sleep 1
            waited=$((waited + 1))
        done
    fi
    # User networks of test servers killed before their cleanup (each takes a subnet of the
    # pool): those no container uses go; a live server makes its own again when it needs it.
    as_root docker network prune -f --filter label=weft.network >/dev/null || true
    export WEFT_TEST_DOCKER=1
}

# Python tools the tests use, from PyPI in one virtualenv: moto's S3-compatible server for the
# storage tests, nbformat (Jupyter's own validator) to check the notebooks Weft saves,
# websockets for the SwarmPilot task instance peer (tests/peers) reporting over a WebSocket,
# openapi-spec-validator to check the API's OpenAPI document, and the real mlflow client (and
# server, for the benchmark) against Weft's tracking server. mlflow 3.17.2 is pinned: 3.18.0
# needs an mlflow-tracing 3.18.0 that is not on PyPI.
MLFLOW_VERSION=3.17.2
# The real DVC client the data versions tests push to and pull from Weft with, and its WebDAV
# remote (dvc-webdav over webdav4), which lists and deletes: `dvc gc -c`.
DVC_VERSION=3.67.1
DVC_WEBDAV_VERSION=3.0.1
VENV="${WEFT_TEST_VENV:-/tmp/weft-test-venv}"
# --no-compile: pip would byte-compile all 16,000 modules (~40 CPU-s); Python compiles the few the
# tests import when they first import them.
setup_python() {
    if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import nbformat, websockets, openapi_spec_validator' 2>/dev/null; then
        echo "installing moto's S3 server, nbformat, websockets and openapi-spec-validator from PyPI"
        [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-compile 'moto[server]' nbformat 'websockets==15.0.1' \
            'openapi-spec-validator==0.7.2'
    fi
    if [ "$("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)' 2>/dev/null)" != "$MLFLOW_VERSION" ]; then
        echo "installing mlflow $MLFLOW_VERSION from PyPI"
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-compile "mlflow==$MLFLOW_VERSION"
    fi
    if [ "$("$VENV/bin/dvc" --version 2>/dev/null)" != "$DVC_VERSION" ] \
        || [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("dvc-webdav"))' 2>/dev/null)" != "$DVC_WEBDAV_VERSION" ]; then
        echo "installing dvc $DVC_VERSION and dvc-webdav $DVC_WEBDAV_VERSION from PyPI (under a minute; its http remote comes with it)"
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-compile "dvc==$DVC_VERSION" "dvc-webdav==$DVC_WEBDAV_VERSION"
    fi
}

# playwright-core and axe-core (npm, pinned by tests/browser's lock file) for the browser tests.
setup_browser() {
    if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
        echo "installing playwright-core and axe-core (npm ci in tests/browser)"
        (cd tests/browser && npm ci --no-audit --no-fund)
    fi
}

# The test images and the workspace images, built locally (there is no registry to pull from),
# all from one Debian root folder: minutes (PyPI, npm).
setup_images() {
    as_root tests/images/build.sh
    if ! as_root docker image inspect weft/jupyter:2 weft/code-server:2 >/dev/null 2>&1; then
        as_root env WEFT_DEBIAN_BASE="$(as_root tests/images/debian-base.sh)" \
            tests/images/workspaces.sh jupyter code-server
    fi
}

# Downloads and image builds run in the background while the code is linted and built (minutes on
# 2 cores); the tests wait for them. Each writes a log, shown if it fails.
BACKGROUND=()
in_background() {
    local log_file="/tmp/weft-test-$1.log"
    "setup_$1" >"$log_file" 2>&1 &
    BACKGROUND+=("$1:$!")
}
wait_background() {
    local job name pid
    for job in "${BACKGROUND[@]}"; do
        name="${job%%:*}"
        pid="${job##*:}"
        if ! wait "$pid"; then
            echo "setting up $name failed; the end of /tmp/weft-test-$name.log:" >&2
            tail -n 40 "/tmp/weft-test-$name.log" >&2
            exit 1
        fi
        log "$name ready"
    done
}

setup_packages
setup_rust
setup_postgres
setup_docker
in_background images
in_background python
in_background browser
export WEFT_TEST_MOTO_SERVER="$VENV/bin/moto_server"
export WEFT_TEST_DVC="$VENV/bin/dvc"
export WEFT_TEST_PYTHON="$VENV/bin/python"

# Clippy lints the workspace's crates while they are built for the tests, as `cargo clippy` does
# (clippy-driver as the workspace's rustc wrapper; CLIPPY_ARGS carries `cargo clippy -- ARGS`), so
# the dependencies are compiled once instead of once checked and once built: minutes on 2 cores.
# A config flag, not RUSTC_WORKSPACE_WRAPPER in the environment, so the cargo the tests run for
# their fixtures does not inherit it.
lint_and_build=(--config "build.rustc-workspace-wrapper=\"$(rustup which clippy-driver)\"")
export CLIPPY_ARGS=-Dwarnings

log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy (every target, built for the tests)"
cargo test "${lint_and_build[@]}" --workspace --all-targets --locked --no-run
wait_background
# Two tests at once: six took as long on 2 cores (the suite is CPU-bound) and a Jupyter server
# then missed its 90 s start. RUST_TEST_THREADS overrides it.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"
log "cargo test"
# The output is kept so that, when a test fails, why is printed again at the very end, where a
# log cut to its start and end still shows it.
output=/tmp/weft-test-output.log
if ! cargo test "${lint_and_build[@]}" --workspace --locked "$@" 2>&1 | tee "$output"; then
    echo "why each failing test failed:" >&2
    grep -A 4 -e '^---- .* stdout ----$' "$output" | grep -v -e '^stack backtrace:' -e '^$' >&2
    exit 1
fi
log "all tests passed"
