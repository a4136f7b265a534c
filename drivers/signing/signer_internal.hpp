// Shared by the two backends (not part of the interface).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "drivers/signing/signer.hpp"

namespace cb::signing::internal {

// The algorithm of a key: ES256 for EC P-256, RS256 for RSA >= 2048 bits;
// ErrorKind::unsupported otherwise ("<what>: an EC key on secp384r1 ...").
Result<JwsAlgorithm> algorithm_of(EVP_PKEY* key, const std::string& what);

struct X509Free {
    void operator()(X509* certificate) const { X509_free(certificate); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The first certificate of `chain` (not empty), decoded; null when it does
// not parse (OpenSSL's errors cleared).
X509Ptr decode_leaf(const std::vector<Bytes>& chain);

// Signs a fixed message with `signer` and verifies it with the public key of
// its first certificate. Fails with ErrorKind::invalid_input "<what> does not
// match the certificate <subject>" when they do not belong together.
Result<void> prove(Signer& signer, const std::string& what);

}  // namespace cb::signing::internal
