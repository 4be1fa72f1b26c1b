# Sourced by the other scripts: make (once) and select the virtualenv for these requirements.
# It is keyed by the hash of the requirements files, so it is reused until they change.
set -euo pipefail
AE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req_hash=$(cat "$AE_ROOT/requirements.txt" "$AE_ROOT/requirements-dev.txt" | sha256sum | cut -c1-16)
VENV="${AE_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ae-digits/venvs}/$req_hash"
if [ ! -f "$VENV/.complete" ]; then
  echo "Creating the virtualenv $VENV (about a minute and a half, once)..." >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$AE_ROOT/requirements-dev.txt"
  touch "$VENV/.complete"
fi
export PATH="$VENV/bin:$PATH"
# Busy-waiting OpenMP threads collapse when two torch processes share the cores (see ae/__init__.py).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# The Latent explorer's in-browser decoder (optional: guarded, cached, never fatal).
source "$AE_ROOT/scripts/frontend.sh" || true
