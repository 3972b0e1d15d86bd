#!/usr/bin/env bash
# The digest of every image of the release prod runs, as skopeo sees it in the dev, staging and
# prod registries (by the version tag the promotion wrote). The three columns must be equal.
# The nine lookups run side by side; the lines come out in order.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . .dataops/secrets.env; set +a
active=.dataops/releases/active-prod.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
images=$(python3 -c "import json; print(' '.join(json.load(open('$active'))['images']))")
for image in $images; do
  tag=$(python3 -c "import json; print(json.load(open('$active'))['images']['$image']['content_hash'])")
  for spec in "5001:" "5002:dataops:$DATAOPS_REGISTRY_STAGING_PASSWORD" "5003:dataops:$DATAOPS_REGISTRY_PROD_PASSWORD"; do
    port=${spec%%:*}; creds=${spec#*:}
    args=(--tls-verify=false)
    [ -n "$creds" ] && args+=(--creds "$creds")
    skopeo inspect "${args[@]}" --format '{{.Digest}}' \
      "docker://127.0.0.1:$port/dataops/$image:$tag" > "$work/$image.$port" &
  done
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=1; done
[ "$failed" = 0 ] || { echo "show-digests: a registry lookup failed (above)" >&2; exit 1; }
for image in $images; do
  line="$image:"
  for port in 5001 5002 5003; do line="$line 127.0.0.1:$port=$(cat "$work/$image.$port")"; done
  echo "$line"
done
