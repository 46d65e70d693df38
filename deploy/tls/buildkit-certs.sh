#!/usr/bin/env bash
# Makes the certificates for mutual TLS between ispec and its BuildKit
# daemons: a CA, the daemons' server certificate (one for the pool, named
# *.SERVICE.NAMESPACE.svc, so it fits every buildkitd-N) and ispec's client
# certificate. Writes them to OUT (default ./buildkit-tls) and prints the
# kubectl commands that create the two Secrets the manifests mount:
#
#   buildkitd-tls        (namespace ispec-buildkit): ca.crt tls.crt tls.key
#   buildkit-client-tls  (namespace ispec):          ca.crt tls.crt tls.key
#
# Both hold the same CA: each side trusts only certificates it signed.
# Keep OUT (the CA's key above all) out of git; to rotate, run again and
# recreate the Secrets, then restart the pods (kubectl rollout restart).
#
# Usage: buildkit-certs.sh [OUT]
# Environment: BUILDKIT_NAMESPACE (ispec-buildkit), BUILDKIT_SERVICE
# (buildkitd), ISPEC_NAMESPACE (ispec), CLUSTER_DOMAIN (cluster.local),
# DAYS (365).
set -euo pipefail

out=${1:-buildkit-tls}
ns=${BUILDKIT_NAMESPACE:-ispec-buildkit}
svc=${BUILDKIT_SERVICE:-buildkitd}
ispec_ns=${ISPEC_NAMESPACE:-ispec}
domain=${CLUSTER_DOMAIN:-cluster.local}
days=${DAYS:-365}

command -v openssl >/dev/null || { echo "buildkit-certs.sh: openssl is needed" >&2; exit 1; }
mkdir -p "$out/ca" "$out/daemon" "$out/client"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key "$out/ca/ca.key"
openssl req -x509 -new -key "$out/ca/ca.key" -sha256 -days "$days" \
  -subj "/CN=ispec buildkit CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$out/ca/ca.crt" 2>/dev/null

# sign NAME SUBJECT EXTENSIONS: a key and a certificate of the CA in $out/NAME.
sign() {
  local dir=$out/$1
  key "$dir/tls.key"
  openssl req -new -key "$dir/tls.key" -subj "$2" -out "$dir/tls.csr" 2>/dev/null
  printf '%s\n' "$3" >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca/ca.crt" -CAkey "$out/ca/ca.key" -CAcreateserial \
    -sha256 -days "$days" -extfile "$dir/ext.cnf" -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr" "$dir/ext.cnf"
  cp "$out/ca/ca.crt" "$dir/ca.crt"
}

sign daemon "/CN=$svc.$ns.svc" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:*.$svc.$ns.svc,DNS:*.$svc.$ns.svc.$domain,DNS:*.$svc.$ns,DNS:*.$svc"
sign client "/CN=ispec" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f "$out/ca/ca.srl"

cat <<MSG
Certificates are in $out. Create the Secrets (ca/ca.key stays with you):

  kubectl create secret generic buildkitd-tls -n $ns \\
    --from-file=$out/daemon/ca.crt --from-file=$out/daemon/tls.crt --from-file=$out/daemon/tls.key
  kubectl create secret generic buildkit-client-tls -n $ispec_ns \\
    --from-file=$out/client/ca.crt --from-file=$out/client/tls.crt --from-file=$out/client/tls.key
MSG
