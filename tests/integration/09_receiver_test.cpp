// 09 receiver: carebridge-receiver (docs/receiver.md) on loopback, driven by
// an independent HTTPS client, Debian's curl, with the certificates of
// scripts/test-pki: mutual TLS, pairing and tokens, signed bundles stored
// exactly once, the refusals of the FHIR endpoint, and fault injection.
//
// No sleeps: the receiver is ready when its first stdout line names its port
// (awaited with inotify); every curl call runs to completion.
#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/signing/signer.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "protocol/upstream/jws.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/process.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/temp_dir.hpp"

using cb::test::TempDir;
using cb::test::TestPki;
namespace json = boost::json;

namespace {

constexpr std::chrono::seconds hang_limit{30};

// Who the client presents in the TLS handshake.
enum class Client { facility, none, rogue };

struct Reply {
    int curl_exit = 0;    // curl's exit status (0: a complete answer)
    unsigned status = 0;  // HTTP status, 0 when none arrived
    std::string headers;
    std::string body;
    std::string output;  // curl's stdout and stderr

    json::value json_body() const { return json::parse(body); }
};

class Receiver {
public:
    explicit Receiver(const TempDir& dir, std::vector<std::string> extra = {"--auto-pair"})
        : m_dir(dir), m_pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {}), m_process(setup(dir, std::move(extra))) {}

    const TestPki& pki() const { return m_pki; }
    std::string log() const { return m_process.log(); }
    cb::test::ReceiverProcess& process() { return m_process; }

    Reply call(const std::string& method, const std::string& path, const std::string& body = {},
               const std::vector<std::string>& headers = {}, Client client = Client::facility) {
        const auto body_file = m_dir / "request.body";
        const auto answer_file = m_dir / "answer.body";
        const auto headers_file = m_dir / "answer.headers";
        std::filesystem::remove(answer_file);
        std::filesystem::remove(headers_file);
        std::ofstream(body_file, std::ios::binary | std::ios::trunc) << body;
        std::vector<std::string> argv{"/usr/bin/curl",
                                      "-sS",
                                      "--max-time",
                                      "30",
                                      "--cacert",
                                      (m_dir / "pki/ca.crt").string(),
                                      "-X",
                                      method,
                                      "-o",
                                      answer_file.string(),
                                      "-D",
                                      headers_file.string(),
                                      "-w",
                                      "\nhttp_status=%{http_code}\n"};
        if (client == Client::facility) {
            argv.insert(argv.end(), {"--cert", (m_dir / "pki/facility/ec.crt").string(), "--key",
                                     (m_dir / "pki/facility/ec.key").string()});
        } else if (client == Client::rogue) {
            argv.insert(argv.end(), {"--cert", (m_dir / "pki/facility/rogue-ec.crt").string(), "--key",
                                     (m_dir / "pki/facility/rogue-ec.key").string()});
        }
        for (const auto& header : headers)
            argv.insert(argv.end(), {"-H", header});
        if (method == "POST")
            argv.insert(argv.end(), {"--data-binary", "@" + body_file.string()});
        argv.push_back("https://127.0.0.1:" + std::to_string(m_process.port()) + path);
        const auto result = cb::test::run_command(argv, std::chrono::seconds(60));
        Reply reply;
        reply.curl_exit = result.status.code;
        reply.output = result.output;
        const auto marker = result.output.find("http_status=");
        if (marker != std::string::npos)
            reply.status = static_cast<unsigned>(std::stoul(result.output.substr(marker + 12, 3)));
        reply.headers = cb::test::read_file(headers_file);
        reply.body = cb::test::read_file(answer_file);
        return reply;
    }

    Reply post_json(const std::string& path, const std::string& body) {
        return call("POST", path, body, {"Content-Type: application/json"});
    }

    Reply post_bundle(const std::string& bundle, const std::string& access_token) {
        return call("POST", "/fhir", bundle,
                    {"Content-Type: application/fhir+json", "Authorization: Bearer " + access_token});
    }

