#include "protocol/upstream/base64.hpp"

#include <array>
#include <cstring>

namespace cb::upstream {
namespace {

constexpr std::string_view standard_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view url_alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Every 12-bit value as its two characters: one look-up per half of a 3-byte
// group instead of one per character (the forwarder encodes kilobytes per
// bundle: the payload, then the compact JWS).
using PairTable = std::array<char, std::size_t{2} << 12>;

constexpr PairTable pairs_of(std::string_view alphabet) {
    PairTable table{};
    for (std::size_t value = 0; value < (std::size_t{1} << 12); ++value) {
        table[2 * value] = alphabet[value >> 6];
        table[2 * value + 1] = alphabet[value & 0x3F];
    }
    return table;
}

constexpr PairTable standard_pairs = pairs_of(standard_alphabet);
constexpr PairTable url_pairs = pairs_of(url_alphabet);

// Appends the encoding of `data` to `out`, written in place (no per-character append).
// `table` is pairs_of(alphabet).
void encode(std::span<const std::uint8_t> data, std::string_view alphabet, const PairTable& table, bool pad,
            std::string& out) {
    const char* const pairs = table.data();
    const std::size_t whole = data.size() / 3;
    const std::size_t rest = data.size() - whole * 3;
    const std::size_t tail = rest == 0 ? 0 : (pad ? 4 : rest + 1);
    const std::size_t at = out.size();
    out.resize(at + whole * 4 + tail);
    char* cursor = out.data() + at;
    const std::uint8_t* in = data.data();
    for (std::size_t i = 0; i < whole; ++i, in += 3, cursor += 4) {
        const std::uint32_t group = (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | in[2];
        std::memcpy(cursor, pairs + std::size_t{2} * (group >> 12), 2);
        std::memcpy(cursor + 2, pairs + std::size_t{2} * (group & 0xFFF), 2);
    }
    if (rest == 0)
        return;
    const std::uint32_t group = (std::uint32_t{in[0]} << 16) | (rest == 2 ? std::uint32_t{in[1]} << 8 : 0U);
    cursor[0] = alphabet[(group >> 18) & 0x3F];
    cursor[1] = alphabet[(group >> 12) & 0x3F];
    if (rest == 2)
        cursor[2] = alphabet[(group >> 6) & 0x3F];
    if (pad) {
        if (rest == 1)
            cursor[2] = '=';
        cursor[3] = '=';
    }
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
    std::string out;
    encode(data, standard_alphabet, standard_pairs, true, out);
    return out;
}

std::string base64url_encode(std::span<const std::uint8_t> data) {
    std::string out;
    encode(data, url_alphabet, url_pairs, false, out);
    return out;
}

void base64_append(std::span<const std::uint8_t> data, std::string& out) {
    encode(data, standard_alphabet, standard_pairs, true, out);
}

void base64url_append(std::span<const std::uint8_t> data, std::string& out) {
    encode(data, url_alphabet, url_pairs, false, out);
}

Result<Bytes> base64_decode(std::string_view text) {
    return decode(text, standard_alphabet, true, "base64");
}

Result<Bytes> base64url_decode(std::string_view text) {
    return decode(text, url_alphabet, false, "base64url");
}

}  // namespace cb::upstream
