#!/bin/bash
# Message-layer conformance through `cmpca serve` (issue 12): header rules of
# RFC 9483 3.1 (senderKID, generalInfo), POP and protection algorithms of
# RFC 9481, strict DER. Requests the openssl CLI cannot make come from
# cmpcraft; every refusal must be a signed error with the right failInfo
# and HTTP status that changes nothing.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 12
srv_start main || { echo "Bail out! server did not start"; exit 1; }

newkey k1.key
check "baseline ir+certConf (SN-000001)" ocmp -cmd ir $(dev_args SN-000001) \
    -trusted oproot.pem -newkey k1.key -subject /CN=SN-000001 -certout op1.pem \
    -reqout ir1.der,cc1.der -rspout ip1.der,pc1.der

# craft OUT SN [cmpcraft options]: the baseline ir re-targeted to device SN,
# fresh transactionID and nonce, re-signed with SN's vendor key.
craft() {
    local out=$1 sn=$2; shift 2
    "$CRAFT" mutate --in "$T/ir1.der" --signer "$T/devs/$sn/cert.pem" \
        --chain "$T/devs/$sn/chain.pem" --key "$T/devs/$sn/key.pem" --new-tid \
        --out "$T/$out" "$@" || nok "cmpcraft $out"
}

# neg DESC FILE HTTP FAILINFO SN: the refusal, nothing issued, SN unchanged.
neg() {
    local d=$1 f=$2 want=$3 fi=$4 sn=$5 c0 s0 h
    c0=$(cert_count)
    s0=$(dev_state "$sn")
    h=$(post "$f" "$f.rsp")
    expect_error "$d" "$h" "$want" "$f.rsp" "$fi"
    is "$d: nothing issued" "$(cert_count)" "$c0"
    is "$d: $sn still $s0" "$(dev_state "$sn")" "$s0"
}

# negr DESC FILE BODY FAILINFO SN: a refusal of the request's content, in
# the response of its type with status rejection; nothing issued.
negr() {
    local d=$1 f=$2 body=$3 fi=$4 sn=$5 c0 s0 h
    c0=$(cert_count)
    s0=$(dev_state "$sn")
    h=$(post "$f" "$f.rsp")
    expect_rejection "$d" "$h" "$f.rsp" "$body" "$fi"
    is "$d: nothing issued" "$(cert_count)" "$c0"
    is "$d: $sn still $s0" "$(dev_state "$sn")" "$s0"
}

# accepted DESC FILE: the request is answered 200 with a signed ip.
accepted() {
    local h
    h=$(post "$2" "$2.rsp")
    is "$1: HTTP 200, ip" "$h/$(field "$2.rsp" body)" 200/ip
    is "$1: response protected" "$(field "$2.rsp" protected)" ok
}

craft ctl.der SN-000002
accepted "control: crafted ir (SN-000002)" ctl.der

# ---- header (RFC 9483 3.1) --------------------------------------------------------
craft nokid.der SN-000003 --drop-kid
neg "signature-protected ir without senderKID" nokid.der 200 badMessageCheck SN-000003
craft rn.der SN-000003 --recip-nonce-random
neg "recipNonce in the first message of a transaction" rn.der 200 badRecipientNonce SN-000003
craft up.der SN-000003 --unprotect --drop-sender-nonce
neg "no protection (and no senderNonce): protection is checked first" up.der 200 badMessageCheck SN-000003
craft icint.der SN-000003 --implicit-confirm int
neg "implicitConfirm with an INTEGER value" icint.der 200 badRequest SN-000003
craft icnov.der SN-000003 --implicit-confirm novalue
neg "implicitConfirm without a value" icnov.der 200 badRequest SN-000003
craft cwt.der SN-000003 --confirm-wait-time 300
neg "confirmWaitTime in an ir" cwt.der 200 badRequest SN-000003
craft both.der SN-000003 --implicit-confirm null --confirm-wait-time 300
neg "implicitConfirm and confirmWaitTime together" both.der 200 badRequest SN-000003
craft icnull.der SN-000004 --implicit-confirm null
accepted "implicitConfirm NULL (SN-000004)" icnull.der
is "implicitConfirm is not granted on the 3GPP alias" "$(field icnull.der.rsp implicitConfirm)" 0

# ---- algorithms (RFC 9481) ----------------------------------------------------------
craft popsha1.der SN-000005 --popo-md SHA1 --newkey "$T/k1.key"
negr "POP signed with ecdsa-with-SHA1" popsha1.der ip badAlg SN-000005
craft popsha384.der SN-000005 --popo-md SHA384 --newkey "$T/k1.key"
accepted "POP signed with ecdsa-with-SHA384 (SN-000005)" popsha384.der
craft sha224.der SN-000006 --md SHA224
accepted "protection ecdsa-with-SHA224 (SN-000006)" sha224.der
craft sha512.der SN-000007 --md SHA512
accepted "protection ecdsa-with-SHA512 (SN-000007)" sha512.der
craft sha1.der SN-000008 --md SHA1
neg "protection ecdsa-with-SHA1" sha1.der 200 badAlg SN-000008

# ---- strict DER -----------------------------------------------------------------------
# The first RDN of the header's sender Name re-encoded with a long-form
# length (BER, not DER); the enclosing lengths are rebuilt.
craft ber.der SN-000008
python3 - "$T/ber.der" <<'EOF'
import sys

def tlv(d, i):
    t, l = d[i], d[i + 1]
    h = 2
    if l & 0x80:
        n = l & 0x7f
        l = int.from_bytes(d[i + 2:i + 2 + n], 'big')
        h += n
    return t, h, l

def enc_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b

def children(d, i):
    t, h, l = tlv(d, i)
    j, out = i + h, []
    while j < i + h + l:
        _, ch, cl = tlv(d, j)
        out.append((j, ch + cl))
        j += ch + cl
    return out

def rebuild(d, i, path):
    """Bytes of the TLV at i with the element at |path| in long form."""
    t, h, l = tlv(d, i)
    if not path:
        return bytes([t, 0x81, l]) + d[i + h:i + h + l]
    parts = []
    for k, (j, n) in enumerate(children(d, i)):
        parts.append(rebuild(d, j, path[1:]) if k == path[0] else d[j:j + n])
    body = b''.join(parts)
    return bytes([t]) + enc_len(len(body)) + body

p = sys.argv[1]
d = open(p, 'rb').read()
# PKIMessage > header > sender [4] > Name > first RDN
open(p, 'wb').write(rebuild(d, 0, [0, 1, 0, 0]))
EOF
neg "BER (long-form length) inside the sender Name" ber.der 400 badDataFormat SN-000008

is "server still serves" "$(health)" 200
srv_stop main
e2e_done
