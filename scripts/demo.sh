#!/usr/bin/env bash
# make demo: apply examples/homelab to a throwaway OpenBao on loopback (or to
# the Vault in $VAULT_ADDR), show that a second plan has no changes, and sign
# one CSR through the new intermediate the way cert-manager does (a key made
# here, `<mount>/sign/<role>`), checking the chain.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CERTPLANE_BIN:-./target/release/certplane}  # the test suite passes its own build
EXAMPLE=examples/homelab
bao_pid=""
workdir=""
# The cluster half (the expanded VaultIssuer, the Certificate) is rendered to
# files for Flux/Argo: no cluster is needed for the demo.
rendered=$(mktemp -d)
scratch=$(mktemp -d)
cleanup() {
  [ -n "$bao_pid" ] && kill "$bao_pid" 2>/dev/null
  rm -rf "$rendered" "$scratch" ${workdir:+"$workdir"}
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

# apply shows the plan (the same `certplane plan` prints) and applies it.
step "certplane apply --auto-approve --render $rendered $EXAMPLE   (the plan, then the changes)"
"$BIN" apply --no-color --auto-approve --render "$rendered" "$EXAMPLE"

step "the rendered cluster half (for Flux/Argo)"
(cd "$rendered" && find . -name '*.yaml' | sort)
cat "$rendered"/_cluster/clusterissuer.cert-manager.io-homelab.yaml

step "certplane plan $EXAMPLE   (again: expect no changes, exit 0)"
"$BIN" plan --no-color --render "$rendered" "$EXAMPLE"

step "sign a CSR through pki_int/sign/homelab-dot-local, as cert-manager does"
# cert-manager keeps the private key in the cluster and sends Vault only a
# CSR: so does this. The key never leaves $scratch.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$scratch/demo.key" -subj "/CN=demo.homelab.local" \
  -addext "subjectAltName=DNS:demo.homelab.local" -out "$scratch/demo.csr" 2>/dev/null
bao write -format=json pki_int/sign/homelab-dot-local csr=@"$scratch/demo.csr" ttl=1h |
  python3 -c '
import datetime, json, sys
d = json.load(sys.stdin)["data"]
out = sys.argv[1]
open(out + "/demo.pem", "w").write(d["certificate"] + "\n")
chain = d.get("ca_chain") or [d["issuing_ca"]]
open(out + "/chain.pem", "w").write("\n".join(chain) + "\n")
expires = datetime.datetime.fromtimestamp(d["expiration"], datetime.timezone.utc)
print("serial:    ", d["serial_number"])
print("expires:   ", expires.strftime("%Y-%m-%d %H:%M:%S UTC"))
print("chain:     ", len(chain), "CA certificates")' "$scratch"
openssl x509 -in "$scratch/demo.pem" -noout -subject -issuer -dateopt iso_8601 -startdate -enddate 2>/dev/null ||
  openssl x509 -in "$scratch/demo.pem" -noout -subject -issuer -startdate -enddate
openssl x509 -in "$scratch/demo.pem" -noout -ext subjectAltName
# The chain ends at the root of the pki mount, the one trust anchor.
bao read -field=certificate pki/cert/ca >"$scratch/root.pem"
openssl verify -CAfile "$scratch/root.pem" -untrusted "$scratch/chain.pem" "$scratch/demo.pem"
