#!/bin/bash
# End-to-end test of the response signer: a separate CMP signer certificate
# (cmpca ca signer, id-kp-cmcRA) protects the responses by default, the
# alias can choose the CA key instead (response_signer = ca), and the stock
# openssl cmp client accepts both. Prints TAP.
. "$(dirname "$0")/lib.sh"
trap e2e_cleanup EXIT

e2e_pki 300s 4
check "cmpca ca signer issues a CMP signing certificate" \
    cli ca signer --ca issuing --no-passphrase --key-out "$T/signer.key"
srv_start a || exit 1

newkey k1.key
check "ir answered by the CMP signer" ocmp -cmd ir $(dev_args SN-000001) -trusted oproot.pem \
    -newkey k1.key -subject /CN=SN-000001 -certout op1.pem -rspout ip1.der,pc1.der
is "ip sender is the CMP signer" "$(field ip1.der sender)" "CN=issuing CMP signer"
is "ip protection verifies" "$(field ip1.der protected)" ok
is "extraCerts: CMP signer first" "$(field ip1.der extraCert.0)" "CN=issuing CMP signer"
is "extraCerts: then the issuing CA" "$(field ip1.der extraCert.1)" "CN=Issuing CA,O=Operator"
is "extraCerts: then the root" "$(field ip1.der extraCert.2)" "CN=Operator Root,O=Operator (self-signed)"
srv_stop a

sed -i 's/^profile = device$/profile = device\nresponse_signer = ca/' "$T/cmpca.conf"
srv_start b || exit 1
newkey k2.key
check "ir answered with the CA key (response_signer = ca)" ocmp -cmd ir $(dev_args SN-000002) \
    -trusted oproot.pem -newkey k2.key -subject /CN=SN-000002 -certout op2.pem -rspout ip2.der,pc2.der
is "ip sender is the issuing CA" "$(field ip2.der sender)" "CN=Issuing CA,O=Operator"
is "ip protection verifies" "$(field ip2.der protected)" ok
is "extraCerts: the issuing CA first" "$(field ip2.der extraCert.0)" "CN=Issuing CA,O=Operator"
srv_stop b

sed -i 's/^response_signer = ca$/response_signer = nobody/' "$T/cmpca.conf"
if cli serve --port-file "$T/c.port" >"$T/c.log" 2>&1; then
    nok "a bad response_signer is refused"
else
    grep -q "response_signer must be" "$T/c.log" && ok "a bad response_signer is refused with file:line" \
        || { nok "a bad response_signer is refused with file:line"; diag "$T/c.log"; }
fi
e2e_done
