#!/bin/bash
# Revocation reasons end to end (RFC 5280 5.3.1, RFC 9483 4.2) with the
# stock openssl cmp client and the CLI: certificateHold is released by
# removeFromCRL (valid again, gone from the next CRL, which `openssl verify
# -crl_check` then accepts), removeFromCRL for a certificate not on hold and
# a second hold are refused in the rp, a hold may become a revocation for
# good, a kur signed with a certificate on hold gets a kup with certRevoked,
# and no CRL ever carries the reason removeFromCRL.
. "$(dirname "$0")/lib.sh"

e2e_pki 300s 6
srv_start main || { echo "Bail out! server did not start"; exit 1; }

# rr SN REASON OUT: openssl cmp rr of op-SN.pem signed by itself with
# -revreason REASON; the response is saved as OUT (also when refused).
rr() {
    ocmp -cmd rr -oldcert "op-$1.pem" -cert "op-$1.pem" -key "k-$1.key" \
        -extracerts opchain.pem -trusted oproot.pem -revreason "$2" -rspout "$3" \
        >"$T/o.out" 2>&1
}
# enroll SN: ir + certConf, op-SN.pem and k-SN.key
enroll() {
    newkey "k-$1.key"
    ocmp -cmd ir $(dev_args "$1") -trusted oproot.pem -newkey "k-$1.key" \
        -subject "/CN=$1" -certout "op-$1.pem" >"$T/o.out" 2>&1
}
# crl NAME: the CRL the server made last, as NAME.pem and NAME.txt
NCRL=0
crl() {
    cli crl --ca issuing --last -o "$T/$1.pem" >/dev/null 2>&1
    openssl crl -in "$T/$1.pem" -noout -text >"$T/$1.txt" 2>&1
    NCRL=$((NCRL + 1))
}
# verify_crl SN CRL: openssl verify -crl_check of op-SN.pem with CRL.pem
verify_crl() {
    (cd "$T" && openssl verify -crl_check -CAfile oproot.pem -untrusted issuing.pem \
        -CRLfile "$2.pem" "op-$1.pem")
}
# in_crl SN CRL: is op-SN.pem's serial listed in CRL.txt?
in_crl() {
    grep -q "Serial Number: $(serial_of "op-$1.pem" | tr 'a-f' 'A-F')" "$T/$2.txt" \
        && echo listed || echo absent
}
# reason_in_crl SN CRL: the reason line after op-SN.pem's entry, or none
reason_in_crl() {
    python3 - "$T/$2.txt" "$(serial_of "op-$1.pem" | tr 'a-f' 'A-F')" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
for i, l in enumerate(lines):
    if l.strip() == "Serial Number: " + sys.argv[2]:
        for j in range(i + 1, min(i + 6, len(lines) - 1)):
            if "Serial Number:" in lines[j]:
                break
            if "CRL Reason Code" in lines[j]:
                print(lines[j + 1].strip()); sys.exit(0)
        print("none"); sys.exit(0)
print("absent")
EOF
}
rsp() { inspect "$1" | head -1 | sed 's/ protected=ok.*//'; }

# ---- certificateHold, then removeFromCRL (openssl cmp) ------------------------------
check "enroll SN-000001" enroll SN-000001
S1=$(serial_of op-SN-000001.pem)
check "rr -revreason 6 (certificateHold)" rr SN-000001 6 rr1.rsp
is "hold: certificate revoked in the store" "$(cert_status "$S1")" revoked
is "hold: device revoked" "$(dev_state SN-000001)" revoked
crl crl1
is "hold: the CRL lists it" "$(in_crl SN-000001 crl1)" listed
is "hold: with reason certificateHold" "$(reason_in_crl SN-000001 crl1)" "Certificate Hold"
if verify_crl SN-000001 crl1 >"$T/v.out" 2>&1; then
    nok "openssl verify -crl_check refuses the certificate on hold"; diag "$T/v.out"
else ok "openssl verify -crl_check refuses the certificate on hold"; fi

rr SN-000001 6 rr1b.rsp
is "a second hold: rp rejection certRevoked" "$(rsp rr1b.rsp)" \
    "body=rp status=2 failInfo=certRevoked"
is "a second hold: still on hold" "$(cert_status "$S1")" revoked