    struct Pairing {
        std::string idpe;
        std::string access_token;
        std::string refresh_token;
    };
    Pairing pair(const std::string& nir, const std::string& code = "0000") {
        const auto reply = post_json("/pairing", R"({"nir":")" + nir + R"(","code":")" + code + R"("})");
        if (reply.status != 200)
            throw std::runtime_error("pairing failed: " + reply.output + reply.body);
        const auto body = reply.json_body().as_object();
        return {json::value_to<std::string>(body.at("idPe")), json::value_to<std::string>(body.at("access_token")),
                json::value_to<std::string>(body.at("refresh_token"))};
    }

    json::object stats() { return call("GET", "/admin/stats").json_body().as_object(); }

    // A signed body-weight bundle for `idpe`, reading `sequence` of device
    // "scale-0001", with `change` applied before signing.
    std::string bundle(const std::string& idpe, std::uint64_t sequence,
                       const std::function<void(json::object&)>& change = {}, const std::string& key = "ec") {
        auto reading =
            cb::upstream::StoredReading::parse(R"({"type":"body_weight","time_us":1795338000000000,"offset_min":60,)"
                                               R"("values":[{"code":188736,"value":71.5,"unit":"kg"}]})");
        REQUIRE(reading);
        cb::upstream::BundleInput input{cb::devices::DeviceId::parse("scale-0001").value(),
                                        std::nullopt,
                                        "A&D",
                                        "UC-352BLE",
                                        sequence,
                                        *reading,
                                        idpe,
                                        std::nullopt,
                                        std::nullopt};
        auto built = cb::upstream::build_bundle(input);
        REQUIRE(built);
        json::object bundle = *built;
        if (change)
            change(bundle);
        auto signer = cb::signing::open_pem_signer(
            {m_dir / "pki/facility" / (key + ".key"), m_dir / "pki/facility" / (key + ".crt")});
        if (!signer)
            FAIL(signer.error().message());
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        const auto request = cb::signing::signature_request(**signer, now, "urn:oid:1.2.250.1.71.4.2.2", "750000000");
        const auto signed_ok = cb::upstream::sign_bundle(bundle, request, cb::signing::sign_function(**signer));
        if (!signed_ok)
            FAIL(signed_ok.error().message());
        return json::serialize(bundle);
    }

private:
    static cb::test::ReceiverSetup setup(const TempDir& dir, std::vector<std::string> extra) {
        cb::test::ReceiverSetup setup;
        setup.executable = RECEIVER_PATH;
        setup.pki_dir = dir / "pki";
        setup.work_dir = dir.path();
        setup.extra = {"--log-level", "debug"};
        setup.extra.insert(setup.extra.end(), extra.begin(), extra.end());
        return setup;
    }

    const TempDir& m_dir;
    TestPki m_pki;
    cb::test::ReceiverProcess m_process;
};

std::string diagnostics(const Reply& reply) {
    const auto body = reply.json_body().as_object();
    return json::value_to<std::string>(body.at("issue").at(0).at("diagnostics"));
}

std::string issue_code(const Reply& reply) {
    return json::value_to<std::string>(reply.json_body().at("issue").at(0).at("code"));
}

std::string location(const Reply& reply, std::size_t entry) {
    return json::value_to<std::string>(reply.json_body().at("entry").at(entry).at("response").at("location"));
}

std::string entry_status(const Reply& reply, std::size_t entry) {
    return json::value_to<std::string>(reply.json_body().at("entry").at(entry).at("response").at("status"));
}

const std::string nir_a = "280017512345697";
const std::string nir_b = "190017512345612";

}  // namespace

TEST_CASE("09 receiver: a client without a certificate is refused") {
    TempDir dir;
    Receiver receiver(dir);
    const auto reply = receiver.call("GET", "/admin/stats", {}, {}, Client::none);
    INFO(reply.output);
    CHECK(reply.curl_exit != 0);
    CHECK(reply.status == 0);
    CHECK(cb::test::wait_for_file_text(receiver.process().log_path(), "peer did not return a certificate", hang_limit));
    CHECK_THAT(receiver.log(), !Catch::Contains("GET /admin/stats"));
}

