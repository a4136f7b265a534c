// Card certificates and the challenge-response, as pure crypto (OpenSSL 3,
// no I/O, no clock: the verification time is a parameter).
//
// Challenge-response: the gateway sends INTERNAL AUTHENTICATE with a fresh
// challenge (apdu.hpp, internal_authenticate_command) and the card answers
// with a signature. Our modelling of what the card signs: the challenge bytes,
// hashed with SHA-256 by the signature scheme itself.
//
//   | card key      | scheme                     | signature bytes                       |
//   |---------------|----------------------------|---------------------------------------|
//   | EC P-256      | ECDSA with SHA-256         | DER Ecdsa-Sig-Value (SEQUENCE r, s)   |
//   | RSA >= 2048   | RSASSA-PKCS1-v1_5 SHA-256  | modulus-size big-endian integer       |
//
// Any other key (another curve, RSA under 2048 bits, Ed25519, DSA) is
// ErrorKind::unsupported.
//
// Practitioner identity in the leaf certificate's subject. THIS IS OUR
// MODELLING of an IGC-Santé certificate, not the published profile:
//
//   | subject attribute (OID)           | holds                    | rule                          |
//   |-----------------------------------|--------------------------|-------------------------------|
//   | givenName, GN (2.5.4.42)          | first name               | exactly one; 1..64 bytes of   |
//   | surname, SN (2.5.4.4)             | family name              | UTF-8, no control characters  |
//   | serialNumber (2.5.4.5)            | IDNPS = "8" + RPPS       | exactly one; 12 digits; the   |
//   |                                   |                          | RPPS's 11th digit is its Luhn |
//   |                                   |                          | check digit                   |
//   | title (2.5.4.12)                  | profession code          | exactly one; 2 digits         |
//   |                                   | (e.g. 10 médecin)        |                               |
//
// Caps: a certificate is at most 16 KiB of DER, a chain at most 4
// intermediates, a signature at most 1024 bytes (ErrorKind::limit_exceeded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/cards/apdu.hpp"
#include "protocol/result.hpp"

typedef struct x509_st X509;  // NOLINT(modernize-use-using): OpenSSL's own declaration

namespace cb::cards {

inline constexpr std::size_t max_certificate_size = 16 * 1024;
inline constexpr std::size_t max_intermediates = 4;
inline constexpr std::size_t max_signature_size = 1024;

struct X509Deleter {
    void operator()(X509* certificate) const noexcept;
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// A leaf certificate that chained to a trusted CA at a given time. Only
// verify_chain makes one.
class VerifiedCertificate {
public:
    // The leaf; owned by this object.
    const X509* certificate() const noexcept { return m_leaf.get(); }

private:
    friend Result<VerifiedCertificate> verify_chain(std::span<const std::uint8_t> leaf_der,
                                                    std::span<const Bytes> intermediates_der,
                                                    std::span<const std::uint8_t> trusted_ca_der,
                                                    std::int64_t verification_time);
    explicit VerifiedCertificate(X509Ptr leaf) : m_leaf(std::move(leaf)) {}

    X509Ptr m_leaf;
};

// Parses one DER certificate, which must be the whole input. Fails with
// ErrorKind::invalid_input ("<what>: not a DER certificate", "<what>: 3 bytes
// after the certificate") or ErrorKind::limit_exceeded over 16 KiB.
Result<X509Ptr> parse_certificate(std::span<const std::uint8_t> der, const std::string& what);

// Verifies leaf <- intermediates <- trusted CA at `verification_time`
// (seconds since 1970-01-01 UTC): signatures, validity periods, CA flags and
// path length, as X509_verify_cert does. Fails with the parse errors above
// (naming "leaf certificate", "intermediate certificate 1", "trusted CA
// certificate"), limit_exceeded for more than 4 intermediates, and
// ErrorKind::invalid_input for a chain that does not verify:
//     "certificate chain: certificate has expired (at depth 0)"
//     "certificate chain: unable to get local issuer certificate (at depth 1)"
Result<VerifiedCertificate> verify_chain(std::span<const std::uint8_t> leaf_der,
                                         std::span<const Bytes> intermediates_der,
                                         std::span<const std::uint8_t> trusted_ca_der, std::int64_t verification_time);

// Checks the card's answer to INTERNAL AUTHENTICATE (table above). Fails with
// ErrorKind::invalid_input "card signature: does not verify with the
// certificate's key" for a wrong or malformed signature, unsupported for a
// key outside the table, limit_exceeded for a signature over 1024 bytes.
Result<void> verify_card_signature(const VerifiedCertificate& certificate, std::span<const std::uint8_t> challenge,
                                   std::span<const std::uint8_t> signature);

// A practitioner as their card's certificate names them.
class PractitionerIdentity {
public:
    const std::string& given_name() const noexcept { return m_given_name; }
    const std::string& family_name() const noexcept { return m_family_name; }
    // "8" + RPPS, 12 digits.
    const std::string& idnps() const noexcept { return m_idnps; }
    // 11 digits, the last a Luhn check digit.
    std::string rpps() const { return m_idnps.substr(1); }
    const std::string& profession_code() const noexcept { return m_profession_code; }

private:
    friend Result<PractitionerIdentity> practitioner_identity_from_subject(const X509* certificate);
    PractitionerIdentity() = default;

    std::string m_given_name;
    std::string m_family_name;
    std::string m_idnps;
    std::string m_profession_code;
};

// Reads the subject of a verified leaf (table above). Fails with
// ErrorKind::invalid_input naming the attribute and the rule, e.g.
//     "certificate subject: no serialNumber (IDNPS)"
//     "certificate subject: more than one title (profession code)"
//     "certificate subject: serialNumber (IDNPS): must start with 8 (RPPS)"
//     "certificate subject: serialNumber (IDNPS): RPPS Luhn check digit mismatch"
//     "certificate subject: GN (given name): control character at position 3"
Result<PractitionerIdentity> practitioner_identity_from_certificate(const VerifiedCertificate& certificate);

// The same rules on a certificate that has NOT been verified: for fuzzing and
// for tools that display a card's content. Never use it to authenticate.
Result<PractitionerIdentity> practitioner_identity_from_unverified_der(std::span<const std::uint8_t> der);

// Shared with the subject reader: the Luhn check of an all-digit string.
bool passes_luhn(std::string_view digits) noexcept;

}  // namespace cb::cards
