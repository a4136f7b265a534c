// Base64 (RFC 4648 §4, with padding) and base64url (§5, without padding, as
// JWS uses it). Decoders are strict: any character outside the alphabet,
// whitespace included, wrong padding or non-zero trailing bits is an error,
// so that one byte string has exactly one text form.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace cb::upstream {

using Bytes = std::vector<std::uint8_t>;

std::string base64_encode(std::span<const std::uint8_t> data);
std::string base64url_encode(std::span<const std::uint8_t> data);
inline std::string base64url_encode(std::string_view text) {
    return base64url_encode(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

// The same, appended to `out` (no intermediate string).
void base64_append(std::span<const std::uint8_t> data, std::string& out);
void base64url_append(std::span<const std::uint8_t> data, std::string& out);

// Fail with ErrorKind::invalid_input naming the offset of the first bad
// character ("base64: character '!' at 12 is not in the alphabet").
Result<Bytes> base64_decode(std::string_view text);
Result<Bytes> base64url_decode(std::string_view text);

}  // namespace cb::upstream