a0=$(audit_count)
check "rr -revreason 8 (removeFromCRL) signed by the certificate on hold" rr SN-000001 8 rr1c.rsp
is "release: accepted in the rp" "$(rsp rr1c.rsp)" "body=rp status=0 failInfo=-"
is "release: certificate valid again" "$(cert_status "$S1")" valid
is "release: device enrolled again" "$(dev_state SN-000001)" enrolled
is "release: one audit row" "$(audit_count)" $((a0 + 1))
last=$(cli audit list --limit 1 --json | python3 -c '
import json,sys; r=json.load(sys.stdin)[-1]; print(r["action"], r["object"])')
is "release: audit row cert.unhold names the serial" "$last" \
    "cert.unhold $(echo "$S1" | tr 'a-f' 'A-F')"
crl crl2
is "release: gone from the next CRL" "$(in_crl SN-000001 crl2)" absent
check "release: openssl verify -crl_check accepts it with the next CRL" verify_crl SN-000001 crl2
check "release: the certificate still signs (a genm)" ocmp -cmd genm -infotype caCerts \
    -cert op-SN-000001.pem -key k-SN-000001.key -extracerts opchain.pem -trusted oproot.pem

rr SN-000001 8 rr1d.rsp
is "removeFromCRL for a valid certificate: rp rejection badRequest" "$(rsp rr1d.rsp)" \
    "body=rp status=2 failInfo=badRequest"
is "removeFromCRL for a valid certificate: still valid" "$(cert_status "$S1")" valid
crl crl3
is "removeFromCRL for a valid certificate: not in the CRL" "$(in_crl SN-000001 crl3)" absent

# ---- a hold that becomes a revocation ----------------------------------------------
check "hold again" rr SN-000001 6 rr1e.rsp
check "revoked for good with keyCompromise while on hold" rr SN-000001 1 rr1f.rsp
is "for good: revoked" "$(cert_status "$S1")" revoked
crl crl4
is "for good: the CRL says keyCompromise" "$(reason_in_crl SN-000001 crl4)" "Key Compromise"
rr SN-000001 8 rr1g.rsp
is "removeFromCRL after a revocation for good: rp rejection certRevoked" "$(rsp rr1g.rsp)" \
    "body=rp status=2 failInfo=certRevoked"
is "removeFromCRL after a revocation for good: still revoked" "$(cert_status "$S1")" revoked

# ---- one certificate's audit rows, followed by its serial ----------------------------
# every row names the certificate by ca_serial_hex (upper case); the
# issuance and the confirmation name the device in their details
cli audit list --limit 0 --json >"$T/audit.json"
trail=$(python3 - "$T/audit.json" "$S1" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
s = sys.argv[2].upper()
mine = [r for r in rows if (r.get("object") or "").upper() == s]
if any(r["object"] != s for r in mine):
    print("serial not upper case: " + " ".join(r["object"] for r in mine)); sys.exit(0)
out = []
for r in mine:
    d = r.get("details")
    d = json.loads(d) if isinstance(d, str) else (d or {})
    if r["action"] in ("cert.issue", "cert.confirm"):
        out.append("%s:%s" % (r["action"], d.get("device")))
    else:
        out.append("%s:%s" % (r["action"], d.get("reason")))
print(" ".join(out))
EOF
)
is "SN-000001's rows by serial: issue, confirm, hold, release, hold, keyCompromise" "$trail" \
    "cert.issue:SN-000001 cert.confirm:SN-000001 cert.revoke:6 cert.unhold:8 cert.revoke:6 cert.revoke:1"

# ---- kur signed with a certificate on hold ------------------------------------------
check "enroll SN-000002" enroll SN-000002
check "hold SN-000002" rr SN-000002 6 rr2.rsp
newkey k2b.key
c0=$(cert_count)
ocmp -cmd kur -cert op-SN-000002.pem -key k-SN-000002.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k2b.key -certout x.pem -rspout kur2.rsp >"$T/o.out" 2>&1
is "kur signed with a certificate on hold: kup rejection certRevoked" "$(rsp kur2.rsp)" \
    "body=kup status=2 failInfo=certRevoked"
is "kur signed with a certificate on hold: nothing issued" "$(cert_count)" "$c0"

# ---- the same through the CLI ---------------------------------------------------------
check "enroll SN-000003" enroll SN-000003
S3=$(serial_of op-SN-000003.pem)
clirc() { cli "$@" >"$T/c.out" 2>&1; echo $?; }
is "cert revoke --reason certificateHold" "$(clirc cert revoke --ca issuing --serial "$S3" \
    --reason certificateHold)" 0
is "cert revoke --reason certificateHold again: refused (exists)" \
    "$(clirc cert revoke --ca issuing --serial "$S3" --reason certificateHold)" 4
is "cert unhold" "$(clirc cert unhold --ca issuing --serial "$S3")" 0
is "cert unhold: valid again" "$(cert_status "$S3")" valid
crl crl5
is "cert unhold: gone from the new CRL" "$(in_crl SN-000003 crl5)" absent
check "cert unhold: openssl verify -crl_check accepts it" verify_crl SN-000003 crl5
is "cert unhold of a valid certificate: refused (exists)" \
    "$(clirc cert unhold --ca issuing --serial "$S3")" 4
is "cert revoke --reason removeFromCRL of a valid certificate: refused" \
    "$(clirc cert revoke --ca issuing --serial "$S3" --reason removeFromCRL)" 4
is "still valid" "$(cert_status "$S3")" valid
is "hold, then cert revoke --reason removeFromCRL releases it" \
    "$(clirc cert revoke --ca issuing --serial "$S3" --reason certificateHold; \
       clirc cert revoke --ca issuing --serial "$S3" --reason removeFromCRL)" "0
0"
is "released through cert revoke: valid" "$(cert_status "$S3")" valid
is "hold, then superseded: the hold becomes the revocation" \
    "$(clirc cert revoke --ca issuing --serial "$S3" --reason certificateHold; \
       clirc cert revoke --ca issuing --serial "$S3" --reason superseded)" "0
0"
crl crl6
is "superseded in the CRL" "$(reason_in_crl SN-000003 crl6)" "Superseded"

# ---- no CRL carries removeFromCRL ----------------------------------------------------------
bad=$(cat "$T"/crl*.txt | grep -c "Remove From CRL")
is "none of the $NCRL CRLs carries the reason removeFromCRL" "$bad" 0
check "audit trail intact" cli audit verify

# ---- refusal texts name the actual cause ------------------------------------------------
# textof OUT: the text of the (error) answer
textof() { inspect "$1" | head -1 | sed -n 's/.* text="\(.*\)"$/\1/p'; }
# a certificate that only names the issuing CA as its issuer
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/fake.key" \
    -subj "/O=Operator/CN=Issuing CA" -days 30 -out "$T/fakeca.pem" >/dev/null 2>&1
newkey kf.key
openssl req -new -key "$T/kf.key" -subj "/CN=SN-000004/O=Operator" -out "$T/kf.csr" 2>/dev/null
openssl x509 -req -in "$T/kf.csr" -CA "$T/fakeca.pem" -CAkey "$T/fake.key" -days 30 \
    -extfile <(printf 'subjectKeyIdentifier=hash\nkeyUsage=digitalSignature\n') \
    -out "$T/op-fake.pem" 2>/dev/null
newkey kfn.key
ocmp -cmd kur -cert op-fake.pem -key kf.key -extracerts opchain.pem -trusted oproot.pem \
    -newkey kfn.key -certout x.pem -rspout kurfake.rsp >"$T/o.out" 2>&1
is "kur signed by a certificate naming the CA but not signed by it: text" \
    "$(rsp kurfake.rsp) $(textof kurfake.rsp)" \
    "body=error status=2 failInfo=signerNotTrusted protecting certificate not trusted: the signer certificate names CA issuing as its issuer but is not signed by it"
# a certificate the CA issued whose row is gone from the store
check "enroll SN-000004" enroll SN-000004
sqlite3 "$T/cmpca.db" "PRAGMA foreign_keys=OFF; DELETE FROM cert WHERE sha256 = X'$(openssl x509 \
    -in "$T/op-SN-000004.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)';"
is "its row deleted" "$(cert_status "$(serial_of op-SN-000004.pem)")" none
newkey k4n.key
ocmp -cmd kur -cert op-SN-000004.pem -key k-SN-000004.key -extracerts opchain.pem \
    -trusted oproot.pem -newkey k4n.key -certout x.pem -rspout kurgone.rsp >"$T/o.out" 2>&1
is "kur signed by a certificate of the CA not in the store: text" \
    "$(rsp kurgone.rsp) $(textof kurgone.rsp)" \
    "body=error status=2 failInfo=signerNotTrusted protecting certificate not trusted: the signer certificate was issued by CA issuing but is not in this store"
e2e_done
