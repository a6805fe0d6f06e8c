#!/bin/sh
# make-corpus.sh: (re)make the fuzz seed corpora under tests/fuzz/corpus/ and
# the throw-away PKI in tests/fuzz/pki/ that the CMS targets verify against.
#
# usage: tests/fuzz/make-corpus.sh [PATH-TO-hegn]
#
# Valid seeds come from `hegn demo init` (messages, configuration, OCES3-like
# certificates), from `openssl cms` (signed and sealed objects) and, when the
# conformance data is there ($HEGN_SHARED or ../shared), from RFC 4134 and
# PKITS; malformed seeds are cut or damaged copies of them.  Files named regress-* are inputs
# that once found a bug: this script never touches them.
#
# The PKI is for fuzzing only: its private key is public by being committed.
# Re-running the script makes a new PKI and new CMS seeds that fit it.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
fz=$top/tests/fuzz
hegn=${1:-$top/hegn}
tmp=$(mktemp -d /tmp/hegn-corpus.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ ! -x "$hegn" ]; then
	echo "make-corpus.sh: $hegn is not an executable hegn (build first, or give its path)" >&2
	exit 1
fi

c=$fz/corpus
mkdir -p "$fz/pki" "$c/message" "$c/receipt" "$c/cms_signed" "$c/cms_sealed" \
    "$c/cert" "$c/conf" "$c/cpr" "$c/medcom"
rm -f "$c"/*/seed-* "$c"/*/bad-*

# ---- PKI: a root and two leaves (RSA 2048 and P-256), valid for a century.
cat >"$tmp/ext.cnf" <<'EOT'
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ecleaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyAgreement
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOT
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \
    -keyout "$tmp/ca.key" -out "$fz/pki/ca.pem" \
    -subj "/C=DK/O=hegn fuzz/CN=hegn fuzz root CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
leaf() { # name newkey-arg extension-section subject serial
	openssl req -new -newkey "$2" -nodes -keyout "$fz/pki/$1.key" \
	    -out "$tmp/$1.csr" -subj "$4" 2>/dev/null
	openssl x509 -req -in "$tmp/$1.csr" -CA "$fz/pki/ca.pem" -CAkey "$tmp/ca.key" \
	    -set_serial "$5" -days 36500 -sha256 -extfile "$tmp/ext.cnf" \
	    -extensions "$3" -out "$fz/pki/$1.pem" 2>/dev/null
	chmod 600 "$fz/pki/$1.key"
}
openssl ecparam -name prime256v1 -out "$tmp/p256"
leaf org rsa:2048 leaf \
    "/C=DK/O=hegn fuzz org/organizationIdentifier=NTRDK-12345678/CN=hegn fuzz org" 2
leaf ec "ec:$tmp/p256" ecleaf \
    "/C=DK/O=hegn fuzz ec/serialNumber=CVR:87654321-UID:1/CN=hegn fuzz ec" 3

