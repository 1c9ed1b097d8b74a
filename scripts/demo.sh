#!/usr/bin/env bash
# make demo: apply examples/homelab to a throwaway OpenBao on loopback (or to
# the Vault in $VAULT_ADDR), show that a second plan has no changes, and issue
# one certificate through the new intermediate.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/certplane
EXAMPLE=examples/homelab
bao_pid=""
workdir=""
# The cluster half (the expanded VaultIssuer, the Certificate) is rendered to
# files for Flux/Argo: no cluster is needed for the demo.
rendered=$(mktemp -d)
cleanup() {
  [ -n "$bao_pid" ] && kill "$bao_pid" 2>/dev/null
  rm -rf "$rendered" ${workdir:+"$workdir"}
  return 0
}
trap cleanup EXIT

if [ -z "${VAULT_ADDR:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export VAULT_ADDR="http://127.0.0.1:${port}" VAULT_TOKEN="demo-root-token"
  workdir=$(mktemp -d)
  bao server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:${port}" \
    >"$workdir/openbao.log" 2>&1 &
  bao_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "$VAULT_ADDR/v1/sys/health" >/dev/null 2>&1 && break
    python3 - "$VAULT_ADDR" <<'PY' 2>/dev/null && break
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/v1/sys/health", timeout=1)
PY
    sleep 0.2
  done
  echo "== throwaway OpenBao at $VAULT_ADDR"
else
  echo "== using the Vault at $VAULT_ADDR"
fi

step() { printf '\n== %s\n' "$*"; }

step "certplane validate $EXAMPLE"
"$BIN" validate "$EXAMPLE"

step "certplane plan $EXAMPLE   (exit 2: changes)"
set +e; "$BIN" plan --no-color --render "$rendered" "$EXAMPLE"; code=$?; set -e
[ "$code" -eq 2 ] || { echo "expected exit 2 from the first plan, got $code"; exit 1; }

step "certplane apply --auto-approve --render $rendered $EXAMPLE"
"$BIN" apply --no-color --auto-approve --render "$rendered" "$EXAMPLE"

step "the rendered cluster half (for Flux/Argo)"
(cd "$rendered" && find . -name '*.yaml' | sort)
cat "$rendered"/_cluster/clusterissuer.cert-manager.io-homelab.yaml

step "certplane plan $EXAMPLE   (again: expect no changes, exit 0)"
"$BIN" plan --no-color --render "$rendered" "$EXAMPLE"

step "issue a certificate through pki_int/issue/homelab-dot-local"
bao write -format=json pki_int/issue/homelab-dot-local common_name=demo.homelab.local ttl=1h key_type=ec key_bits=256 |
  python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]
print("serial:     ", d["serial_number"])
print("expiration: ", d["expiration"])
print("chain:      ", len(d.get("ca_chain") or []), "CA certificates")
print(d["certificate"])'