TEST_CASE("09 receiver: a certificate from another CA is refused") {
    TempDir dir;
    Receiver receiver(dir);
    const auto reply = receiver.call("GET", "/admin/stats", {}, {}, Client::rogue);
    INFO(reply.output);
    CHECK(reply.curl_exit != 0);
    CHECK(reply.status == 0);
    CHECK(cb::test::wait_for_file_text(receiver.process().log_path(), "certificate verify failed", hang_limit));
    CHECK_THAT(receiver.log(), !Catch::Contains("GET /admin/stats"));
}

TEST_CASE("09 receiver: pairing from the patients file, and token refresh") {
    TempDir dir;
    const auto patients = dir.write("patients.txt", "# NIR CODE IDPE\n" + nir_a + " 4821 idpe-camille\n");
    Receiver receiver(dir, {"--patients", patients.string()});

    const auto wrong_code = receiver.post_json("/pairing", R"({"nir":")" + nir_a + R"(","code":"0000"})");
    CHECK(wrong_code.status == 403);
    CHECK(issue_code(wrong_code) == "forbidden");
    const auto unknown = receiver.post_json("/pairing", R"({"nir":")" + nir_b + R"(","code":"4821"})");
    CHECK(unknown.status == 403);
    const auto malformed = receiver.post_json("/pairing", R"({"nir":"12","code":"4821"})");
    CHECK(malformed.status == 400);
    CHECK_THAT(diagnostics(malformed), Catch::Contains("nir"));
    const auto not_json = receiver.post_json("/pairing", "{nir");
    CHECK(not_json.status == 400);

    const auto paired = receiver.pair(nir_a, "4821");
    CHECK(paired.idpe == "idpe-camille");
    const std::string search = "/fhir/Observation?patient=idpe-camille";
    CHECK(receiver.call("GET", search, {}, {"Authorization: Bearer " + paired.access_token}).status == 200);

    const auto refreshed = receiver.post_json(
        "/token", R"({"grant_type":"refresh_token","refresh_token":")" + paired.refresh_token + "\"}");
    REQUIRE(refreshed.status == 200);
    const auto tokens = refreshed.json_body().as_object();
    const auto access = json::value_to<std::string>(tokens.at("access_token"));
    CHECK(access != paired.access_token);
    CHECK(tokens.at("expires_in").to_number<std::int64_t>() == 3600);
    CHECK(json::value_to<std::string>(tokens.at("refresh_token")) == paired.refresh_token);
    const auto searched = receiver.call("GET", search, {}, {"Authorization: Bearer " + access});
    CHECK(searched.status == 200);
    CHECK(json::value_to<std::string>(searched.json_body().at("type")) == "searchset");

    const auto bad_grant = receiver.post_json("/token", R"({"grant_type":"refresh_token","refresh_token":"nope"})");
    CHECK(bad_grant.status == 400);
    CHECK(bad_grant.body == R"({"error":"invalid_grant"})");
    // Tokens never reach the log.
    CHECK_THAT(receiver.log(), !Catch::Contains(paired.access_token));
    CHECK_THAT(receiver.log(), !Catch::Contains(paired.refresh_token));
}

