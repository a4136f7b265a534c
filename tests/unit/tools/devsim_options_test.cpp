#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tools/devsim/options.hpp"

namespace {

cb::Result<cb::devsim::Options> parse(std::vector<std::string> arguments) {
    return cb::devsim::parse_options(arguments);
}

void check_refused(std::vector<std::string> arguments, const std::string& message) {
    const auto parsed = parse(std::move(arguments));
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message() == message);
}

}  // namespace

TEST_CASE("devsim options: explicit devices and defaults", "[devsim][options]") {
    const auto options = parse({"--pki-dir", "/p", "--device", "cuff-1:sim-bp-1", "--device", "oxi-1:sim-oxi-1"});
    if (!options)
        FAIL(options.error().message());
    REQUIRE(options->devices.size() == 2);
    CHECK(options->devices[0].id.str() == "cuff-1");
    CHECK(options->devices[1].model == cb::devsim::DeviceModel::oximeter);
    CHECK(options->cafile == "/p/ca.crt");
    CHECK(options->readings == 10u);
    CHECK(options->rate == 1.0);
    CHECK(options->resend_after_s == 30u);
    CHECK_FALSE(options->until_acked);
    CHECK(options->misbehave == cb::devsim::Misbehaviour::none);
}

TEST_CASE("devsim options: many devices from a prefix", "[devsim][options]") {
    const auto options =
        parse({"--pki-dir",    "/p",       "--devices", "3",          "--type", "sim-band-1",    "--prefix",
               "band-",        "--rate",   "0",         "--readings", "5",      "--until-acked", "--misbehave",
               "out-of-order", "--cafile", "/ca.pem",   "--port",     "18883",  "--timeout-s",   "9"});
    if (!options)
        FAIL(options.error().message());
    REQUIRE(options->devices.size() == 3);
    CHECK(options->devices[2].id.str() == "band-3");
    CHECK(options->rate == 0.0);
    CHECK(options->readings == 5u);
    CHECK(options->until_acked);
    CHECK(options->misbehave == cb::devsim::Misbehaviour::out_of_order);
    CHECK(options->cafile == "/ca.pem");
    CHECK(options->port == 18883);
    CHECK(options->timeout_s == 9u);
}

TEST_CASE("devsim options: mistakes are named", "[devsim][options]") {
    check_refused({"--pki-dir", "/p"}, "no device: give --device ID:MODEL or --devices N --type MODEL");
    check_refused({"--device", "cuff-1:sim-bp-1"}, "--pki-dir is required (device certificates)");
    check_refused({"--pki-dir", "/p", "--device", "cuff-1"}, "--device: \"cuff-1\" is not ID:MODEL");
    check_refused({"--pki-dir", "/p", "--device", "a/b:sim-bp-1"},
                  "--device: device id \"a/b\": character '/' at 1 is not allowed (A-Z a-z 0-9 . _ -)");
    check_refused({"--pki-dir", "/p", "--device", "carebridged:sim-bp-1"},
                  "--device: \"carebridged\" is the gateway's identity, not a device");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--device", "a:sim-oxi-1"},
                  "device \"a\" is given twice (one connection per certificate)");
    check_refused({"--pki-dir", "/p", "--devices", "2"}, "--devices N and --type MODEL go together");
    check_refused({"--pki-dir", "/p", "--devices", "0", "--type", "sim-bp-1"},
                  "--devices: \"0\" is not an integer 1..100000");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--rate", "-1"},
                  "--rate: \"-1\" is not a number 0..1000000");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--rate", "nan"},
                  "--rate: \"nan\" is not a number 0..1000000");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--port", "65536"},
                  "--port: \"65536\" is not an integer 1..65535");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--misbehave", "chaos"},
                  "--misbehave: \"chaos\" is not a mode (see --help)");
    check_refused({"--pki-dir", "/p", "--device", "a:sim-bp-1", "--readings"}, "--readings: missing value");
    check_refused({"--pki-dir", "/p", "--frobnicate", "1"}, "unknown option \"--frobnicate\" (see --help)");
    check_refused({"--pki-dir", "/p", "stray"}, "unexpected argument \"stray\"");
}

TEST_CASE("devsim options: --help", "[devsim][options]") {
    const auto options = parse({"--help"});
    REQUIRE(options);
    CHECK(options->help);
    CHECK_THAT(cb::devsim::usage_text(), Catch::Contains("--until-acked"));
}
