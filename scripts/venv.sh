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
# `ae` is installed editable (pyproject.toml), but the venv is shared by every checkout with these
# requirements: point it at this checkout when it points at another one (a check of ~50 ms).
# Checkouts used at the same time still each run their own code from their root, where Python
# looks in the current or the script's folder first; the `ae` command follows the last one here.
if ! "$VENV/bin/python" -I -c 'import importlib.util, os, sys
spec = importlib.util.find_spec("ae")
sys.exit(not (spec and spec.origin and os.path.samefile(spec.origin, sys.argv[1])))' "$AE_ROOT/ae/__init__.py" 2>/dev/null; then
  echo "Installing this checkout's ae into the virtualenv (pip install -e $AE_ROOT)..." >&2
  # Without build isolation: the venv's own setuptools builds it, so no download and a few seconds.
  (flock 9 && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -e "$AE_ROOT" >&2) 9>"$VENV/.editable.lock"
fi
export PATH="$VENV/bin:$PATH"
# Busy-waiting OpenMP threads collapse when two torch processes share the cores (see ae/__init__.py).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# The Latent explorer's in-browser decoder (optional: guarded, cached, never fatal).
source "$AE_ROOT/scripts/frontend.sh" || true
