#include "protocol/devices/topics.hpp"

#include <catch2/catch.hpp>
#include <string>

using cb::devices::DeviceId;
using cb::devices::GatewayId;

TEST_CASE("device ids accept the documented characters, 1 to 64 of them", "[devices][topics]") {
    for (const char* text : {"cuff-0042", "A", "scale_1.2", "0123456789", "a.b_c-D"}) {
        const auto id = DeviceId::parse(text);
        REQUIRE(id);
        CHECK(id->str() == text);
    }
    CHECK(DeviceId::parse(std::string(64, 'x')));
}

TEST_CASE("device ids reject wildcards, separators and bad lengths, naming the rule", "[devices][topics]") {
    const auto empty = DeviceId::parse("");
    REQUIRE_FALSE(empty);
    CHECK(empty.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(empty.error().message() == "device id is empty (expected 1..64 of A-Z a-z 0-9 . _ -)");

    const auto too_long = DeviceId::parse(std::string(65, 'x'));
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().message() == "device id is 65 bytes long (at most 64)");

    const auto slash = DeviceId::parse("a/b");
    REQUIRE_FALSE(slash);
    CHECK(slash.error().message() == "device id \"a/b\": character '/' at 1 is not allowed (A-Z a-z 0-9 . _ -)");

    for (const char* text : {"+", "#", "$SYS", "a b", "caf\xC3\xA9"})
        CHECK_FALSE(DeviceId::parse(text));
    const auto nul = DeviceId::parse(std::string("a\0b", 3));
    REQUIRE_FALSE(nul);
    CHECK(nul.error().message().find("character '\\x00' at 1") != std::string::npos);
}

TEST_CASE("id and topic errors escape control and non-ASCII bytes", "[devices][topics]") {
    const auto newline = DeviceId::parse("a\nb");
    REQUIRE_FALSE(newline);
    CHECK(newline.error().message() ==
          "device id \"a\\x0Ab\": character '\\x0A' at 1 is not allowed (A-Z a-z 0-9 . _ -)");
    const auto topic = cb::devices::parse_measurement_topic("cb/v1/dev/\xC3\xA9/ack");
    REQUIRE_FALSE(topic);
    CHECK(topic.error().message() ==
          "topic \"cb/v1/dev/\\xC3\\xA9/ack\": not a measurement topic (expected cb/v1/dev/{deviceId}/meas)");
}

TEST_CASE("gateway ids follow the device-id syntax", "[devices][topics]") {
    CHECK(GatewayId::parse("gw-reception-1"));
    const auto bad = GatewayId::parse("gw/1");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message().rfind("gateway id \"gw/1\"", 0) == 0);
}

TEST_CASE("measurement topics yield their device id", "[devices][topics]") {
    const auto id = cb::devices::parse_measurement_topic("cb/v1/dev/cuff-0042/meas");
    REQUIRE(id);
    CHECK(id->str() == "cuff-0042");
}

TEST_CASE("other topics are not measurement topics", "[devices][topics]") {
    for (const char* topic : {"cb/v1/dev/cuff-0042/ack", "cb/v2/dev/cuff-0042/meas", "cb/v1/dev//meas",
                              "cb/v1/dev/meas", "", "cb/v1/dev/cuff-0042/meas/", "/cb/v1/dev/cuff-0042/meas"}) {
        const auto id = cb::devices::parse_measurement_topic(topic);
        INFO(topic);
        REQUIRE_FALSE(id);
        CHECK(id.error().kind() == cb::ErrorKind::invalid_input);
    }
    const auto ack = cb::devices::parse_measurement_topic("cb/v1/dev/x/ack");
    CHECK(ack.error().message() ==
          "topic \"cb/v1/dev/x/ack\": not a measurement topic (expected cb/v1/dev/{deviceId}/meas)");
    const auto extra_level = cb::devices::parse_measurement_topic("cb/v1/dev/a/b/meas");
    CHECK(extra_level.error().message() ==
          "topic \"cb/v1/dev/a/b/meas\": device id \"a/b\": character '/' at 1 is "
          "not allowed (A-Z a-z 0-9 . _ -)");
    const auto wildcard = cb::devices::parse_measurement_topic("cb/v1/dev/+/meas");
    CHECK_FALSE(wildcard);
}

TEST_CASE("topic builders", "[devices][topics]") {
    const auto device = DeviceId::parse("scale-7").value();
    CHECK(cb::devices::measurement_topic(device) == "cb/v1/dev/scale-7/meas");
    CHECK(cb::devices::ack_topic(device) == "cb/v1/dev/scale-7/ack");
    CHECK(cb::devices::device_status_topic(device) == "cb/v1/dev/scale-7/status");
    CHECK(cb::devices::gateway_status_topic(GatewayId::parse("gw-1").value()) == "cb/v1/gw/gw-1/status");
}

TEST_CASE("ack payloads round-trip", "[devices][topics]") {
    CHECK(cb::devices::make_ack_payload(1234) == "{\"seq\":1234}");
    for (const std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{1234}, std::uint64_t{9007199254740991}}) {
        const auto parsed = cb::devices::parse_ack_payload(cb::devices::make_ack_payload(seq));
        REQUIRE(parsed);
        CHECK(*parsed == seq);
    }
    const auto spaced = cb::devices::parse_ack_payload(" { \"seq\" : 5 } ");
    REQUIRE(spaced);
    CHECK(*spaced == 5);
}

TEST_CASE("bad ack payloads are rejected", "[devices][topics]") {
    for (const char* payload : {"", "{}", "{\"seq\":0}", "{\"seq\":-1}", "{\"seq\":1.5}", "{\"seq\":\"1\"}",
                                "{\"seq\":9007199254740992}", "{\"seq\":1,\"x\":2}", "[1]", "{\"seq\":[1]}"}) {
        INFO(payload);
        const auto parsed = cb::devices::parse_ack_payload(payload);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message().rfind("ack payload: ", 0) == 0);
    }
    const auto big = cb::devices::parse_ack_payload(std::string(65, ' '));
    REQUIRE_FALSE(big);
    CHECK(big.error().kind() == cb::ErrorKind::limit_exceeded);
}
