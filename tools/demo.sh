#!/usr/bin/env bash
# `make demo`: MOSS end to end on one machine, with a transcript of who holds which key, what the
# cloud sees, and how long each step takes.
#   tools/demo.sh [BIN_DIR]      (default build/bin)
# Flow: `moss up` (KeyService + FnPacker, simulated TEE); a model owner creates an identity,
# registers, encrypts the example digit classifier, publishes the ciphertext to the model store,
# uploads the model key and grants a user for the worker's measurement; the user creates an
# identity, registers, adds a request key, and classifies the committed test digits through
# FnPacker (a worker starts on demand); the decrypted predictions are checked against the true
# labels (exit 1 on any mismatch); `moss down`.
# If the services are not built (a partial tree), it runs the crypto-only part instead.
set -euo pipefail

BIN=$(cd "${1:-build/bin}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLE="$ROOT/examples/digits"
MOSS="$BIN/moss"
[[ -x "$MOSS" ]] || { echo "demo: $MOSS not found; run 'make build' first" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/moss-demo.XXXXXX")
STACK="$WORK/stack"

bold() { printf '\033[1m%s\033[0m\n' "$*"; }
step() { printf '\n'; bold "== $*"; }
note() { printf '   %s\n' "$*"; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
# A value from the flat JSON files moss writes (stack.json): "key": "value" on one line.
json_field() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" "$1" | head -1; }
# Index of the largest float32 in a little-endian .npy file (coreutils only).
npy_argmax() {
  local f=$1 major hl off
  major=$(od -A n -t u1 -j 6 -N 1 "$f" | tr -d ' ')
  if [[ $major == 1 ]]; then hl=$(od -A n -t u2 -j 8 -N 2 "$f" | tr -d ' '); off=$((10 + hl))
  else hl=$(od -A n -t u4 -j 8 -N 4 "$f" | tr -d ' '); off=$((12 + hl)); fi
  head -c "$off" "$f" | grep -q "'descr': '<f4'" || { echo "?"; return; }
  od -A n -t f4 -v -j "$off" "$f" | tr -s ' ' '\n' | sed '/^$/d' |
    awk 'NR == 1 || $1 > m { m = $1; i = NR - 1 } END { print i }'
}

on_exit() {
  local rc=$?
  if [[ $rc -ne 0 && -d "$STACK/logs" ]]; then
    echo; bold "demo: FAILED (exit $rc); last lines of the stack's logs:"
    for f in "$STACK"/logs/*.log; do echo "--- $f"; tail -n 15 "$f"; done
  fi
  [[ -d "$STACK" ]] && "$MOSS" down --state-dir "$STACK" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit $rc
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------
crypto_only_demo() {
  step "Crypto-only demo (the services are not built: $*)"
  local owner model="$WORK/model.onnx"
  owner=$("$MOSS" identity new --out "$WORK/owner" 2>/dev/null)
  note "owner principal id: $owner   (= first 16 bytes of SHA-256 of the public key)"
  cp "$EXAMPLE/digits.onnx" "$model"
  local t; t=$(now_ns)
  "$MOSS" model encrypt --in "$model" --out "$WORK/model.moss" --model-id "$owner/digits" \
    --key-out "$WORK/owner/model.key"
  note "encrypted in $(ms_since "$t") ms; the key stays in the owner's directory (0600)"
  cp "$WORK/model.moss" "$WORK/tampered.moss"
  printf '\x01' | dd of="$WORK/tampered.moss" bs=1 seek=100000 conv=notrunc status=none
  if "$MOSS" model decrypt --in "$WORK/tampered.moss" --key "$WORK/owner/model.key" \
       --model-id "$owner/digits" --out "$WORK/tampered.onnx" 2>/dev/null; then
    echo "demo: FAILED: a tampered model decrypted" >&2; exit 1
  fi
  note "a tampered copy is refused and nothing is written"
  "$MOSS" model decrypt --in "$WORK/model.moss" --key "$WORK/owner/model.key" \
    --model-id "$owner/digits" --out "$WORK/roundtrip.onnx"
  cmp -s "$model" "$WORK/roundtrip.onnx" && note "round trip: identical bytes"
  printf '\n'; bold "demo: OK (crypto only)"
  exit 0
}

missing=()
for b in moss-keyservice moss-packer moss-worker; do [[ -x "$BIN/$b" ]] || missing+=("$b"); done
commands=$("$MOSS" --help 2>/dev/null | awk '/^Subcommands:/ { on = 1; next } on { print $1 }')
for c in up infer user request-key; do
  grep -qx "$c" <<< "$commands" || missing+=("moss $c")
done
[[ ${#missing[@]} -eq 0 ]] || crypto_only_demo "missing: ${missing[*]}"

T_DEMO=$(now_ns)
# ---------------------------------------------------------------------------------------------
step "1. moss up: KeyService and FnPacker on loopback (simulated TEE: no hardware protection)"
t=$(now_ns)
"$MOSS" up --state-dir "$STACK" --port-keyservice 0 --port-packer 0 | sed 's/^/   /'
T_UP=$(ms_since "$t")
note "up in $T_UP ms (no worker yet: FnPacker starts one on the first request)"
KS_URL=$(json_field "$STACK/stack.json" keyservice_url)
INVOKE_URL=$(json_field "$STACK/stack.json" invoke_url)
WORKER_M=$(json_field "$STACK/stack.json" worker_measurement)
TOKEN=$(cat "$(json_field "$STACK/stack.json" token_file)")
CLIENT_CONFIG=$(json_field "$STACK/stack.json" client_config)

# ---------------------------------------------------------------------------------------------
step "2. The model owner: identity, registration (after checking the KeyService's attestation)"
mkdir -p "$WORK/owner"
OWNER=$("$MOSS" identity new --out "$WORK/owner" 2>/dev/null)
cp "$CLIENT_CONFIG" "$WORK/owner/client.json"
t=$(now_ns)
"$MOSS" user register --config "$WORK/owner/client.json" 2>&1 | sed 's/^/   /'
note "owner $OWNER registered at $KS_URL in $(ms_since "$t") ms"
note "owner holds: its private key (owner/identity.pem, 0600); the KeyService holds its public key"

# ---------------------------------------------------------------------------------------------
MODEL_ID="$OWNER/digits"
step "3. The owner encrypts the digit classifier and publishes the ciphertext to the model store"
t=$(now_ns)
"$MOSS" model encrypt --in "$EXAMPLE/digits.onnx" --out "$WORK/owner/digits.moss" \
  --model-id "$MODEL_ID" --key-out "$WORK/owner/digits.key"
mkdir -p "$STACK/models/$OWNER"
cp "$WORK/owner/digits.moss" "$STACK/models/$OWNER/digits.moss"
note "model $MODEL_ID: $(stat -c %s "$EXAMPLE/digits.onnx") bytes of ONNX -> $(stat -c %s "$WORK/owner/digits.moss") bytes encrypted in $(ms_since "$t") ms"
note "owner holds: the model key (owner/digits.key, 0600). The cloud stores only this:"
od -A x -t x1z -N 48 "$STACK/models/$OWNER/digits.moss" | sed 's/^/     /'
if grep -q pytorch "$STACK/models/$OWNER/digits.moss"; then
  echo "demo: FAILED: plaintext visible in the stored model" >&2; exit 1
fi
note "(the plaintext ONNX names its producer 'pytorch'; the stored file does not contain it)"

step "4. The owner uploads the model key to the KeyService (over attested TLS, signed request)"
t=$(now_ns)
"$MOSS" model upload-key --config "$WORK/owner/client.json" --key "$WORK/owner/digits.key" 2>&1 |
  sed 's/^/   /'
note "uploaded in $(ms_since "$t") ms; now the owner and the KeyService (sealed state) hold it"

# ---------------------------------------------------------------------------------------------
step "5. The user: identity and registration"
mkdir -p "$WORK/user"
USER_ID=$("$MOSS" identity new --out "$WORK/user" 2>/dev/null)
cp "$CLIENT_CONFIG" "$WORK/user/client.json"
t=$(now_ns)
"$MOSS" user register --config "$WORK/user/client.json" 2>&1 | sed 's/^/   /'
note "user $USER_ID registered in $(ms_since "$t") ms"

step "6. The owner grants the user access to the model, for the worker build with measurement"
note "$WORKER_M"
t=$(now_ns)
"$MOSS" model grant --config "$WORK/owner/client.json" --model "$MODEL_ID" --user "$USER_ID" \
  --measurement "$WORKER_M" 2>&1 | sed 's/^/   /'
note "granted in $(ms_since "$t") ms: only a worker with exactly this measurement gets the keys"

step "7. The user adds a request key for (model, worker measurement)"
t=$(now_ns)
"$MOSS" request-key add --config "$WORK/user/client.json" --model "$MODEL_ID" \
  --measurement "$WORKER_M" 2>&1 | sed 's/^/   /'
note "added in $(ms_since "$t") ms; user holds it in user/request-keys/ (0600), the KeyService too"
ls -l "$WORK/user/request-keys" | sed 1d | sed 's/^/     /'

# ---------------------------------------------------------------------------------------------
step "8. The user classifies the test digits through FnPacker (encrypted end to end)"
note "inputs are encrypted under the request key on the user's machine; FnPacker routes by model id"
printf '   %-12s %5s %9s %6s %14s %10s %12s\n' input label predicted run "round trip ms" "worker ms" "moss infer ms"
correct=0; total=0
mkdir -p "$WORK/user/out"
labels=$(awk '/"file"/ { gsub(/[",]/, "", $2); f = $2 } /"label"/ { gsub(/,/, "", $2); print f, $2 }' \
  "$EXAMPLE/labels.json")
while read -r file label; do
  name=$(basename "$file" .npy)
  out="$WORK/user/out/$name"
  save=()
  [[ $total -eq 0 ]] && save=(--save-request "$WORK/request.bin" --save-response "$WORK/response.bin")
  t=$(now_ns)
  "$MOSS" infer --config "$WORK/user/client.json" --model "$MODEL_ID" \
    --input "image=$EXAMPLE/$file" --output-dir "$out" --endpoint "$INVOKE_URL" \
    --token "$TOKEN" --verbose "${save[@]}" > "$out.log" 2>&1 || { cat "$out.log"; exit 1; }
  ms=$(ms_since "$t")
  pred=$(npy_argmax "$out/logits.npy")
  run=$(sed -n 's/^run: \([a-z]*\).*/\1/p' "$out.log" | head -1)
  rtt=$(sed -n 's/^run: .*round trip: \([0-9.]*\) ms.*/\1/p' "$out.log" | head -1)
  wms=$(sed -n 's/^  total  *\([0-9.]*\) ms$/\1/p' "$out.log" | head -1)
  mark="ok"; [[ $pred == "$label" ]] || mark="WRONG"
  [[ $pred == "$label" ]] && correct=$((correct + 1))
  total=$((total + 1))
  printf '   %-12s %5s %9s %6s %14s %10s %12s  %s\n' "$name.npy" "$label" "$pred" "${run:-?}" \
    "${rtt:-?}" "${wms:-?}" "$ms" "$mark"
done <<< "$labels"
note "round trip: user -> FnPacker -> worker -> back, as the client measured it; worker: the"
note "worker's own time; moss infer: the whole CLI process (start, read keys, encrypt, decrypt)."
note "The first request paid the worker's cold start (process start, attestation, key fetch,"
note "model fetch and decrypt, compile); the others were served warm by the same instance"
note "worker timing breakdown of the first request, from its (encrypted, then opened) response:"
for phase in key_fetch model_fetch decrypt compile inference encrypt total; do
  sed -n "s/^  $phase  *\([0-9.]*\) ms\$/\1/p" "$WORK/user/out/digit_0.log" |
    awk -v p="$phase" '{ printf "     %-12s %9.2f ms\n", p, $1 }'
done
echo
note "what FnPacker and the platform saw of that request: a binary envelope of $(stat -c %s "$WORK/request.bin")"
note "bytes (docs/formats.md), its first 128 in hex with the printable bytes on the right:"
od -A d -t x1z -N 128 "$WORK/request.bin" | sed 's/^/     /'
note "and of the response ($(stat -c %s "$WORK/response.bin") bytes):"
od -A d -t x1z -N 128 "$WORK/response.bin" | sed 's/^/     /'
note "(model id, user id, request id and nonce in the clear for routing; pixels and logits only"
note " as AES-256-GCM ciphertext under the user's request key)"

# ---------------------------------------------------------------------------------------------
step "9. Who held which key"
note "owner:      identity private key, model key (it created both)"
note "user:       identity private key, request key (it created both); plaintext inputs and outputs"
note "KeyService: public keys, model key, request key, grant (in its TEE, sealed at rest)"
note "worker:     model key and request key, fetched over mutually attested TLS, only inside its TEE"
note "FnPacker, model store, network (the cloud): model ids and ciphertext only"

step "10. moss down"
t=$(now_ns)
"$MOSS" down --state-dir "$STACK" | sed 's/^/   /'
note "down in $(ms_since "$t") ms (workers stopped with the packer)"

echo
if [[ $correct -ne $total || $total -eq 0 ]]; then
  bold "demo: FAILED: $correct of $total predictions correct"
  exit 1
fi
bold "demo: OK: $correct of $total digits classified correctly through encrypted inference ($(ms_since "$T_DEMO") ms in total)"
