// Fuzzes verify_bundle_signature (the receiver's check of Bundle.signature:
// base64, JWS header JSON, x5c DER certificates, chain, signature). A CA and a
// signer are made in-process at start-up (no key is committed). Properties:
//   1. verification never crashes; a refusal has a message and a named problem;
//   2. nothing signed by a CA other than ours verifies (the corpus is signed by
//      throw-away CAs whose keys are gone);
//   3. a bundle that parses, once signed with our key, verifies, and stops
//      verifying when its payload changes.
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "protocol/upstream/canonical_json.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "protocol/upstream/jws.hpp"
#include "tests/support/test_keys.hpp"

#if defined(CAREBRIDGE_FUZZ_BOOST_JSON_SOURCES)
#include <boost/json/src.hpp>
#endif

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_upstream_jws: property violated: %s\n", property);
        std::abort();
    }
}

struct Keys {
    cb::test::TestCertificate ca =
        cb::test::make_test_certificate(cb::test::TestKeyType::ec_p256, "fuzz CA", nullptr, true);
    cb::test::TestCertificate leaf =
        cb::test::make_test_certificate(cb::test::TestKeyType::ec_p256, "fuzz signer", &ca, false, 2);
    cb::upstream::TrustAnchors anchors = cb::upstream::TrustAnchors::from_pem(ca.pem).value();
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace cb::upstream;
    static const Keys keys;
    // 2026-11-22T09:00:30Z, within the certificates' validity.
    const cb::devices::Microseconds at{std::chrono::seconds(1795338030)};
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const auto verified = verify_bundle_signature(input, keys.anchors, at);
    if (verified) {
        check(!verified->chain.empty(), "a verified signature has a chain");
        check(verified->chain.front() == keys.leaf.der, "only our signer verifies");
    } else {
        check(!verified.error().message.empty(), "a refusal has a message");
        check(std::string_view(to_string(verified.error().problem)) != "?", "a refusal has a named problem");
    }

    // Round trip on bundles that parse: sign with our key, verify, tamper.
    if (!parse_bundle(input).has_value())
        return 0;
    boost::json::object bundle = boost::json::parse(input).as_object();
    bundle.erase("signature");
    const SignatureRequest request{JwsAlgorithm::es256, {keys.leaf.der}, at, "urn:oid:1.2.3", "fuzz"};
    const auto signed_ok = sign_bundle(bundle, request, [](std::span<const std::uint8_t> message) -> cb::Result<Bytes> {
        return ecdsa_der_to_raw(cb::test::openssl_sign(keys.leaf.key.get(), message.data(), message.size()));
    });
    if (!signed_ok)
        return 0;  // e.g. a string that is not valid UTF-8 has no canonical form
    check(verify_bundle_signature_value(boost::json::value(bundle), keys.anchors, at).has_value(),
          "what we sign verifies");
    bundle["type"] = "batch";
    const auto tampered = verify_bundle_signature_value(boost::json::value(bundle), keys.anchors, at);
    check(!tampered.has_value() && tampered.error().problem == SignatureProblem::bad_signature,
          "a changed payload does not verify");
    return 0;
}
