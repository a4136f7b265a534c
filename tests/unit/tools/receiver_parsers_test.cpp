// Unit tests of carebridge-receiver's own parsers: the command line, the
// patients file, the JSON request bodies and the request target.
#include <catch2/catch.hpp>

#include "tools/receiver/options.hpp"
#include "tools/receiver/patients.hpp"
#include "tools/receiver/requests.hpp"

using namespace cb::receiver;

namespace {

std::vector<std::string> required_options() {
    return {"--cert", "s.crt", "--key", "s.key", "--client-ca", "c.crt", "--facility-ca", "f.crt", "--db", "r.db"};
}

std::vector<std::string> with(std::vector<std::string> extra) {
    auto arguments = required_options();
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return arguments;
}

}  // namespace

TEST_CASE("receiver options: defaults and every option") {
    const auto options = parse_options(with({"--auto-pair"}));
    REQUIRE(options);
    CHECK(options->listen.host == "127.0.0.1");
    CHECK(options->listen.port == 0);
    CHECK(options->token_ttl == std::chrono::seconds(3600));
    CHECK(options->log_level == LogLevel::info);
    CHECK(options->unsigned_bundles == UnsignedBundles::refuse);

    const auto all = parse_options(with({"--listen", "[::1]:8443", "--patients", "p.txt", "--token-ttl-s", "60",
                                         "--log-level", "debug", "--accept-unsigned"}));
    REQUIRE(all);
    CHECK(all->listen.host == "::1");
    CHECK(all->listen.port == 8443);
    CHECK(all->patients == std::filesystem::path("p.txt"));
    CHECK_FALSE(all->auto_pair);
    CHECK(all->token_ttl == std::chrono::seconds(60));
    CHECK(all->log_level == LogLevel::debug);
    CHECK(all->unsigned_bundles == UnsignedBundles::accept);
    CHECK(parse_options({"--help"})->help);
}

TEST_CASE("receiver options: errors name the option") {
    const auto message = [](std::vector<std::string> arguments) {
        const auto options = parse_options(arguments);
        REQUIRE_FALSE(options);
        return options.error().message();
    };
    CHECK(message({"--auto-pair"}) == "--cert is required (see --help)");
    CHECK_THAT(message(with({})), Catch::Contains("one of --patients FILE or --auto-pair"));
    CHECK_THAT(message(with({"--auto-pair", "--listen", "localhost:80"})), Catch::StartsWith("--listen"));
    CHECK_THAT(message(with({"--auto-pair", "--listen", "127.0.0.1:70000"})), Catch::Contains("0..65535"));
    CHECK_THAT(message(with({"--auto-pair", "--listen", "::1:80"})), Catch::StartsWith("--listen"));
    CHECK_THAT(message(with({"--auto-pair", "--token-ttl-s", "0"})), Catch::StartsWith("--token-ttl-s"));
    CHECK_THAT(message(with({"--auto-pair", "--log-level", "loud"})), Catch::StartsWith("--log-level"));
    CHECK_THAT(message(with({"--auto-pair", "--frobnicate", "1"})), Catch::Contains("unknown option"));
    CHECK_THAT(message(with({"--auto-pair", "--db"})), Catch::Contains("--db: missing value"));
    CHECK_THAT(message(with({"--auto-pair", "stray"})), Catch::Contains("unexpected argument"));
}

TEST_CASE("receiver patients: the file format") {
    const auto directory = PatientDirectory::parse(
        "# NIR CODE IDPE\n\n280017512345697\t4821  idpe-camille\r\n  1900175123456 abcd idpe-2 \n", "p.txt",
        AutoPair::no);
    REQUIRE(directory);
    CHECK(directory->size() == 2);
    CHECK(directory->pair("280017512345697", "4821") == "idpe-camille");
    CHECK(directory->pair("2800175123456", "4821") == "idpe-camille");  // without the key
    CHECK(directory->pair("280017512345697", "4822") == std::nullopt);
    CHECK(directory->pair("1900175123456", "abcd") == "idpe-2");
    CHECK(directory->pair("1800175123456", "0000") == std::nullopt);  // not auto-pairing
    CHECK(directory->pair("12", "4821") == std::nullopt);
}

TEST_CASE("receiver patients: errors name the line and the field") {
    const auto message = [](std::string_view text) {
        const auto directory = PatientDirectory::parse(text, "p.txt", AutoPair::no);
        REQUIRE_FALSE(directory);
        return directory.error().message();
    };
    CHECK_THAT(message("2800175123456 4821\n"), Catch::StartsWith("p.txt:1: expected 3 fields"));
    CHECK_THAT(message("# x\n2800175123456 4821 a b\n"), Catch::StartsWith("p.txt:2: expected 3 fields"));
    CHECK_THAT(message("28001751234 4821 a\n"), Catch::StartsWith("p.txt:1: nir: expected 13 to 15"));
    CHECK_THAT(message("2800175123456 48 a\n"), Catch::StartsWith("p.txt:1: code:"));
    CHECK_THAT(message("2800175123456 4821 a|b\n"), Catch::StartsWith("p.txt:1: idpe:"));
    CHECK_THAT(message("2800175123456 4821 a\n280017512345697 9999 b\n"),
               Catch::StartsWith("p.txt:2: nir: the same patient"));
    CHECK(PatientDirectory::parse(std::string(max_patients_file_size + 1, '#'), "p.txt", AutoPair::no).error().kind() ==
          cb::ErrorKind::limit_exceeded);
}

