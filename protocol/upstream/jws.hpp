// The signature of a bundle: a detached JWS (RFC 7515 compact serialization
// with detached content, Appendix F) over the RFC 8785 canonical JSON of the
// bundle without its "signature" member, carried in Bundle.signature (FHIR R4
// Signature). docs/upstream.md §4-5 is the full specification.
//
//   JWS compact   = BASE64URL(header) ".." BASE64URL(signature)       (payload detached)
//   signing input = BASE64URL(header) "." BASE64URL(canonical(bundle - "signature"))
//
//   | protected header | value                                                       |
//   |------------------|-------------------------------------------------------------|
//   | alg              | "ES256" (ECDSA P-256 SHA-256, raw r||s, 64 bytes) or        |
//   |                  | "RS256" (RSASSA-PKCS1-v1_5 SHA-256, RSA >= 2048 bits)       |
//   | x5c              | the chain, base64 (not url) DER, signer's certificate first |
//   | sigT             | signing time, RFC 3339 UTC ("2026-11-22T09:00:00Z"); equal  |
//   |                  | to Signature.when, so that the unsigned `when` is bound     |
//   The header is itself written as canonical JSON; "crit" is never sent and
//   is refused on input (we understand no extension).
//
//   | Bundle.signature | value                                                       |
//   |------------------|-------------------------------------------------------------|
//   | type             | urn:iso-astm:E1762-95:2013 1.2.840.10065.1.12.1.14 (Source) |
//   | when             | = sigT                                                      |
//   | who              | {"identifier": {"system", "value"}} of the facility         |
//   | targetFormat     | "application/fhir+json"                                     |
//   | sigFormat        | "application/jose"                                          |
//   | data             | base64 (FHIR base64Binary) of the ASCII JWS compact         |
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/devices/timestamp.hpp"
#include "protocol/result.hpp"
#include "protocol/upstream/base64.hpp"

// OpenSSL's certificate store, opaque here.
struct x509_store_st;

namespace cb::upstream {

enum class JwsAlgorithm : std::uint8_t { es256, rs256 };

const char* to_string(JwsAlgorithm algorithm) noexcept;  // "ES256"
std::optional<JwsAlgorithm> jws_algorithm_from_string(std::string_view name) noexcept;

// Caps of the verifier.
inline constexpr std::size_t max_signature_data = 48 * 1024;  // Signature.data, base64 characters
inline constexpr std::size_t max_chain_length = 4;
inline constexpr std::size_t max_certificate_size = 8 * 1024;  // DER bytes
inline constexpr std::size_t min_rsa_bits = 2048;

// Produces the raw JWS signature (ES256: r||s, 64 bytes; RS256: the PKCS#1 v1.5
// signature) of `signing_input` hashed with SHA-256. The key stays behind it
// (drivers/signing's Signer::sign is one).
using SignFunction = std::function<Result<Bytes>(std::span<const std::uint8_t> signing_input)>;

struct SignatureRequest {
    JwsAlgorithm algorithm = JwsAlgorithm::es256;
    std::vector<Bytes> certificate_chain;  // DER, the signer's certificate first
    devices::Microseconds when{};          // the signing time (an injected clock's now)
    std::string who_system;                // the facility's identifier, e.g. FINESS
    std::string who_value;                 //   "urn:oid:1.2.250.1.71.4.2.2" | "750000000"
};

// The canonical JSON of `bundle` without its "signature" member: the JWS payload.
// Fails as canonicalize does.
Result<std::string> signing_payload(const boost::json::object& bundle);

// Adds Bundle.signature (tables above). Fails with ErrorKind::invalid_input when
// the bundle is already signed, the chain is empty or its first certificate is
// not DER or its key does not fit `algorithm` (EC P-256 for ES256, RSA >= 2048
// for RS256), the `who` identifier is empty, or `sign` returns a signature of the
// wrong size; with `sign`'s own error when it fails.
Result<void> sign_bundle(boost::json::object& bundle, const SignatureRequest& request, const SignFunction& sign);

// sign_bundle for many bundles with one signer: the chain is decoded and
// checked against the algorithm, and x5c encoded, once (decoding a
// certificate costs OpenSSL 3 more than the ECDSA signature itself:
// bench/forward). Each sign() then pays only for the bundle's canonical JSON
// and the signature. sign() may be called from several threads at once when
// the SignFunction allows it (drivers/signing's signers do).
class BundleSigner {
public:
    // Fails as sign_bundle does for the chain, algorithm and who.
    static Result<BundleSigner> prepare(const SignatureRequest& request, SignFunction sign);

