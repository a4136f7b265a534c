#include "protocol/cards/practitioner_card.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "protocol/cards/secure_bytes.hpp"
#include "protocol/hex.hpp"

namespace {

using cb::cards::PinState;
using cb::cards::PinStatus;
using cb::cards::StatusWord;

std::string encoded(const cb::cards::CommandApdu& command) {
    const auto bytes = cb::cards::encode_command(command);
    REQUIRE(bytes);
    return cb::to_hex(*bytes);
}

}  // namespace

TEST_CASE("practitioner card SELECT and PIN query commands") {
    CHECK(encoded(cb::cards::select_practitioner_application()) == "00A404000DE828BD080F8025000001FF0010");
    CHECK(encoded(cb::cards::query_pin_command()) == "00200081");
}

TEST_CASE("verify_pin_command pads the ASCII PIN with FF to 8 bytes") {
    auto four = cb::cards::Pin::from_digits("1234");
    REQUIRE(four);
    CHECK(four->size() == 4);
    const cb::cards::SecureBytes command = cb::cards::verify_pin_command(*four);
    CHECK(cb::to_hex(command.bytes()) == "002000810831323334FFFFFFFF");

    auto eight = cb::cards::Pin::from_digits("09876543");
    REQUIRE(eight);
    CHECK(cb::to_hex(cb::cards::verify_pin_command(*eight).bytes()) == "00200081083039383736353433");
}

TEST_CASE("Pin rejects what is not 4 to 8 digits, without echoing it") {
    for (const char* digits : {"", "123", "123456789"}) {
        const auto pin = cb::cards::Pin::from_digits(digits);
        REQUIRE_FALSE(pin);
        CHECK(pin.error().kind() == cb::ErrorKind::invalid_input);
        CHECK(pin.error().message() ==
              "PIN: " + std::to_string(std::string(digits).size()) + " digits, expected 4 to 8");
    }
    const auto letter = cb::cards::Pin::from_digits("12a45");
    REQUIRE_FALSE(letter);
    CHECK(letter.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(letter.error().message() == "PIN: non-digit at position 2");
    const auto space = cb::cards::Pin::from_digits("1234 ");
    REQUIRE_FALSE(space);
    CHECK(space.error().message() == "PIN: non-digit at position 4");
}

TEST_CASE("Pin and SecureBytes cannot be copied and are emptied by a move") {
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<cb::cards::Pin>);
    STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<cb::cards::Pin>);
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<cb::cards::SecureBytes>);

    auto pin = cb::cards::Pin::from_digits("123456");
    REQUIRE(pin);
    cb::cards::Pin moved = std::move(*pin);
    CHECK(moved.size() == 6);
    CHECK(pin->size() == 0);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move): moves wipe

    cb::cards::SecureBytes bytes(4);
    bytes.append(0x31);
    bytes.append(std::array<std::uint8_t, 3>{0x32, 0x33, 0x34});
    CHECK(cb::to_hex(bytes.bytes()) == "31323334");
    cb::cards::SecureBytes taken = std::move(bytes);
    CHECK(taken.size() == 4);
    CHECK(bytes.size() == 0);  // NOLINT(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
    taken.wipe();
    CHECK(taken.size() == 0);
}

TEST_CASE("interpret_verify maps VERIFY status words") {
    CHECK(cb::cards::interpret_verify(StatusWord(0x9000)) ==
          PinStatus{PinState::verified, std::nullopt, StatusWord(0x9000)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x63C2)) == PinStatus{PinState::wrong_pin, 2u, StatusWord(0x63C2)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x63C1)) == PinStatus{PinState::wrong_pin, 1u, StatusWord(0x63C1)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x63C0)) ==
          PinStatus{PinState::blocked, std::nullopt, StatusWord(0x63C0)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x6983)) ==
          PinStatus{PinState::blocked, std::nullopt, StatusWord(0x6983)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x6700)) ==
          PinStatus{PinState::error, std::nullopt, StatusWord(0x6700)});
    CHECK(cb::cards::interpret_verify(StatusWord(0x6300)).state == PinState::error);
    CHECK(cb::cards::interpret_verify(StatusWord(0x6A88)).state == PinState::error);
}

TEST_CASE("interpret_pin_query maps the tries counter") {
    CHECK(cb::cards::interpret_pin_query(StatusWord(0x63C3)) ==
          PinStatus{PinState::not_verified, 3u, StatusWord(0x63C3)});
    CHECK(cb::cards::interpret_pin_query(StatusWord(0x9000)).state == PinState::verified);
    CHECK(cb::cards::interpret_pin_query(StatusWord(0x6983)).state == PinState::blocked);
    CHECK(cb::cards::interpret_pin_query(StatusWord(0x6D00)).state == PinState::error);
}
