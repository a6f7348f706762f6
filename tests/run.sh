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

apt_install() {
    log "installing $* from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The wasm32-wasip2 target: rust-toolchain.toml lists it, but rustup does not always install it.
setup_rust() {
    rustup target add wasm32-wasip2 >/dev/null
}

# The real git client (the versioning tests clone and push with it; Weft serves through its
# http-backend).
setup_git() {
    if ! command -v git >/dev/null 2>&1 || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
        apt_install git
    fi
}

# A throwaway PostgreSQL cluster on a private port, trusted local access only.
PG_PORT="${WEFT_TEST_PG_PORT:-55432}"
PG_DIR="${WEFT_TEST_PG_DIR:-/tmp/weft-test-pg}"
setup_postgres() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
        apt_install postgresql
        bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    fi
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

# A Docker engine (Debian's docker.io), started if no daemon answers, and the test images built
# locally: there is no registry to pull from.
setup_docker() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        apt_install docker.io
    fi
    if ! dpkg -s busybox-static >/dev/null 2>&1; then
        apt_install busybox-static
    fi
    # The container firewall Weft installs, and the network namespaces the isolation tests
    # build (a fake metadata service behind a veth pair).
    if ! command -v iptables >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
        apt_install iptables iproute2
    fi
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
    as_root tests/images/build.sh
    export WEFT_TEST_DOCKER=1
}

# Python tools the tests use, from PyPI in one virtualenv: moto's S3-compatible server for the
# storage tests, nbformat (Jupyter's own validator) to check the notebooks Weft saves,
# websockets for the SwarmPilot task instance peer (tests/peers) reporting over a WebSocket,
# openapi-spec-validator to check the API's OpenAPI document, and the real mlflow client (and
# server, for the benchmark) against Weft's tracking server. mlflow 3.17.2 is pinned: 3.18.0
# needs an mlflow-tracing 3.18.0 that is not on PyPI.
MLFLOW_VERSION=3.17.2
# The real DVC client the data versions tests push to and pull from Weft with.
DVC_VERSION=3.67.1
setup_python() {
    local venv="${WEFT_TEST_VENV:-/tmp/weft-test-venv}"
    if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c 'import nbformat, websockets, openapi_spec_validator' 2>/dev/null; then
        log "installing moto's S3 server, nbformat, websockets and openapi-spec-validator from PyPI"
        [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
        "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]' nbformat 'websockets==15.0.1' \
            'openapi-spec-validator==0.7.2'
    fi
    if [ "$("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)' 2>/dev/null)" != "$MLFLOW_VERSION" ]; then
        log "installing mlflow $MLFLOW_VERSION from PyPI (a few minutes)"
        "$venv/bin/pip" install -q --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
    fi
    if [ "$("$venv/bin/dvc" --version 2>/dev/null)" != "$DVC_VERSION" ]; then
        log "installing dvc $DVC_VERSION from PyPI (under a minute; its http remote comes with it)"
        "$venv/bin/pip" install -q --disable-pip-version-check "dvc==$DVC_VERSION"
    fi
    export WEFT_TEST_DVC="$venv/bin/dvc"
    export WEFT_TEST_MOTO_SERVER="$venv/bin/moto_server"
    export WEFT_TEST_PYTHON="$venv/bin/python"
}

# Headless Chromium (Debian's), playwright-core and axe-core (npm, pinned by tests/browser's lock file)
# for the tests whose victim is a browser.
setup_browser() {
    if [ ! -x /usr/bin/chromium ]; then
        apt_install chromium
    fi
    if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
        log "installing playwright-core and axe-core (npm ci in tests/browser)"
        (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
    fi
}

# The workspace images (minutes: debootstrap, PyPI, npm), built in the background while the
# lints run; the tests wait for them.
WORKSPACE_IMAGES_LOG=/tmp/weft-test-workspace-images.log
start_workspace_images() {
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt_install debootstrap
    fi
    as_root tests/images/workspaces.sh jupyter code-server >"$WORKSPACE_IMAGES_LOG" 2>&1 &
    WORKSPACE_IMAGES_PID=$!
}
wait_workspace_images() {
    if ! wait "$WORKSPACE_IMAGES_PID"; then
        echo "building the workspace images failed; the end of $WORKSPACE_IMAGES_LOG:" >&2
        tail -n 40 "$WORKSPACE_IMAGES_LOG" >&2
        exit 1
    fi
    log "workspace images ready"
}

setup_rust
setup_git
setup_postgres
setup_docker
start_workspace_images
setup_python
setup_browser

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
wait_workspace_images
log "cargo test"
cargo test "${lint_and_build[@]}" --workspace --locked "$@"
log "all tests passed"
