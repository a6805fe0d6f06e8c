# Shared by the MedCom integration tests (sourced after lib.sh and start_demo).

# seal IN OUT [PARTY]: sign (with the chain) and encrypt to the gateway, as a MedCom system would.
seal() {
	local p=${3:-region-hospital}
	openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$1" \
		-signer "$D/pki/$p.pem" -inkey "$D/pki/$p.key" -certfile "$D/pki/chain.pem" \
		-keyopt rsa_padding_mode:pss -keyopt rsa_pss_saltlen:32 -out "$2.signed" &&
	openssl cms -encrypt -binary -inform DER -outform DER -aes-256-gcm -in "$2.signed" \
		-recip "$D/pki/gateway.pem" -keyopt rsa_padding_mode:oaep -out "$2"
}
post_sealed() { anon -D "$T/headers" -H 'Content-Type: application/pkcs7-mime' --data-binary @"$1" "$URL/v1/messages"; }
post_fhir() { as "$1" -D "$T/headers" -H 'Content-Type: application/fhir+json' --data-binary @"$2" "$URL/v1/messages"; }
location_id() { sed -n 's|^[Ll]ocation: */v1/messages/\([^[:space:]]*\).*|\1|p' "$T/headers" | tr -d '\r'; }
header_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["entry"][0]["resource"]["id"])' "$1"; }