TEST_CASE("09 receiver: a valid signed bundle is stored once, a resend gets the same ids") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    const std::string bundle = receiver.bundle(patient.idpe, 17);

    const auto first = receiver.post_bundle(bundle, patient.access_token);
    INFO(first.output << first.body << "\n" << receiver.log());
    REQUIRE(first.status == 200);
    CHECK(json::value_to<std::string>(first.json_body().at("type")) == "transaction-response");
    CHECK(entry_status(first, 0) == "201 Created");
    CHECK(entry_status(first, 1) == "201 Created");
    CHECK(location(first, 0).rfind("Observation/", 0) == 0);
    CHECK(location(first, 1).rfind("Device/", 0) == 0);

    const auto again = receiver.post_bundle(bundle, patient.access_token);
    REQUIRE(again.status == 200);
    CHECK(location(again, 0) == location(first, 0));
    CHECK(location(again, 1) == location(first, 1));
    CHECK(entry_status(again, 0) == "200 OK");
    // Signed again (a retry after a restart): the same content, the same ids.
    const auto resigned = receiver.post_bundle(receiver.bundle(patient.idpe, 17), patient.access_token);
    REQUIRE(resigned.status == 200);
    CHECK(location(resigned, 0) == location(first, 0));

    // The next reading of the same device: a new observation, the device exists.
    const auto next = receiver.post_bundle(receiver.bundle(patient.idpe, 18), patient.access_token);
    REQUIRE(next.status == 200);
    CHECK(location(next, 0) != location(first, 0));
    CHECK(entry_status(next, 1) == "200 OK");
    CHECK(location(next, 1) == location(first, 1));

    const auto stats = receiver.stats();
    CHECK(stats.at("observations").to_number<std::int64_t>() == 2);
    CHECK(stats.at("valid_signatures").to_number<std::int64_t>() == 2);
    CHECK(stats.at("requests").to_number<std::int64_t>() == 4);

    const auto search = receiver.call("GET", "/fhir/Observation?patient=" + patient.idpe, {},
                                      {"Authorization: Bearer " + patient.access_token});
    REQUIRE(search.status == 200);
    const auto found = search.json_body();
    CHECK(found.at("total").to_number<std::int64_t>() == 2);
    const auto& observation = found.at("entry").at(0).at("resource");
    CHECK("Observation/" + json::value_to<std::string>(observation.at("id")) + "/_history/1" == location(first, 0));
    CHECK(json::value_to<std::string>(observation.at("device").at("reference")) + "/_history/1" == location(first, 1));
}

TEST_CASE("09 receiver: a tampered bundle or an untrusted signer is refused with 422") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    // Signed, then the weight changed on the way.
    json::value tampered = json::parse(receiver.bundle(patient.idpe, 1));
    tampered.at("entry").at(1).at("resource").at("valueQuantity").at("value") = 61.5;
    const auto reply = receiver.post_bundle(json::serialize(tampered), patient.access_token);
    INFO(reply.body);
    CHECK(reply.status == 422);
    CHECK(issue_code(reply) == "invalid");
    CHECK_THAT(diagnostics(reply), Catch::StartsWith("signature bad_signature"));

    const auto rogue = receiver.post_bundle(receiver.bundle(patient.idpe, 2, {}, "rogue-ec"), patient.access_token);
    CHECK(rogue.status == 422);
    CHECK_THAT(diagnostics(rogue), Catch::StartsWith("signature untrusted_chain"));

    json::object unsigned_bundle = json::parse(receiver.bundle(patient.idpe, 3)).as_object();
    unsigned_bundle.erase("signature");
    const auto missing = receiver.post_bundle(json::serialize(unsigned_bundle), patient.access_token);
    CHECK(missing.status == 422);
    CHECK_THAT(diagnostics(missing), Catch::StartsWith("signature missing"));

    const auto stats = receiver.stats();
    CHECK(stats.at("observations").to_number<std::int64_t>() == 0);
    CHECK(stats.at("refused").at("signature_bad_signature").to_number<std::int64_t>() == 1);
    CHECK(stats.at("refused").at("signature_untrusted_chain").to_number<std::int64_t>() == 1);
}

