// BER-TLV as smart cards use it (ISO/IEC 7816-4 §5.2, a subset of X.690 BER).
//
// A BER-TLV data object is a tag, a length and a value:
//
//   | field  | bytes | encoding                                                             |
//   |--------|-------|----------------------------------------------------------------------|
//   | tag    | 1..3  | first byte: b8-b7 class, b6 constructed, b5-b1 tag number;           |
//   |        |       | b5-b1 = 11111 means "more tag bytes follow"; each following byte     |
//   |        |       | has b8 = 1 if another byte follows, 0 on the last one               |
//   | length | 1..4  | 00..7F: the length itself (short form)                               |
//   |        |       | 81 xx, 82 xx xx, 83 xx xx xx: 1, 2 or 3 big-endian length bytes      |
//   | value  | len   | primitive: opaque bytes; constructed: a sequence of BER-TLV objects  |
//
//   | first tag byte b8-b7 | class            |
//   |----------------------|------------------|
//   | 00                   | universal        |
//   | 01                   | application      |
//   | 10                   | context-specific |
//   | 11                   | private          |
//
// A tag is held as a std::uint32_t of its raw bytes, most significant first, as
// it is written in specifications: 0x65, 0x5F20, 0x9F7F, 0xBF8101.
//
// What the parser accepts and rejects (every rejection is an Error naming the
// tag, the offset of the offending byte in the input, and the rule):
//
//   | input                                         | decision                                    |
//   |-----------------------------------------------|---------------------------------------------|
//   | 00 or FF where a tag would start              | padding (§5.2.2.1): skipped, at top level   |
//   |                                               | and between objects inside constructed ones |
//   | tag of 4 or more bytes                        | rejected: we never need them                |
//   | multi-byte tag whose first following byte is  | rejected: non-minimal (a leading zero group |
//   | 80                                            | of the tag number)                          |
//   | multi-byte tag for a number <= 30 (9F02)      | accepted: EMV and 7816 use them             |
//   | length 80 (indefinite form)                   | rejected: not allowed in 7816 BER-TLV       |
//   | length 84 and above (4+ length bytes)         | rejected: nothing on a card is that long    |
//   | non-minimal long form (81 05, 82 00 7F, ...)  | accepted (lenient): cards in the field      |
//   |                                               | write 81 xx with xx < 80; the encoder       |
//   |                                               | always writes the minimal form              |
//   | length larger than the bytes that remain      | rejected (in the enclosing object's value,  |
//   |                                               | for nested objects)                         |
//   | constructed value that is not BER-TLV         | rejected: parsed recursively, strictly      |
//
// Because of padding and lenient lengths, re-encoding a parsed tree yields the
// same bytes only for minimally encoded, padding-free input; it always yields
// the same tree (the fuzz target checks both).
//
// Hard caps (ErrorKind::limit_exceeded, the message names the cap), TlvLimits:
//   max_input_size  64 KiB: an extended-length APDU response is at most 65536
//                   bytes, and whatever we assemble from several READ BINARY
//                   is a few KiB; a bigger input is not a card's.
//   max_objects     1024: a Vitale identity is a few dozen objects, an EMV or
//                   IAS-ECC FCI under a hundred; bounds the tree's memory.
//   max_depth       8 levels (top-level objects are depth 1): real card data
//                   nests 3-4 deep (EMV: 6F > A5 > BF0C > 61 > 4F); 8 leaves
//                   room, and bounds the parser's recursion, which uses one
//                   stack frame per level. At most tlv_max_supported_depth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "protocol/byte_reader.hpp"
#include "protocol/result.hpp"

namespace cb {

enum class TagClass : std::uint8_t {
    universal = 0,
    application = 1,
    context_specific = 2,
    private_use = 3,
};

// Largest value of TlvLimits::max_depth the parser supports (its recursion
// depth); a larger setting is a programming error and asserts.
inline constexpr std::size_t tlv_max_supported_depth = 32;

struct TlvLimits {
    std::size_t max_depth = 8;
    std::size_t max_objects = 1024;
    std::size_t max_input_size = 64 * 1024;
};

// The largest length the encoder can write (three length bytes, 83 xx xx xx).
inline constexpr std::size_t tlv_max_length = 0xFFFFFF;

// Number of bytes of a tag held as its raw bytes (1, 2 or 3).
constexpr std::size_t tag_size(std::uint32_t tag) noexcept {
    return tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1;
}

// The first byte as written on the wire, which holds class and constructed bit.
constexpr std::uint8_t tag_first_byte(std::uint32_t tag) noexcept {
    return static_cast<std::uint8_t>(tag >> (8 * (tag_size(tag) - 1)));
}

constexpr TagClass tag_class(std::uint32_t tag) noexcept {
    return static_cast<TagClass>(tag_first_byte(tag) >> 6);
}

constexpr bool is_constructed_tag(std::uint32_t tag) noexcept {
    return (tag_first_byte(tag) & 0x20) != 0;
}

// True if `tag` is a tag this parser would accept, as a whole (the encoder
// asserts it): first byte neither 00 nor FF; single byte iff b5-b1 != 11111;
// then bytes with b8 = 1 except the last; first following byte not 80; at
// most 3 bytes. Lets tag constants be checked with static_assert.
constexpr bool is_valid_tag(std::uint32_t tag) noexcept {
    if (tag == 0 || tag > 0xFFFFFF)
        return false;
    const std::uint8_t first = tag_first_byte(tag);
    if (first == 0xFF)
        return false;
    const bool multi_byte = (first & 0x1F) == 0x1F;
    const std::size_t size = tag_size(tag);
    if (!multi_byte)
        return size == 1;
    if (size == 1)
        return false;
    const auto second = static_cast<std::uint8_t>(tag >> (8 * (size - 2)));
    if (second == 0x80)
        return false;
    const auto last = static_cast<std::uint8_t>(tag);
    if ((last & 0x80) != 0)
        return false;
    return size == 2 || (second & 0x80) != 0;
}

// "5F20": the tag's raw bytes in uppercase hex, for messages.
std::string format_tag(std::uint32_t tag);

// One parsed data object.
//
// Lifetime: `value` is a view into the input given to parse_tlv (and so is
// every child's); the input must outlive the tree. Objects built by hand for
// encoding borrow from whatever their spans point at.
struct Tlv {
    std::uint32_t tag = 0;
    // The value bytes as they are in the input. For a constructed object this
    // is the raw encoding of the children (padding included).
    std::span<const std::uint8_t> value;
    // Constructed objects only: the objects in `value`, padding skipped.
    std::vector<Tlv> children;
    // Offset of the tag's first byte in the input, for callers' messages
    // ("tag 93 at offset 5: NIR must be 13 digits"). 0 for hand-built objects.
    std::size_t offset = 0;

