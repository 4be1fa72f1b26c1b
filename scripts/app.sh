#!/usr/bin/env bash
# Install everything (once) and start the app: `bash scripts/app.sh [streamlit args]`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$AE_ROOT"
exec streamlit run app.py "$@"