TEST_CASE("receiver patients: auto-pairing derives a stable idPe") {
    const auto automatic = PatientDirectory::automatic();
    const auto idpe = automatic.pair("280017512345697", "0000");
    REQUIRE(idpe);
    CHECK(idpe->size() == 21);
    CHECK(idpe->rfind("idpe-", 0) == 0);
    CHECK(valid_idpe(*idpe));
    CHECK(automatic.pair("2800175123456", "0000") == idpe);
    CHECK(automatic.pair("190017512345612", "0000") != idpe);
    CHECK(automatic.pair("280017512345697", "0001") == std::nullopt);
    CHECK(*idpe == auto_pair_idpe("2800175123456"));
    // The file wins over auto-pairing for the patients it names.
    const auto both = PatientDirectory::parse("2800175123456 4821 idpe-camille\n", "p.txt", AutoPair::yes);
    REQUIRE(both);
    CHECK(both->pair("2800175123456", "0000") == std::nullopt);
    CHECK(both->pair("1900175123456", "0000") == auto_pair_idpe("1900175123456"));
}

TEST_CASE("receiver requests: pairing and token bodies") {
    const auto pairing = parse_pairing_request(R"({"nir":"280017512345697","code":"4821"})");
    REQUIRE(pairing);
    CHECK(pairing->nir == "280017512345697");
    CHECK(pairing->code == "4821");
    CHECK_THAT(parse_pairing_request(R"({"nir":"2800175","code":"4821"})").error().message(),
               Catch::StartsWith("nir:"));
    CHECK_THAT(parse_pairing_request(R"({"nir":2800175123456,"code":"4821"})").error().message(),
               Catch::StartsWith("nir: expected a string"));
    CHECK_THAT(parse_pairing_request(R"({"nir":"2800175123456"})").error().message(),
               Catch::StartsWith("code: missing"));
    CHECK_THAT(parse_pairing_request(R"({"nir":"2800175123456","code":"1","x":1})").error().message(),
               Catch::Contains("unknown member \"x\""));
    CHECK_THAT(parse_pairing_request("[1]").error().message(), Catch::Contains("expected a JSON object"));
    CHECK_THAT(parse_pairing_request("{").error().message(), Catch::Contains("not JSON"));
    CHECK(parse_pairing_request(std::string(max_control_body + 1, ' ')).error().kind() ==
          cb::ErrorKind::limit_exceeded);
    CHECK_FALSE(parse_pairing_request(R"({"nir":[[[[[["x"]]]]]]})"));

    const auto token = parse_token_request(R"({"grant_type":"refresh_token","refresh_token":"abc"})");
    REQUIRE(token);
    CHECK(token->grant_type == "refresh_token");
    CHECK(token->refresh_token == "abc");
    CHECK_FALSE(parse_token_request(R"({"grant_type":"refresh_token","refresh_token":""})"));
}

TEST_CASE("receiver requests: fault bodies") {
    const auto all = parse_fault_request(R"({"fail_next":3,"status":500,"retry_after_s":7,"delay_ms":20,)"
                                         R"("drop_next":1,"refuse_consent":"idpe-1","expire_tokens":true})");
    REQUIRE(all);
    CHECK(all->fail_next == 3u);
    CHECK(all->status == 500u);
    CHECK(all->retry_after_s == 7u);
    CHECK(all->delay == std::chrono::milliseconds(20));
    CHECK(all->drop_next == 1u);
    CHECK(all->refuse_consent == "idpe-1");
    CHECK(all->expire_tokens);
    CHECK_FALSE(all->reset);
    CHECK(parse_fault_request(R"({"reset":true})")->reset);
    CHECK(parse_fault_request(R"({"fail_next":0})")->fail_next == 0u);

    const auto message = [](std::string_view body) {
        const auto faults = parse_fault_request(body);
        REQUIRE_FALSE(faults);
        return faults.error().message();
    };
    CHECK_THAT(message("{}"), Catch::Contains("at least one fault"));
    CHECK_THAT(message(R"({"status":503})"), Catch::Contains("only with fail_next"));
    CHECK_THAT(message(R"({"fail_next":1,"status":200})"), Catch::StartsWith("status: expected an integer 400..599"));
    CHECK_THAT(message(R"({"fail_next":-1})"), Catch::StartsWith("fail_next:"));
    CHECK_THAT(message(R"({"fail_next":1.5})"), Catch::StartsWith("fail_next:"));
    CHECK_THAT(message(R"({"delay_ms":60001})"), Catch::StartsWith("delay_ms:"));
    CHECK_THAT(message(R"({"reset":false})"), Catch::StartsWith("reset: expected true"));
    CHECK_THAT(message(R"({"refuse_consent":"a b"})"), Catch::StartsWith("refuse_consent:"));
}

TEST_CASE("receiver requests: targets and query strings") {
    const auto plain = parse_target("/fhir");
    REQUIRE(plain);
    CHECK(plain->path == "/fhir");
    CHECK(plain->query.empty());
    const auto search = parse_target("/fhir/Observation?patient=idpe%2D1+x&&_count=");
    REQUIRE(search);
    CHECK(search->path == "/fhir/Observation");
    CHECK(search->query.at("patient") == "idpe-1 x");
    CHECK(search->query.at("_count").empty());
    CHECK_FALSE(parse_target("/fhir?a=%zz"));
    CHECK_FALSE(parse_target("/fhir?a=%2"));
    CHECK_FALSE(parse_target("/fhir?a=%00"));
    CHECK_FALSE(parse_target("/fhir?a=1&a=2"));
    std::string many = "/x?";
    for (int i = 0; i <= static_cast<int>(max_query_parameters); ++i)
        many += "p" + std::to_string(i) + "=1&";
    CHECK(parse_target(many).error().kind() == cb::ErrorKind::limit_exceeded);
}
