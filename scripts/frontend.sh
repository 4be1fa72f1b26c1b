# Sourced by scripts/venv.sh: install (once) the Latent explorer's in-browser decoder runtime
# (TensorFlow.js core + CPU backend, pinned in app_pages/components/latent_decoder/package-lock.json)
# and copy its two prebuilt bundles into the component's vendor/ folder. The npm install is
# cached like the venv, keyed by the lock file's hash. Never fatal: without npm or the registry
# the page keeps its plain server-side sliders.
ae_frontend() {
  local comp="$AE_ROOT/app_pages/components/latent_decoder"
  local lock_hash cache vendor="$comp/vendor"
  command -v npm >/dev/null 2>&1 || { echo "npm not found: the Latent explorer uses its server-side sliders." >&2; return 0; }
  lock_hash=$(sha256sum "$comp/package-lock.json" | cut -c1-16)
  [ -f "$vendor/.complete-$lock_hash" ] && return 0
  cache="${AE_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ae-digits/npm}/$lock_hash"
  if [ ! -f "$cache/.complete" ]; then
    # After a failure (offline, no registry) wait an hour before trying again, so every script
    # that sources venv.sh does not pay for it.
    if [ -n "$(find "$cache.failed" -mmin -60 2>/dev/null)" ]; then return 0; fi
    echo "Installing the in-browser decoder runtime into $cache (npm ci, once)..." >&2
    rm -rf "$cache" && mkdir -p "$cache" && cp "$comp/package.json" "$comp/package-lock.json" "$cache/" &&
      (cd "$cache" && timeout 120 npm ci --no-audit --no-fund --loglevel=error >&2) && touch "$cache/.complete" ||
      { touch "$cache.failed"; echo "npm ci failed: the Latent explorer uses its server-side sliders (retried after an hour, or delete $cache.failed)." >&2; return 0; }
    rm -f "$cache.failed"
  fi
  rm -rf "$vendor" && mkdir -p "$vendor" &&
    cp "$cache/node_modules/@tensorflow/tfjs-core/dist/tf-core.min.js" \
       "$cache/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js" "$vendor/" &&
    touch "$vendor/.complete-$lock_hash" || rm -rf "$vendor"
  return 0
}
ae_frontend || true
