#!/usr/bin/python3
"""Independent check of a carebridge signed bundle with python3-jwcrypto.

usage: verify_jws.py BUNDLE.json CA.pem

Recomputes the RFC 8785 canonical JSON of the bundle without "signature" with
Python's json module (equal to JCS for our bundles: ASCII member names, and
numbers whose Python repr is the ECMAScript form), puts it back as the payload
of the detached JWS in Bundle.signature.data, verifies the signature with
jwcrypto using the key of the x5c[0] certificate, and checks that this
certificate was issued by CA.pem. Prints "verified ALG" and exits 0, or prints
the reason and exits 1. Exits 2 when jwcrypto is missing.
"""
import base64
import json
import sys

try:
    from jwcrypto import jwk, jws
    from jwcrypto.common import base64url_encode
except ImportError:
    print("python3-jwcrypto is not installed (scripts/install-deps installs it)")
    sys.exit(2)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        bundle = json.load(f)
    with open(sys.argv[2], "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())

    signature = bundle.pop("signature")
    if signature.get("sigFormat") != "application/jose":
        print("sigFormat is not application/jose")
        return 1
    compact = base64.b64decode(signature["data"], validate=True).decode("ascii")
    header_b64, empty, signature_b64 = compact.split(".")
    if empty:
        print("the JWS payload is not detached")
        return 1
    payload = canonical(bundle).encode("utf-8")
    attached = header_b64 + "." + base64url_encode(payload) + "." + signature_b64

    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0], validate=True))
    key = jwk.JWK.from_pem(leaf.public_bytes(serialization.Encoding.PEM))
    token = jws.JWS()
    token.deserialize(attached)
    try:
        token.verify(key, alg=header["alg"])
    except Exception as error:  # jwcrypto raises InvalidJWSSignature
        print("signature does not verify: %s" % error)
        return 1

    ca_key = ca.public_key()
    try:
        if isinstance(ca_key, ec.EllipticCurvePublicKey):
            ca_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
        elif isinstance(ca_key, rsa.RSAPublicKey):
            ca_key.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(),
                          leaf.signature_hash_algorithm)
        else:
            print("unsupported CA key type")
            return 1
    except Exception as error:
        print("x5c[0] is not issued by %s: %s" % (sys.argv[2], error))
        return 1
    print("verified %s" % header["alg"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
