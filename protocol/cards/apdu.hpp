// ISO/IEC 7816-4 APDUs as pure code: command encoding, response parsing,
// status words, and the GET RESPONSE / Le-correction decision (§5.1, §5.3.4).
//
// Command APDU. Nc is the number of data bytes (0..65535), Ne the maximum
// number of response data bytes expected (absent, or 1..65536). The short
// form is used when Nc <= 255 and Ne <= 256, the extended form otherwise (for
// both fields at once, as 7816-4 requires: a command never mixes them).
//
//   | case | condition                 | bytes                                          |
//   |------|---------------------------|------------------------------------------------|
//   | 1    | Nc = 0, no Ne             | CLA INS P1 P2                                  |
//   | 2S   | Nc = 0, Ne 1..256         | CLA INS P1 P2 Le          (Le 00 = 256)        |
//   | 3S   | Nc 1..255, no Ne          | CLA INS P1 P2 Lc data                          |
//   | 4S   | Nc 1..255, Ne 1..256      | CLA INS P1 P2 Lc data Le  (Le 00 = 256)        |
//   | 2E   | Nc = 0, Ne 257..65536     | CLA INS P1 P2 00 Le1 Le2  (0000 = 65536)       |
//   | 3E   | Nc 256..65535, no Ne      | CLA INS P1 P2 00 Lc1 Lc2 data                  |
//   | 4E   | Nc 1..65535, Ne 1..65536, | CLA INS P1 P2 00 Lc1 Lc2 data Le1 Le2          |
//   |      | Nc > 255 or Ne > 256      |                           (Le 0000 = 65536)    |
//
// Response APDU: data (0..65536 bytes) then SW1 SW2. Anything shorter than the
// two status bytes or longer than 65538 bytes is not a card's answer.
//
// Status words this code names (describe()); any other is "XXXX (unknown status)":
//
//   | SW    | meaning                                                   |
//   |-------|-----------------------------------------------------------|
//   | 9000  | success                                                   |
//   | 61xx  | xx more bytes available with GET RESPONSE (00 = 256)      |
//   | 6281  | part of returned data may be corrupted                    |
//   | 6282  | end of file reached before reading Ne bytes               |
//   | 6283  | selected file deactivated                                 |
//   | 6300  | verification failed                                       |
//   | 63Cx  | verification failed, x tries left                         |
//   | 6581  | memory failure                                            |
//   | 6700  | wrong length                                              |
//   | 6982  | security status not satisfied                             |
//   | 6983  | authentication method blocked                             |
//   | 6984  | reference data not usable                                 |
//   | 6985  | conditions of use not satisfied                           |
//   | 6986  | command not allowed (no current EF)                       |
//   | 6A80  | incorrect parameters in the data field                    |
//   | 6A81  | function not supported                                    |
//   | 6A82  | file not found                                            |
//   | 6A86  | incorrect parameters P1-P2                                |
//   | 6A88  | referenced data not found                                 |
//   | 6B00  | wrong parameters P1-P2 (offset outside the EF)            |
//   | 6Cxx  | wrong Le: exactly xx bytes available (00 = 256)           |
//   | 6D00  | instruction not supported                                 |
//   | 6E00  | class not supported                                       |
//   | 6F00  | no precise diagnosis                                      |
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "protocol/result.hpp"

namespace cb::cards {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::size_t max_command_data = 65535;       // Nc, extended Lc
inline constexpr std::size_t max_expected_length = 65536;    // Ne, extended Le 0000
inline constexpr std::size_t max_response_size = 65536 + 2;  // data + SW1 SW2

struct CommandApdu {
    std::uint8_t cla = 0x00;
    std::uint8_t ins = 0x00;
    std::uint8_t p1 = 0x00;
    std::uint8_t p2 = 0x00;
    Bytes data;                           // Nc = data.size()
    std::optional<std::size_t> expected;  // Ne; absent for cases 1 and 3

    friend bool operator==(const CommandApdu&, const CommandApdu&) = default;
};

// Encodes as in the table above. Fails with ErrorKind::limit_exceeded when
// Nc > 65535 ("command APDU INS A4: 70000 data bytes exceed the 65535 an
// extended Lc can carry") or Ne > 65536, and ErrorKind::invalid_input when
// Ne is 0 ("command APDU INS B0: Ne 0 is not encodable; leave it absent").
Result<Bytes> encode_command(const CommandApdu& command);

// True if `command` would use the extended form (cases 2E, 3E, 4E).
bool needs_extended_length(const CommandApdu& command) noexcept;

// SW1 SW2 as one number, 0x9000.
class StatusWord {
public:
    constexpr explicit StatusWord(std::uint16_t value) noexcept : m_value(value) {}
    constexpr StatusWord(std::uint8_t sw1, std::uint8_t sw2) noexcept
        : m_value(static_cast<std::uint16_t>((sw1 << 8) | sw2)) {}

