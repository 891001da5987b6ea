#!/usr/bin/env bash
# Generates the CMP message vectors in tests/vectors/ with the real OpenSSL
# 3.0 CMP client and mock server (`openssl cmp`), for test_cmp_decode and the
# fuzz seed corpora. The .der files are committed; the unit tests never run this.
#
# Regenerate:   tests/vectors/gen.sh            (from the repo root or anywhere)
# It makes a throw-away PKI in a temp dir (root CA P-256, server certs P-256,
# and RSA-2048, client certs of the same kinds, new keys P-256/RSA/Ed25519), starts one mock
# server per client identity on a free loopback port (the 3.0 mock server
# must see one identity only), runs ir/cr/p10cr/kur/rr/genm, a polling ir, a
# rejected ir, an error reply and PBM (-secret) sessions with -reqout/-rspout,
# and copies the messages here as <proto>_<cmd>_<n>_<type>.der, plus
# pki/*.pem (the root and the certificates the tests need). Then it refreshes
# the v_*.der seeds in tests/fuzz/corpus/fuzz_{decode,protect}/ (the m_*
# seeds there, Ed25519/Ed448/RSA-PSS/PBMAC1/nested messages made with
# tests/lib/cmp_testpki, and the fz_* units the fuzzers found, are kept).
# tests/vectors/regress/ holds fuzz findings and hand-made hostile inputs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OPENSSL=${OPENSSL:-openssl}
T=$(mktemp -d)
SRV_PID=
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# --- throw-away PKI -------------------------------------------------------
genkey() { # name kind
    case $2 in
    ec) $OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" ;;
    rsa) $OPENSSL genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" ;;
    ed) $OPENSSL genpkey -algorithm ED25519 -out "$1.key" ;;
    esac 2>/dev/null
}
cat > ext.cnf <<'X'
[req]
distinguished_name=dn
[dn]
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier=hash
[ee]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X
issue() { # name subject issuer-name extsection
    local md=-sha256
    $OPENSSL req -new -config ext.cnf -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    $OPENSSL x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" \
        -set_serial "0x$($OPENSSL rand -hex 8)" -days 3650 $md \
        -extfile ext.cnf -extensions "$4" -out "$1.pem" 2>/dev/null
}
genkey root ec
$OPENSSL req -x509 -new -key root.key -subj "/CN=cmpca test root" -days 3650 \
    -sha256 -config ext.cnf -extensions ca -out root.pem 2>/dev/null
for k in ec rsa; do
    genkey "srv_$k" "$k";  issue "srv_$k" "/CN=cmpca test server $k" root ee
    genkey "cl_$k" "$k";   issue "cl_$k" "/CN=cmpca test device $k" root ee
done
for k in ec rsa ed; do
    genkey "new_$k" "$k";  issue "new_$k" "/CN=cmpca test new $k" root ee
done
genkey new_pbm ec; issue new_pbm "/CN=cmpca test new pbm" root ee
$OPENSSL req -new -config ext.cnf -key new_ec.key -subj "/CN=cmpca test new ec" -out p10.csr 2>/dev/null

