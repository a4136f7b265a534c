#include "protocol/hex.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

const Bytes select_vitale{0x00, 0xA4, 0x04, 0x00};

}  // namespace

TEST_CASE("to_hex writes uppercase digits") {
    const std::array<std::uint8_t, 5> bytes{0x00, 0xA4, 0x0f, 0x9B, 0xFF};
    CHECK(cb::to_hex(bytes) == "00A40F9BFF");
    CHECK(cb::to_hex(bytes, ' ') == "00 A4 0F 9B FF");
    CHECK(cb::to_hex(bytes, ':') == "00:A4:0F:9B:FF");
    CHECK(cb::to_hex(Bytes{}).empty());
    CHECK(cb::to_hex(Bytes{}, ' ').empty());
    CHECK(cb::to_hex(Bytes{0x7E}, ' ') == "7E");
}

TEST_CASE("to_lowercase_hex writes lowercase digits, as the catalog's digests") {
    const std::array<std::uint8_t, 5> bytes{0x00, 0xA4, 0x0f, 0x9B, 0xFF};
    CHECK(cb::to_lowercase_hex(bytes) == "00a40f9bff");
    CHECK(cb::to_lowercase_hex(Bytes{}).empty());
}

TEST_CASE("from_hex accepts the ways APDU traces are written") {
    CHECK(cb::from_hex("00A40400").value() == select_vitale);
    CHECK(cb::from_hex("00a40400").value() == select_vitale);
    CHECK(cb::from_hex("00 A4 04 00").value() == select_vitale);
    CHECK(cb::from_hex("00:a4:04:00").value() == select_vitale);
    CHECK(cb::from_hex("00A4 0400").value() == select_vitale);
    CHECK(cb::from_hex("  00  A4\t04\r\n00\n").value() == select_vitale);
    CHECK(cb::from_hex("aBcDeF").value() == Bytes{0xAB, 0xCD, 0xEF});
}

TEST_CASE("from_hex of nothing is no bytes") {
    CHECK(cb::from_hex("").value().empty());
    CHECK(cb::from_hex(" : \n").value().empty());
}

TEST_CASE("from_hex rejects odd digit groups with their position") {
    auto odd = cb::from_hex("00A");
    REQUIRE_FALSE(odd);
    CHECK(odd.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(odd.error().message() == "hex: odd number of digits (3) in the group at position 0");

    auto split = cb::from_hex("00 A 4");
    REQUIRE_FALSE(split);
    CHECK(split.error().message() == "hex: odd number of digits (1) in the group at position 3");

    auto last = cb::from_hex("00 A4 0");
    REQUIRE_FALSE(last);
    CHECK(last.error().message() == "hex: odd number of digits (1) in the group at position 6");
}

TEST_CASE("from_hex rejects characters that are not hex with their position") {
    auto letter = cb::from_hex("00 G4");
    REQUIRE_FALSE(letter);
    CHECK(letter.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(letter.error().message() == "hex: invalid character 'G' at position 3");

    auto prefix = cb::from_hex("0x00");
    REQUIRE_FALSE(prefix);
    CHECK(prefix.error().message() == "hex: invalid character 'x' at position 1");

    auto dash = cb::from_hex("00-A4");
    REQUIRE_FALSE(dash);
    CHECK(dash.error().message() == "hex: invalid character '-' at position 2");

    auto control = cb::from_hex(std::string_view("00\0A4", 5));
    REQUIRE_FALSE(control);
    CHECK(control.error().message() == "hex: invalid character \\x00 at position 2");

    auto high = cb::from_hex("\xC3\xA9");
    REQUIRE_FALSE(high);
    CHECK(high.error().message() == "hex: invalid character \\xC3 at position 0");

    auto quote = cb::from_hex("'");
    REQUIRE_FALSE(quote);
    CHECK(quote.error().message() == "hex: invalid character \\x27 at position 0");
}

TEST_CASE("to_hex and from_hex round-trip every byte value") {
    Bytes all(256);
    for (std::size_t i = 0; i < all.size(); ++i)
        all[i] = static_cast<std::uint8_t>(i);
    CHECK(cb::from_hex(cb::to_hex(all)).value() == all);
    CHECK(cb::from_hex(cb::to_hex(all, ' ')).value() == all);
    CHECK(cb::from_hex(cb::to_hex(all, ':')).value() == all);
}
