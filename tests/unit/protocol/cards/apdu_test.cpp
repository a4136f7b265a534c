#include "protocol/cards/apdu.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/hex.hpp"

namespace {

using cb::cards::Bytes;
using cb::cards::CommandApdu;
using cb::cards::ExchangeComplete;
using cb::cards::ResponseApdu;
using cb::cards::ResponsePlanner;
using cb::cards::SendCommand;
using cb::cards::StatusWord;

Bytes hex(std::string_view text) {
    auto bytes = cb::from_hex(text);
    if (!bytes)
        throw std::invalid_argument(bytes.error().message());
    return std::move(bytes).value();
}

std::string encoded(const CommandApdu& command) {
    const auto bytes = cb::cards::encode_command(command);
    REQUIRE(bytes);
    return cb::to_hex(*bytes);
}

CommandApdu read_binary(std::optional<std::size_t> expected, Bytes data = {}) {
    return CommandApdu{.cla = 0x00, .ins = 0xB0, .p1 = 0x00, .p2 = 0x00, .data = std::move(data), .expected = expected};
}

ResponseApdu response(std::string_view text) {
    auto parsed = cb::cards::parse_response(hex(text));
    REQUIRE(parsed);
    return std::move(parsed).value();
}

}  // namespace

TEST_CASE("encode_command writes the four short cases") {
    CHECK(encoded(read_binary(std::nullopt)) == "00B00000");                     // case 1
    CHECK(encoded(read_binary(16)) == "00B0000010");                             // case 2S
    CHECK(encoded(read_binary(256)) == "00B0000000");                            // case 2S, Le 00 = 256
    CHECK(encoded(read_binary(std::nullopt, hex("2001"))) == "00B00000022001");  // case 3S
    CHECK(encoded(read_binary(256, hex("0102030405"))) ==
          "00B00000050102030405"
          "00");  // case 4S
    CHECK(encoded(read_binary(1, Bytes(255, 0xAA))).size() == std::size_t{2} * (4 + 1 + 255 + 1));
    CHECK_FALSE(cb::cards::needs_extended_length(read_binary(256, Bytes(255, 0xAA))));
}

TEST_CASE("encode_command switches both fields to the extended form") {
    CHECK(encoded(read_binary(257)) == "00B00000000101");    // case 2E
    CHECK(encoded(read_binary(65536)) == "00B00000000000");  // case 2E, 0000 = 65536
    const Bytes long_data(256, 0x5A);
    CHECK(encoded(read_binary(std::nullopt, long_data)) == "00B00000000100" + cb::to_hex(long_data));  // case 3E
    CHECK(encoded(read_binary(512, hex("010203"))) ==
          "00B00000000003010203"
          "0200");                                                                                   // case 4E
    CHECK(encoded(read_binary(1, long_data)) == "00B00000000100" + cb::to_hex(long_data) + "0001");  // 4E by Nc
    CHECK(cb::cards::needs_extended_length(read_binary(1, long_data)));
    const auto largest = cb::cards::encode_command(read_binary(65536, Bytes(65535, 0x00)));
    REQUIRE(largest);
    CHECK(largest->size() == 4 + 3 + 65535 + 2);
}

