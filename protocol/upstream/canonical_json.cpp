#include "protocol/upstream/canonical_json.hpp"

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace cb::upstream {
namespace {

// Decodes `text` as UTF-8 into code points; false if it is not well-formed
// (overlong forms, surrogates, values over U+10FFFF, truncation).
bool decode_utf8(std::string_view text, std::vector<char32_t>& out) {
    out.clear();
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        char32_t code = 0;
        std::size_t length = 0;
        char32_t minimum = 0;
        if (byte < 0x80) {
            out.push_back(byte);
            ++i;
            continue;
        }
        if ((byte & 0xE0) == 0xC0) {
            code = byte & 0x1FU;
            length = 2;
            minimum = 0x80;
        } else if ((byte & 0xF0) == 0xE0) {
            code = byte & 0x0FU;
            length = 3;
            minimum = 0x800;
        } else if ((byte & 0xF8) == 0xF0) {
            code = byte & 0x07U;
            length = 4;
            minimum = 0x10000;
        } else {
            return false;
        }
        if (text.size() - i < length)
            return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80)
                return false;
            code = (code << 6) | (next & 0x3FU);
        }
        if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
            return false;
        out.push_back(code);
        i += length;
    }
    return true;
}

bool is_ascii(std::string_view text) {
    for (const char c : text)
        if (static_cast<unsigned char>(c) >= 0x80)
            return false;
    return true;
}

bool needs_escape(char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || c == '"' || c == '\\';
}

// Whether any of the 8 bytes of `word` is a control character (< 0x20), '"',
// '\\' or not ASCII (>= 0x80): the bytes write_string cannot copy as they are
// without a look. Exact as a whole (Hacker's Delight's "has less than" and
// "has zero byte" tests), though it does not say which byte.
bool has_special_byte(std::uint64_t word) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    const auto has_zero = [](std::uint64_t value) { return (value - ones) & ~value & highs; };
    const std::uint64_t below_space = (word - ones * 0x20) & ~word & highs;
    return (below_space | has_zero(word ^ (ones * '"')) | has_zero(word ^ (ones * '\\')) | (word & highs)) != 0;
}

void write_escape(unsigned char byte, std::string& out) {
    static constexpr std::string_view hex = "0123456789abcdef";
    switch (byte) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case 0x08: out += "\\b"; break;
        case 0x09: out += "\\t"; break;
        case 0x0A: out += "\\n"; break;
        case 0x0C: out += "\\f"; break;
        case 0x0D: out += "\\r"; break;
        default:
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0x0F];
    }
}

// One pass, 8 bytes at a time while none needs a look (a bundle's strings are
// mostly base64 and codes): runs without escapes are copied at once. Non-ASCII
// bytes are copied too, and the string is checked as UTF-8 only if it has any;
// if it is not valid, `out` is left as it was.
Result<void> write_string(std::string_view text, std::string& out) {
    const std::size_t start = out.size();
    const char* const data = text.data();
    const std::size_t size = text.size();
    out += '"';
    bool ascii = true;
    std::size_t run = 0;  // the first byte not yet copied
    std::size_t i = 0;
    while (i < size) {
        if (size - i >= sizeof(std::uint64_t)) {
            std::uint64_t word = 0;
            std::memcpy(&word, data + i, sizeof word);
            if (!has_special_byte(word)) {
                i += sizeof word;
                continue;
            }
        }
        const std::size_t end = std::min(size, i + sizeof(std::uint64_t));
        for (; i < end; ++i) {
            const auto byte = static_cast<unsigned char>(data[i]);
            if (byte >= 0x80) {
                ascii = false;
                continue;
            }
            if (!needs_escape(data[i]))
                continue;
            out.append(data + run, i - run);
            run = i + 1;
            write_escape(byte, out);
        }
    }
    out.append(data + run, size - run);
    out += '"';
    if (!ascii) {
        std::vector<char32_t> ignored;
        if (!decode_utf8(text, ignored)) {
            out.resize(start);
            return fail(ErrorKind::invalid_input, "canonical JSON: a string is not valid UTF-8");
        }
    }
    return {};
}

// The UTF-16 code units of a valid UTF-8 string: the sort key of RFC 8785 §3.2.3.
std::u16string utf16_key(std::string_view name) {
    std::vector<char32_t> points;
    [[maybe_unused]] const bool valid = decode_utf8(name, points);
    assert(valid);  // checked by write_string before sorting
    std::u16string out;
    for (const char32_t point : points) {
        if (point < 0x10000) {
            out += static_cast<char16_t>(point);
        } else {
            const char32_t offset = point - 0x10000;
            out += static_cast<char16_t>(0xD800 + (offset >> 10));
            out += static_cast<char16_t>(0xDC00 + (offset & 0x3FF));
        }
    }
    return out;
}

