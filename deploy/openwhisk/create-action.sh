#!/usr/bin/env bash
# Creates (or updates) the MOSS worker action on OpenWhisk with the wsk CLI, with the limits of
# deploy/openwhisk/values-moss.yaml: concurrency 10, 8 GiB, 5 minutes. Untested template (no
# OpenWhisk where MOSS is built): docs/deploy.md.
#   deploy/openwhisk/create-action.sh IMAGE [ACTION]
#   e.g. deploy/openwhisk/create-action.sh registry.example.com/moss/moss-worker-sgx:0.1.0
# FnPacker's openwhisk backend creates its pool's actions itself through the REST API with the
# same limits; this script is for a manual trial (`wsk action invoke --blocking --result`).
set -euo pipefail
IMAGE=${1:?usage: create-action.sh IMAGE [ACTION]}
ACTION=${2:-moss-worker}
wsk action update "$ACTION" --docker "$IMAGE" \
  --concurrency 10 --memory 8192 --timeout 300000
wsk action get "$ACTION" --summary
