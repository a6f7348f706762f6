# JupyterLab and Notebook 7 (with Jupyter Server and an ipykernel Python kernel), pinned, from
# PyPI, on Debian bookworm's Python 3.11. Weft starts `jupyter server` with default_url=/lab, so a
# session's link opens JupyterLab on /workspace; Notebook 7's interface is at /tree.
JUPYTERLAB_VERSION="${WEFT_JUPYTERLAB_VERSION:-4.6.6}"
NOTEBOOK_VERSION="${WEFT_NOTEBOOK_VERSION:-7.6.5}"
JUPYTER_SERVER_VERSION="${WEFT_JUPYTER_SERVER_VERSION:-2.21.1}"
IPYKERNEL_VERSION="${WEFT_IPYKERNEL_VERSION:-7.4.0}"
debian_root
step "install python3, venv and tini"
apt_in_root python3 python3-venv tini
step "install JupyterLab $JUPYTERLAB_VERSION, Notebook $NOTEBOOK_VERSION and ipykernel from PyPI"
in_root python3 -m venv /opt/venv
in_root env PIP_CERT=/etc/weft-build-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/venv/bin/pip install --no-cache-dir -q "jupyterlab==$JUPYTERLAB_VERSION" \
    "notebook==$NOTEBOOK_VERSION" "jupyter_server==$JUPYTER_SERVER_VERSION" "ipykernel==$IPYKERNEL_VERSION"
in_root /opt/venv/bin/python -m ipykernel install --prefix /opt/venv
# JupyterLab asks on first start whether to fetch news from jupyter.org: no (offline), no asking.
mkdir -p "$WEFT_ROOT/opt/venv/share/jupyter/lab/settings"
cat >"$WEFT_ROOT/opt/venv/share/jupyter/lab/settings/overrides.json" <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {
    "checkForUpdates": false,
    "fetchNews": "false"
  },
  "@jupyterlab/extensionmanager-extension:plugin": { "enabled": false }
}
JSON
workspace_user
pack '["/usr/bin/tini", "--"]' '["/opt/venv/bin/jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.root_dir=/workspace", "--ServerApp.default_url=/lab"]'
