// Keys and certificates are generated at test time (never committed). Key
// generation is the only randomness; no assertion depends on it, and the
// verification time is fixed, so the tests do not depend on the clock.
#include "protocol/cards/certificate.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

using cb::cards::Bytes;

struct KeyDeleter {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct DigestContextDeleter {
    void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};
struct ExtensionDeleter {
    void operator()(X509_EXTENSION* extension) const noexcept { X509_EXTENSION_free(extension); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using DigestContextPtr = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, ExtensionDeleter>;
using cb::cards::X509Ptr;

// 2026-01-01T00:00:00Z; certificates are valid 2025-01-01 .. 2028-01-01.
constexpr std::int64_t verification_time = 1767225600;
constexpr std::int64_t not_before = 1735689600;
constexpr std::int64_t not_after = 1830297600;

KeyPtr ec_key(const char* curve = "P-256") {
    KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    REQUIRE(key);
    return key;
}

KeyPtr rsa_key(std::size_t bits) {
    KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
    REQUIRE(key);
    return key;
}

using Subject = std::vector<std::pair<std::string, std::string>>;

struct CertificateSpec {
    Subject subject;
    bool is_ca = false;
    std::int64_t valid_from = not_before;
    std::int64_t valid_until = not_after;
};

void add_extension(X509* certificate, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
    ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
    REQUIRE(extension);
    REQUIRE(X509_add_ext(certificate, extension.get(), -1) == 1);
}

// A certificate for `key`, signed by `issuer_key` (self-signed when
// `issuer` is null), as DER.
Bytes make_certificate(const CertificateSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, long serial) {
    X509Ptr certificate(X509_new());
    REQUIRE(certificate);
    REQUIRE(X509_set_version(certificate.get(), X509_VERSION_3) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), serial) == 1);
    REQUIRE(ASN1_TIME_set(X509_getm_notBefore(certificate.get()), static_cast<time_t>(spec.valid_from)));
    REQUIRE(ASN1_TIME_set(X509_getm_notAfter(certificate.get()), static_cast<time_t>(spec.valid_until)));
    REQUIRE(X509_set_pubkey(certificate.get(), key) == 1);
    X509_NAME* name = X509_get_subject_name(certificate.get());
    for (const auto& [field, value] : spec.subject)
        REQUIRE(X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                           reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) == 1);
    X509* effective_issuer = issuer != nullptr ? issuer : certificate.get();
    REQUIRE(X509_set_issuer_name(certificate.get(), X509_get_subject_name(effective_issuer)) == 1);
    add_extension(certificate.get(), effective_issuer, NID_basic_constraints,
                  spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(certificate.get(), effective_issuer, NID_key_usage,
                  spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_extension(certificate.get(), effective_issuer, NID_subject_key_identifier, "hash");
    add_extension(certificate.get(), effective_issuer, NID_authority_key_identifier, "keyid:always");
    REQUIRE(X509_sign(certificate.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0);

    const int size = i2d_X509(certificate.get(), nullptr);
    REQUIRE(size > 0);
    Bytes der(static_cast<std::size_t>(size));
    unsigned char* cursor = der.data();
    REQUIRE(i2d_X509(certificate.get(), &cursor) == size);
    return der;
}

X509Ptr parse(const Bytes& der) {
    auto certificate = cb::cards::parse_certificate(der, "test certificate");
    REQUIRE(certificate);
    return std::move(certificate).value();
}

Bytes sign(EVP_PKEY* key, const Bytes& message) {
    DigestContextPtr context(EVP_MD_CTX_new());
    REQUIRE(context);
    EVP_PKEY_CTX* key_context = nullptr;
    REQUIRE(EVP_DigestSignInit(context.get(), &key_context, EVP_sha256(), nullptr, key) == 1);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        REQUIRE(EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PADDING) == 1);
    std::size_t size = 0;
    REQUIRE(EVP_DigestSign(context.get(), nullptr, &size, message.data(), message.size()) == 1);
    Bytes signature(size);
    REQUIRE(EVP_DigestSign(context.get(), signature.data(), &size, message.data(), message.size()) == 1);
    signature.resize(size);
    return signature;
}

Subject practitioner_subject() {
    return {{"C", "FR"},
            {"O", "CABINET TEST"},
            {"GN", "Jeanne"},
            {"SN", "Martin-Hélène"},
            {"serialNumber", "810001234565"},  // "8" + RPPS 10001234565 (Luhn)
            {"title", "10"},
            {"CN", "810001234565/Jeanne Martin"}};
}

// A three-level PKI: root CA -> intermediate CA -> leaf, P-256 throughout
// unless a leaf key is given.
struct Pki {
    KeyPtr root_key = ec_key();
    KeyPtr intermediate_key = ec_key();
    Bytes root;
    Bytes intermediate;

    Pki() {
        root = make_certificate({{{"CN", "Test IGC-Sante Root"}}, true}, root_key.get(), nullptr, nullptr, 1);
        const X509Ptr root_certificate = parse(root);
        intermediate = make_certificate({{{"CN", "Test IGC-Sante Cartes"}}, true}, intermediate_key.get(),
                                        root_certificate.get(), root_key.get(), 2);
    }

    Bytes leaf(const CertificateSpec& spec, EVP_PKEY* key) const {
        const X509Ptr issuer = parse(intermediate);
        return make_certificate(spec, key, issuer.get(), intermediate_key.get(), 3);
    }

    cb::Result<cb::cards::VerifiedCertificate> verify(const Bytes& leaf_der,
                                                      std::int64_t at = verification_time) const {
        const std::vector<Bytes> intermediates{intermediate};
        return cb::cards::verify_chain(leaf_der, intermediates, root, at);
    }
};

const Pki& pki() {
    static const Pki shared;
    return shared;
}

void check_identity_rejected(const Subject& subject, const std::string& message) {
    const KeyPtr key = ec_key();
    const Bytes leaf = pki().leaf({subject}, key.get());
    const auto verified = pki().verify(leaf);
    REQUIRE(verified);
    const auto identity = cb::cards::practitioner_identity_from_certificate(*verified);
    REQUIRE_FALSE(identity);
    CHECK(identity.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(identity.error().message() == message);
}

Subject with(Subject subject, const std::string& field, const std::string& value) {
    for (auto& [name, text] : subject)
        if (name == field)
            text = value;
    return subject;
}

Subject without(Subject subject, const std::string& field) {
    std::erase_if(subject, [&](const auto& entry) { return entry.first == field; });
    return subject;
}

}  // namespace

TEST_CASE("verify_chain accepts leaf, intermediate and trusted root at the given time") {
    const KeyPtr key = ec_key();
    const Bytes leaf = pki().leaf({practitioner_subject()}, key.get());
    const auto verified = pki().verify(leaf);
    REQUIRE(verified);
    CHECK(verified->certificate() != nullptr);
}

TEST_CASE("verify_chain rejects expired, not yet valid and untrusted chains") {
    // The leaf's validity lies inside its CAs', so that the leaf is the one
    // found out of date (OpenSSL reports the first failure from the top).
    const KeyPtr key = ec_key();
    constexpr std::int64_t leaf_from = not_before + 86400;
    constexpr std::int64_t leaf_until = not_after - 86400;
    const Bytes leaf = pki().leaf({practitioner_subject(), false, leaf_from, leaf_until}, key.get());

    const auto expired = pki().verify(leaf, leaf_until + 1);
    REQUIRE_FALSE(expired);
    CHECK(expired.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(expired.error().message() == "certificate chain: certificate has expired (at depth 0)");

    const auto early = pki().verify(leaf, leaf_from - 1);
    REQUIRE_FALSE(early);
    CHECK(early.error().message() == "certificate chain: certificate is not yet valid (at depth 0)");

    const auto no_intermediate = cb::cards::verify_chain(leaf, {}, pki().root, verification_time);
    REQUIRE_FALSE(no_intermediate);
    CHECK(no_intermediate.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(no_intermediate.error().message() ==
          "certificate chain: unable to get local issuer certificate (at depth 0)");

    const Pki other;
    const std::vector<Bytes> intermediates{pki().intermediate};
    const auto wrong_root = cb::cards::verify_chain(leaf, intermediates, other.root, verification_time);
    REQUIRE_FALSE(wrong_root);
    CHECK(wrong_root.error().message() == "certificate chain: unable to get local issuer certificate (at depth 1)");
}

TEST_CASE("verify_chain rejects a leaf used as a CA") {
    const KeyPtr leaf_key = ec_key();
    const Bytes leaf = pki().leaf({practitioner_subject()}, leaf_key.get());
    const X509Ptr leaf_certificate = parse(leaf);
    const KeyPtr grandchild_key = ec_key();
    const Bytes grandchild =
        make_certificate({{{"CN", "below a leaf"}}}, grandchild_key.get(), leaf_certificate.get(), leaf_key.get(), 4);
    const std::vector<Bytes> intermediates{leaf, pki().intermediate};
    const auto verified = cb::cards::verify_chain(grandchild, intermediates, pki().root, verification_time);
    REQUIRE_FALSE(verified);
    CHECK(verified.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(verified.error().message() == "certificate chain: invalid CA certificate (at depth 1)");
}

TEST_CASE("verify_chain rejects malformed and oversized DER, naming the certificate") {
    const auto garbage = cb::cards::verify_chain(Bytes{0x30, 0x03, 0x01, 0x02}, {}, pki().root, verification_time);
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(garbage.error().message() == "leaf certificate: not a DER certificate");

    Bytes trailing = pki().intermediate;
    trailing.push_back(0x00);
    const std::vector<Bytes> intermediates{trailing};
    const KeyPtr key = ec_key();
    const Bytes leaf = pki().leaf({practitioner_subject()}, key.get());
    const auto extra = cb::cards::verify_chain(leaf, intermediates, pki().root, verification_time);
    REQUIRE_FALSE(extra);
    CHECK(extra.error().message() ==
          "intermediate certificate 1: 1 bytes after the certificate (or a non-canonical encoding)");

    const auto bad_root = cb::cards::verify_chain(leaf, {}, Bytes{}, verification_time);
    REQUIRE_FALSE(bad_root);
    CHECK(bad_root.error().message() == "trusted CA certificate: not a DER certificate");

    const auto huge = cb::cards::verify_chain(Bytes(16 * 1024 + 1, 0x30), {}, pki().root, verification_time);
    REQUIRE_FALSE(huge);
    CHECK(huge.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(huge.error().message() == "leaf certificate: 16385 bytes exceed the 16384-byte cap");

    const std::vector<Bytes> five(5, pki().intermediate);
    const auto too_many = cb::cards::verify_chain(leaf, five, pki().root, verification_time);
    REQUIRE_FALSE(too_many);
    CHECK(too_many.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(too_many.error().message() == "certificate chain: 5 intermediates exceed the cap of 4");
}

TEST_CASE("verify_card_signature checks ECDSA P-256 over the challenge") {
    const KeyPtr key = ec_key();
    const auto verified = pki().verify(pki().leaf({practitioner_subject()}, key.get()));
    REQUIRE(verified);
    const Bytes challenge{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    const Bytes signature = sign(key.get(), challenge);
    CHECK(cb::cards::verify_card_signature(*verified, challenge, signature));

    const Bytes other_challenge{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x09};
    const auto wrong = cb::cards::verify_card_signature(*verified, other_challenge, signature);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(wrong.error().message() == "card signature: does not verify with the certificate's key");

    const auto garbage = cb::cards::verify_card_signature(*verified, challenge, Bytes{0x30, 0x00});
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().kind() == cb::ErrorKind::invalid_input);

    const auto empty = cb::cards::verify_card_signature(*verified, challenge, Bytes{});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().kind() == cb::ErrorKind::invalid_input);

    const auto huge = cb::cards::verify_card_signature(*verified, challenge, Bytes(1025, 0x00));
    REQUIRE_FALSE(huge);
    CHECK(huge.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(huge.error().message() == "card signature: 1025 bytes exceed the 1024-byte cap");
}

TEST_CASE("verify_card_signature checks RSA PKCS#1 v1.5 with SHA-256") {
    const KeyPtr key = rsa_key(2048);
    const auto verified = pki().verify(pki().leaf({practitioner_subject()}, key.get()));
    REQUIRE(verified);
    const Bytes challenge(32, 0xA5);
    const Bytes signature = sign(key.get(), challenge);
    CHECK(signature.size() == 256);
    CHECK(cb::cards::verify_card_signature(*verified, challenge, signature));

    Bytes tampered = signature;
    tampered[10] ^= 0x01;
    const auto wrong = cb::cards::verify_card_signature(*verified, challenge, tampered);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().message() == "card signature: does not verify with the certificate's key");
}

TEST_CASE("verify_card_signature refuses keys outside P-256 and RSA-2048+") {
    const KeyPtr p384 = ec_key("P-384");
    const auto verified_p384 = pki().verify(pki().leaf({practitioner_subject()}, p384.get()));
    REQUIRE(verified_p384);
    const Bytes challenge(16, 0x01);
    const auto curve = cb::cards::verify_card_signature(*verified_p384, challenge, sign(p384.get(), challenge));
    REQUIRE_FALSE(curve);
    CHECK(curve.error().kind() == cb::ErrorKind::unsupported);
    CHECK(curve.error().message() == "card signature: EC key is not on curve P-256");

    const KeyPtr small = rsa_key(1024);
    const auto verified_small = pki().verify(pki().leaf({practitioner_subject()}, small.get()));
    REQUIRE(verified_small);
    const auto weak = cb::cards::verify_card_signature(*verified_small, challenge, sign(small.get(), challenge));
    REQUIRE_FALSE(weak);
    CHECK(weak.error().kind() == cb::ErrorKind::unsupported);
    CHECK(weak.error().message() == "card signature: RSA key of 1024 bits, expected 2048 or more");
}

TEST_CASE("practitioner_identity_from_certificate reads our modelling of the subject") {
    const KeyPtr key = ec_key();
    const Bytes leaf = pki().leaf({practitioner_subject()}, key.get());
    const auto verified = pki().verify(leaf);
    REQUIRE(verified);
    const auto identity = cb::cards::practitioner_identity_from_certificate(*verified);
    REQUIRE(identity);
    CHECK(identity->given_name() == "Jeanne");
    CHECK(identity->family_name() == "Martin-Hélène");
    CHECK(identity->idnps() == "810001234565");
    CHECK(identity->rpps() == "10001234565");
    CHECK(identity->profession_code() == "10");

    const auto unverified = cb::cards::practitioner_identity_from_unverified_der(leaf);
    REQUIRE(unverified);
    CHECK(unverified->idnps() == "810001234565");
}

TEST_CASE("practitioner_identity_from_certificate rejects each malformed field") {
    const Subject base = practitioner_subject();
    check_identity_rejected(without(base, "GN"), "certificate subject: no GN (given name)");
    check_identity_rejected(without(base, "SN"), "certificate subject: no SN (family name)");
    check_identity_rejected(without(base, "serialNumber"), "certificate subject: no serialNumber (IDNPS)");
    check_identity_rejected(without(base, "title"), "certificate subject: no title (profession code)");

    Subject twice = base;
    twice.emplace_back("title", "21");
    check_identity_rejected(twice, "certificate subject: more than one title (profession code)");

    check_identity_rejected(with(base, "serialNumber", "81000123456"),
                            "certificate subject: serialNumber (IDNPS): expected 12 digits, got 11 characters");
    check_identity_rejected(with(base, "serialNumber", "81000123456X"),
                            "certificate subject: serialNumber (IDNPS): not all digits");
    check_identity_rejected(with(base, "serialNumber", "010001234565"),
                            "certificate subject: serialNumber (IDNPS): must start with 8 (RPPS)");
    check_identity_rejected(with(base, "serialNumber", "810001234566"),
                            "certificate subject: serialNumber (IDNPS): RPPS Luhn check digit mismatch");
    check_identity_rejected(with(base, "title", "1"),
                            "certificate subject: title (profession code): expected 2 digits");
    check_identity_rejected(with(base, "title", "MD"),
                            "certificate subject: title (profession code): expected 2 digits");
    check_identity_rejected(with(base, "GN", std::string(65, 'a')),
                            "certificate subject: GN (given name): 65 bytes exceed the 64-byte cap");
    check_identity_rejected(with(base, "SN", "Mar\ttin"),
                            "certificate subject: SN (family name): control character at position 3");
}

TEST_CASE("practitioner_identity_from_unverified_der rejects what is not a certificate") {
    const auto garbage = cb::cards::practitioner_identity_from_unverified_der(Bytes{0x30, 0x82, 0x01});
    REQUIRE_FALSE(garbage);
    CHECK(garbage.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(garbage.error().message() == "certificate: not a DER certificate");
}

TEST_CASE("passes_luhn checks the RPPS check digit") {
    CHECK(cb::cards::passes_luhn("10001234565"));
    CHECK_FALSE(cb::cards::passes_luhn("10001234566"));
    CHECK(cb::cards::passes_luhn("79927398713"));  // the textbook example
    CHECK_FALSE(cb::cards::passes_luhn(""));
    CHECK_FALSE(cb::cards::passes_luhn("1234a"));
}