    constexpr std::uint16_t value() const noexcept { return m_value; }
    constexpr std::uint8_t sw1() const noexcept { return static_cast<std::uint8_t>(m_value >> 8); }
    constexpr std::uint8_t sw2() const noexcept { return static_cast<std::uint8_t>(m_value & 0xFF); }

    // 9000 only: warnings (62xx, 63xx) and 61xx are not a finished success.
    constexpr bool is_success() const noexcept { return m_value == 0x9000; }
    // 61xx: the number of bytes GET RESPONSE will return (61 00 = 256).
    std::optional<std::size_t> bytes_available() const noexcept;
    // 6Cxx: the Ne the card wants the command resent with (6C 00 = 256).
    std::optional<std::size_t> exact_length() const noexcept;
    // 63Cx: tries left on the referenced PIN or key (0..15).
    std::optional<unsigned> tries_left() const noexcept;

    // "6A82 (file not found)", "61 10" -> "6110 (16 bytes available)",
    // "63C2 (verification failed, 2 tries left)", "9A01 (unknown status)".
    std::string describe() const;

    friend constexpr bool operator==(StatusWord, StatusWord) = default;

private:
    std::uint16_t m_value;
};

struct ResponseApdu {
    Bytes data;
    StatusWord status{0x6F00};
};

// Splits a response into data and status word (the data is copied).
// Fails with ErrorKind::invalid_input for fewer than 2 bytes
//     "response APDU: 1 byte is too short for the status word SW1 SW2"
// and ErrorKind::limit_exceeded above max_response_size
//     "response APDU: 70000 bytes exceed the 65538 a card can return"
Result<ResponseApdu> parse_response(std::span<const std::uint8_t> bytes);

// GET RESPONSE: 00 C0 00 00 Le, Ne = `expected` (1..256 for the short form).
CommandApdu get_response_command(std::size_t expected);

// INTERNAL AUTHENTICATE: 00 88 00 00 Lc challenge 00 (Ne 256, case 4S).
// Fails with ErrorKind::invalid_input if the challenge is empty or longer
// than 255 bytes ("INTERNAL AUTHENTICATE: challenge of 300 bytes, expected
// 1..255").
Result<CommandApdu> internal_authenticate_command(std::span<const std::uint8_t> challenge);

// What the I/O loop does next in one exchange (see ResponsePlanner).
struct SendCommand {
    CommandApdu command;
};
struct ExchangeComplete {
    ResponseApdu response;  // all data gathered, in order, and the final SW
};
using ExchangeStep = std::variant<SendCommand, ExchangeComplete>;

// The decisions of one command exchange, without the I/O: the loop sends
// `command`, hands every response to next(), and sends what it says until it
// says ExchangeComplete.
//
//   | response SW     | decision                                                   |
//   |-----------------|------------------------------------------------------------|
//   | 61xx            | keep its data; send GET RESPONSE 00 C0 00 00 xx            |
//   |                 | (at most max_get_response_rounds times per exchange)       |
//   | 6Cxx            | resend the last command sent with Ne = xx, once per        |
//   |                 | exchange; its data, if any, is dropped (not the answer)    |
//   | anything else   | complete: data so far + this data, with this SW (the       |
//   |                 | caller judges the SW: 6A82 completes, it is not a planner  |
//   |                 | failure)                                                   |
//
// Failures (the exchange is over; the card is misbehaving):
//   limit_exceeded: "GET RESPONSE: more than 32 rounds for INS B0"
//                   "GET RESPONSE: 70000 bytes for INS B0 exceed 65536"
//   invalid_input:  "INS B0: card asked for Le correction twice (6C10)"
//   internal:       next() after ExchangeComplete or after a failure.
class ResponsePlanner {
public:
    static constexpr std::size_t max_get_response_rounds = 32;

    explicit ResponsePlanner(CommandApdu command) : m_original(command), m_last_sent(std::move(command)) {}

    Result<ExchangeStep> next(const ResponseApdu& response);

    std::size_t get_response_rounds() const noexcept { return m_get_response_rounds; }

private:
    CommandApdu m_original;
    CommandApdu m_last_sent;
    Bytes m_data;
    std::size_t m_get_response_rounds = 0;
    bool m_le_corrected = false;
    bool m_finished = false;
};

}  // namespace cb::cards