# ---- message, conf and cert seeds from a demo world.
"$hegn" demo init "$tmp/demo" --port 18998 >/dev/null
for f in "$tmp"/demo/examples/*.json; do
	cp "$f" "$c/message/seed-$(basename "$f")"
done
cp "$tmp/demo/hegn.conf" "$c/conf/seed-demo.conf"
for f in hovmand-care gateway ca; do
	openssl x509 -in "$tmp/demo/pki/$f.pem" -outform DER -out "$c/cert/seed-demo-$f.der"
done
for f in ca org ec; do
	openssl x509 -in "$fz/pki/$f.pem" -outform DER -out "$c/cert/seed-fuzz-$f.der"
done
for f in "$top"/certs/*.pem; do
	openssl x509 -in "$f" -outform DER -out "$c/cert/seed-$(basename "$f" .pem).der"
done

# ---- signed: what providers send, and what must be refused.
content=$c/message/seed-cancellation.json
sign() { # name extra-args...
	n=$1
	shift
	openssl cms -sign -binary -in "$content" -outform DER \
	    -out "$c/cms_signed/seed-$n.der" "$@"
}
sign pkcs1 -nodetach -md sha256 -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign pss -nodetach -md sha256 -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key" \
    -keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32
sign chain -nodetach -md sha512 -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key" \
    -certfile "$fz/pki/ca.pem"
sign ec -nodetach -md sha256 -signer "$fz/pki/ec.pem" -inkey "$fz/pki/ec.key"
sign noattr -nodetach -md sha256 -noattr -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign sha1 -nodetach -md sha1 -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign detached -md sha256 -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign nocerts -nodetach -md sha256 -nocerts -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign econtent -nodetach -md sha256 -econtent_type 1.2.840.113549.1.7.1.99 \
    -signer "$fz/pki/org.pem" -inkey "$fz/pki/org.key"
sign untrusted -nodetach -md sha256 -signer "$tmp/demo/pki/hovmand-care.pem" \
    -inkey "$tmp/demo/pki/hovmand-care.key"

# ---- sealed: for the fuzz org's key, for someone else, and other recipient types.
seal() { # name extra-args...
	n=$1
	shift
	openssl cms -encrypt -binary -in "$content" -outform DER \
	    -out "$c/cms_sealed/seed-$n.der" "$@"
}
oaep="-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256"
# shellcheck disable=SC2086
seal gcm -aes-256-gcm -recip "$fz/pki/org.pem" $oaep
# shellcheck disable=SC2086
seal cbc -aes-256-cbc -recip "$fz/pki/org.pem" $oaep
seal pkcs1v15 -aes-256-cbc -recip "$fz/pki/org.pem"
# shellcheck disable=SC2086
seal other -aes-256-gcm -recip "$tmp/demo/pki/hovmand-care.pem" $oaep
seal kek -aes-256-cbc -secretkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
    -secretkeyid 01
seal pwri -aes-256-cbc -pwri_password fuzz
# The inner-signed shape: a SignedData sealed as the content.
content=$c/cms_signed/seed-pkcs1.der
# shellcheck disable=SC2086
seal signed-inner -aes-256-gcm -recip "$fz/pki/org.pem" $oaep

# ---- receipts.
sha=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
printf '{"message_id":"2b9f6c1e-8d7a-4c53-9b1e-0f2a6d4c8e11","sha256":"%s","status":"accepted"}' \
    "$sha" >"$c/receipt/seed-accepted.json"
printf '{"message_id":"m-1","sha256":"%s","status":"rejected","reason":"Borgeren er ikke tilknyttet leverand\303\270ren"}' \
    "$sha" >"$c/receipt/seed-rejected.json"
printf '{"message_id":"m","sha256":"%s","status":"accepted","reason":""}' \
    "$sha" >"$c/receipt/seed-empty-reason.json"
printf '{"message_id":"m","sha256":"%s","status":"rejected"}' \
    "$sha" >"$c/receipt/bad-no-reason.json"
printf '{"message_id":"m","sha256":"%s","status":"accepted","extra":1}' \
    "$sha" >"$c/receipt/bad-unknown-member.json"
printf '{"message_id":"m","sha256":"ABC","status":"maybe"}' >"$c/receipt/bad-fields.json"
printf '{"message_id":"m","sha256":"%s","status":"accepted"' "$sha" >"$c/receipt/bad-truncated.json"
printf '["message_id"]' >"$c/receipt/bad-array.json"

# ---- CPR numbers (invented; the century rules and dates are what matter).
printf '0101901234' >"$c/cpr/seed-plain"
printf '010190-1234' >"$c/cpr/seed-hyphen"
printf '2902004000' >"$c/cpr/seed-leap-2000"
printf '2509479989' >"$c/cpr/seed-1947"
printf '3102901234' >"$c/cpr/bad-date"
printf '01019O1234' >"$c/cpr/bad-letter"
printf '0101901234567' >"$c/cpr/bad-long"
printf '' >"$c/cpr/bad-empty"

# ---- configuration: a minimal one and broken ones.
cat >"$c/conf/seed-minimal.conf" <<'EOT'
[server]
port = 8443
[party a]
role = provider
cert = a.pem
EOT
printf '[server]\nport = 99999\n' >"$c/conf/bad-port.conf"
printf '[server]\nnoise = 1\n' >"$c/conf/bad-keyword.conf"
printf '[party a]\nrole = provider\n[party a]\nrole = hospital\n' >"$c/conf/bad-duplicate.conf"
printf '[party \n' >"$c/conf/bad-syntax.conf"
printf '[limits]\nmax_attachments = -1\nmax_attachment_bytes = 99999999999999999999\n' \
    >"$c/conf/bad-range.conf"

# ---- malformed messages.
m=$c/message
printf '{"kind":"referral"' >"$m/bad-truncated.json"
printf '{"kind":"nonsense","to":"x","citizen":{"cpr":"0101901234"}}' >"$m/bad-kind.json"
printf '{"kind":"cancellation","to":"hovmand-care","citizen":{"cpr":"3102901234"},"basic":{}}' \
    >"$m/bad-cpr.json"
printf '{"kind":"referral","to":"hovmand-care","citizen":{"cpr":"0101901234","name":"x"},"basic":{"services":["practical_help"],"start_date":"2026-12-01"},"attachments":[{"class":"care","content_type":"text/plain","filename":"a.txt","data":"!!!"}]}' \
    >"$m/bad-base64.json"
printf '{"kind":"cancellation","to":"hovmand-care","citizen":{"cpr":"0101901234"},"deadline":"2026-13-45T25:61:61Z"}' \
    >"$m/bad-deadline.json"
printf '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' \
    >"$m/bad-nesting.json"
printf '{"kind":"cancellation","to":"h\000x","citizen":{"cpr":"0101901234"}}' >"$m/bad-nul.json"

# ---- conformance data (when present): RFC 4134 CMS examples and a few
# PKITS certificates with unusual fields.
shared=${HEGN_SHARED:-$top/../shared}
t4=$shared/testdata/rfc4134
if [ -d "$t4" ]; then
	for n in 3.1 4.1 4.2 4.4 4.6 4.10 4.11; do
		cp "$t4/$n.bin" "$c/cms_signed/seed-rfc4134-$n.der"
	done
	for n in 5.1 5.2 6.0 7.1; do
		cp "$t4/$n.bin" "$c/cms_sealed/seed-rfc4134-$n.der"
	done
	for f in CarlRSASelf CarlDSSSelf AliceDSSSignByCarlNoInherit DianeDSSSignByCarlInherit \
	    BobRSASignByCarl; do
		cp "$t4/$f.cer" "$c/cert/seed-rfc4134-$f.der"
	done
else
	echo "make-corpus.sh: no $t4, RFC 4134 seeds left out" >&2
fi
tp=$shared/testdata/pkits/certs
if [ -d "$tp" ]; then
	for f in InvalidLongSerialNumberTest18EE InvalidNegativeSerialNumberTest15EE \
	    InvalidDNnameConstraintsTest2EE InvalidRFC822nameConstraintsTest22EE \
	    InvalidDNSnameConstraintsTest31EE InvalidMappingToanyPolicyTest8EE \
	    InvalidkeyUsageCriticalcRLSignFalseTest4EE InvalidMissingbasicConstraintsTest1EE; do
		cp "$tp/$f.crt" "$c/cert/seed-pkits-$f.der"
	done
else
	echo "make-corpus.sh: no $tp, PKITS seeds left out" >&2
fi

# ---- MedCom messages: the published examples (when present) and broken ones.
mc=$c/medcom
mkdir -p "$mc"
rm -f "$mc"/seed-* "$mc"/bad-*
ex=$shared/medcom-examples
if [ -d "$ex" ]; then
	for f in "$ex"/*.json; do
		cp "$f" "$mc/seed-$(basename "$f")"
	done
	a=$ex/hospitalnotification-admit-inpatient.json
	sed 's/"2509479989"/"3102479989"/' "$a" >"$mc/bad-cpr-date.json"
	sed 's/"5790001348120"/"5790001348121"/' "$a" >"$mc/bad-gln.json"
	sed 's/"2022-12-07T12:00:01+02:00"/"2022-12-07T12:00:01"/' "$a" >"$mc/bad-zoneless.json"
	sed 's/"hospital-notification-message"/"no-such-message"/' "$a" >"$mc/bad-event.json"
	sed 's/"admit-inpatient"/"admit-outpatient"/' "$a" >"$mc/bad-activity.json"
	head -c 2000 "$a" >"$mc/bad-truncated.json"
	# A citizen known by an X-eCPR only, and a cc destination (issue 7).
	ed="python3 $(dirname "$0")/../integration/medcom_edit.py"
	$ed "$a" "$mc/seed-ecpr.json" ecpr 0101701A2B
	$ed "$a" "$mc/seed-cc.json" add-cc 5790009000013,123456789012346
else
	echo "make-corpus.sh: no $ex, MedCom seeds left out" >&2
fi
printf '{"resourceType":"Bundle","type":"message","id":"x","entry":[]}' >"$mc/bad-empty.json"
printf '{"resourceType":"Bundle","resourceType":"Bundle"}' >"$mc/bad-duplicate-key.json"

# ---- damaged DER: cut, glued and swapped.
for d in cms_signed cms_sealed cert; do
	first=$(find "$c/$d" -name 'seed-*' | sort | head -n 1)
	size=$(wc -c <"$first")
	head -c $((size / 2)) "$first" >"$c/$d/bad-truncated.der"
	{ cat "$first"; printf '\000'; } >"$c/$d/bad-trailing.der"
	head -c 40 /dev/zero >"$c/$d/bad-zeros.der"
done
cp "$c/cms_sealed/seed-gcm.der" "$c/cms_signed/bad-sealed.der"
cp "$c/cms_signed/seed-pkcs1.der" "$c/cms_sealed/bad-signed.der"

# ---- keyd: requests to the key process, as a compromised network process
# could write them (gateway/keyd.h: big-endian lengths, str = u16 length and
# bytes, blob = u32 length and bytes).
k=$c/keyd
mkdir -p "$k"
rm -f "$k"/seed-* "$k"/bad-*
byte() { printf "\\$(printf %03o "$1")"; }
be16() { byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
be32() { be16 $(($1 >> 16 & 65535)); be16 $(($1 & 65535)); }
kstr() { be16 ${#1}; printf %s "$1"; }
kblob() { be32 "$(wc -c <"$1")"; cat "$1"; }
# kmsg VERSION TYPE BODY-FILE: header and body
kmsg() { printf HGNK; be16 "$1"; be16 "$2"; be32 "$(wc -c <"$3")"; cat "$3"; }
head -c 32 /dev/zero | tr '\000' '\101' >"$tmp/digest"
{ kstr org; byte 0; kblob "$tmp/digest"; } >"$tmp/b"; kmsg 3 1 "$tmp/b" >"$k/seed-sign"
{ kstr ec; byte 1; kstr m-1; kblob "$tmp/digest"; } >"$tmp/b"; kmsg 3 1 "$tmp/b" >"$k/seed-sign-id"
# An RSA block below the fuzz org's 2048-bit modulus, and one too short.
{ byte 0; head -c 255 /dev/zero | tr '\000' '\102'; } >"$tmp/block"
{ kstr org; kblob "$tmp/block"; } >"$tmp/b"; kmsg 3 4 "$tmp/b" >"$k/seed-rsa"
head -c 4 "$tmp/block" >"$tmp/short"
{ kstr org; kblob "$tmp/short"; } >"$tmp/b"; kmsg 3 4 "$tmp/b" >"$k/seed-rsa-short"
# The fuzz EC key's own public point: on the curve.
openssl ec -in "$fz/pki/ec.key" -pubout -conv_form uncompressed -outform DER 2>/dev/null |
    tail -c 65 >"$tmp/point"
{ kstr ec; kblob "$tmp/point"; } >"$tmp/b"; kmsg 3 5 "$tmp/b" >"$k/seed-ecdh"
{ kstr org; kblob "$tmp/point"; } >"$tmp/b"; kmsg 3 5 "$tmp/b" >"$k/seed-ecdh-rsa"
{ be32 0; be32 7; head -c 32 /dev/zero; } >"$tmp/b"; kmsg 3 3 "$tmp/b" >"$k/seed-checkpoint"
# Type 2 was DECRYPT (a whole EnvelopedData); version 2 is gone.
{ kstr org; kblob "$c/cms_sealed/seed-gcm.der"; } >"$tmp/b"; kmsg 3 2 "$tmp/b" >"$k/bad-decrypt"
{ kstr org; kblob "$tmp/block"; } >"$tmp/b"; kmsg 2 4 "$tmp/b" >"$k/bad-version"
{ kstr org; kblob "$tmp/block"; } >"$tmp/b"; kmsg 3 4 "$tmp/b" | head -c 100 >"$k/bad-truncated"

echo "corpus: $(find "$c" -type f | wc -l) files, $(du -sk "$c" | cut -f1) KB in $c"
