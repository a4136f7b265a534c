// PC/SC part 10 secure PIN entry: the reader's keypad collects the PIN and
// builds the VERIFY itself, so the PIN never passes through carebridge.
//
// 1. SCardControl(CM_IOCTL_GET_FEATURE_REQUEST = SCARD_CTL_CODE(3400)), no
//    input, answers a list of features (part 10 §2.2), each a TLV:
//
//      | field | bytes | meaning                                             |
//      |-------|-------|-----------------------------------------------------|
//      | tag   | 1     | feature (06 FEATURE_VERIFY_PIN_DIRECT, 07 MODIFY,   |
//      |       |       | 0A IFD_PIN_PROPERTIES, 12 GET_TLV_PROPERTIES, ...)  |
//      | len   | 1     | always 4                                            |
//      | value | 4     | the control code for that feature, big-endian       |
//
//    Parsed as hostile input: a truncated TLV, a length other than 4, more
//    than max_features entries or a tag given twice with different codes are
//    errors; unknown tags are skipped. A reader that does not implement the
//    request at all (vpcd: SCARD_E_UNSUPPORTED_FEATURE) offers nothing.
//
// 2. FEATURE_VERIFY_PIN_DIRECT: SCardControl(code, PIN_VERIFY_STRUCTURE),
//    multi-byte fields little-endian (CCID), for our practitioner PIN format
//    (practitioner_card.hpp: 4..8 ASCII digits padded with FF to 8 bytes,
//    VERIFY 00 20 00 81 08):
//
//      | offset | field                     | value | why                                    |
//      |--------|---------------------------|-------|----------------------------------------|
//      | 0      | bTimerOut                 | tt    | PinpadOptions::timeout_seconds         |
//      | 1      | bTimerOut2                | tt    | idem, after the first key              |
//      | 2      | bmFormatString            | 82    | units bytes, PIN at offset 0 of the    |
//      |        |                           |       | data, left-justified, ASCII            |
//      | 3      | bmPINBlockString          | 08    | no PIN length field, block of 8 bytes  |
//      | 4      | bmPINLengthFormat         | 00    | no PIN length field                    |
//      | 5      | wPINMaxExtraDigit         | 08 04 | 0x0408: min 4, max 8 digits            |
//      | 7      | bEntryValidationCondition | 02    | validation key pressed                 |
//      | 8      | bNumberMessage            | 01    | one message                            |
//      | 9      | wLangId                   | 0C 04 | 0x040C French                          |
//      | 11     | bMsgIndex                 | 00    |                                        |
//      | 12     | bTeoPrologue              | 00x3  | (T=1 prologue, filled by the reader)   |
//      | 15     | ulDataLength              | 0D 00 00 00 | 13 bytes of APDU follow          |
//      | 19     | abData                    | 00 20 00 81 08 FF x 8 (the reader      |
//      |        |                           | writes the digits over the FF block)   |
//
//    The reader answers the card's SW1 SW2, or its own:
//
//      | SW   | meaning (part 10 / CCID)          | here                      |
//      |------|-----------------------------------|---------------------------|
//      | 6400 | timeout, no PIN entered           | pin_entry_cancelled       |
//      | 6401 | cancelled by the user             | pin_entry_cancelled       |
//      | 6403 | PIN length out of range           | pin_entry_cancelled       |
//      | 6B80 | invalid parameter in the structure| reader_error              |
//      | else | the card's answer to VERIFY       | interpret_verify()        |
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "drivers/pcsc/card_channel.hpp"
#include "protocol/cards/apdu.hpp"
#include "protocol/result.hpp"

namespace cb::pcsc {

inline constexpr std::uint32_t scard_ctl_code(std::uint32_t code) {
    return 0x42000000U + code;
}
inline constexpr std::uint32_t get_feature_request = scard_ctl_code(3400);

inline constexpr std::uint8_t feature_verify_pin_direct = 0x06;
inline constexpr std::uint8_t feature_modify_pin_direct = 0x07;
inline constexpr std::uint8_t feature_ifd_pin_properties = 0x0A;
inline constexpr std::uint8_t feature_get_tlv_properties = 0x12;

// Part 10 lists about twenty features; a reader claiming more is lying.
inline constexpr std::size_t max_features = 32;

struct ReaderFeatures {
    std::optional<std::uint32_t> verify_pin_direct;
    std::optional<std::uint32_t> modify_pin_direct;
    std::optional<std::uint32_t> ifd_pin_properties;
    std::optional<std::uint32_t> get_tlv_properties;

    friend bool operator==(const ReaderFeatures&, const ReaderFeatures&) = default;
};

// Parses the answer to CM_IOCTL_GET_FEATURE_REQUEST (table 1). Fails with
// ErrorKind::invalid_input:
//     "reader features: truncated: needed 4 bytes for feature 06 value at offset 2, 1 remains"
//     "reader features: feature 06 has length 2, expected 4"
//     "reader features: feature 06 given twice with different control codes"
// and ErrorKind::limit_exceeded above max_features entries.
Result<ReaderFeatures> parse_reader_features(std::span<const std::uint8_t> bytes);

struct PinpadOptions {
    std::uint8_t timeout_seconds = 30;
    std::uint16_t language = 0x040C;  // French
};

// The PIN_VERIFY_STRUCTURE of table 2 (32 bytes).
cards::Bytes build_verify_pin_structure(const PinpadOptions& options);

// Asks the reader for its features. A reader that does not implement the
// request (any reader_error) offers none; card_removed, card_reset and
// service_unavailable are passed on; a malformed answer is reader_error.
CardResult<ReaderFeatures> query_reader_features(CardChannel& channel);

// What the PIN pad answered (table 2's last part), before interpret_verify.
// Fails with invalid_card/reader_error for an answer that is not 2 bytes
// ("PIN pad VERIFY: answer of 5 bytes, expected SW1 SW2").
CardResult<cards::StatusWord> verify_pin_on_pinpad(CardChannel& channel, std::uint32_t verify_pin_direct,
                                                   const PinpadOptions& options);

}  // namespace cb::pcsc
