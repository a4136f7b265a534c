#include "protocol/devices/timestamp.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

namespace {

using namespace std::chrono;

cb::devices::Microseconds utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int us = 0) {
    return sys_days(year{y} / month{mo} / day{d}) + hours(h) + minutes(mi) + seconds(s) + microseconds(us);
}

void check_bad(const char* text, const std::string& message) {
    INFO(text);
    const auto parsed = cb::devices::parse_rfc3339(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(parsed.error().message() == message);
}

}  // namespace

TEST_CASE("RFC 3339 timestamps keep the instant and the offset", "[devices][timestamp]") {
    const auto zulu = cb::devices::parse_rfc3339("2026-11-22T10:00:00Z");
    REQUIRE(zulu);
    CHECK(zulu->utc == utc(2026, 11, 22, 10, 0, 0));
    CHECK(zulu->offset == minutes(0));

    const auto paris = cb::devices::parse_rfc3339("2026-11-22T11:00:00+01:00");
    REQUIRE(paris);
    CHECK(paris->utc == utc(2026, 11, 22, 10, 0, 0));
    CHECK(paris->offset == minutes(60));

    const auto west = cb::devices::parse_rfc3339("2026-11-21T23:30:00-10:30");
    REQUIRE(west);
    CHECK(west->utc == utc(2026, 11, 22, 10, 0, 0));
    CHECK(west->offset == minutes(-630));

    const auto lower = cb::devices::parse_rfc3339("2026-11-22t10:00:00z");
    REQUIRE(lower);
    CHECK(lower->utc == utc(2026, 11, 22, 10, 0, 0));

    const auto unknown_offset = cb::devices::parse_rfc3339("2026-11-22T10:00:00-00:00");
    REQUIRE(unknown_offset);
    CHECK(unknown_offset->offset == minutes(0));
}

TEST_CASE("RFC 3339 fractions are kept to the microsecond and truncated beyond", "[devices][timestamp]") {
    CHECK(cb::devices::parse_rfc3339("2026-11-22T10:00:00.5Z")->utc == utc(2026, 11, 22, 10, 0, 0, 500000));
    CHECK(cb::devices::parse_rfc3339("2026-11-22T10:00:00.123456Z")->utc == utc(2026, 11, 22, 10, 0, 0, 123456));
    CHECK(cb::devices::parse_rfc3339("2026-11-22T10:00:00.123456789Z")->utc == utc(2026, 11, 22, 10, 0, 0, 123456));
}

TEST_CASE("RFC 3339 calendar rules", "[devices][timestamp]") {
    CHECK(cb::devices::parse_rfc3339("2024-02-29T00:00:00Z"));
    CHECK(cb::devices::parse_rfc3339("2000-02-29T00:00:00Z"));
    check_bad("2026-02-29T00:00:00Z", "\"2026-02-29T00:00:00Z\": day 29 does not exist in 2026-02");
    check_bad("1900-02-29T00:00:00Z", "\"1900-02-29T00:00:00Z\": day 29 does not exist in 1900-02");
    check_bad("2026-13-01T00:00:00Z", "\"2026-13-01T00:00:00Z\": month 13 does not exist");
    check_bad("2026-00-01T00:00:00Z", "\"2026-00-01T00:00:00Z\": month 00 does not exist");
    check_bad("0000-01-01T00:00:00Z", "\"0000-01-01T00:00:00Z\": year 0000 is not accepted");
    check_bad("2026-11-22T24:00:00Z", "\"2026-11-22T24:00:00Z\": time 24:00:00 is out of range");
    check_bad("2026-12-31T23:59:60Z",
              "\"2026-12-31T23:59:60Z\": time 23:59:60 is out of range (leap seconds are not accepted)");
    check_bad("2026-11-22T10:00:00+24:00",
              "\"2026-11-22T10:00:00+24:00\": offset 24:00 is out of range (at most 23:59)");
}

TEST_CASE("RFC 3339 syntax errors name the part and the offset", "[devices][timestamp]") {
    check_bad("2026-11-22T10:00:00", "\"2026-11-22T10:00:00\": expected 'Z' or an offset (+hh:mm, -hh:mm) at 19");
    check_bad("2026-11-22 10:00:00Z", "\"2026-11-22 10:00:00Z\": expected 'T' between date and time at 10");
    check_bad("2026-11-22T10:00:00Zjunk", "\"2026-11-22T10:00:00Zjunk\": unexpected text after the offset at 20");
    check_bad("2026-11-22T10:00:00.Z", "\"2026-11-22T10:00:00.Z\": expected 1..9 digits of fraction at 20");
    check_bad("2026-11-22T10:00:00.1234567890Z",
              "\"2026-11-22T10:00:00.1234567890Z\": expected 1..9 digits of fraction at 30");
    check_bad("20261122T100000Z", "\"20261122T100000Z\": expected '-' after the year at 4");
    check_bad("2026-11-22T10:00:00+0100", "\"2026-11-22T10:00:00+0100\": expected ':' in the offset at 22");
    check_bad("", "\"\": expected 4 digits for the year at 0");
    check_bad("2026-1-22T10:00:00Z", "\"2026-1-22T10:00:00Z\": expected 2 digits for the month at 6");
}