Result<void> write_number(double value, std::string& out) {
    if (!std::isfinite(value))
        return fail(ErrorKind::invalid_input, "canonical JSON: a number is not finite");
    out += ecmascript_number(value);
    return {};
}

// Integers that a double holds exactly print as themselves (ECMAScript
// Number::toString of an integral double below 1e21 is its digits).
constexpr std::uint64_t exact_integer_limit = std::uint64_t{1} << 53;

Result<void> write_integer(std::int64_t value, std::string& out) {
    const std::uint64_t magnitude =
        value < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    if (magnitude > exact_integer_limit)
        return write_number(static_cast<double>(value), out);
    std::array<char, 24> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), result.ptr);
    return {};
}

Result<void> write_value(const boost::json::value& value, std::size_t depth, std::string& out);
Result<void> write_object(const boost::json::object& object, std::size_t depth, std::string_view skip,
                          std::string& out);

// {"name":value,...} for members already in canonical order, but the one named `skip` (if not empty).
Result<void> write_members(std::span<const boost::json::key_value_pair* const> sorted, std::size_t depth,
                           std::string_view skip, std::string& out) {
    out += '{';
    bool first = true;
    for (const auto* member : sorted) {
        if (!skip.empty() && member->key() == skip)
            continue;
        if (!first)
            out += ',';
        first = false;
        CB_TRY(write_string(member->key(), out));
        out += ':';
        CB_TRY(write_value(member->value(), depth + 1, out));
    }
    out += '}';
    return {};
}

Result<void> write_value(const boost::json::value& value, std::size_t depth, std::string& out) {
    switch (value.kind()) {
        case boost::json::kind::null: out += "null"; return {};
        case boost::json::kind::bool_: out += value.get_bool() ? "true" : "false"; return {};
        case boost::json::kind::int64: return write_integer(value.get_int64(), out);
        case boost::json::kind::uint64:
            if (value.get_uint64() <= exact_integer_limit)
                return write_integer(static_cast<std::int64_t>(value.get_uint64()), out);
            return write_number(static_cast<double>(value.get_uint64()), out);
        case boost::json::kind::double_: return write_number(value.get_double(), out);
        case boost::json::kind::string: return write_string(value.get_string(), out);
        case boost::json::kind::array: {
            if (depth >= max_canonical_depth)
                return fail(ErrorKind::limit_exceeded,
                            "canonical JSON: nested deeper than " + std::to_string(max_canonical_depth) + " levels");
            out += '[';
            bool first = true;
            for (const auto& element : value.get_array()) {
                if (!first)
                    out += ',';
                first = false;
                CB_TRY(write_value(element, depth + 1, out));
            }
            out += ']';
            return {};
        }
        case boost::json::kind::object: return write_object(value.get_object(), depth, {}, out);
    }
    return fail(ErrorKind::internal, "canonical JSON: unknown value kind");
}

Result<void> write_object(const boost::json::object& object, std::size_t depth, std::string_view skip,
                          std::string& out) {
    if (depth >= max_canonical_depth)
        return fail(ErrorKind::limit_exceeded,
                    "canonical JSON: nested deeper than " + std::to_string(max_canonical_depth) + " levels");
    bool ascii_keys = true;
    for (const auto& member : object)
        ascii_keys = ascii_keys && is_ascii(member.key());
    if (ascii_keys) {
        // ASCII: UTF-16 code unit order is byte order (RFC 8785 §3.2.3), no
        // conversion needed. Small objects (all of a bundle's) sort on the stack.
        constexpr std::size_t small = 24;
        std::array<const boost::json::key_value_pair*, small> on_stack{};
        std::vector<const boost::json::key_value_pair*> on_heap(object.size() > small ? object.size() : 0);
        const std::span sorted = object.size() > small ? std::span(on_heap) : std::span(on_stack.data(), object.size());
        std::size_t count = 0;
        for (const auto& member : object)
            sorted[count++] = &member;
        std::sort(sorted.begin(), sorted.end(),
                  [](const auto* left, const auto* right) { return left->key() < right->key(); });
        return write_members(sorted, depth, skip, out);
    }
    std::vector<std::pair<std::u16string, const boost::json::key_value_pair*>> members;
    members.reserve(object.size());
    for (const auto& member : object) {
        std::vector<char32_t> ignored;
        if (!decode_utf8(member.key(), ignored))
            return fail(ErrorKind::invalid_input, "canonical JSON: a member name is not valid UTF-8");
        members.emplace_back(utf16_key(member.key()), &member);
    }
    std::sort(members.begin(), members.end(),
              [](const auto& left, const auto& right) { return left.first < right.first; });
    std::vector<const boost::json::key_value_pair*> sorted;
    sorted.reserve(members.size());
    for (const auto& [key, member] : members)
        sorted.push_back(member);
    return write_members(sorted, depth, skip, out);
}

}  // namespace

