#include "protocol/tlv.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <utility>

#include "protocol/hex.hpp"

namespace cb {

namespace {

bool is_padding(std::uint8_t byte) {
    return byte == 0x00 || byte == 0xFF;
}

std::string describe(std::uint32_t tag, std::size_t tag_offset) {
    return "tag " + format_tag(tag) + " at offset " + std::to_string(tag_offset);
}

std::string byte_hex(std::uint8_t byte) {
    return to_hex(std::span<const std::uint8_t>(&byte, 1));
}

// Reads a whole tag; the caller has checked that a non-padding byte is next.
Result<std::uint32_t> read_tag(ByteReader& in) {
    const std::size_t tag_offset = in.offset();
    const std::uint8_t first = CB_TRY(in.read_u8("tag"));
    std::uint32_t tag = first;
    if ((first & 0x1F) != 0x1F)
        return tag;
    for (std::size_t size = 2;; ++size) {
        auto next = in.read_u8("multi-byte tag");
        if (!next)
            return std::move(next).error().with_context(describe(tag, tag_offset));
        tag = (tag << 8) | *next;
        if (size == 2 && *next == 0x80)
            return fail(ErrorKind::invalid_input,
                        describe(tag, tag_offset) + ": non-minimal multi-byte tag (first following byte is 80)");
        if ((*next & 0x80) == 0)
            return tag;
        if (size == 3)
            return fail(ErrorKind::invalid_input, describe(tag, tag_offset) + ": tag longer than 3 bytes");
    }
}

// Reads a length field, short or long form; lenient on non-minimal long forms.
Result<std::size_t> read_length(ByteReader& in, std::uint32_t tag, std::size_t tag_offset) {
    auto first = in.read_u8("length");
    if (!first)
        return std::move(first).error().with_context(describe(tag, tag_offset));
    if (*first < 0x80)
        return std::size_t{*first};
    if (*first == 0x80)
        return fail(ErrorKind::invalid_input,
                    describe(tag, tag_offset) + ": indefinite length (80) is not allowed in BER-TLV");
    const std::size_t length_bytes = *first & 0x7Fu;
    if (length_bytes > 3)
        return fail(ErrorKind::invalid_input, describe(tag, tag_offset) + ": length form " + byte_hex(*first) +
                                                  " announces " + std::to_string(length_bytes) +
                                                  " length bytes, at most 3 are supported");
    auto bytes = in.read_bytes(length_bytes, "long-form length");
    if (!bytes)
        return std::move(bytes).error().with_context(describe(tag, tag_offset));
    std::size_t length = 0;
    for (const std::uint8_t byte : *bytes)
        length = (length << 8) | byte;
    return length;
}

class Parser {
public:
    explicit Parser(const TlvLimits& limits) : m_limits(limits) {}

    // Parses the objects in `in` until it ends; they are at nesting `depth`.
    Result<std::vector<Tlv>> parse_sequence(ByteReader& in, std::size_t depth) {
        std::vector<Tlv> objects;
        while (!in.at_end()) {
            const std::uint8_t next = CB_TRY(in.peek_u8("tag"));
            if (is_padding(next)) {
                CB_TRY(in.skip(1, "padding"));
                continue;
            }
            objects.push_back(CB_TRY(parse_object(in, depth)));
        }
        return objects;
    }

private:
    Result<Tlv> parse_object(ByteReader& in, std::size_t depth) {
        const std::size_t tag_offset = in.offset();
        const std::uint32_t tag = CB_TRY(read_tag(in));
        if (depth > m_limits.max_depth)
            return fail(ErrorKind::limit_exceeded, describe(tag, tag_offset) + ": nesting depth " +
                                                       std::to_string(depth) + " exceeds max_depth " +
                                                       std::to_string(m_limits.max_depth));
        if (++m_objects > m_limits.max_objects)
            return fail(ErrorKind::limit_exceeded, describe(tag, tag_offset) + ": more than max_objects " +
                                                       std::to_string(m_limits.max_objects) + " objects");
        const std::size_t length = CB_TRY(read_length(in, tag, tag_offset));
        if (length > in.remaining())
            return fail(ErrorKind::invalid_input, describe(tag, tag_offset) + ": length " + std::to_string(length) +
                                                      " exceeds the " + std::to_string(in.remaining()) +
                                                      (in.remaining() == 1 ? " remaining byte" : " remaining bytes"));
        const std::size_t value_offset = in.offset();
        Tlv object;
        object.tag = tag;
        object.offset = tag_offset;
        object.value = CB_TRY(in.read_bytes(length, "value"));
        if (object.constructed()) {
            ByteReader children(object.value, value_offset);
            object.children = CB_TRY(parse_sequence(children, depth + 1));
        }
        return object;
    }

