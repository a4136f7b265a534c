// Unit tests of carebridge-receiver's request handling (tools/receiver/
// service.hpp) without sockets: an in-memory store, an injected clock and
// random source, in-process certificates (tests/support/test_keys.hpp).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>
#include <catch2/catch.hpp>

#include "protocol/upstream/fhir_bundle.hpp"
#include "protocol/upstream/jws.hpp"
#include "tests/support/test_keys.hpp"
#include "tools/receiver/service.hpp"

using namespace cb::receiver;
namespace json = boost::json;
using cb::test::TestKeyType;

namespace {

struct Keys {
    cb::test::TestCertificate ca = cb::test::make_test_certificate(TestKeyType::ec_p256, "facility CA", nullptr, true);
    cb::test::TestCertificate leaf = cb::test::make_test_certificate(TestKeyType::ec_p256, "facility", &ca, false, 2);
};

const Keys& keys() {
    static const Keys instance;
    return instance;
}

// 2026-11-22T09:00:30Z, within the certificates' validity.
const std::chrono::system_clock::time_point start{std::chrono::seconds(1795338030)};

class Harness {
public:
    explicit Harness(UnsignedBundles unsigned_bundles = UnsignedBundles::refuse) {
        ServiceConfig config;
        config.patients = PatientDirectory::automatic();
        config.token_ttl = std::chrono::seconds(60);
        config.unsigned_bundles = unsigned_bundles;
        m_service = std::make_unique<Service>(
            Store::open({}, cb::storage::Durability::memory).value(),
            cb::upstream::TrustAnchors::from_pem(keys().ca.pem).value(), std::move(config), [this] { return m_now; },
            [this](std::span<std::uint8_t> bytes) {
                for (auto& byte : bytes)
                    byte = static_cast<std::uint8_t>(++m_counter * 37u);
            },
            [this](LogLevel, const std::string& line) { m_log += line + "\n"; });
    }

    HttpAnswer call(std::string method, std::string target, std::string body = {}, std::string token = {},
                    std::string content_type = "application/fhir+json") {
        return m_service->handle(HttpRequest{std::move(method), std::move(target), std::move(content_type),
                                             token.empty() ? std::string() : "Bearer " + token, std::move(body)});
    }

    std::pair<std::string, std::string> pair(const std::string& nir) {
        const auto answer = call("POST", "/pairing", R"({"nir":")" + nir + R"(","code":"0000"})");
        REQUIRE(answer.status == 200);
        const auto body = json::parse(answer.body);
        return {json::value_to<std::string>(body.at("idPe")), json::value_to<std::string>(body.at("access_token"))};
    }

    std::string bundle(const std::string& idpe, std::uint64_t sequence, bool sign = true) {
        auto reading =
            cb::upstream::StoredReading::parse(R"({"type":"heart_rate","time_us":1795338000000000,"offset_min":60,)"
                                               R"("values":[{"code":149530,"value":64,"unit":"/min"}]})");
        cb::upstream::BundleInput input{cb::devices::DeviceId::parse("band-7").value(),
                                        std::nullopt,
                                        "",
                                        "",
                                        sequence,
                                        reading.value(),
                                        idpe,
                                        std::nullopt,
                                        std::nullopt};
        json::object bundle = cb::upstream::build_bundle(input).value();
        if (sign) {
            EVP_PKEY* key = keys().leaf.key.get();
            const cb::upstream::SignatureRequest request{cb::upstream::JwsAlgorithm::es256,
                                                         {keys().leaf.der},
                                                         std::chrono::time_point_cast<std::chrono::microseconds>(m_now),
                                                         "urn:oid:1.2.250.1.71.4.2.2",
                                                         "750000000"};
            REQUIRE(cb::upstream::sign_bundle(bundle, request, [key](std::span<const std::uint8_t> data) {
                return cb::upstream::ecdsa_der_to_raw(cb::test::openssl_sign(key, data.data(), data.size()));
            }));
        }
        return json::serialize(bundle);
    }

