// Detached JWS over the canonical bundle: round trips with ES256 and RS256,
// and each way a signature must fail (tampering, foreign chain, expiry,
// algorithm games). Keys and certificates are made in-process at test time.
#include "protocol/upstream/jws.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "protocol/upstream/canonical_json.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "tests/support/test_keys.hpp"
#include "tests/unit/protocol/upstream/bundle_fixtures.hpp"

using namespace cb::upstream;
using cb::devices::MeasurementType;
using cb::test::TestKeyType;
namespace json = boost::json;

namespace {

// 2026-11-22T09:00:30Z: within the test certificates' validity.
const cb::devices::Microseconds signing_time{std::chrono::seconds(1795338030)};

struct Pki {
    cb::test::TestCertificate ca =
        cb::test::make_test_certificate(TestKeyType::ec_p256, "test facility CA", nullptr, true);
    cb::test::TestCertificate ec_leaf =
        cb::test::make_test_certificate(TestKeyType::ec_p256, "test facility", &ca, false, 2);
    cb::test::TestCertificate rsa_leaf =
        cb::test::make_test_certificate(TestKeyType::rsa_2048, "test facility", &ca, false, 3);
    cb::test::TestCertificate other_ca =
        cb::test::make_test_certificate(TestKeyType::ec_p256, "test facility CA", nullptr, true, 4);
};

const Pki& pki() {
    static const Pki instance;
    return instance;
}

SignFunction signer_of(EVP_PKEY* key, JwsAlgorithm algorithm) {
    return [key, algorithm](std::span<const std::uint8_t> data) -> cb::Result<Bytes> {
        const Bytes der = cb::test::openssl_sign(key, data.data(), data.size());
        if (algorithm == JwsAlgorithm::es256)
            return ecdsa_der_to_raw(der);
        return der;
    };
}

SignatureRequest request_for(const cb::test::TestCertificate& leaf, JwsAlgorithm algorithm) {
    return SignatureRequest{algorithm, {leaf.der}, signing_time, "urn:oid:1.2.250.1.71.4.2.2", "750000000"};
}

json::object signed_bundle(JwsAlgorithm algorithm = JwsAlgorithm::es256) {
    json::object bundle = build_bundle(test::bundle_input(MeasurementType::blood_pressure)).value();
    const auto& leaf = algorithm == JwsAlgorithm::es256 ? pki().ec_leaf : pki().rsa_leaf;
    const auto signed_ok = sign_bundle(bundle, request_for(leaf, algorithm), signer_of(leaf.key.get(), algorithm));
    if (!signed_ok)
        FAIL(signed_ok.error().message());
    return bundle;
}

TrustAnchors anchors(const std::string& pem) {
    return TrustAnchors::from_pem(pem).value();
}

std::string compact_of(const json::object& bundle) {
    const Bytes bytes = base64_decode(bundle.at("signature").at("data").as_string()).value();
    return std::string(bytes.begin(), bytes.end());
}

void set_compact(json::object& bundle, const std::string& compact) {
    bundle["signature"].as_object()["data"] =
        base64_encode(std::span(reinterpret_cast<const std::uint8_t*>(compact.data()), compact.size()));
}

void check_refused(const cb::Result<VerifiedSignature, SignatureRefusal>& result, SignatureProblem problem) {
    REQUIRE_FALSE(result.has_value());
    INFO(result.error().message);
    CHECK(result.error().problem == problem);
    CHECK_FALSE(result.error().message.empty());
}

}  // namespace