TEST_CASE("09 receiver: what the IG refuses is refused with 422 and the reason") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    const auto bmi = receiver.bundle(patient.idpe, 1, [](json::object& bundle) {
        bundle.at("entry").at(1).at("resource").at("meta").at("profile") =
            json::array{std::string(cb::upstream::ig_canonical) + "/StructureDefinition/mesures-fr-observation-bmi"};
    });
    const auto refused = receiver.post_bundle(bmi, patient.access_token);
    INFO(refused.body);
    CHECK(refused.status == 422);
    CHECK_THAT(diagnostics(refused), Catch::StartsWith("bmi_refused"));

    const auto pounds = receiver.bundle(patient.idpe, 2, [](json::object& bundle) {
        bundle.at("entry").at(1).at("resource").at("valueQuantity").at("code") = "[lb_av]";
    });
    const auto wrong_unit = receiver.post_bundle(pounds, patient.access_token);
    CHECK(wrong_unit.status == 422);
    CHECK_THAT(diagnostics(wrong_unit), Catch::StartsWith("wrong_unit"));

    const auto not_fhir = receiver.call("POST", "/fhir", "{}",
                                        {"Content-Type: text/plain", "Authorization: Bearer " + patient.access_token});
    CHECK(not_fhir.status == 415);
    CHECK(receiver.stats().at("refused").at("bmi_refused").to_number<std::int64_t>() == 1);
}

TEST_CASE("09 receiver: another patient's token is refused with 403") {
    TempDir dir;
    Receiver receiver(dir);
    const auto camille = receiver.pair(nir_a);
    const auto other = receiver.pair(nir_b);
    REQUIRE(camille.idpe != other.idpe);
    const auto reply = receiver.post_bundle(receiver.bundle(camille.idpe, 1), other.access_token);
    CHECK(reply.status == 403);
    CHECK(issue_code(reply) == "forbidden");
    CHECK_THAT(diagnostics(reply), Catch::StartsWith("subject"));
    const auto search = receiver.call("GET", "/fhir/Observation?patient=" + camille.idpe, {},
                                      {"Authorization: Bearer " + other.access_token});
    CHECK(search.status == 403);
    CHECK(receiver.stats().at("observations").to_number<std::int64_t>() == 0);
}

TEST_CASE("09 receiver: an expired or unknown token is refused with 401, a refreshed one works") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    const auto bundle = receiver.bundle(patient.idpe, 1);

    const auto unknown = receiver.post_bundle(bundle, "not-a-token");
    CHECK(unknown.status == 401);
    CHECK_THAT(unknown.headers, Catch::Contains("WWW-Authenticate: Bearer error=\"invalid_token\""));
    const auto missing = receiver.call("POST", "/fhir", bundle, {"Content-Type: application/fhir+json"});
    CHECK(missing.status == 401);

    REQUIRE(receiver.post_json("/admin/faults", R"({"expire_tokens":true})").status == 200);
    const auto expired = receiver.post_bundle(bundle, patient.access_token);
    CHECK(expired.status == 401);
    CHECK_THAT(expired.headers, Catch::Contains("WWW-Authenticate: Bearer error=\"invalid_token\""));
    CHECK_THAT(diagnostics(expired), Catch::Contains("expired"));

    const auto refreshed = receiver.post_json(
        "/token", R"({"grant_type":"refresh_token","refresh_token":")" + patient.refresh_token + "\"}");
    REQUIRE(refreshed.status == 200);
    const auto access = json::value_to<std::string>(refreshed.json_body().at("access_token"));
    CHECK(receiver.post_bundle(bundle, access).status == 200);
}

TEST_CASE("09 receiver: refused consent is a 403 forbidden \"consent\"") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    REQUIRE(receiver.post_json("/admin/faults", R"({"refuse_consent":")" + patient.idpe + "\"}").status == 200);
    const auto bundle = receiver.bundle(patient.idpe, 1);
    const auto refused = receiver.post_bundle(bundle, patient.access_token);
    CHECK(refused.status == 403);
    CHECK(issue_code(refused) == "forbidden");
    CHECK(diagnostics(refused) == "consent");
    CHECK(receiver.stats().at("refused").at("consent").to_number<std::int64_t>() == 1);

    REQUIRE(receiver.post_json("/admin/faults", R"({"reset":true})").status == 200);
    CHECK(receiver.post_bundle(bundle, patient.access_token).status == 200);
}

