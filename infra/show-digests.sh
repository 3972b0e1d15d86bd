#!/usr/bin/env bash
# The digest of every image of the release prod runs, as skopeo sees it in the dev, staging and
# prod registries (by the version tag the promotion wrote). The three columns must be equal.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . .dataops/secrets.env; set +a
active=.dataops/releases/active-prod.json
for image in $(python3 -c "import json,sys; print(' '.join(json.load(open('$active'))['images']))"); do
  tag=$(python3 -c "import json; print(json.load(open('$active'))['images']['$image']['content_hash'])")
  line="$image:"
  for spec in "5001:" "5002:dataops:$DATAOPS_REGISTRY_STAGING_PASSWORD" "5003:dataops:$DATAOPS_REGISTRY_PROD_PASSWORD"; do
    port=${spec%%:*}; creds=${spec#*:}
    args=(--tls-verify=false)
    [ -n "$creds" ] && args+=(--creds "$creds")
    digest=$(skopeo inspect "${args[@]}" --format '{{.Digest}}' "docker://127.0.0.1:$port/dataops/$image:$tag")
    line="$line 127.0.0.1:$port=$digest"
  done
  echo "$line"
done
