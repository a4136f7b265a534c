#include "protocol/hex.hpp"

#include <optional>

namespace cb {

namespace {

constexpr char hex_digits[] = "0123456789ABCDEF";
constexpr char lowercase_hex_digits[] = "0123456789abcdef";

void append_byte(std::string& out, std::uint8_t byte, const char* digits = hex_digits) {
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0x0F]);
}

std::optional<std::uint8_t> digit_value(char c) {
    if (c >= '0' && c <= '9')
        return static_cast<std::uint8_t>(c - '0');
    if (c >= 'A' && c <= 'F')
        return static_cast<std::uint8_t>(c - 'A' + 10);
    if (c >= 'a' && c <= 'f')
        return static_cast<std::uint8_t>(c - 'a' + 10);
    return std::nullopt;
}

bool is_separator(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':';
}

// 'G', or \x07 for what would not print (or would confuse the quoting).
std::string describe_character(char c) {
    const auto byte = static_cast<std::uint8_t>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\'' && c != '\\')
        return std::string("'") + c + "'";
    std::string described = "\\x";
    append_byte(described, byte);
    return described;
}

Error odd_group(std::size_t digits, std::size_t group_start) {
    return fail(ErrorKind::invalid_input, "hex: odd number of digits (" + std::to_string(digits) +
                                              ") in the group at position " + std::to_string(group_start));
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const std::uint8_t byte : bytes)
        append_byte(out, byte);
    return out;
}

std::string to_lowercase_hex(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const std::uint8_t byte : bytes)
        append_byte(out, byte, lowercase_hex_digits);
    return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes, char separator) {
    std::string out;
    if (bytes.empty())
        return out;
    out.reserve(bytes.size() * 3 - 1);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0)
            out.push_back(separator);
        append_byte(out, bytes[i]);
    }
    return out;
}

Result<std::vector<std::uint8_t>> from_hex(std::string_view text) {
    std::vector<std::uint8_t> bytes;
    bytes.reserve(text.size() / 2);
    std::size_t group_start = 0;
    std::size_t group_digits = 0;
    std::uint8_t high_nibble = 0;
    for (std::size_t position = 0; position < text.size(); ++position) {
        const char c = text[position];
        if (is_separator(c)) {
            if (group_digits % 2 != 0)
                return odd_group(group_digits, group_start);
            group_digits = 0;
            continue;
        }
        const auto value = digit_value(c);
        if (!value)
            return fail(ErrorKind::invalid_input,
                        "hex: invalid character " + describe_character(c) + " at position " + std::to_string(position));
        if (group_digits == 0)
            group_start = position;
        if (group_digits % 2 == 0)
            high_nibble = *value;
        else
            bytes.push_back(static_cast<std::uint8_t>((high_nibble << 4) | *value));
        ++group_digits;
    }
    if (group_digits % 2 != 0)
        return odd_group(group_digits, group_start);
    return bytes;
}

}  // namespace cb