TEST_CASE("09 receiver: fail_next answers 503 with Retry-After, then the platform is back") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    const auto faults = receiver.post_json("/admin/faults", R"({"fail_next":2,"retry_after_s":30})");
    REQUIRE(faults.status == 200);
    const auto bundle = receiver.bundle(patient.idpe, 1);
    for (int i = 0; i < 2; ++i) {
        const auto failed = receiver.post_bundle(bundle, patient.access_token);
        CHECK(failed.status == 503);
        CHECK_THAT(failed.headers, Catch::Contains("Retry-After: 30"));
    }
    CHECK(receiver.stats().at("observations").to_number<std::int64_t>() == 0);
    CHECK(receiver.post_bundle(bundle, patient.access_token).status == 200);

    REQUIRE(receiver.post_json("/admin/faults", R"({"fail_next":1,"status":500})").status == 200);
    const auto failed = receiver.post_bundle(bundle, patient.access_token);
    CHECK(failed.status == 500);
    CHECK_THAT(failed.headers, !Catch::Contains("Retry-After"));
    CHECK(receiver.post_json("/admin/faults", R"({"fail_next":"x"})").status == 400);
}

TEST_CASE("09 receiver: drop_next closes the connection mid-response, the resend is not a duplicate") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    REQUIRE(receiver.post_json("/admin/faults", R"({"drop_next":1})").status == 200);
    const auto bundle = receiver.bundle(patient.idpe, 1);
    const auto dropped = receiver.post_bundle(bundle, patient.access_token);
    INFO(dropped.output);
    CHECK(dropped.curl_exit != 0);  // 18: transfer closed with bytes remaining
    CHECK_THAT(dropped.headers, Catch::Contains("HTTP/1.1 200"));
    CHECK(dropped.body.empty());

    const auto resent = receiver.post_bundle(bundle, patient.access_token);
    REQUIRE(resent.status == 200);
    CHECK(entry_status(resent, 0) == "200 OK");
    const auto stats = receiver.stats();
    CHECK(stats.at("observations").to_number<std::int64_t>() == 1);
    CHECK(stats.at("requests").to_number<std::int64_t>() == 2);
}

TEST_CASE("09 receiver: delay_ms delays answers, SIGTERM stops it cleanly") {
    TempDir dir;
    Receiver receiver(dir);
    const auto patient = receiver.pair(nir_a);
    REQUIRE(receiver.post_json("/admin/faults", R"({"delay_ms":50})").status == 200);
    CHECK(receiver.post_bundle(receiver.bundle(patient.idpe, 1), patient.access_token).status == 200);
    const auto status = receiver.process().stop();
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
    CHECK_THAT(receiver.log(), Catch::Contains("stopping on SIGTERM"));
}

TEST_CASE("09 receiver: bad command lines and configuration exit 2 with a clear message") {
    TempDir dir;
    const TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    const std::vector<std::string> base{RECEIVER_PATH,
                                        "--cert",
                                        (dir / "pki/receiver.crt").string(),
                                        "--key",
                                        (dir / "pki/receiver.key").string(),
                                        "--client-ca",
                                        (dir / "pki/facility-ca.crt").string(),
                                        "--facility-ca",
                                        (dir / "pki/facility-ca.crt").string(),
                                        "--db",
                                        (dir / "receiver.db").string()};
    const auto run = [&](std::vector<std::string> extra) {
        auto argv = base;
        argv.insert(argv.end(), extra.begin(), extra.end());
        return cb::test::run_command(argv);
    };
    auto result = run({});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("one of --patients FILE or --auto-pair is required"));
    result = run({"--auto-pair", "--listen", "localhost:80"});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("--listen"));
    const auto bad = dir.write("patients.txt", nir_a + " 4821 idpe-1\n12 4821 idpe-2\n");
    result = run({"--patients", bad.string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("patients.txt:2: nir: expected 13 to 15 characters"));
    result = run({"--auto-pair", "--facility-ca", (dir / "pki/receiver.key").string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("--facility-ca"));
    CHECK_THAT(result.output, !Catch::Contains("PRIVATE KEY"));
    result = run({"--auto-pair", "--key", (dir / "pki/gateway.key").string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("--key"));
    result = run({"--auto-pair", "--token-ttl-s", "0"});
    CHECK(result.status.code == 2);
}