    // sign_bundle with the prepared request and `when`.
    Result<void> sign(boost::json::object& bundle, devices::Microseconds when) const;
    // The same signature, returned as the signed bundle's JSON text (what is
    // sent): "signature" first, then the other members in canonical form.
    // `bundle` is left unsigned. The forwarder's path: no copy of the bundle,
    // one serialization.
    Result<std::string> signed_text(const boost::json::object& bundle, devices::Microseconds when) const;
    // signed_text of a bundle given as its canonical text (fhir_bundle.hpp
    // bundle_text writes it so): the forwarder's path, with no JSON tree at
    // all. Text that is not canonical gives a signature no verifier accepts.
    Result<std::string> signed_canonical_text(std::string_view payload, devices::Microseconds when_time) const;

private:
    struct HeaderCache {
        std::mutex mutex;
        std::string when;
        std::shared_ptr<const std::string> encoded;
    };

    BundleSigner() = default;
    // BASE64URL(canonical protected header) for a signing time, cached per second.
    Result<std::shared_ptr<const std::string>> encoded_header(const std::string& when) const;
    // The Signature object over `payload` (the canonical unsigned bundle), as
    // canonical JSON text.
    Result<std::string> signature_over(std::string_view payload, const std::string& when) const;

    JwsAlgorithm m_algorithm = JwsAlgorithm::es256;
    std::vector<std::string> m_x5c;  // base64 DER, the signer first
    std::size_t m_rsa_signature_size = 0;
    std::string m_who_system;
    std::string m_who_value;
    SignFunction m_sign;
    std::shared_ptr<HeaderCache> m_header = std::make_shared<HeaderCache>();
};

// The certification authorities a verifier trusts.
class TrustAnchors {
public:
    // One or more PEM certificates ("-----BEGIN CERTIFICATE-----"). Fails with
    // ErrorKind::invalid_input when there is none or one does not parse.
    static Result<TrustAnchors> from_pem(std::string_view pem);
    // DER certificates; fails likewise.
    static Result<TrustAnchors> from_der(std::span<const Bytes> certificates);

    x509_store_st* store() const noexcept { return m_store.get(); }

private:
    explicit TrustAnchors(std::shared_ptr<x509_store_st> store) : m_store(std::move(store)) {}
    std::shared_ptr<x509_store_st> m_store;
};

enum class SignatureProblem : std::uint8_t {
    missing,                // no Bundle.signature
    malformed,              // not JSON, Signature or JWS syntax, x5c not DER, sigT != when
    too_large,              // over a cap above
    unsupported_algorithm,  // alg not ES256/RS256, a "crit" header, key not fitting alg
    untrusted_chain,        // x5c does not chain to the anchors at the given time
    bad_signature,          // the signature does not verify: the bundle was changed
};
inline constexpr std::size_t signature_problem_count = 6;

const char* to_string(SignatureProblem problem) noexcept;  // "bad_signature"

struct SignatureRefusal {
    SignatureProblem problem;
    std::string message;

    // too_large is limit_exceeded, unsupported_algorithm unsupported, the rest
    // invalid_input; message "<problem>: <message>".
    Error to_error() const;
};

struct VerifiedSignature {
    JwsAlgorithm algorithm = JwsAlgorithm::es256;
    std::string signer;        // the signer certificate's subject (RFC 2253)
    std::vector<Bytes> chain;  // x5c, DER
    std::string signing_time;  // sigT
    std::string who_system;
    std::string who_value;
    std::string payload;  // the canonical JSON that was signed
};

// Verifies the signature of a parsed bundle: header, chain (at time `at`, with
// the anchors only as trust roots and the rest of x5c as intermediates; the
// signer certificate's keyUsage, if any, must allow digitalSignature), key/alg
// fit, and the signature over the recomputed payload. Never throws.
Result<VerifiedSignature, SignatureRefusal> verify_bundle_signature_value(const boost::json::value& bundle,
                                                                          const TrustAnchors& anchors,
                                                                          devices::Microseconds at);
// The same on bundle text (at most max_bundle_size bytes, fhir_bundle.hpp).
Result<VerifiedSignature, SignatureRefusal> verify_bundle_signature(std::string_view text, const TrustAnchors& anchors,
                                                                    devices::Microseconds at);

// ECDSA signature encodings: DER ECDSA-Sig-Value (what OpenSSL produces) to the
// JWS form r||s with each half `half` bytes (32 for P-256), and back. Fail with
// ErrorKind::invalid_input on malformed input or an integer wider than `half`.
Result<Bytes> ecdsa_der_to_raw(std::span<const std::uint8_t> der, std::size_t half = 32);
Result<Bytes> ecdsa_raw_to_der(std::span<const std::uint8_t> raw);

}  // namespace cb::upstream