    const TlvLimits& m_limits;
    std::size_t m_objects = 0;
};

void write_tag(ByteWriter& out, std::uint32_t tag) {
    for (std::size_t i = tag_size(tag); i > 0; --i)
        out.write_u8(static_cast<std::uint8_t>(tag >> (8 * (i - 1))));
}

void write_length(ByteWriter& out, std::size_t length) {
    assert(length <= tlv_max_length);
    if (length < 0x80) {
        out.write_u8(static_cast<std::uint8_t>(length));
        return;
    }
    const std::size_t length_bytes = length <= 0xFF ? 1 : length <= 0xFFFF ? 2 : 3;
    out.write_u8(static_cast<std::uint8_t>(0x80 | length_bytes));
    for (std::size_t i = length_bytes; i > 0; --i)
        out.write_u8(static_cast<std::uint8_t>(length >> (8 * (i - 1))));
}

std::string describe_path(std::initializer_list<std::uint32_t> path) {
    std::string described;
    for (const std::uint32_t tag : path) {
        if (!described.empty())
            described += '/';
        described += format_tag(tag);
    }
    return described;
}

}  // namespace

std::string format_tag(std::uint32_t tag) {
    std::array<std::uint8_t, 4> bytes{};
    const std::size_t size = tag > 0xFFFFFF ? 4 : tag_size(tag);
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<std::uint8_t>(tag >> (8 * (size - 1 - i)));
    return to_hex(std::span<const std::uint8_t>(bytes).first(size));
}

Tlv primitive_tlv(std::uint32_t tag, std::span<const std::uint8_t> value) {
    assert(is_valid_tag(tag) && !is_constructed_tag(tag));
    Tlv object;
    object.tag = tag;
    object.value = value;
    return object;
}

Tlv constructed_tlv(std::uint32_t tag, std::vector<Tlv> children) {
    assert(is_valid_tag(tag) && is_constructed_tag(tag));
    Tlv object;
    object.tag = tag;
    object.children = std::move(children);
    return object;
}

const Tlv* Tlv::find(std::uint32_t child_tag) const noexcept {
    return find_tlv(children, child_tag);
}

Result<std::vector<Tlv>> parse_tlv(std::span<const std::uint8_t> input, const TlvLimits& limits) {
    assert(limits.max_depth <= tlv_max_supported_depth);
    if (input.size() > limits.max_input_size)
        return fail(ErrorKind::limit_exceeded, "TLV input of " + std::to_string(input.size()) +
                                                   " bytes exceeds max_input_size " +
                                                   std::to_string(limits.max_input_size));
    ByteReader in(input);
    Parser parser(limits);
    return parser.parse_sequence(in, 1);
}

const Tlv* find_tlv(std::span<const Tlv> objects, std::uint32_t tag) noexcept {
    const auto found = std::find_if(objects.begin(), objects.end(), [tag](const Tlv& t) { return t.tag == tag; });
    return found == objects.end() ? nullptr : &*found;
}

const Tlv* find_path(std::span<const Tlv> objects, std::initializer_list<std::uint32_t> path) noexcept {
    const Tlv* found = nullptr;
    for (const std::uint32_t tag : path) {
        found = find_tlv(objects, tag);
        if (found == nullptr)
            return nullptr;
        objects = found->children;
    }
    return found;
}

Result<const Tlv*> require_path(std::span<const Tlv> objects, std::initializer_list<std::uint32_t> path) {
    const Tlv* parent = nullptr;
    for (const std::uint32_t tag : path) {
        const Tlv* found = find_tlv(objects, tag);
        if (found == nullptr) {
            const std::string where =
                parent == nullptr ? "at top level" : "in " + describe(parent->tag, parent->offset);
            return fail(ErrorKind::invalid_input,
                        "TLV " + describe_path(path) + ": no tag " + format_tag(tag) + " " + where);
        }
        parent = found;
        objects = found->children;
    }
    if (parent == nullptr)
        return fail(ErrorKind::invalid_input, "TLV path is empty");
    return parent;
}

Result<void> encode_tlv(ByteWriter& out, std::uint32_t tag, std::span<const std::uint8_t> value) {
    assert(is_valid_tag(tag));
    if (value.size() > tlv_max_length)
        return fail(ErrorKind::limit_exceeded, "tag " + format_tag(tag) + ": value of " + std::to_string(value.size()) +
                                                   " bytes exceeds " + std::to_string(tlv_max_length) +
                                                   ", the longest BER-TLV length");
    write_tag(out, tag);
    write_length(out, value.size());
    out.write_bytes(value);
    return {};
}

Result<void> encode_tlv_tree(ByteWriter& out, std::span<const Tlv> objects) {
    for (const Tlv& object : objects) {
        if (!object.constructed()) {
            CB_TRY(encode_tlv(out, object.tag, object.value));
            continue;
        }
        ByteWriter children;
        CB_TRY(encode_tlv_tree(children, object.children));
        CB_TRY(encode_tlv(out, object.tag, children.bytes()));
    }
    return {};
}

bool same_tlv_structure(std::span<const Tlv> left, std::span<const Tlv> right) noexcept {
    if (left.size() != right.size())
        return false;
    for (std::size_t i = 0; i < left.size(); ++i) {
        if (left[i].tag != right[i].tag)
            return false;
        if (left[i].constructed() ? !same_tlv_structure(left[i].children, right[i].children)
                                  : !std::ranges::equal(left[i].value, right[i].value))
            return false;
    }
    return true;
}

}  // namespace cb
