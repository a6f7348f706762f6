# code-server (VS Code in the browser) from the npm registry, on Debian bookworm, run by the
# host's Node (code-server 4.100.3 is the newest that runs on Node 20). Native modules are built
# in the root folder, then the build tools are removed.
CODE_SERVER_VERSION="${WEFT_CODE_SERVER_VERSION:-4.100.3}"
debian_root
step "install build tools and runtime libraries"
apt_in_root ca-certificates tini git procps g++ make python3 pkg-config \
    libkrb5-dev libxkbfile-dev libsecret-1-dev ripgrep
step "copy the host's Node $(node --version)"
cp "$(command -v node)" "$WEFT_ROOT/usr/local/bin/node"
mkdir -p "$WEFT_ROOT/usr/local/lib/node_modules"
cp -a "$(npm root -g)/npm" "$WEFT_ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WEFT_ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WEFT_ROOT/usr/local/bin/npx"
# Native modules build against Node's headers, which node-gyp would fetch from nodejs.org.
node_headers="$(dirname "$(dirname "$(command -v node)")")/include/node"
[ -d "$node_headers" ] || { echo "Node's headers ($node_headers) are missing on this host" >&2; exit 1; }
mkdir -p "$WEFT_ROOT/usr/local/include"
cp -a "$node_headers" "$WEFT_ROOT/usr/local/include/node"
step "install code-server $CODE_SERVER_VERSION from npm"
# @vscode/ripgrep downloads its binary from GitHub, which is out of reach: give it Debian's.
ripgrep_cache="$WEFT_ROOT/tmp/vscode-ripgrep-cache-1.15.14"
for version in 1.15.9 1.15.10 1.15.11 1.15.12 1.15.13 1.15.14; do
    cache="$WEFT_ROOT/tmp/vscode-ripgrep-cache-$version"
    mkdir -p "$cache/rg-root"
    cp "$WEFT_ROOT/usr/bin/rg" "$cache/rg-root/rg"
    tar -C "$cache/rg-root" -czf "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" rg
done
unset ripgrep_cache
mkdir -p "$WEFT_ROOT/opt/code-server"
in_root env NODE_EXTRA_CA_CERTS=/etc/weft-build-ca.crt npm_config_yes=true TMPDIR=/tmp npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false npm_config_unsafe_perm=true \
    sh -c "cd /opt/code-server && npm install --omit=dev code-server@$CODE_SERVER_VERSION >/dev/null"
ln -sf ../node_modules/.bin/code-server "$WEFT_ROOT/opt/code-server/code-server"
mkdir -p "$WEFT_ROOT/opt/code-server/bin"
ln -sf ../node_modules/.bin/code-server "$WEFT_ROOT/opt/code-server/bin/code-server"
step "remove the build tools"
in_root apt-get purge -y -qq g++ make pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev >/dev/null
in_root apt-get autoremove -y -qq >/dev/null
in_root apt-get install -y -qq --no-install-recommends libkrb5-3 libxkbfile1 libsecret-1-0 libstdc++6 >/dev/null
rm -rf "$WEFT_ROOT"/tmp/vscode-ripgrep-cache-* "$WEFT_ROOT/root/.npm" "$WEFT_ROOT/usr/local/include/node"
workspace_user
# A student's workspace opens without friction: /workspace trusted, no welcome walkthrough,
# no telemetry, update or extension-update checks (the machine is often offline anyway).
settings="$WEFT_ROOT/home/weft/.local/share/code-server/User"
mkdir -p "$settings"
cat >"$settings/settings.json" <<'JSON'
{
  "security.workspace.trust.enabled": false,
  "security.workspace.trust.startupPrompt": "never",
  "workbench.startupEditor": "none",
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.tips.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "chat.commandCenter.enabled": false,
  "chat.disableAIFeatures": true
}
JSON
chown -R 1000:1000 "$WEFT_ROOT/home/weft/.local"
# Weft runs its own command with HASHED_PASSWORD; run by hand, code-server makes up a password.
pack '["/usr/bin/tini", "--"]' '["/opt/code-server/bin/code-server", "--bind-addr=0.0.0.0:8888", "--auth=password", "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "/workspace"]'
