#!/bin/bash
# End-to-end test of the registry commands of the real cmpca binary:
# vendor, device (incl. all-or-nothing CSV import), ra and audit (incl.
# detecting a row tampered with through the sqlite3 CLI). Prints TAP.
set -u

BUILD=${BUILD:-build/release}
CMPCA="$PWD/$BUILD/cmpca"
case "$BUILD" in /*) CMPCA="$BUILD/cmpca" ;; esac
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CONF="$TMP/cmpca.conf"
printf '[store]\npath = cmpca.db\n' >"$CONF"
DB="$TMP/cmpca.db"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# check "description" expected_exit command...
check() {
    local desc=$1 want=$2 got
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$desc"
    else
        notok "$desc (exit $got, want $want)"
        sed 's/^/# /' "$TMP/out" "$TMP/err"
    fi
}
c() { "$CMPCA" -c "$CONF" "$@"; }
count() {
    c device list --vendor acme --json | python3 -c \
        'import json,sys; print(len(json.load(sys.stdin)))'
}

if [ ! -x "$CMPCA" ]; then
    echo "1..0 # SKIP $CMPCA not built"
    exit 0
fi
if ! command -v sqlite3 >/dev/null; then
    echo "1..0 # SKIP sqlite3 CLI missing (apt-get install sqlite3)"
    exit 0
fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=Acme/CN=Acme Factory CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE \
    -keyout "$TMP/vendor.key" -out "$TMP/vendor.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=Factory RA" -days 30 \
    -keyout "$TMP/ra.key" -out "$TMP/ra.pem" 2>/dev/null

# --- help and usage
for sub in vendor device ra audit; do
    check "$sub --help exits 0" 0 c "$sub" --help
done
check "device import --help exits 0" 0 c device import --help
check "unknown action is a usage error" 2 c vendor frobnicate
check "missing config file is a config error" 7 \
    "$CMPCA" -c "$TMP/nonexistent.conf" vendor list

# --- vendors
check "vendor add" 0 c vendor add --name acme --ca "$TMP/vendor.pem"
check "vendor add duplicate -> exists" 4 \
    c vendor add --name acme --ca "$TMP/vendor.pem"
check "vendor add with a non-certificate file fails" 1 \
    c vendor add --name bad --ca "$CONF"
if c vendor list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v[0]["name"] == "acme" and v[0]["certs"] == 1, v' 2>"$TMP/err"; then
    ok "vendor list --json parses"
else
    notok "vendor list --json parses"
fi
if c vendor show acme --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert "Acme Factory CA" in v["certs"][0]["subject"], v
assert v["certs"][0]["ca"] is True' 2>"$TMP/err"; then
    ok "vendor show --json has the certificate"
else
    notok "vendor show --json has the certificate"
fi

# --- device import
printf 'identifier,comment\r\n# a comment\r\nSN0001,first\r\n\r\nSN0002\r\n  SN0003 , third\r\n"SN,0004",quoted\r\nSN0005\r\n' \
    >"$TMP/good.csv"
check "device import of a good CSV" 0 c device import --vendor acme "$TMP/good.csv"
[ "$(count)" = 5 ] && ok "5 devices registered" || notok "5 devices registered (got $(count))"
if c device show --vendor acme 'SN,0004' --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "registered" and d["identifier"] == "SN,0004"'; then
    ok "quoted identifier kept its comma"
else
    notok "quoted identifier kept its comma"
fi

before=$(count)
printf 'SN1001\nSN1002\n"SN1003\nSN1004\n' >"$TMP/malformed.csv"
check "malformed CSV is refused" 1 c device import --vendor acme "$TMP/malformed.csv"
grep -q "malformed.csv:3:" "$TMP/err" && ok "error names file:line" \
    || { notok "error names file:line"; sed 's/^/# /' "$TMP/err"; }
[ "$(count)" = "$before" ] && ok "malformed CSV changed nothing" \
    || notok "malformed CSV changed nothing"

printf 'SN2001\nSN2002\nSN2001\n' >"$TMP/dup.csv"
check "duplicate inside CSV -> exists" 4 c device import --vendor acme "$TMP/dup.csv"
grep -q "dup.csv:3: duplicate identifier 'SN2001'" "$TMP/err" \
    && ok "duplicate reported with its line" \
    || { notok "duplicate reported with its line"; sed 's/^/# /' "$TMP/err"; }
[ "$(count)" = "$before" ] && ok "duplicate CSV changed nothing" \
    || notok "duplicate CSV changed nothing"

printf 'SN3001\nSN0002\n' >"$TMP/dupdb.csv"
check "identifier already in the db -> exists" 4 \
    c device import --vendor acme "$TMP/dupdb.csv"
grep -q "dupdb.csv:2: identifier 'SN0002' is already registered" "$TMP/err" \
    && ok "already-registered reported with its line" \
    || { notok "already-registered reported with its line"; sed 's/^/# /' "$TMP/err"; }
[ "$(count)" = "$before" ] && ok "db-duplicate CSV changed nothing" \
    || notok "db-duplicate CSV changed nothing"

check "device import into an unknown vendor -> not found" 3 \
    c device import --vendor nosuch "$TMP/good.csv"

# --- single devices
check "device add" 0 c device add --vendor acme SN9000
check "device add duplicate -> exists" 4 c device add --vendor acme SN9000
check "device add unknown vendor -> not found" 3 c device add --vendor nosuch X
check "device show unknown -> not found" 3 c device show --vendor acme NOPE
check "device disable" 0 c device disable --vendor acme SN9000
state=$(c device show --vendor acme SN9000 --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$state" = disabled ] && ok "state is disabled" || notok "state is disabled ($state)"
check "device list --state disabled" 0 c device list --state disabled
grep -q SN9000 "$TMP/out" && ok "disabled device listed" || notok "disabled device listed"
check "device enable" 0 c device enable --vendor acme SN9000
state=$(c device show --vendor acme SN9000 --json | python3 -c \
    'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$state" = registered ] && ok "state is registered again" \
    || notok "state is registered again ($state)"
check "device list bad state -> usage" 2 c device list --state sleepy

# --- RAs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=Lab RA" -days 30 -addext extendedKeyUsage=cmcRA \
    -keyout "$TMP/ra2.key" -out "$TMP/ra2.pem" 2>/dev/null
check "ra add" 0 c ra add --name ra1 --cert "$TMP/ra.pem" --alias lab --alias factory
check "ra add same cert -> exists" 4 c ra add --name ra2 --cert "$TMP/ra.pem" --alias x
check "ra add without --alias -> usage" 2 c ra add --name ra2 --cert "$TMP/ra2.pem"
check "ra add with a bad alias -> usage" 2 \
    c ra add --name ra2 --cert "$TMP/ra2.pem" --alias 'a/b'
check "ra add with an unknown operation -> usage" 2 \
    c ra add --name ra2 --cert "$TMP/ra2.pem" --alias lab --op ir,genm
check "ra add with a bad profile -> usage" 2 \
    c ra add --name ra2 --cert "$TMP/ra2.pem" --alias lab --profile 'x y'
check "ra list --name -> usage" 2 c ra list --name x
check "ra add --ra-verified without id-kp-cmcRA warns" 0 \
    c ra add --name ra3 --cert "$TMP/vendor.pem" --alias lab --ra-verified
grep -q "lacks id-kp-cmcRA" "$TMP/err" && ok "the warning names id-kp-cmcRA" \
    || { notok "the warning names id-kp-cmcRA"; sed 's/^/# /' "$TMP/err"; }
check "ra add with profiles, operations and raVerified" 0 \
    c ra add --name ra2 --cert "$TMP/ra2.pem" --alias lab --profile device \
    --profile server --op ir,kur,rr --ra-verified
[ -s "$TMP/err" ] && { notok "no warning for a cmcRA certificate"; sed 's/^/# /' "$TMP/err"; } \
    || ok "no warning for a cmcRA certificate"
if c ra list --json | python3 -c '
import json, sys
r = {x["name"]: x for x in json.load(sys.stdin)}
assert sorted(r) == ["ra1", "ra2", "ra3"], r
a = r["ra1"]
assert a["aliases"] == ["factory", "lab"] and a["profiles"] == [], a
assert a["operations"] == "ir,cr,p10cr,kur,rr", a
assert a["ra_verified"] is False and a["disabled"] is False, a
b = r["ra2"]
assert b["aliases"] == ["lab"] and b["profiles"] == ["device", "server"], b
assert b["operations"] == "ir,kur,rr" and b["ra_verified"] is True, b
assert b["created"] == b["updated"], b'; then
    ok "ra list --json has aliases, profiles, operations, raVerified, state"
else
    notok "ra list --json has aliases, profiles, operations, raVerified, state"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=Any RA" -days 30 -keyout "$TMP/ra4.key" -out "$TMP/ra4.pem" 2>/dev/null
check "ra add with profile * (any)" 0 \
    c ra add --name ra4 --cert "$TMP/ra4.pem" --alias lab --profile '*' --op all
if c ra show ra4 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["profiles"] == [] and r["operations"] == "ir,cr,p10cr,kur,rr", r
assert r["cert"]["subject"].endswith("CN=Any RA"), r'; then
    ok "profile * is stored as any profile"
else
    notok "profile * is stored as any profile"
fi
check "ra show" 0 c ra show ra2
grep -q "operations:  ir,kur,rr" "$TMP/out" && grep -q "profiles:    device,server" "$TMP/out" \
    && grep -q "raVerified:  may assert" "$TMP/out" && grep -q "state:       enabled" "$TMP/out" \
    && ok "ra show prints the registry fields" \
    || { notok "ra show prints the registry fields"; sed 's/^/# /' "$TMP/out"; }
check "ra list (text)" 0 c ra list
grep -E -q "^[0-9]+ +ra2 +enabled .* ir,kur,rr +yes +lab / device,server" "$TMP/out" \
    && ok "ra list prints the registry fields" \
    || { notok "ra list prints the registry fields"; sed 's/^/# /' "$TMP/out"; }
check "ra disable" 0 c ra disable ra2
if c ra show ra2 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["disabled"] is True and r["updated"] >= r["created"], r'; then
    ok "ra2 is disabled"
else
    notok "ra2 is disabled"
fi
check "ra disable again is a no-op" 0 c ra disable ra2
grep -q "disabled already" "$TMP/out" && ok "says it is disabled already" \
    || notok "says it is disabled already"
check "ra disable unknown -> not found" 3 c ra disable nosuch
check "ra disable without NAME -> usage" 2 c ra disable
check "ra enable" 0 c ra enable ra2
c ra show ra2 --json | grep -q '"disabled": false' && ok "ra2 is enabled again" \
    || notok "ra2 is enabled again"
check "ra remove" 0 c ra remove ra1
check "ra remove again -> not found" 3 c ra remove ra1
if c audit list --json --limit 0 | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["action"].startswith("ra.")]
acts = [(r["action"], r["object"]) for r in rows]
assert acts == [("ra.add", "ra1"), ("ra.add", "ra3"), ("ra.add", "ra2"),
                ("ra.add", "ra4"), ("ra.disable", "ra2"),
                ("ra.enable", "ra2"), ("ra.remove", "ra1")], acts
d = rows[2]["details"]
assert d["operations"] == "ir,kur,rr" and d["ra_verified"] is True, d
assert d["profiles"] == ["device", "server"] and d["aliases"] == ["lab"], d
assert len(rows[4]["details"]["sha256"]) == 64, rows[4]'; then
    ok "every RA change has its audit row"
else
    notok "every RA change has its audit row"
fi

# --- vendor removal
check "vendor remove with devices -> refused" 4 c vendor remove acme
check "vendor remove unknown -> not found" 3 c vendor remove nosuch

# --- audit
if c audit list --json --limit 0 | python3 -c '
import json, sys
rows = json.load(sys.stdin)
acts = [r["action"] for r in rows]
assert acts[0] == "vendor.add" and "device.import" in acts, acts
assert all(r["actor"].startswith("cli:") for r in rows)'; then
    ok "audit list --json parses and records the changes"
else
    notok "audit list --json parses and records the changes"
fi
check "audit verify ok" 0 c audit verify
sqlite3 "$DB" "UPDATE audit SET object = 'evil' WHERE seq = 2"
check "audit verify detects a tampered row" 1 c audit verify
grep -q "seq 2" "$TMP/err" && ok "first bad seq reported" \
    || { notok "first bad seq reported"; sed 's/^/# /' "$TMP/err"; }

# --- certificate files (cli_read_certs): DER, size bound, not a file
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=Der/CN=Der Factory CA" -days 30 \
    -addext basicConstraints=critical,CA:TRUE -outform DER \
    -keyout "$TMP/der.key" -out "$TMP/der.cer" 2>/dev/null
check "vendor add with a DER certificate" 0 c vendor add --name der --ca "$TMP/der.cer"
head -c 1048577 /dev/zero >"$TMP/big.pem"
check "vendor add with a file over 1 MiB fails" 1 c vendor add --name big --ca "$TMP/big.pem"
grep -q "larger than 1048576 bytes" "$TMP/err" && ok "says the file is too large" \
    || { notok "says the file is too large"; sed 's/^/# /' "$TMP/err"; }
check "vendor add with a directory fails" 1 c vendor add --name dir --ca "$TMP"
grep -q "cannot read" "$TMP/err" && ok "says the directory cannot be read" \
    || { notok "says the directory cannot be read"; sed 's/^/# /' "$TMP/err"; }
check "vendor add with a missing file fails" 1 c vendor add --name none --ca "$TMP/none.pem"

echo "1..$n"
[ "$failed" -eq 0 ]
