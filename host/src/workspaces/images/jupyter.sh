# Jupyter Server with an ipykernel Python kernel, from PyPI, on Debian bookworm.
debian_root
step "install python3, venv and tini"
apt_in_root python3 python3-venv tini
step "install jupyter_server and ipykernel from PyPI"
in_root python3 -m venv /opt/venv
in_root env PIP_CERT=/etc/weft-build-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/venv/bin/pip install --no-cache-dir -q jupyter_server ipykernel
in_root /opt/venv/bin/python -m ipykernel install --prefix /opt/venv
workspace_user
pack '["/usr/bin/tini", "--"]' '["/opt/venv/bin/jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--no-browser"]'
