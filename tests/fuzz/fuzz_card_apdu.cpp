// Fuzzes the response side of protocol/cards/apdu.hpp and the VERIFY
// interpretation. The input is read twice:
//   1. as one response APDU for parse_response;
//   2. as a sequence of responses, each prefixed by a 1-byte length, fed to a
//      ResponsePlanner until it completes or fails (as a card would answer).
// Properties checked (a violation aborts, so libFuzzer reports a crash):
//   - a parsed response has the input's data and the last two bytes as SW;
//   - describe() always names the SW in 4 hex digits first;
//   - every command the planner asks for encodes, and is GET RESPONSE or the
//     original command with a corrected Ne;
//   - the planner stops within 32 GET RESPONSE rounds plus one Le correction,
//     and never gathers more than 65536 bytes;
//   - interpret_verify reports tries only for wrong_pin, never for blocked;
//   - a PIN accepted from the first 1..9 input bytes is 4..8 digits and its
//     VERIFY command is 13 bytes, 00 20 00 81 08, digits then FF padding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <variant>

#include "protocol/byte_reader.hpp"
#include "protocol/cards/apdu.hpp"
#include "protocol/cards/practitioner_card.hpp"

namespace {

void check(bool condition, const char* property) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_card_apdu: property violated: %s\n", property);
        std::abort();
    }
}

void check_status(cb::cards::StatusWord status) {
    const std::string text = status.describe();
    check(text.size() > 7 && text[4] == ' ' && text[5] == '(' && text.back() == ')', "describe() is 'XXXX (...)'");
    const cb::cards::PinStatus pin = cb::cards::interpret_verify(status);
    check(pin.status == status, "interpret_verify keeps the SW");
    check(pin.tries_left.has_value() == (pin.state == cb::cards::PinState::wrong_pin),
          "tries are reported for a wrong PIN only");
}

void run_planner(std::span<const std::uint8_t> input) {
    const cb::cards::CommandApdu original{
        .cla = 0x00, .ins = 0xB0, .p1 = 0x00, .p2 = 0x00, .data = {}, .expected = 256};
    cb::cards::ResponsePlanner planner(original);
    cb::ByteReader in(input);
    std::size_t steps = 0;
    while (!in.at_end()) {
        const auto length = in.read_u8("length");
        if (!length)
            return;
        const auto bytes = in.read_bytes(*length, "response");
        if (!bytes)
            return;
        const auto response = cb::cards::parse_response(*bytes);
        if (!response)
            return;
        check_status(response->status);
        const auto step = planner.next(*response);
        ++steps;
        check(steps <= cb::cards::ResponsePlanner::max_get_response_rounds + 2, "the planner stops in time");
        if (!step)
            return;
        if (const auto* send = std::get_if<cb::cards::SendCommand>(&*step)) {
            check(cb::cards::encode_command(send->command).has_value(), "planned commands encode");
            check(send->command.ins == 0xC0 || send->command.ins == original.ins, "GET RESPONSE or a resend");
            continue;
        }
        const auto& complete = std::get<cb::cards::ExchangeComplete>(*step);
        check(complete.response.data.size() <= cb::cards::max_expected_length, "gathered data is capped");
        check(!complete.response.status.bytes_available() && !complete.response.status.exact_length(),
              "an exchange never completes on 61xx or 6Cxx");
        check(!planner.next(*response).has_value(), "a completed planner refuses more");
        return;
    }
}

void check_pin(std::span<const std::uint8_t> input) {
    const std::size_t length = input.empty() ? 0 : static_cast<std::size_t>(input[0] % 10u);
    if (input.size() < 1 + length)
        return;
    const auto digits = input.subspan(1, length);
    const std::string text(digits.begin(), digits.end());
    const auto pin = cb::cards::Pin::from_digits(text);
    if (!pin)
        return;
    check(pin->size() >= 4 && pin->size() <= 8, "PIN has 4 to 8 digits");
    const cb::cards::SecureBytes command = cb::cards::verify_pin_command(*pin);
    const auto bytes = command.bytes();
    check(bytes.size() == 13 && bytes[0] == 0x00 && bytes[1] == 0x20 && bytes[3] == 0x81 && bytes[4] == 0x08,
          "VERIFY header");
    for (std::size_t position = 0; position < 8; ++position)
        check(position < length ? bytes[5 + position] == digits[position] : bytes[5 + position] == 0xFF,
              "PIN block is the digits then FF");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const auto response = cb::cards::parse_response(input);
    if (response) {
        check(size >= 2 && response->data.size() == size - 2, "data is all but the SW");
        check(response->status.sw1() == input[size - 2] && response->status.sw2() == input[size - 1],
              "SW is the last two bytes");
        check_status(response->status);
    } else {
        check(size < 2 || size > cb::cards::max_response_size, "only short or oversized responses fail");
    }
    run_planner(input);
    check_pin(input);
    return 0;
}
