#!/usr/bin/env bash
# Helm post-renderer: zero-to-jupyterhub's rendered manifests on stdin, the same manifests
# with two hub replicas on stdout (the patch hub-replicas.yaml; docs/ha.md).
#   Helm 3: helm upgrade ... --post-renderer charts/z2jh-ha/post-render.sh
#   Helm 4: helm plugin install charts/z2jh-ha; helm upgrade ... --post-renderer kubecache-z2jh-ha
# Needs kustomize or kubectl (its built-in kustomize) on the PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/z2jh.yaml"
cp "$here/kustomization.yaml" "$here/hub-replicas.yaml" "$work/"
if command -v kustomize >/dev/null; then
  build=(kustomize build)
elif command -v kubectl >/dev/null; then
  build=(kubectl kustomize)
else
  echo "post-render.sh: needs kustomize or kubectl on the PATH" >&2
  exit 1
fi
if ! "${build[@]}" "$work" 2>"$work/error"; then
  cat "$work/error" >&2
  echo "post-render.sh: the hub Deployment was not patched to two replicas. Its first" \
    "container must be \"hub\" with args \"kubecache hub-standby -- jupyterhub ...\"" \
    "(hub.args in charts/z2jh-ha/z2jh-values.yaml): two hubs without hub-standby would" \
    "both be active on one database." >&2
  exit 1
fi
