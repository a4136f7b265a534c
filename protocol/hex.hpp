// Hexadecimal text <-> bytes, for APDU traces, test vectors, logs and config.
//
// Text accepted by from_hex:
//
//   | element     | characters                         | where                              |
//   |-------------|------------------------------------|------------------------------------|
//   | digit       | 0-9 A-F a-f                        | in groups of an even count         |
//   | separator   | space, tab, CR, LF, ':'            | any number, between digit groups,  |
//   |             |                                    | and before or after the whole text |
//
// so "00A40400", "00 A4 04 00", "00:a4:04:00", "00A4 0400" and a multi-line
// dump all decode to the same four bytes. A separator may not split a byte:
// "0 0A4" is an odd group, rejected. The empty text (or separators only) is
// zero bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace cb {

// Uppercase digits, no separator: {0x00, 0xA4} -> "00A4".
std::string to_hex(std::span<const std::uint8_t> bytes);

// Uppercase digits, `separator` between bytes (not before or after):
// ({0x00, 0xA4}, ' ') -> "00 A4".
std::string to_hex(std::span<const std::uint8_t> bytes, char separator);

// Lowercase digits, no separator: {0x00, 0xA4} -> "00a4" (how digests are
// written in the device catalog).
std::string to_lowercase_hex(std::span<const std::uint8_t> bytes);

// Decodes text as described at the top of this file. Fails with
// ErrorKind::invalid_input naming the 0-based position in the text:
//     "hex: invalid character 'G' at position 3"   (non-printable shown as \xNN)
//     "hex: odd number of digits (3) in the group at position 5"
Result<std::vector<std::uint8_t>> from_hex(std::string_view text);

}  // namespace cb