std::string ecmascript_number(double value) {
    assert(std::isfinite(value));
    if (value == 0)
        return "0";  // +0 and -0 alike
    if (value < 0)
        return "-" + ecmascript_number(-value);

    // Shortest round-trip digits in scientific form: "d[.ddd]e[+-]XX".
    std::array<char, 64> buffer{};
    const auto result =
        std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::scientific);
    const std::string_view text(buffer.data(), static_cast<std::size_t>(result.ptr - buffer.data()));
    const std::size_t e_at = text.find('e');
    std::string digits;
    for (const char c : text.substr(0, e_at))
        if (c != '.')
            digits += c;
    int exponent = 0;
    const std::string_view exponent_text = text.substr(e_at + 1);
    const char* begin = exponent_text.data() + (exponent_text.front() == '+' ? 1 : 0);
    std::from_chars(begin, exponent_text.data() + exponent_text.size(), exponent);

    // ECMA-262 Number::toString with k digits and n = exponent + 1, so that
    // value = digits x 10^(n - k).
    const int k = static_cast<int>(digits.size());
    const int n = exponent + 1;
    if (k <= n && n <= 21)
        return digits + std::string(static_cast<std::size_t>(n - k), '0');
    if (0 < n && n <= 21)
        return digits.substr(0, static_cast<std::size_t>(n)) + "." + digits.substr(static_cast<std::size_t>(n));
    if (-6 < n && n <= 0)
        return "0." + std::string(static_cast<std::size_t>(-n), '0') + digits;
    const int shown = n - 1;
    const std::string sign = shown < 0 ? "-" : "+";
    const std::string magnitude = std::to_string(shown < 0 ? -shown : shown);
    if (k == 1)
        return digits + "e" + sign + magnitude;
    return digits.substr(0, 1) + "." + digits.substr(1) + "e" + sign + magnitude;
}

// --- CanonicalWriter ----------------------------------------------------------

CanonicalWriter::CanonicalWriter(std::size_t reserve) {
    m_out.reserve(reserve);
    m_levels.reserve(16);
}

void CanonicalWriter::keep(Error error) {
    if (!m_error)
        m_error = std::move(error);
}

void CanonicalWriter::before_value() {
    if (m_levels.empty() || m_levels.back().object)
        return;  // the top value, or a member's value (key() wrote the comma)
    if (!m_levels.back().empty)
        m_out += ',';
    m_levels.back().empty = false;
}

CanonicalWriter& CanonicalWriter::open(bool object) {
    before_value();
    if (m_levels.size() >= max_canonical_depth)
        keep(Error(ErrorKind::limit_exceeded,
                   "canonical JSON: nested deeper than " + std::to_string(max_canonical_depth) + " levels"));
    m_levels.push_back(Level{.object = object, .empty = true, .last_key = {}});
    m_out += object ? '{' : '[';
    return *this;
}

CanonicalWriter& CanonicalWriter::close(bool object) {
    assert(!m_levels.empty() && m_levels.back().object == object);
    m_levels.pop_back();
    m_out += object ? '}' : ']';
    return *this;
}

CanonicalWriter& CanonicalWriter::begin_object() {
    return open(true);
}

CanonicalWriter& CanonicalWriter::end_object() {
    return close(true);
}

CanonicalWriter& CanonicalWriter::begin_array() {
    return open(false);
}

CanonicalWriter& CanonicalWriter::end_array() {
    return close(false);
}

CanonicalWriter& CanonicalWriter::key(std::string_view name) {
    assert(!m_levels.empty() && m_levels.back().object);
    Level& level = m_levels.back();
    // Literal ASCII names that need no escape; RFC 8785's UTF-16 order is
    // then byte order.
    assert(is_ascii(name) && std::none_of(name.begin(), name.end(), needs_escape));
    assert(level.empty || level.last_key < name);
    if (!level.empty)
        m_out += ',';
    level.empty = false;
    level.last_key = name;
    m_out += '"';
    m_out += name;
    m_out += "\":";
    return *this;
}

CanonicalWriter& CanonicalWriter::string(std::string_view text) {
    before_value();
    if (auto written = write_string(text, m_out); !written)
        keep(std::move(written).error());
    return *this;
}

CanonicalWriter& CanonicalWriter::number(double value) {
    before_value();
    if (auto written = write_number(value, m_out); !written)
        keep(std::move(written).error());
    return *this;
}

Result<std::string> CanonicalWriter::finish() && {
    assert(m_levels.empty());
    if (m_error)
        return std::move(*m_error);
    return std::move(m_out);
}

Result<std::string> canonicalize(const boost::json::value& value) {
    std::string out;
    out.reserve(4096);
    CB_TRY(write_value(value, 0, out));
    return out;
}

Result<std::string> canonicalize_without(const boost::json::object& object, std::string_view member) {
    std::string out;
    out.reserve(4096);
    CB_TRY(write_object(object, 0, member, out));
    return out;
}

}  // namespace cb::upstream
