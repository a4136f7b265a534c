#include "protocol/upstream/jws.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/json/array.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/string.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <utility>

#include "protocol/upstream/canonical_json.hpp"
#include "protocol/upstream/fhir_bundle.hpp"

namespace cb::upstream {
namespace {

namespace json = boost::json;

constexpr std::string_view signature_type_system = "urn:iso-astm:E1762-95:2013";
constexpr std::string_view signature_type_source = "1.2.840.10065.1.12.1.14";
constexpr std::string_view jose_format = "application/jose";

struct X509Free {
    void operator()(X509* certificate) const { X509_free(certificate); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdContextFree {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
struct StoreContextFree {
    void operator()(X509_STORE_CTX* context) const { X509_STORE_CTX_free(context); }
};
struct StackFree {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
struct SigFree {
    void operator()(ECDSA_SIG* signature) const { ECDSA_SIG_free(signature); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

Result<X509Ptr> parse_der_certificate(std::span<const std::uint8_t> der) {
    if (der.size() > max_certificate_size)
        return fail(ErrorKind::limit_exceeded, "certificate: " + std::to_string(der.size()) + " bytes (at most " +
                                                   std::to_string(max_certificate_size) + ")");
    const unsigned char* cursor = der.data();
    X509Ptr certificate(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
    if (!certificate || cursor != der.data() + der.size())
        return fail(ErrorKind::invalid_input, "certificate: not one DER X.509 certificate");
    return certificate;
}

// Whether `key` fits `algorithm`: EC on P-256 for ES256, RSA >= 2048 bits for RS256.
Result<void> check_key_fits(EVP_PKEY* key, JwsAlgorithm algorithm) {
    if (algorithm == JwsAlgorithm::es256) {
        char group[64] = {};
        size_t length = 0;
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
            EVP_PKEY_get_group_name(key, group, sizeof group, &length) != 1 ||
            std::string_view(group, length) != "prime256v1")
            return fail(ErrorKind::unsupported, "ES256 needs an EC P-256 key");
        return {};
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_bits(key) < static_cast<int>(min_rsa_bits))
        return fail(ErrorKind::unsupported,
                    "RS256 needs an RSA key of at least " + std::to_string(min_rsa_bits) + " bits");
    return {};
}

// RFC 3339 UTC with seconds: "2026-11-22T09:00:00Z".
std::string format_instant(devices::Microseconds when) {
    using namespace std::chrono;
    const auto day = floor<days>(when);
    const year_month_day date{day};
    const hh_mm_ss<seconds> clock{floor<seconds>(when - day)};
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
    return buffer;
}

SignatureRefusal refuse(SignatureProblem problem, std::string message) {
    return SignatureRefusal{problem, std::move(message)};
}

std::string subject_of(X509* certificate) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr)
        return "?";
    X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(length > 0 ? length : 0));
    BIO_free(bio);
    return out;
}

std::string quote_subject(const std::string& subject) {
    return "\"" + subject.substr(0, 128) + (subject.size() > 128 ? "...\"" : "\"");
}

// OpenSSL leaves failures in a per-thread queue that TLS code reads later
// (SSL_get_error): every entry point here leaves it empty.
struct ClearOpensslErrors {
    ClearOpensslErrors() = default;
    ClearOpensslErrors(const ClearOpensslErrors&) = delete;
    ClearOpensslErrors& operator=(const ClearOpensslErrors&) = delete;
    ~ClearOpensslErrors() { ERR_clear_error(); }
};

const json::string* string_member(const json::object& object, std::string_view name) {
    const json::value* member = object.if_contains(name);
    return member != nullptr ? member->if_string() : nullptr;
}

}  // namespace

const char* to_string(JwsAlgorithm algorithm) noexcept {
    return algorithm == JwsAlgorithm::es256 ? "ES256" : "RS256";
}

std::optional<JwsAlgorithm> jws_algorithm_from_string(std::string_view name) noexcept {
    if (name == "ES256")
        return JwsAlgorithm::es256;
    if (name == "RS256")
        return JwsAlgorithm::rs256;
    return std::nullopt;
}

const char* to_string(SignatureProblem problem) noexcept {
    switch (problem) {
        case SignatureProblem::missing: return "missing";
        case SignatureProblem::malformed: return "malformed";
        case SignatureProblem::too_large: return "too_large";
        case SignatureProblem::unsupported_algorithm: return "unsupported_algorithm";
        case SignatureProblem::untrusted_chain: return "untrusted_chain";
        case SignatureProblem::bad_signature: return "bad_signature";
    }
    return "?";
}

Error SignatureRefusal::to_error() const {
    ErrorKind kind = ErrorKind::invalid_input;
    if (problem == SignatureProblem::too_large)
        kind = ErrorKind::limit_exceeded;
    else if (problem == SignatureProblem::unsupported_algorithm)
        kind = ErrorKind::unsupported;
    return Error(kind, std::string(to_string(problem)) + ": " + message);
}

// --- ECDSA encodings ----------------------------------------------------------

Result<Bytes> ecdsa_der_to_raw(std::span<const std::uint8_t> der, std::size_t half) {
    const ClearOpensslErrors clear_errors;
    const unsigned char* cursor = der.data();
    std::unique_ptr<ECDSA_SIG, SigFree> signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
    if (!signature || cursor != der.data() + der.size())
        return fail(ErrorKind::invalid_input, "ECDSA signature: not a DER ECDSA-Sig-Value");
    const BIGNUM* r = ECDSA_SIG_get0_r(signature.get());
    const BIGNUM* s = ECDSA_SIG_get0_s(signature.get());
    Bytes raw(2 * half);
    if (BN_bn2binpad(r, raw.data(), static_cast<int>(half)) < 0 ||
        BN_bn2binpad(s, raw.data() + half, static_cast<int>(half)) < 0)
        return fail(ErrorKind::invalid_input, "ECDSA signature: r or s wider than " + std::to_string(half) + " bytes");
    return raw;
}

Result<Bytes> ecdsa_raw_to_der(std::span<const std::uint8_t> raw) {
    const ClearOpensslErrors clear_errors;
    if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132)
        return fail(ErrorKind::invalid_input,
                    "ECDSA signature: " + std::to_string(raw.size()) + " bytes is not r||s of equal halves");
    const int half = static_cast<int>(raw.size() / 2);
    std::unique_ptr<ECDSA_SIG, SigFree> signature(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
    BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
    if (!signature || r == nullptr || s == nullptr || ECDSA_SIG_set0(signature.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return fail(ErrorKind::internal, "ECDSA signature: out of memory");
    }
    const int length = i2d_ECDSA_SIG(signature.get(), nullptr);
    if (length <= 0)
        return fail(ErrorKind::internal, "ECDSA signature: cannot encode");
    Bytes der(static_cast<std::size_t>(length));
    unsigned char* out = der.data();
    i2d_ECDSA_SIG(signature.get(), &out);
    return der;
}

// --- signing ----------------------------------------------------------------

Result<std::string> signing_payload(const json::object& bundle) {
    return canonicalize_without(bundle, "signature");
}

Result<BundleSigner> BundleSigner::prepare(const SignatureRequest& request, SignFunction sign) {
    const ClearOpensslErrors clear_errors;
    if (request.certificate_chain.empty())
        return fail(ErrorKind::invalid_input, "sign bundle: empty certificate chain");
    if (request.who_system.empty() || request.who_value.empty())
        return fail(ErrorKind::invalid_input, "sign bundle: empty signer identifier (who)");
    const X509Ptr leaf = CB_TRY(parse_der_certificate(request.certificate_chain.front()));
    EVP_PKEY* leaf_key = X509_get0_pubkey(leaf.get());
    if (leaf_key == nullptr)
        return fail(ErrorKind::invalid_input, "sign bundle: the certificate has no usable public key");
    const auto fits = check_key_fits(leaf_key, request.algorithm);
    if (!fits)
        return fits.error().with_context("sign bundle");
    BundleSigner signer;
    signer.m_algorithm = request.algorithm;
    for (const Bytes& certificate : request.certificate_chain)
        signer.m_x5c.push_back(base64_encode(certificate));
    if (request.algorithm == JwsAlgorithm::rs256)
        signer.m_rsa_signature_size = static_cast<std::size_t>(EVP_PKEY_get_size(leaf_key));
    signer.m_who_system = request.who_system;
    signer.m_who_value = request.who_value;
    signer.m_sign = std::move(sign);
    return signer;
}

Result<std::shared_ptr<const std::string>> BundleSigner::encoded_header(const std::string& when) const {
    // sigT has a one-second resolution: the header (with its kilobytes of
    // x5c) is written canonically and encoded once per second, not per bundle.
    {
        std::lock_guard lock(m_header->mutex);
        if (m_header->when == when)
            return m_header->encoded;
    }
    CanonicalWriter header;
    header.begin_object().member("alg", to_string(m_algorithm)).member("sigT", when).key("x5c").begin_array();
    for (const std::string& certificate : m_x5c)
        header.string(certificate);
    header.end_array().end_object();
    auto encoded = std::make_shared<const std::string>(base64url_encode(CB_TRY(std::move(header).finish())));
    std::lock_guard lock(m_header->mutex);
    m_header->when = when;
    m_header->encoded = encoded;
    return encoded;
}

Result<std::string> BundleSigner::signature_over(std::string_view payload, const std::string& when) const {
    const auto header = CB_TRY(encoded_header(when));
    std::string signing_input;
    signing_input.reserve(header->size() + 1 + (payload.size() + 2) / 3 * 4);
    signing_input += *header;
    signing_input += '.';
    base64url_append(bytes_of(payload), signing_input);

    const Bytes signature = CB_TRY(m_sign(bytes_of(signing_input)));
    if (m_algorithm == JwsAlgorithm::es256 && signature.size() != 64)
        return fail(ErrorKind::invalid_input,
                    "sign bundle: ES256 signature of " + std::to_string(signature.size()) + " bytes, expected 64");
    if (m_algorithm == JwsAlgorithm::rs256 && signature.size() != m_rsa_signature_size)
        return fail(ErrorKind::invalid_input, "sign bundle: RS256 signature of " + std::to_string(signature.size()) +
                                                  " bytes does not match the certificate's key");
    std::string compact = *header;
    compact += "..";
    base64url_append(signature, compact);
    std::string data;
    data.reserve((compact.size() + 2) / 3 * 4);
    base64_append(bytes_of(compact), data);

    CanonicalWriter out(data.size() + 512);
    out.begin_object()
        .member("data", data)
        .member("sigFormat", jose_format)
        .member("targetFormat", "application/fhir+json");
    out.key("type")
        .begin_array()
        .begin_object()
        .member("code", signature_type_source)
        .member("system", signature_type_system)
        .end_object()
        .end_array();
    out.member("when", when).key("who").begin_object().key("identifier").begin_object();
    out.member("system", m_who_system).member("value", m_who_value).end_object().end_object().end_object();
    return std::move(out).finish();
}

Result<void> BundleSigner::sign(json::object& bundle, devices::Microseconds when_time) const {
    if (bundle.contains("signature"))
        return fail(ErrorKind::invalid_input, "sign bundle: the bundle is already signed");
    const std::string when = format_instant(when_time);
    const std::string payload = CB_TRY(signing_payload(bundle));
    bundle.emplace("signature", json::parse(CB_TRY(signature_over(payload, when))));
    return {};
}

Result<std::string> BundleSigner::signed_text(const json::object& bundle, devices::Microseconds when_time) const {
    if (bundle.contains("signature"))
        return fail(ErrorKind::invalid_input, "sign bundle: the bundle is already signed");
    return signed_canonical_text(CB_TRY(canonicalize(bundle)), when_time);
}

Result<std::string> BundleSigner::signed_canonical_text(std::string_view payload,
                                                        devices::Microseconds when_time) const {
    if (payload.size() < 2 || payload.front() != '{' || payload.back() != '}')
        return fail(ErrorKind::invalid_input, "sign bundle: the canonical bundle is not a JSON object");
    const std::string when = format_instant(when_time);
    const std::string signature = CB_TRY(signature_over(payload, when));
    // {"signature":{...}, + the payload's members: the signed bundle without a
    // second serialization (a verifier canonicalizes it again anyway).
    std::string text;
    text.reserve(payload.size() + signature.size() + 16);
    text += R"({"signature":)";
    text += signature;
    if (payload.size() > 2)
        text += ',';
    text.append(payload, 1);
    return text;
}

Result<void> sign_bundle(json::object& bundle, const SignatureRequest& request, const SignFunction& sign) {
    if (bundle.contains("signature"))
        return fail(ErrorKind::invalid_input, "sign bundle: the bundle is already signed");
    const BundleSigner signer = CB_TRY(BundleSigner::prepare(request, sign));
    return signer.sign(bundle, request.when);
}

// --- trust anchors ------------------------------------------------------------

namespace {
std::shared_ptr<X509_STORE> new_store() {
    return std::shared_ptr<X509_STORE>(X509_STORE_new(), X509_STORE_free);
}
}  // namespace

Result<TrustAnchors> TrustAnchors::from_pem(std::string_view pem) {
    const ClearOpensslErrors clear_errors;
    auto store = new_store();
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!store || bio == nullptr) {
        BIO_free(bio);
        return fail(ErrorKind::internal, "trust anchors: out of memory");
    }
    std::size_t count = 0;
    while (true) {
        X509Ptr certificate(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
        if (!certificate)
            break;
        X509_STORE_add_cert(store.get(), certificate.get());
        ++count;
    }
    BIO_free(bio);
    if (count == 0)
        return fail(ErrorKind::invalid_input, "trust anchors: no PEM certificate");
    return TrustAnchors(std::move(store));
}

Result<TrustAnchors> TrustAnchors::from_der(std::span<const Bytes> certificates) {
    const ClearOpensslErrors clear_errors;
    auto store = new_store();
    if (!store)
        return fail(ErrorKind::internal, "trust anchors: out of memory");
    if (certificates.empty())
        return fail(ErrorKind::invalid_input, "trust anchors: no certificate");
    for (const Bytes& der : certificates) {
        const X509Ptr certificate = CB_TRY(parse_der_certificate(der));
        X509_STORE_add_cert(store.get(), certificate.get());
    }
    return TrustAnchors(std::move(store));
}

// --- verification ------------------------------------------------------------

Result<VerifiedSignature, SignatureRefusal> verify_bundle_signature(std::string_view text, const TrustAnchors& anchors,
                                                                    devices::Microseconds at) {
    if (text.size() > max_bundle_size)
        return refuse(SignatureProblem::too_large, "bundle: " + std::to_string(text.size()) + " bytes (at most " +
                                                       std::to_string(max_bundle_size) + ")");
    json::parse_options options;
    options.max_depth = max_bundle_depth;
    boost::system::error_code code;
    const json::value root = json::parse(text, code, {}, options);
    if (code == json::error::too_deep)
        return refuse(SignatureProblem::too_large, "bundle: nested deeper than " + std::to_string(max_bundle_depth));
    if (code)
        return refuse(SignatureProblem::malformed, "bundle: not JSON (" + code.message() + ")");
    return verify_bundle_signature_value(root, anchors, at);
}

Result<VerifiedSignature, SignatureRefusal> verify_bundle_signature_value(const json::value& bundle_value,
                                                                          const TrustAnchors& anchors,
                                                                          devices::Microseconds at) {
    const ClearOpensslErrors clear_errors;
    const json::object* bundle = bundle_value.if_object();
    if (bundle == nullptr)
        return refuse(SignatureProblem::malformed, "bundle: not a JSON object");
    const json::value* signature_value = bundle->if_contains("signature");
    if (signature_value == nullptr)
        return refuse(SignatureProblem::missing, "Bundle.signature: missing");
    const json::object* signature = signature_value->if_object();
    if (signature == nullptr)
        return refuse(SignatureProblem::malformed, "Bundle.signature: not an object");
    const json::string* format = string_member(*signature, "sigFormat");
    if (format == nullptr || *format != jose_format)
        return refuse(SignatureProblem::malformed, "Bundle.signature.sigFormat: expected \"application/jose\"");
    const json::string* when = string_member(*signature, "when");
    if (when == nullptr)
        return refuse(SignatureProblem::malformed, "Bundle.signature.when: expected a string");

    VerifiedSignature verified;
    if (const json::value* who = signature->if_contains("who"); who != nullptr && who->is_object()) {
        if (const json::value* identifier = who->get_object().if_contains("identifier");
            identifier != nullptr && identifier->is_object()) {
            if (const json::string* system = string_member(identifier->get_object(), "system"))
                verified.who_system = *system;
            if (const json::string* value = string_member(identifier->get_object(), "value"))
                verified.who_value = *value;
        }
    }

    const json::string* data = string_member(*signature, "data");
    if (data == nullptr)
        return refuse(SignatureProblem::malformed, "Bundle.signature.data: expected a string");
    if (data->size() > max_signature_data)
        return refuse(SignatureProblem::too_large, "Bundle.signature.data: " + std::to_string(data->size()) +
                                                       " characters (at most " + std::to_string(max_signature_data) +
                                                       ")");
    const auto compact_bytes = base64_decode(*data);
    if (!compact_bytes)
        return refuse(SignatureProblem::malformed, "Bundle.signature.data: " + compact_bytes.error().message());
    const std::string compact(compact_bytes->begin(), compact_bytes->end());

    // header ".." signature: the payload part must be empty (detached).
    const std::size_t first_dot = compact.find('.');
    const std::size_t second_dot = first_dot == std::string::npos ? first_dot : compact.find('.', first_dot + 1);
    if (first_dot == std::string::npos || second_dot != first_dot + 1 ||
        compact.find('.', second_dot + 1) != std::string::npos)
        return refuse(SignatureProblem::malformed, "JWS: expected header..signature (detached payload)");
    const std::string_view encoded_header = std::string_view(compact).substr(0, first_dot);
    const std::string_view encoded_signature = std::string_view(compact).substr(second_dot + 1);

    const auto header_bytes = base64url_decode(encoded_header);
    if (!header_bytes)
        return refuse(SignatureProblem::malformed, "JWS header: " + header_bytes.error().message());
    json::parse_options options;
    options.max_depth = 4;
    boost::system::error_code code;
    const json::value header_value = json::parse(
        std::string_view(reinterpret_cast<const char*>(header_bytes->data()), header_bytes->size()), code, {}, options);
    if (code || !header_value.is_object())
        return refuse(SignatureProblem::malformed, "JWS header: not a JSON object");
    const json::object& header = header_value.get_object();
    if (header.contains("crit"))
        return refuse(SignatureProblem::unsupported_algorithm,
                      "JWS header: \"crit\" names extensions we do not understand");
    if (header.contains("b64"))
        return refuse(SignatureProblem::unsupported_algorithm, "JWS header: \"b64\" (RFC 7797) is not supported");
    const json::string* alg = string_member(header, "alg");
    const auto algorithm = alg != nullptr ? jws_algorithm_from_string(*alg) : std::nullopt;
    if (!algorithm)
        return refuse(SignatureProblem::unsupported_algorithm, "JWS header: alg must be \"ES256\" or \"RS256\"");
    verified.algorithm = *algorithm;
    const json::string* signing_time = string_member(header, "sigT");
    if (signing_time == nullptr || *signing_time != *when)
        return refuse(SignatureProblem::malformed, "JWS header: sigT must equal Bundle.signature.when");
    verified.signing_time = *signing_time;

    const json::value* x5c_value = header.if_contains("x5c");
    if (x5c_value == nullptr || !x5c_value->is_array() || x5c_value->get_array().empty())
        return refuse(SignatureProblem::malformed, "JWS header: x5c must be a non-empty array");
    if (x5c_value->get_array().size() > max_chain_length)
        return refuse(SignatureProblem::too_large,
                      "JWS header: x5c holds more than " + std::to_string(max_chain_length) + " certificates");
    std::unique_ptr<STACK_OF(X509), StackFree> intermediates(sk_X509_new_null());
    X509Ptr leaf;
    for (std::size_t i = 0; i < x5c_value->get_array().size(); ++i) {
        const json::value& element = x5c_value->get_array()[i];
        const std::string where = "JWS header: x5c[" + std::to_string(i) + "]";
        if (!element.is_string())
            return refuse(SignatureProblem::malformed, where + ": not a string");
        auto der = base64_decode(element.get_string());
        if (!der)
            return refuse(SignatureProblem::malformed, where + ": " + der.error().message());
        auto certificate = parse_der_certificate(*der);
        if (!certificate)
            return refuse(certificate.error().kind() == ErrorKind::limit_exceeded ? SignatureProblem::too_large
                                                                                  : SignatureProblem::malformed,
                          where + ": " + certificate.error().message());
        verified.chain.push_back(std::move(der).value());
        if (i == 0) {
            leaf = std::move(certificate).value();
        } else if (!intermediates || sk_X509_push(intermediates.get(), certificate->get()) == 0) {
            return refuse(SignatureProblem::malformed, where + ": out of memory");
        } else {
            (void)certificate->release();  // owned by the stack now
        }
    }
    verified.signer = subject_of(leaf.get());

    // The chain, at time `at`.
    std::unique_ptr<X509_STORE_CTX, StoreContextFree> context(X509_STORE_CTX_new());
    if (!context || X509_STORE_CTX_init(context.get(), anchors.store(), leaf.get(), intermediates.get()) != 1)
        return refuse(SignatureProblem::untrusted_chain, "chain: cannot set up verification");
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(context.get()), static_cast<time_t>(seconds));
    if (X509_verify_cert(context.get()) != 1) {
        const int error = X509_STORE_CTX_get_error(context.get());
        return refuse(SignatureProblem::untrusted_chain,
                      "chain of " + quote_subject(verified.signer) + ": " + X509_verify_cert_error_string(error));
    }
    if ((X509_get_extension_flags(leaf.get()) & EXFLAG_KUSAGE) != 0 &&
        (X509_get_key_usage(leaf.get()) & KU_DIGITAL_SIGNATURE) == 0)
        return refuse(SignatureProblem::untrusted_chain,
                      "signer certificate: keyUsage does not allow digitalSignature");

    EVP_PKEY* key = X509_get0_pubkey(leaf.get());
    if (key == nullptr)
        return refuse(SignatureProblem::unsupported_algorithm, "signer certificate: no usable public key");
    if (const auto fits = check_key_fits(key, *algorithm); !fits)
        return refuse(SignatureProblem::unsupported_algorithm, "signer certificate: " + fits.error().message());

    // The signature over the recomputed payload.
    auto payload = signing_payload(*bundle);
    if (!payload)
        return refuse(SignatureProblem::malformed, "payload: " + payload.error().message());
    verified.payload = std::move(payload).value();
    const std::string signing_input = std::string(encoded_header) + "." + base64url_encode(verified.payload);
    const auto raw_signature = base64url_decode(encoded_signature);
    if (!raw_signature)
        return refuse(SignatureProblem::malformed, "JWS signature: " + raw_signature.error().message());
    Bytes signature_bytes = *raw_signature;
    if (*algorithm == JwsAlgorithm::es256) {
        if (signature_bytes.size() != 64)
            return refuse(SignatureProblem::bad_signature,
                          "JWS signature: ES256 needs 64 bytes, got " + std::to_string(signature_bytes.size()));
        auto der = ecdsa_raw_to_der(signature_bytes);
        if (!der)
            return refuse(SignatureProblem::bad_signature, "JWS signature: " + der.error().message());
        signature_bytes = std::move(der).value();
    }
    std::unique_ptr<EVP_MD_CTX, MdContextFree> digest(EVP_MD_CTX_new());
    const auto input = bytes_of(signing_input);
    if (!digest || EVP_DigestVerifyInit(digest.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestVerify(digest.get(), signature_bytes.data(), signature_bytes.size(), input.data(), input.size()) != 1)
        return refuse(SignatureProblem::bad_signature,
                      "JWS signature of " + quote_subject(verified.signer) + " does not verify over the bundle");
    return verified;
}

}  // namespace cb::upstream