    json::value stats() { return json::parse(call("GET", "/admin/stats").body); }
    void advance(std::chrono::seconds by) { m_now += by; }
    const std::string& log() const { return m_log; }

private:
    std::chrono::system_clock::time_point m_now = start;
    unsigned m_counter = 0;
    std::string m_log;
    std::unique_ptr<Service> m_service;
};

std::string location(const HttpAnswer& answer, std::size_t entry) {
    return json::value_to<std::string>(json::parse(answer.body).at("entry").at(entry).at("response").at("location"));
}

std::string diagnostics(const HttpAnswer& answer) {
    return json::value_to<std::string>(json::parse(answer.body).at("issue").at(0).at("diagnostics"));
}

}  // namespace

TEST_CASE("receiver service: store once, resend, conflict") {
    Harness harness;
    const auto [idpe, token] = harness.pair("280017512345697");
    const auto bundle = harness.bundle(idpe, 5);
    const auto first = harness.call("POST", "/fhir", bundle, token);
    INFO(first.body << harness.log());
    REQUIRE(first.status == 200);
    const auto again = harness.call("POST", "/fhir", bundle, token);
    REQUIRE(again.status == 200);
    CHECK(location(again, 0) == location(first, 0));
    CHECK(location(again, 1) == location(first, 1));

    // The same business key with other content is a conflict, not a silent success.
    json::value changed = json::parse(harness.bundle(idpe, 5, false));
    changed.at("entry").at(1).at("resource").at("valueQuantity").at("value") = 65;
    auto object = changed.as_object();
    harness.advance(std::chrono::seconds(1));
    EVP_PKEY* key = keys().leaf.key.get();
    REQUIRE(cb::upstream::sign_bundle(object,
                                      {cb::upstream::JwsAlgorithm::es256,
                                       {keys().leaf.der},
                                       cb::devices::Microseconds(std::chrono::seconds(1795338031)),
                                       "urn:oid:1.2.250.1.71.4.2.2",
                                       "750000000"},
                                      [key](std::span<const std::uint8_t> data) {
                                          return cb::upstream::ecdsa_der_to_raw(
                                              cb::test::openssl_sign(key, data.data(), data.size()));
                                      }));
    const auto conflict = harness.call("POST", "/fhir", json::serialize(object), token);
    CHECK(conflict.status == 409);

    const auto stats = harness.stats();
    CHECK(stats.at("observations").to_number<std::int64_t>() == 1);
    CHECK(stats.at("valid_signatures").to_number<std::int64_t>() == 1);
    CHECK(stats.at("requests").to_number<std::int64_t>() == 3);
    CHECK(stats.at("refused").at("conflict").to_number<std::int64_t>() == 1);
}

TEST_CASE("receiver service: tokens expire with the clock and refresh") {
    Harness harness;
    const auto pairing = harness.call("POST", "/pairing", R"({"nir":"280017512345697","code":"0000"})");
    REQUIRE(pairing.status == 200);
    const auto body = json::parse(pairing.body);
    const auto idpe = json::value_to<std::string>(body.at("idPe"));
    const auto access = json::value_to<std::string>(body.at("access_token"));
    const auto refresh = json::value_to<std::string>(body.at("refresh_token"));
    CHECK(body.at("expires_in").to_number<std::int64_t>() == 60);
    const auto bundle = harness.bundle(idpe, 1);

    harness.advance(std::chrono::seconds(60));
    const auto expired = harness.call("POST", "/fhir", bundle, access);
    CHECK(expired.status == 401);
    REQUIRE(expired.headers.size() == 1);
    CHECK(expired.headers[0].second == "Bearer error=\"invalid_token\"");

    const auto refreshed =
        harness.call("POST", "/token", R"({"grant_type":"refresh_token","refresh_token":")" + refresh + "\"}", {},
                     "application/json");
    REQUIRE(refreshed.status == 200);
    const auto fresh = json::value_to<std::string>(json::parse(refreshed.body).at("access_token"));
    CHECK(harness.call("POST", "/fhir", bundle, fresh).status == 200);
    CHECK(harness.call("POST", "/token", R"({"grant_type":"password","refresh_token":"x"})").body ==
          R"({"error":"unsupported_grant_type"})");
    CHECK(harness.call("POST", "/token", R"({"grant_type":"refresh_token","refresh_token":")" + access + "\"}").body ==
          R"({"error":"invalid_grant"})");
    CHECK(harness.log().find(access) == std::string::npos);
}