    bool constructed() const noexcept { return is_constructed_tag(tag); }
    TagClass tag_class() const noexcept { return cb::tag_class(tag); }

    // The first direct child with `child_tag`, or nullptr.
    const Tlv* find(std::uint32_t child_tag) const noexcept;
};

// Objects built by hand, for encode_tlv_tree:
//     constructed_tlv(0x65, {primitive_tlv(0x93, nir), primitive_tlv(0x80, name)})
// `tag` must be a valid tag (is_valid_tag) with the matching constructed bit;
// both assert. The primitive one borrows `value` (see Lifetime above).
Tlv primitive_tlv(std::uint32_t tag, std::span<const std::uint8_t> value);
Tlv constructed_tlv(std::uint32_t tag, std::vector<Tlv> children);

// Parses a sequence of top-level BER-TLV objects (padding allowed around
// them), constructed ones recursively. Returns the objects in input order;
// empty input (or padding only) gives an empty sequence.
//
// Fails with ErrorKind::limit_exceeded if a TlvLimits cap is passed, and
// ErrorKind::invalid_input for malformed input, the message naming the tag
// (as far as it was read) and the absolute offset in `input`, e.g.
//     "tag 5F20 at offset 7: length 300 exceeds the 12 remaining bytes"
//     "tag 65 at offset 0: indefinite length (80) is not allowed in BER-TLV"
//     "tag 5F at offset 3: truncated: needed 1 byte for multi-byte tag at offset 4, 0 remain"
//     "tag 7F at offset 2: nesting depth 9 exceeds max_depth 8"
Result<std::vector<Tlv>> parse_tlv(std::span<const std::uint8_t> input, const TlvLimits& limits = {});
// The tree would borrow from a buffer about to be destroyed: keep the bytes
// in a variable that outlives the tree.
Result<std::vector<Tlv>> parse_tlv(std::vector<std::uint8_t>&& input, const TlvLimits& limits = {}) = delete;

// The first object with `tag` in `objects` (not searching deeper), or nullptr.
const Tlv* find_tlv(std::span<const Tlv> objects, std::uint32_t tag) noexcept;

// Follows `path` from `objects`: find_path(objects, {0x65, 0x93}) is the 93
// object inside the first 65. Returns nullptr if any step is missing (or the
// path is empty).
const Tlv* find_path(std::span<const Tlv> objects, std::initializer_list<std::uint32_t> path) noexcept;

// As find_path, for data that must be there. Never returns nullptr: fails with
// ErrorKind::invalid_input naming the path and the missing step, e.g.
//     "TLV 65/93: no tag 93 in tag 65 at offset 0"
//     "TLV 65/93: no tag 65 at top level"
// (and "TLV path is empty" for an empty path).
Result<const Tlv*> require_path(std::span<const Tlv> objects, std::initializer_list<std::uint32_t> path);

// Appends one object: tag, minimal length, value. `tag` must satisfy
// is_valid_tag (asserts: tags are constants in code). Fails with
// ErrorKind::limit_exceeded if value is longer than tlv_max_length, and then
// writes nothing.
Result<void> encode_tlv(ByteWriter& out, std::uint32_t tag, std::span<const std::uint8_t> value);

// Appends a tree: a primitive object's `value`, a constructed object's
// `children` encoded recursively (its `value` is not used), all with minimal
// lengths and no padding. Fails as encode_tlv; on failure `out` may hold part
// of the encoding. encode_tlv_tree(out, *parse_tlv(x)) == x for x minimally
// encoded and padding-free.
Result<void> encode_tlv_tree(ByteWriter& out, std::span<const Tlv> objects);

// True if both trees have the same tags, the same primitive values and the
// same shape (values of constructed objects, padding and offsets ignored):
// what a parse / encode / parse round trip preserves.
bool same_tlv_structure(std::span<const Tlv> left, std::span<const Tlv> right) noexcept;

}  // namespace cb
