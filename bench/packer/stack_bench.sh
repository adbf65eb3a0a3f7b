#!/usr/bin/env bash
# Trace replay through the full local stack: moss up (KeyService + FnPacker, simulated TEE), an
# owner publishing N encrypted copies of the digits model with grants, a user with request keys,
# then packer_stack_bench (MOSS vs original vs original+queue vs one function per model), then
# moss down.
# Usage: bench/packer/stack_bench.sh BIN_DIR [--models N] [--duration S] [--rate R] [--rounds N]
#                                    [--policies moss,original,...] [--log FILE]
set -euo pipefail
BIN=$(cd "${1:?usage: stack_bench.sh BIN_DIR [bench options]}" && pwd)
shift
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MODELS=20
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == --models ]] && MODELS=${args[i + 1]}; done
WORK=$(mktemp -d)
STACK=$WORK/stack
MOSS=$BIN/moss
cleanup() { "$MOSS" down --state-dir "$STACK" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

"$MOSS" up --state-dir "$STACK" --port-keyservice 0 --port-packer 0 --bin-dir "$BIN" >/dev/null
WORKER_M=$(json_field "$STACK/stack.json" worker_measurement)
CLIENT_CONFIG=$(json_field "$STACK/stack.json" client_config)
mkdir -p "$WORK/owner" "$WORK/user"
OWNER=$("$MOSS" identity new --out "$WORK/owner" 2>/dev/null)
USER_ID=$("$MOSS" identity new --out "$WORK/user" 2>/dev/null)
cp "$CLIENT_CONFIG" "$WORK/owner/client.json"
cp "$CLIENT_CONFIG" "$WORK/user/client.json"
"$MOSS" user register --config "$WORK/owner/client.json" >/dev/null
"$MOSS" user register --config "$WORK/user/client.json" >/dev/null
mkdir -p "$STACK/models/$OWNER"
echo "setting up $MODELS encrypted models (encrypt, upload key, grant, request key)..."
for ((i = 0; i < MODELS; i++)); do
  id="$OWNER/digits-$i"
  "$MOSS" model encrypt --in "$SRC/examples/digits/digits.onnx" --out "$STACK/models/$OWNER/digits-$i.moss" \
    --model-id "$id" --key-out "$WORK/owner/digits-$i.key" >/dev/null
  "$MOSS" model upload-key --config "$WORK/owner/client.json" --key "$WORK/owner/digits-$i.key" >/dev/null
  "$MOSS" model grant --config "$WORK/owner/client.json" --model "$id" --user "$USER_ID" \
    --measurement "$WORKER_M" >/dev/null
  "$MOSS" request-key add --config "$WORK/user/client.json" --model "$id" --measurement "$WORKER_M" >/dev/null
done
INPUT=$(ls "$SRC"/examples/digits/inputs/*.npy | head -1)
"$BIN/packer_stack_bench" --stack "$STACK" --user-config "$WORK/user/client.json" --user "$USER_ID" \
  --owner "$OWNER" --input "$INPUT" "$@"
