// 02 check-config and command line: what an operator sees before starting.
#include <catch2/catch.hpp>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using cb::test::run_command;
using cb::test::TempDir;

TEST_CASE("02 check-config: wrong type, unknown key, out-of-range value, with lines, exit 2") {
    TempDir dir;
    const auto path = dir.write("bad.toml",
                                "# a config with three mistakes\n"
                                "[daemon]\n"
                                "shutdown_timeout_s = \"soon\"\n"
                                "[mqtt]\n"
                                "hostname = \"broker\"\n"
                                "keepalive_s = 1\n");
    const auto result = run_command({CAREBRIDGED_PATH, "--check-config", path.string()});
    CHECK(result.status.exited);
    CHECK(result.status.code == 2);
    const std::string p = path.string();
    CHECK_THAT(result.output,
               Catch::Contains(p + ":3: daemon.shutdown_timeout_s: expected an integer in 1..60, got a string"));
    CHECK_THAT(result.output, Catch::Contains(p + ":5: mqtt.hostname: unknown key"));
    CHECK_THAT(result.output, Catch::Contains(p + ":6: mqtt.keepalive_s: expected an integer in 5..3600, got 1"));
    CHECK_THAT(result.output, Catch::Contains(p + ": 3 problem(s)"));
}

TEST_CASE("02 check-config: the shipped configuration passes") {
    const auto result =
        run_command({CAREBRIDGED_PATH, "--check-config", CAREBRIDGE_SOURCE_DIR "/config/carebridged.toml"});
    INFO(result.output);
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::Contains("carebridged.toml: OK"));
}

TEST_CASE("02 check-config: a syntax error and a missing file are reported, exit 2") {
    TempDir dir;
    const auto path = dir.write("syntax.toml", "[daemon\n");
    auto result = run_command({CAREBRIDGED_PATH, "--check-config", path.string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::StartsWith(path.string() + ":1: "));

    result = run_command({CAREBRIDGED_PATH, "--check-config", (dir / "missing.toml").string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("missing.toml: cannot read: No such file or directory"));
}

TEST_CASE("02 command line: --version, --help, bad arguments") {
    auto result = run_command({CAREBRIDGED_PATH, "--version"});
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::StartsWith("carebridged 0."));

    result = run_command({CAREBRIDGED_PATH, "--frobnicate"});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("unknown argument '--frobnicate'"));

    result = run_command({CAREBRIDGED_PATH, "--config"});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("missing value for '--config'"));

    result = run_command({CAREBRIDGECTL_PATH, "--version"});
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::StartsWith("carebridgectl 0."));
    result = run_command({CAREBRIDGECTL_PATH, "--help"});
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::Contains("usage: carebridgectl"));
    result = run_command({CAREBRIDGECTL_PATH, "status"});
    CHECK(result.status.code == 2);
}

TEST_CASE("02 startup: an invalid --config refuses to start, exit 2") {
    TempDir dir;
    const auto path = dir.write("bad.toml", "[mqtt]\nport = 0\n");
    const auto result = run_command({CAREBRIDGED_PATH, "--config", path.string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains("<3>config: " + path.string() + ":2: mqtt.port: expected an integer"));
    CHECK_THAT(result.output, Catch::Contains("not starting: 1 problem(s)"));
}

TEST_CASE("02 check-catalog: the shipped catalog passes, a broken one is reported with exit 2") {
    auto result = run_command({CAREBRIDGED_PATH, "--check-catalog", CAREBRIDGE_SOURCE_DIR "/config/devices.toml"});
    INFO(result.output);
    CHECK(result.status.code == 0);
    CHECK_THAT(result.output, Catch::Contains("devices.toml: OK"));

    TempDir dir;
    const auto path = dir.write("devices.toml", "[[device]]\nid = \"x\"\nmodel = \"none\"\n");
    result = run_command({CAREBRIDGED_PATH, "--check-catalog", path.string()});
    CHECK(result.status.code == 2);
    CHECK_THAT(result.output, Catch::Contains(path.string() + ":3: device[0].model: \"none\" is not a [[model]] id"));
}