# --- mock server ----------------------------------------------------------
PORT=
start_srv() { # extra mock-server options...
    PORT=$(free_port)
    $OPENSSL cmp -port "$PORT" "$@" -srv_trusted root.pem \
        -rsp_capubs root.pem -rsp_extracerts root.pem \
        > "srv_$PORT.log" 2>&1 &
    SRV_PID=$!
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "mock server did not start" >&2; cat "srv_$PORT.log" >&2; exit 1
}
stop_srv() {
    kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

BODY_NAMES=(ir ip cr cp p10cr popdecc popdecr kur kup krr krp rr rp ccr ccp
    ckuann cann rann crlann pkiConf nested genm genp error certConf pollReq
    pollRep)
# Renames raw message file $1 to ${2}<n>_<body type>.der.
name_by_body() {
    local tag
    tag=$($OPENSSL asn1parse -inform DER -in "$1" | awk '/:d=1 /{n++} /:d=1 / && n==2 {gsub(/.*cont \[ */,""); gsub(/ *\].*/,""); print; exit}')
    mv "$1" "${2}_${BODY_NAMES[$tag]}.der"
}

# client PREFIX CMD options... : one session; the messages are saved as
# PREFIX_CMD_req<n>_<type>.der and PREFIX_CMD_rsp<n>_<type>.der.
client() {
    local pfx=$1 cmd=$2 i reqs="" rsps=""; shift 2
    for i in 0 1 2 3 4 5; do
        reqs="$reqs${reqs:+,}raw_req$i.der"; rsps="$rsps${rsps:+,}raw_rsp$i.der"
    done
    rm -f raw_*.der
    if ! $OPENSSL cmp -server "127.0.0.1:$PORT" -path pkix/ -cmd "$cmd" \
        -reqout "$reqs" -rspout "$rsps" -batch "$@" > "cl_${pfx}_$cmd.log" 2>&1; then
        # negative outcomes are expected for the rejection cases
        [ "${EXPECT:-}" = fail ] || { cat "cl_${pfx}_$cmd.log" >&2; exit 1; }
    fi
    for i in 0 1 2 3 4 5; do
        [ -f "raw_req$i.der" ] && name_by_body "raw_req$i.der" "${pfx}_${cmd}_req$i"
        [ -f "raw_rsp$i.der" ] && name_by_body "raw_rsp$i.der" "${pfx}_${cmd}_rsp$i"
    done
    return 0
}

# OpenSSL 3.0 cannot protect CMP messages with Ed25519 (client: "unsupported
# key type"; mock server: "error protecting message"), so the ed session uses
# P-256 protection and an Ed25519 new key (Ed25519 POPO and issued cert).
SIGN_SES() { # kind (ec|rsa|ed)
    local k=$1 pfx="sig$1" pk=$1
    [ "$k" = ed ] && pk=ec
    start_srv -srv_cert "srv_$pk.pem" -srv_key "srv_$pk.key" -rsp_cert "new_$k.pem"
    local C=(-cert "cl_$pk.pem" -key "cl_$pk.key" -trusted root.pem)
    client "$pfx" ir "${C[@]}" -newkey "new_$k.key" \
        -subject "/CN=cmpca test new $k" -certout o.pem
    client "$pfx" cr "${C[@]}" -newkey "new_$k.key" \
        -subject "/CN=cmpca test new $k" -certout o.pem
    # the 3.0 mock server wants kur's oldCertID = -rsp_cert: renew that one
    [ "$k" != ed ] && client "$pfx" kur -cert "new_$k.pem" \
        -key "new_$k.key" -trusted root.pem -newkey "new_$k.key" -certout o.pem
    client "$pfx" rr "${C[@]}" -oldcert "new_$k.pem"
    client "$pfx" genm "${C[@]}"
    if [ "$k" = ec ]; then
        client "$pfx" p10cr "${C[@]}" -csr p10.csr \
            -newkey new_ec.key -certout o.pem
    fi
    stop_srv
}
for k in ec rsa ed; do SIGN_SES "$k"; done

# polling: the 3.0 mock server answers the ir with an ip of status waiting,
# the first pollReq with a pollRep, the second with the final ip.
start_srv -srv_cert srv_ec.pem -srv_key srv_ec.key -rsp_cert new_ec.pem \
    -poll_count 2 -check_after 0
client sigec_poll ir \
    -cert cl_ec.pem -key cl_ec.key -trusted root.pem -newkey new_ec.key \
    -subject "/CN=cmpca test new ec" -certout o.pem
stop_srv

# rejection: ip with status rejection and failInfo badCertTemplate (19)
start_srv -srv_cert srv_ec.pem -srv_key srv_ec.key -rsp_cert new_ec.pem \
    -pkistatus 2 -failure 19 -statusstring "test rejection"
EXPECT=fail client sigec_rej ir \
    -cert cl_ec.pem -key cl_ec.key -trusted root.pem -newkey new_ec.key \
    -subject "/CN=cmpca test new ec" -certout o.pem
stop_srv

# error body: the mock server replies with an error message
start_srv -srv_cert srv_ec.pem -srv_key srv_ec.key -rsp_cert new_ec.pem \
    -send_error -pkistatus 2 -failure 2
EXPECT=fail client sigec_err ir \
    -cert cl_ec.pem -key cl_ec.key -trusted root.pem -newkey new_ec.key \
    -subject "/CN=cmpca test new ec" -certout o.pem
stop_srv

# PasswordBasedMac both ways (client default: owf sha256, mac hmac-sha1)
start_srv -srv_secret pass:cmpca-test-secret -srv_ref cmpca-srv -rsp_cert new_pbm.pem
client pbm ir -secret pass:cmpca-test-secret \
    -ref cmpca-dev -recipient "/CN=cmpca test server ec" -newkey new_pbm.key \
    -subject "/CN=cmpca test new pbm" -certout o.pem
client pbm genm -secret pass:cmpca-test-secret \
    -ref cmpca-dev -recipient "/CN=cmpca test server ec"
stop_srv

# --- copy out ---------------------------------------------------------------
rm -f "$HERE"/*.der
mkdir -p "$HERE/pki"
cp ./*_req*_*.der ./*_rsp*_*.der "$HERE"/
cp root.pem "$HERE/pki/root.pem"
for k in ec rsa; do cp "srv_$k.pem" "cl_$k.pem" "$HERE/pki/"; done
for k in ec rsa ed; do cp "new_$k.pem" "$HERE/pki/"; done
cp new_pbm.pem "$HERE/pki/"
echo "secret: cmpca-test-secret" > "$HERE/pki/README"
for tgt in fuzz_decode fuzz_protect; do
    mkdir -p "$ROOT/tests/fuzz/corpus/$tgt"
    rm -f "$ROOT/tests/fuzz/corpus/$tgt"/v_*.der
    for f in "$HERE"/*.der; do cp "$f" "$ROOT/tests/fuzz/corpus/$tgt/v_$(basename "$f")"; done
done
ls -l "$HERE"/*.der | wc -l
du -sh "$HERE"