TEST_CASE("receiver service: faults") {
    Harness harness;
    const auto [idpe, token] = harness.pair("280017512345697");
    const auto bundle = harness.bundle(idpe, 1);
    REQUIRE(harness.call("POST", "/admin/faults", R"({"fail_next":1,"status":429,"retry_after_s":3})").status == 200);
    const auto failed = harness.call("POST", "/fhir", bundle, token);
    CHECK(failed.status == 429);
    CHECK(failed.headers == std::vector<std::pair<std::string, std::string>>{{"Retry-After", "3"}});

    REQUIRE(harness.call("POST", "/admin/faults", R"({"delay_ms":25,"drop_next":1})").status == 200);
    const auto dropped = harness.call("POST", "/fhir", bundle, token);
    CHECK(dropped.status == 200);
    CHECK(dropped.delivery == Delivery::drop_after_headers);
    CHECK(dropped.delay == std::chrono::milliseconds(25));
    const auto next = harness.call("POST", "/fhir", bundle, token);
    CHECK(next.delivery == Delivery::normal);
    CHECK(location(next, 0) == location(dropped, 0));

    REQUIRE(harness.call("POST", "/admin/faults", R"({"refuse_consent":")" + idpe + "\"}").status == 200);
    const auto consent = harness.call("POST", "/fhir", harness.bundle(idpe, 2), token);
    CHECK(consent.status == 403);
    CHECK(diagnostics(consent) == "consent");
    REQUIRE(harness.call("POST", "/admin/faults", R"({"allow_consent":")" + idpe + "\"}").status == 200);
    CHECK(harness.call("POST", "/fhir", harness.bundle(idpe, 2), token).status == 200);

    REQUIRE(harness.call("POST", "/admin/faults", R"({"reset":true})").status == 200);
    CHECK(harness.call("POST", "/fhir", bundle, token).delay == std::chrono::milliseconds(0));
}

TEST_CASE("receiver service: unsigned bundles, by policy") {
    Harness refusing;
    auto [idpe, token] = refusing.pair("280017512345697");
    const auto refused = refusing.call("POST", "/fhir", refusing.bundle(idpe, 1, false), token);
    CHECK(refused.status == 422);
    CHECK_THAT(diagnostics(refused), Catch::StartsWith("signature missing"));

    Harness accepting(UnsignedBundles::accept);
    std::tie(idpe, token) = accepting.pair("280017512345697");
    CHECK(accepting.call("POST", "/fhir", accepting.bundle(idpe, 1, false), token).status == 200);
    const auto stats = accepting.stats();
    CHECK(stats.at("observations").to_number<std::int64_t>() == 1);
    CHECK(stats.at("valid_signatures").to_number<std::int64_t>() == 0);
}

TEST_CASE("receiver service: routing and malformed requests") {
    Harness harness;
    const auto [idpe, token] = harness.pair("280017512345697");
    CHECK(harness.call("GET", "/nowhere").status == 404);
    const auto wrong_method = harness.call("GET", "/fhir");
    CHECK(wrong_method.status == 405);
    CHECK(wrong_method.headers.at(0).first == "Allow");
    CHECK(harness.call("GET", "/fhir/Observation", {}, token).status == 400);
    CHECK(harness.call("GET", "/fhir/Observation?patient=%zz", {}, token).status == 400);
    CHECK(harness.call("GET", "/fhir/Observation?patient=" + idpe, {}, token).status == 200);
    CHECK(harness.call("POST", "/fhir", "not json", token).status == 422);
    CHECK(harness.call("POST", "/fhir", "{}", token, "text/plain").status == 415);
    CHECK(harness.call("POST", "/pairing", "{").status == 400);
    CHECK(harness.call("POST", "/admin/faults", "{}").status == 400);
    CHECK(harness.call("POST", "/fhir", "{}", "x", "application/fhir+json").status == 401);
}