TEST_CASE("an ES256 signature verifies against the facility CA") {
    const json::object bundle = signed_bundle();
    const auto verified = verify_bundle_signature_value(json::value(bundle), anchors(pki().ca.pem), signing_time);
    if (!verified)
        FAIL(verified.error().message);
    CHECK(verified->algorithm == JwsAlgorithm::es256);
    CHECK(verified->signer == "CN=test facility");
    CHECK(verified->signing_time == "2026-11-22T09:00:30Z");
    CHECK(verified->who_value == "750000000");
    REQUIRE(verified->chain.size() == 1);
    CHECK(verified->chain[0] == pki().ec_leaf.der);
    CHECK(verified->payload == signing_payload(bundle).value());
    CHECK(verified->payload.find("\"signature\"") == std::string::npos);

    // The text form verifies too, and the bundle still parses.
    const std::string text = canonicalize(bundle).value();
    CHECK(verify_bundle_signature(std::string_view(text), anchors(pki().ca.pem), signing_time).has_value());
    const auto summary = parse_bundle(text);
    REQUIRE(summary.has_value());
    CHECK(summary->has_signature);
}

TEST_CASE("BundleSigner::signed_text is the signed bundle as text, verifiable, header reused within a second") {
    const auto& leaf = pki().ec_leaf;
    const auto signer =
        BundleSigner::prepare(request_for(leaf, JwsAlgorithm::es256), signer_of(leaf.key.get(), JwsAlgorithm::es256))
            .value();
    const json::object unsigned_bundle = build_bundle(test::bundle_input(MeasurementType::blood_pressure)).value();
    const auto later = signing_time + std::chrono::seconds(1);
    for (const auto when : {signing_time, signing_time, later}) {
        const std::string text = signer.signed_text(unsigned_bundle, when).value();
        CHECK(text.starts_with(R"({"signature":{)"));
        const auto verified = verify_bundle_signature(std::string_view(text), anchors(pki().ca.pem), when);
        if (!verified)
            FAIL(verified.error().message);
        // It covers exactly what sign() covers: the bundle without its signature.
        CHECK(verified->payload == canonicalize(unsigned_bundle).value());
        CHECK(verified->signing_time == (when == later ? "2026-11-22T09:00:31Z" : "2026-11-22T09:00:30Z"));
        json::object parsed = json::parse(text).as_object();
        parsed.erase("signature");
        CHECK(parsed.size() == unsigned_bundle.size());
        CHECK(canonicalize(parsed).value() == canonicalize(unsigned_bundle).value());
    }
    CHECK_FALSE(unsigned_bundle.contains("signature"));
    json::object already = signed_bundle();
    CHECK_FALSE(signer.signed_text(already, signing_time).has_value());

    // The forwarder's path: bundle_text, signed as is. Same payload, same
    // signature member as signing the object (ECDSA is randomized: compare
    // all but the signature value).
    const std::string canonical_bundle = bundle_text(test::bundle_input(MeasurementType::blood_pressure)).value();
    const std::string text = signer.signed_canonical_text(canonical_bundle, signing_time).value();
    const auto verified = verify_bundle_signature(std::string_view(text), anchors(pki().ca.pem), signing_time);
    if (!verified)
        FAIL(verified.error().message);
    CHECK(verified->payload == canonical_bundle);
    json::object from_text = json::parse(text).as_object();
    json::object from_object = json::parse(signer.signed_text(unsigned_bundle, signing_time).value()).as_object();
    from_text.at("signature").as_object().erase("data");
    from_object.at("signature").as_object().erase("data");
    CHECK(from_text == from_object);
    CHECK_FALSE(signer.signed_canonical_text("[1]", signing_time).has_value());
}

TEST_CASE("Bundle.signature is a FHIR Signature holding a detached JWS") {
    const json::object bundle = signed_bundle();
    const json::value& signature = bundle.at("signature");
    CHECK(signature.at("type").at(0).at("system") == "urn:iso-astm:E1762-95:2013");
    CHECK(signature.at("type").at(0).at("code") == "1.2.840.10065.1.12.1.14");
    CHECK(signature.at("when") == "2026-11-22T09:00:30Z");
    CHECK(signature.at("who").at("identifier").at("system") == "urn:oid:1.2.250.1.71.4.2.2");
    CHECK(signature.at("sigFormat") == "application/jose");
    CHECK(signature.at("targetFormat") == "application/fhir+json");

    const std::string compact = compact_of(bundle);
    const auto first = compact.find('.');
    REQUIRE(first != std::string::npos);
    CHECK(compact.substr(first, 2) == "..");
    const Bytes header_bytes = base64url_decode(compact.substr(0, first)).value();
    const json::value header = json::parse(std::string(header_bytes.begin(), header_bytes.end()));
    CHECK(header.at("alg") == "ES256");
    CHECK(header.at("sigT") == "2026-11-22T09:00:30Z");
    CHECK(header.at("x5c").at(0) == json::value(base64_encode(pki().ec_leaf.der)));
    CHECK(base64url_decode(compact.substr(first + 2)).value().size() == 64);
}