TEST_CASE("encode_command rejects what no APDU can carry") {
    const auto too_much_data = cb::cards::encode_command(read_binary(std::nullopt, Bytes(65536, 0x00)));
    REQUIRE_FALSE(too_much_data);
    CHECK(too_much_data.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(too_much_data.error().message() ==
          "command APDU INS B0: 65536 data bytes exceed the 65535 an extended Lc can carry");

    const auto too_much_expected = cb::cards::encode_command(read_binary(65537));
    REQUIRE_FALSE(too_much_expected);
    CHECK(too_much_expected.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(too_much_expected.error().message() ==
          "command APDU INS B0: Ne 65537 exceeds the 65536 an extended Le can ask for");

    const auto zero = cb::cards::encode_command(read_binary(0));
    REQUIRE_FALSE(zero);
    CHECK(zero.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(zero.error().message() == "command APDU INS B0: Ne 0 is not encodable; leave it absent");
}

TEST_CASE("parse_response splits data and status word") {
    const auto status_only = response("9000");
    CHECK(status_only.data.empty());
    CHECK(status_only.status == StatusWord(0x9000));
    CHECK(status_only.status.is_success());

    const auto with_data = response("0102 6282");
    CHECK(with_data.data == hex("0102"));
    CHECK(with_data.status.sw1() == 0x62);
    CHECK(with_data.status.sw2() == 0x82);
    CHECK_FALSE(with_data.status.is_success());

    const auto largest = cb::cards::parse_response(Bytes(cb::cards::max_response_size, 0x90));
    REQUIRE(largest);
    CHECK(largest->data.size() == 65536);
}

TEST_CASE("parse_response rejects short and oversized responses") {
    for (const Bytes& input : {Bytes{}, Bytes{0x90}}) {
        const auto parsed = cb::cards::parse_response(input);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().kind() == cb::ErrorKind::invalid_input);
        CHECK(parsed.error().message() == "response APDU: " + std::to_string(input.size()) +
                                              (input.size() == 1 ? " byte" : " bytes") +
                                              " is too short for the status word SW1 SW2");
    }
    const auto oversized = cb::cards::parse_response(Bytes(cb::cards::max_response_size + 1, 0x00));
    REQUIRE_FALSE(oversized);
    CHECK(oversized.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(oversized.error().message() == "response APDU: 65539 bytes exceed the 65538 a card can return");
}

TEST_CASE("StatusWord describes the common status words") {
    const std::vector<std::pair<std::uint16_t, std::string>> expected{
        {0x9000, "9000 (success)"},
        {0x6110, "6110 (16 bytes available)"},
        {0x6100, "6100 (256 bytes available)"},
        {0x6101, "6101 (1 byte available)"},
        {0x6C20, "6C20 (wrong Le: exactly 32 bytes available)"},
        {0x6C00, "6C00 (wrong Le: exactly 256 bytes available)"},
        {0x6281, "6281 (part of returned data may be corrupted)"},
        {0x6282, "6282 (end of file reached before reading Ne bytes)"},
        {0x6283, "6283 (selected file deactivated)"},
        {0x6300, "6300 (verification failed)"},
        {0x63C2, "63C2 (verification failed, 2 tries left)"},
        {0x63C1, "63C1 (verification failed, 1 try left)"},
        {0x63C0, "63C0 (verification failed, 0 tries left)"},
        {0x6581, "6581 (memory failure)"},
        {0x6700, "6700 (wrong length)"},
        {0x6982, "6982 (security status not satisfied)"},
        {0x6983, "6983 (authentication method blocked)"},
        {0x6984, "6984 (reference data not usable)"},
        {0x6985, "6985 (conditions of use not satisfied)"},
        {0x6986, "6986 (command not allowed (no current EF))"},
        {0x6A80, "6A80 (incorrect parameters in the data field)"},
        {0x6A81, "6A81 (function not supported)"},
        {0x6A82, "6A82 (file not found)"},
        {0x6A86, "6A86 (incorrect parameters P1-P2)"},
        {0x6A88, "6A88 (referenced data not found)"},
        {0x6B00, "6B00 (wrong parameters P1-P2 (offset outside the EF))"},
        {0x6D00, "6D00 (instruction not supported)"},
        {0x6E00, "6E00 (class not supported)"},
        {0x6F00, "6F00 (no precise diagnosis)"},
        {0x9A01, "9A01 (unknown status)"},
    };
    for (const auto& [value, text] : expected)
        CHECK(StatusWord(value).describe() == text);
}

TEST_CASE("StatusWord helpers decode 61xx, 6Cxx and 63Cx only") {
    CHECK(StatusWord(0x61, 0x00).bytes_available() == 256u);
    CHECK(StatusWord(0x61, 0x2A).bytes_available() == 42u);
    CHECK_FALSE(StatusWord(0x9000).bytes_available());
    CHECK(StatusWord(0x6C, 0x00).exact_length() == 256u);
    CHECK(StatusWord(0x6C, 0x08).exact_length() == 8u);
    CHECK_FALSE(StatusWord(0x6110).exact_length());
    CHECK(StatusWord(0x63C3).tries_left() == 3u);
    CHECK(StatusWord(0x63C0).tries_left() == 0u);
    CHECK_FALSE(StatusWord(0x6300).tries_left());
    CHECK_FALSE(StatusWord(0x6283).tries_left());
}

TEST_CASE("get_response_command and internal_authenticate_command build their APDUs") {
    CHECK(encoded(cb::cards::get_response_command(0x10)) == "00C0000010");
    CHECK(encoded(cb::cards::get_response_command(256)) == "00C0000000");

    const auto authenticate = cb::cards::internal_authenticate_command(hex("0102030405060708"));
    REQUIRE(authenticate);
    CHECK(encoded(*authenticate) == "0088000008010203040506070800");

    for (const Bytes& challenge : {Bytes{}, Bytes(256, 0x01)}) {
        const auto rejected = cb::cards::internal_authenticate_command(challenge);
        REQUIRE_FALSE(rejected);
        CHECK(rejected.error().kind() == cb::ErrorKind::invalid_input);
        CHECK(rejected.error().message() ==
              "INTERNAL AUTHENTICATE: challenge of " + std::to_string(challenge.size()) + " bytes, expected 1..255");
    }
}

TEST_CASE("ResponsePlanner completes at once on a final status word") {
    ResponsePlanner planner(read_binary(256));
    const auto step = planner.next(response("0102 9000"));
    REQUIRE(step);
    REQUIRE(std::holds_alternative<ExchangeComplete>(*step));
    CHECK(std::get<ExchangeComplete>(*step).response.data == hex("0102"));
    CHECK(std::get<ExchangeComplete>(*step).response.status == StatusWord(0x9000));

    ResponsePlanner failing(read_binary(256));
    const auto not_found = failing.next(response("6A82"));
    REQUIRE(not_found);
    CHECK(std::get<ExchangeComplete>(*not_found).response.status.describe() == "6A82 (file not found)");

    const auto again = failing.next(response("9000"));
    REQUIRE_FALSE(again);
    CHECK(again.error().kind() == cb::ErrorKind::internal);
    CHECK(again.error().message() == "INS B0: response planner used after the exchange ended");
}

TEST_CASE("ResponsePlanner follows 61xx with GET RESPONSE and gathers the data") {
    ResponsePlanner planner(read_binary(256));
    auto step = planner.next(response("0A0B 6103"));
    REQUIRE(step);
    REQUIRE(std::holds_alternative<SendCommand>(*step));
    CHECK(encoded(std::get<SendCommand>(*step).command) == "00C0000003");

    step = planner.next(response("0C0D0E 6100"));
    REQUIRE(step);
    CHECK(encoded(std::get<SendCommand>(*step).command) == "00C0000000");

    step = planner.next(response("0F 9000"));
    REQUIRE(step);
    REQUIRE(std::holds_alternative<ExchangeComplete>(*step));
    CHECK(std::get<ExchangeComplete>(*step).response.data == hex("0A0B0C0D0E0F"));
    CHECK(planner.get_response_rounds() == 2);
}

TEST_CASE("ResponsePlanner resends with the corrected Le once") {
    ResponsePlanner planner(read_binary(256));
    auto step = planner.next(response("6C10"));
    REQUIRE(step);
    REQUIRE(std::holds_alternative<SendCommand>(*step));
    CHECK(encoded(std::get<SendCommand>(*step).command) == "00B0000010");

    step = planner.next(response("6C08"));
    REQUIRE_FALSE(step);
    CHECK(step.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(step.error().message() ==
          "INS B0: card asked for Le correction twice (6C08 (wrong Le: exactly 8 bytes available))");
}

TEST_CASE("ResponsePlanner corrects the Le of a GET RESPONSE too") {
    ResponsePlanner planner(read_binary(256));
    auto step = planner.next(response("01 6110"));
    REQUIRE(step);
    step = planner.next(response("6C04"));
    REQUIRE(step);
    CHECK(encoded(std::get<SendCommand>(*step).command) == "00C0000004");
    step = planner.next(response("02030405 9000"));
    REQUIRE(step);
    CHECK(std::get<ExchangeComplete>(*step).response.data == hex("0102030405"));
}

TEST_CASE("ResponsePlanner bounds GET RESPONSE rounds and gathered data") {
    ResponsePlanner planner(read_binary(256));
    for (std::size_t round = 0; round < ResponsePlanner::max_get_response_rounds; ++round) {
        const auto step = planner.next(response("00 6101"));
        REQUIRE(step);
        REQUIRE(std::holds_alternative<SendCommand>(*step));
    }
    const auto over = planner.next(response("00 6101"));
    REQUIRE_FALSE(over);
    CHECK(over.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(over.error().message() == "GET RESPONSE: more than 32 rounds for INS B0");

    ResponsePlanner flooded(read_binary(256));
    Bytes big(65000, 0x11);
    big.push_back(0x61);
    big.push_back(0x00);
    REQUIRE(flooded.next(*cb::cards::parse_response(big)));
    Bytes more(1000, 0x22);
    more.push_back(0x90);
    more.push_back(0x00);
    const auto too_much = flooded.next(*cb::cards::parse_response(more));
    REQUIRE_FALSE(too_much);
    CHECK(too_much.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(too_much.error().message() == "GET RESPONSE: 66000 bytes for INS B0 exceed 65536");
}
