#include "protocol/upstream/base64.hpp"

#include <array>

namespace cb::upstream {
namespace {

constexpr std::string_view standard_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view url_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::span<const std::uint8_t> data, std::string_view alphabet, bool pad) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
        out += alphabet[(group >> 18) & 0x3F];
        out += alphabet[(group >> 12) & 0x3F];
        out += alphabet[(group >> 6) & 0x3F];
        out += alphabet[group & 0x3F];
    }
    const std::size_t rest = data.size() - i;
    if (rest == 1) {
        const std::uint32_t group = std::uint32_t{data[i]} << 16;
        out += alphabet[(group >> 18) & 0x3F];
        out += alphabet[(group >> 12) & 0x3F];
        if (pad)
            out += "==";
    } else if (rest == 2) {
        const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
        out += alphabet[(group >> 18) & 0x3F];
        out += alphabet[(group >> 12) & 0x3F];
        out += alphabet[(group >> 6) & 0x3F];
        if (pad)
            out += '=';
    }
    return out;
}

Result<Bytes> decode(std::string_view text, std::string_view alphabet, bool padded, const char* what) {
    std::array<int, 256> value{};
    value.fill(-1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        value[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);

    std::size_t length = text.size();
    if (padded) {
        if (length % 4 != 0)
            return fail(ErrorKind::invalid_input,
                        std::string(what) + ": length " + std::to_string(length) + " is not a multiple of 4");
        if (length > 0 && text[length - 1] == '=')
            --length;
        if (length > 0 && text[length - 1] == '=' && text.size() - length == 1)
            --length;
    } else if (length % 4 == 1) {
        return fail(ErrorKind::invalid_input,
                    std::string(what) + ": length " + std::to_string(length) + " cannot be base64url");
    }
    Bytes out;
    out.reserve(length * 3 / 4);
    std::uint32_t accumulator = 0;
    int bits = 0;
    for (std::size_t i = 0; i < length; ++i) {
        const int digit = value[static_cast<unsigned char>(text[i])];
        if (digit < 0) {
            const unsigned char c = static_cast<unsigned char>(text[i]);
            const std::string shown = (c >= 0x21 && c < 0x7F) ? std::string(1, static_cast<char>(c))
                                                              : "\\x" + std::to_string(static_cast<unsigned>(c));
            return fail(ErrorKind::invalid_input, std::string(what) + ": character '" + shown + "' at " +
                                                      std::to_string(i) + " is not in the alphabet");
        }
        accumulator = (accumulator << 6) | static_cast<std::uint32_t>(digit);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((accumulator >> bits) & 0xFF));
        }
    }
    if (bits >= 6 || (accumulator & ((1U << bits) - 1)) != 0)
        return fail(ErrorKind::invalid_input, std::string(what) + ": non-canonical trailing bits");
    return out;
}

}  // namespace

std::string base64_encode(std::span<const std::uint8_t> data) {
    return encode(data, standard_alphabet, true);
}

std::string base64url_encode(std::span<const std::uint8_t> data) {
    return encode(data, url_alphabet, false);
}

Result<Bytes> base64_decode(std::string_view text) {
    return decode(text, standard_alphabet, true, "base64");
}

Result<Bytes> base64url_decode(std::string_view text) {
    return decode(text, url_alphabet, false, "base64url");
}

}  // namespace cb::upstream
