#!/usr/bin/env bash
# Keep the base image between hosted CI runs (no registry can serve it offline): `load` puts the
# cached copy into Docker before the stages, `save` writes it back after them.
# Usage: ci/image-cache.sh load|save DIR
set -euo pipefail
action="${1:?usage: ci/image-cache.sh load|save DIR}"
dir="${2:?usage: ci/image-cache.sh load|save DIR}"
image="dataops/base:bookworm"
case "$action" in
  load) if [ -f "$dir/base.tar" ]; then docker load -i "$dir/base.tar"; fi ;;
  save) mkdir -p "$dir" && { docker save "$image" -o "$dir/base.tar" || true; } ;;
  *) echo "ci/image-cache.sh: unknown action $action (load or save)" >&2; exit 2 ;;
esac
