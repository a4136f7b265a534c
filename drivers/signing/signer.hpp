// The facility's signing key, behind one small interface (DESIGN.md: the key
// never leaves the signer and never appears in a log or an error message).
//
//   | backend  | key                                | certificate chain          | algorithm      |
//   |----------|------------------------------------|----------------------------|----------------|
//   | PEM file | PKCS#8 or traditional PEM, not     | PEM file, signer's first   | from the key:  |
//   |          | encrypted, mode at most 0600       |                            | EC P-256 ES256,|
//   | PKCS#11  | a private key object found by      | PEM file, signer's first   | RSA >= 2048    |
//   |          | CKA_LABEL or CKA_ID on the token   |                            | RS256          |
//   |          | with the given label; PIN from a   |                            |                |
//   |          | file (mode at most 0600) or an     |                            |                |
//   |          | environment variable               |                            |                |
//
// Opening a signer proves it: it signs a fixed test message and verifies the
// signature with the certificate's public key, so a key that does not match its
// certificate is refused at start-up, not at the first bundle.
//
// Errors name files, tokens and labels, never key bytes or the PIN.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/result.hpp"
#include "protocol/upstream/jws.hpp"

namespace cb::signing {

using upstream::Bytes;
using upstream::JwsAlgorithm;

class Signer {
public:
    Signer() = default;
    Signer(const Signer&) = delete;
    Signer& operator=(const Signer&) = delete;
    virtual ~Signer() = default;

    // ES256 for an EC P-256 key, RS256 for an RSA key.
    virtual JwsAlgorithm algorithm() const noexcept = 0;
    // DER certificates, the signer's first (the JWS x5c).
    virtual const std::vector<Bytes>& certificate_chain() const noexcept = 0;
    // The JWS signature of `data` with SHA-256: r||s (64 bytes) for ES256, the
    // RSASSA-PKCS1-v1_5 signature for RS256. Safe to call from several threads.
    // Fails with ErrorKind::io when the backend fails (token removed, ...).
    virtual Result<Bytes> sign(std::span<const std::uint8_t> data) = 0;
};

// `signer` as what upstream::sign_bundle takes; `signer` must outlive it.
upstream::SignFunction sign_function(Signer& signer);

// What upstream::sign_bundle needs from the signer, with the facility's `who`.
upstream::SignatureRequest signature_request(const Signer& signer, devices::Microseconds when, std::string who_system,
                                             std::string who_value);

struct PemSignerConfig {
    std::filesystem::path key_file;
    std::filesystem::path certificate_chain_file;
};

// Fails with ErrorKind::invalid_input when the key file's mode is wider than
// 0600 ("key file /etc/carebridge/facility.key: mode 0644 is wider than 0600;
// chmod 600 it"), it is not a regular file, not an unencrypted PEM private key
// of a supported type, or does not match the certificate; ErrorKind::io when a
// file cannot be read.
Result<std::unique_ptr<Signer>> open_pem_signer(const PemSignerConfig& config);

struct Pkcs11TokenConfig {
    std::filesystem::path module;    // e.g. /usr/lib/softhsm/libsofthsm2.so
    std::string token_label;         // CK_TOKEN_INFO.label (without its padding)
    std::filesystem::path pin_file;  // the user PIN, first line, or
    std::string pin_env;             // the name of an environment variable holding it
};

// A private key on a token: exactly one of the two.
struct Pkcs11KeyRef {
    std::string label;   // its CKA_LABEL, or
    std::string id_hex;  // its CKA_ID in hex
};

// A logged-in PKCS#11 token, shared by the signer and the TLS client key
// (pkcs11_tls_key.hpp). Defined in pkcs11_token.hpp.
class Pkcs11Token;

// Loads the module (dlopen), initializes it (CKF_OS_LOCKING_OK), finds the
// token by label, opens one session and logs in with the PIN (wiped right
// after). Every use of the token's keys goes through that session, serialized
// by a mutex. Fails with ErrorKind::io or unavailable naming the step and the
// CKR_ code, or invalid_input for a bad configuration (both or neither of PIN
// file and variable, PIN file mode wider than 0600, wrong PIN). If the module
// was already initialized in the process, it is not finalized when the token goes.
Result<std::shared_ptr<Pkcs11Token>> open_pkcs11_token(const Pkcs11TokenConfig& config);

// Finds exactly one private key on `token` and proves it against the first
// certificate of `certificate_chain_file`. ECDSA keys sign with CKM_ECDSA over
// a SHA-256 digest computed here; RSA keys with CKM_SHA256_RSA_PKCS. Fails with
// invalid_input when no key or several match, or both or neither of label and
// id are given; unsupported for a key neither EC P-256 nor RSA.
Result<std::unique_ptr<Signer>> open_pkcs11_signer(std::shared_ptr<Pkcs11Token> token, const Pkcs11KeyRef& key,
                                                   const std::filesystem::path& certificate_chain_file);

struct Pkcs11SignerConfig {
    Pkcs11TokenConfig token;
    Pkcs11KeyRef key;
    std::filesystem::path certificate_chain_file;
};

// open_pkcs11_token, then open_pkcs11_signer on it.
Result<std::unique_ptr<Signer>> open_pkcs11_signer(const Pkcs11SignerConfig& config);

// The DER certificates of a PEM file (at most 16 KiB per certificate, 8 certificates).
Result<std::vector<Bytes>> read_certificate_chain(const std::filesystem::path& file);

// Reads a file that holds a secret (key or PIN): refused unless it is a regular
// file with no permission outside 0600, owned by the user carebridged runs as
// or by root. At most 64 KiB. The caller wipes the returned bytes
// (OPENSSL_cleanse) when done.
Result<std::string> read_private_file(const std::filesystem::path& file, const char* what);

// Whoever owns a file or directory can change it whatever its mode, so what
// holds secrets or the store must belong to the user carebridged runs as, or
// to root (as OpenSSH's StrictModes). Empty if `owner` is one of them; else
// the problem, to follow the file's name in an error.
std::string foreign_owner(unsigned owner);

// A mode as four octal digits ("0640").
std::string mode_text(unsigned mode);

}  // namespace cb::signing
