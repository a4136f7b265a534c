// The facility's TLS client key on a PKCS#11 token, as the EVP_PKEY that
// SSL_CTX_use_PrivateKey takes: its public half comes from the certificate,
// its private operations go to the token through the token's one session.
//
//   | key       | TLS signature                   | token mechanism                  |
//   |-----------|---------------------------------|----------------------------------|
//   | EC P-256  | ECDSA (1.3 and 1.2)             | CKM_ECDSA over OpenSSL's digest  |
//   | RSA       | RSA-PSS (1.3), PKCS#1 v1.5 (1.2)| CKM_RSA_X_509 over OpenSSL's PSS |
//   |           |                                 | encoding; CKM_RSA_PKCS (1.2)     |
//
// How: an EC_KEY_METHOD / RSA_METHOD whose signing calls the token. OpenSSL 3
// treats a key with such a method as "foreign" and signs with it through its
// legacy path, in TLS 1.3 too (tests/unit/drivers/signing_test.cpp). These
// APIs are deprecated in OpenSSL 3 in favour of providers, but Debian 12 ships
// no PKCS#11 provider (pkcs11-provider arrives in Debian 13); libp11's engine
// is the same deprecated mechanism behind a second PKCS#11 stack, so we reuse
// our own token code instead.
//
// A token that fails mid-handshake fails the handshake: the request fails
// like any other connection failure and is retried with backoff.
#pragma once

#include <openssl/types.h>

#include <filesystem>
#include <memory>

#include "drivers/signing/signer.hpp"

namespace cb::signing {

using TlsKey = std::shared_ptr<EVP_PKEY>;

// Finds exactly one private key on `token`, checks that it is of the type of
// the first certificate of `certificate_file`, and proves that they belong
// together (a SHA-256 signature through OpenSSL's EVP API, verified with the
// certificate's public key). The key keeps the token open while OpenSSL holds it.
Result<TlsKey> open_pkcs11_tls_key(std::shared_ptr<Pkcs11Token> token, const Pkcs11KeyRef& key,
                                   const std::filesystem::path& certificate_file);

}  // namespace cb::signing