TEST_CASE("an RS256 signature verifies against the facility CA") {
    const json::object bundle = signed_bundle(JwsAlgorithm::rs256);
    const auto verified = verify_bundle_signature_value(json::value(bundle), anchors(pki().ca.pem), signing_time);
    if (!verified)
        FAIL(verified.error().message);
    CHECK(verified->algorithm == JwsAlgorithm::rs256);
}

TEST_CASE("a tampered bundle fails verification") {
    json::object bundle = signed_bundle();
    bundle["entry"]
        .as_array()[1]
        .as_object()["resource"]
        .as_object()["component"]
        .as_array()[0]
        .as_object()["valueQuantity"]
        .as_object()["value"] = 129.0;
    check_refused(verify_bundle_signature_value(json::value(bundle), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::bad_signature);

    json::object moved_when = signed_bundle();
    moved_when["signature"].as_object()["when"] = "2026-11-22T09:00:31Z";
    check_refused(verify_bundle_signature_value(json::value(moved_when), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::malformed);

    json::object flipped = signed_bundle();
    std::string compact = compact_of(flipped);
    compact[compact.size() - 5] = compact[compact.size() - 5] == 'A' ? 'B' : 'A';
    set_compact(flipped, compact);
    const auto result = verify_bundle_signature_value(json::value(flipped), anchors(pki().ca.pem), signing_time);
    REQUIRE_FALSE(result.has_value());
    CHECK((result.error().problem == SignatureProblem::bad_signature ||
           result.error().problem == SignatureProblem::malformed));
}

TEST_CASE("a signature from another chain, or out of validity, fails") {
    const json::object bundle = signed_bundle();
    check_refused(verify_bundle_signature_value(json::value(bundle), anchors(pki().other_ca.pem), signing_time),
                  SignatureProblem::untrusted_chain);
    const cb::devices::Microseconds after_expiry{std::chrono::seconds(2209075200)};  // 2040-01-02
    check_refused(verify_bundle_signature_value(json::value(bundle), anchors(pki().ca.pem), after_expiry),
                  SignatureProblem::untrusted_chain);
    // A self-signed signer certificate is not trusted either.
    json::object self_signed = build_bundle(test::bundle_input(MeasurementType::steps)).value();
    REQUIRE(sign_bundle(self_signed, request_for(pki().other_ca, JwsAlgorithm::es256),
                        signer_of(pki().other_ca.key.get(), JwsAlgorithm::es256))
                .has_value());
    check_refused(verify_bundle_signature_value(json::value(self_signed), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::untrusted_chain);
}

TEST_CASE("algorithm games fail") {
    json::object bundle = signed_bundle();
    const std::string compact = compact_of(bundle);
    const std::string signature_part = compact.substr(compact.find("..") + 2);
    const auto with_header = [&](const json::object& header) {
        json::object copy = bundle;
        set_compact(copy, base64url_encode(canonicalize(header).value()) + ".." + signature_part);
        return verify_bundle_signature_value(json::value(copy), anchors(pki().ca.pem), signing_time);
    };
    const json::array x5c{json::string(base64_encode(pki().ec_leaf.der))};
    check_refused(with_header({{"alg", "none"}, {"sigT", "2026-11-22T09:00:30Z"}, {"x5c", x5c}}),
                  SignatureProblem::unsupported_algorithm);
    check_refused(with_header({{"alg", "HS256"}, {"sigT", "2026-11-22T09:00:30Z"}, {"x5c", x5c}}),
                  SignatureProblem::unsupported_algorithm);
    // RS256 claimed over an EC certificate.
    check_refused(with_header({{"alg", "RS256"}, {"sigT", "2026-11-22T09:00:30Z"}, {"x5c", x5c}}),
                  SignatureProblem::unsupported_algorithm);
    check_refused(
        with_header({{"alg", "ES256"}, {"crit", json::array{"exp"}}, {"sigT", "2026-11-22T09:00:30Z"}, {"x5c", x5c}}),
        SignatureProblem::unsupported_algorithm);
    // An attached payload is not our format.
    json::object attached = bundle;
    set_compact(attached, compact.substr(0, compact.find("..")) + ".e30." + signature_part);
    check_refused(verify_bundle_signature_value(json::value(attached), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::malformed);
}

TEST_CASE("verification refuses missing, malformed and oversized signatures") {
    json::object unsigned_bundle = build_bundle(test::bundle_input(MeasurementType::steps)).value();
    check_refused(verify_bundle_signature_value(json::value(unsigned_bundle), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::missing);
    json::object bad_data = signed_bundle();
    bad_data["signature"].as_object()["data"] = "not base64!";
    check_refused(verify_bundle_signature_value(json::value(bad_data), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::malformed);
    json::object big = signed_bundle();
    big["signature"].as_object()["data"] = std::string(max_signature_data + 4, 'A');
    check_refused(verify_bundle_signature_value(json::value(big), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::too_large);
    check_refused(verify_bundle_signature(std::string_view("{"), anchors(pki().ca.pem), signing_time),
                  SignatureProblem::malformed);
}

TEST_CASE("sign_bundle refuses inconsistent requests") {
    json::object bundle = signed_bundle();
    CHECK_FALSE(sign_bundle(bundle, request_for(pki().ec_leaf, JwsAlgorithm::es256),
                            signer_of(pki().ec_leaf.key.get(), JwsAlgorithm::es256))
                    .has_value());  // already signed

    json::object fresh = build_bundle(test::bundle_input(MeasurementType::steps)).value();
    const auto mismatch = sign_bundle(fresh, request_for(pki().rsa_leaf, JwsAlgorithm::es256),
                                      signer_of(pki().rsa_leaf.key.get(), JwsAlgorithm::es256));
    REQUIRE_FALSE(mismatch.has_value());
    CHECK(mismatch.error().message() == "sign bundle: ES256 needs an EC P-256 key");

    const auto short_signature =
        sign_bundle(fresh, request_for(pki().ec_leaf, JwsAlgorithm::es256),
                    [](std::span<const std::uint8_t>) -> cb::Result<Bytes> { return Bytes(63, 1); });
    REQUIRE_FALSE(short_signature.has_value());
    CHECK(short_signature.error().message() == "sign bundle: ES256 signature of 63 bytes, expected 64");

    const auto failing = sign_bundle(fresh, request_for(pki().ec_leaf, JwsAlgorithm::es256),
                                     [](std::span<const std::uint8_t>) -> cb::Result<Bytes> {
                                         return cb::fail(cb::ErrorKind::io, "token removed");
                                     });
    REQUIRE_FALSE(failing.has_value());
    CHECK(failing.error().message() == "token removed");
    CHECK_FALSE(fresh.contains("signature"));
}

TEST_CASE("ECDSA signatures convert between DER and r||s") {
    const Bytes raw = [] {
        Bytes out(64, 0);
        out[31] = 1;     // r = 1
        out[32] = 0x80;  // s with its top bit set
        out[63] = 2;
        return out;
    }();
    const Bytes der = ecdsa_raw_to_der(raw).value();
    CHECK(der.front() == 0x30);
    CHECK(ecdsa_der_to_raw(der).value() == raw);
    CHECK_FALSE(ecdsa_raw_to_der(Bytes(63, 1)).has_value());
    CHECK_FALSE(ecdsa_der_to_raw(Bytes{0x30, 0x01}).has_value());
}
