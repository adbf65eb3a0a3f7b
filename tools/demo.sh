#!/usr/bin/env bash
# `make demo`: the largest real MOSS flow that exists, with a transcript of who holds what.
#   tools/demo.sh [BIN_DIR]      (default build/bin)
# Today: an owner identity, a model encrypted under a fresh model key (streaming AEAD, chunked),
# a tampered copy refused, and a decrypt round trip that restores the exact bytes.
set -euo pipefail

BIN=${1:-build/bin}
MOSS="$BIN/moss"
[[ -x "$MOSS" ]] || { echo "demo: $MOSS not found; run 'make build' first" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/moss-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

step "1. The model owner creates an identity (Ed25519; the private key never leaves this machine)"
OWNER=$("$MOSS" identity new --out "$WORK/owner" 2>/dev/null)
echo "owner principal id: $OWNER   (= first 16 bytes of SHA-256 of the public key)"
ls -l "$WORK/owner" | sed 1d

step "2. A model to protect (8 MiB of weights standing in for a proprietary model)"
head -c $((8 << 20)) /dev/urandom > "$WORK/model.onnx"
MODEL_ID="$OWNER/demo-model"
echo "model id: $MODEL_ID"

step "3. The owner encrypts it under a fresh model key (what the cloud will store)"
t=$(date +%s%N)
"$MOSS" model encrypt --in "$WORK/model.onnx" --out "$WORK/model.moss" \
  --model-id "$MODEL_ID" --key-out "$WORK/owner/model.key"
echo "encrypted in $(ms_since "$t") ms: $(stat -c %s "$WORK/model.moss") bytes (plaintext $(stat -c %s "$WORK/model.onnx"))"
echo "the cloud sees: $(head -c 8 "$WORK/model.moss") header + ciphertext chunks; the key stays in $WORK/owner/model.key (0600)"

step "4. The cloud tampers with one byte: decryption refuses it and writes nothing"
cp "$WORK/model.moss" "$WORK/tampered.moss"
printf '\x01' | dd of="$WORK/tampered.moss" bs=1 seek=$((3 << 20)) conv=notrunc status=none
if "$MOSS" model decrypt --in "$WORK/tampered.moss" --key "$WORK/owner/model.key" \
     --model-id "$MODEL_ID" --out "$WORK/tampered.onnx"; then
  echo "demo: FAILED: a tampered model decrypted" >&2; exit 1
fi
[[ ! -e "$WORK/tampered.onnx" ]] && echo "refused, no output written"

step "5. The file presented under another model id is refused too"
if "$MOSS" model decrypt --in "$WORK/model.moss" --key "$WORK/owner/model.key" \
     --model-id "$OWNER/other-model" --out "$WORK/other.onnx"; then
  echo "demo: FAILED: a model decrypted under the wrong id" >&2; exit 1
fi

step "6. A holder of the key (later: the attested worker) decrypts it back"
t=$(date +%s%N)
"$MOSS" model decrypt --in "$WORK/model.moss" --key "$WORK/owner/model.key" \
  --model-id "$MODEL_ID" --out "$WORK/roundtrip.onnx"
echo "decrypted in $(ms_since "$t") ms"
cmp "$WORK/model.onnx" "$WORK/roundtrip.onnx" && echo "round trip: identical bytes"

printf '\n\033[1mdemo: OK\033[0m\n'
