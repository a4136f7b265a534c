#include "protocol/tlv.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/byte_reader.hpp"
#include "protocol/hex.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;

// Test vectors are written in hex; a typo in one throws, and Catch reports it.
Bytes hex(std::string_view text) {
    auto bytes = cb::from_hex(text);
    if (!bytes)
        throw std::invalid_argument(bytes.error().message());
    return std::move(bytes).value();
}

Bytes as_bytes(std::string_view text) {
    return Bytes(text.begin(), text.end());
}

std::string as_text(std::span<const std::uint8_t> bytes) {
    return std::string(bytes.begin(), bytes.end());
}

Bytes encode_tree(std::span<const cb::Tlv> objects) {
    cb::ByteWriter out;
    REQUIRE(cb::encode_tlv_tree(out, objects));
    return out.take_bytes();
}

Bytes encode_one(std::uint32_t tag, std::span<const std::uint8_t> value) {
    cb::ByteWriter out;
    REQUIRE(cb::encode_tlv(out, tag, value));
    return out.take_bytes();
}

// `depth` constructed 65 objects, each inside the previous, the innermost empty.
Bytes nested(std::size_t depth) {
    Bytes bytes{0x65, 0x00};
    for (std::size_t level = 1; level < depth; ++level)
        bytes = encode_one(0x65, bytes);
    return bytes;
}

// `count` empty primitive 80 objects in a row.
Bytes flat(std::size_t count) {
    Bytes bytes;
    for (std::size_t i = 0; i < count; ++i) {
        bytes.push_back(0x80);
        bytes.push_back(0x00);
    }
    return bytes;
}

// `input` is rejected with `kind` and exactly `message`.
void check_rejected(const Bytes& input, cb::ErrorKind kind, const std::string& message,
                    const cb::TlvLimits& limits = {}) {
    const auto parsed = cb::parse_tlv(input, limits);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().kind() == kind);
    CHECK(parsed.error().message() == message);
}

// A Vitale-like identity: 65 { 93 NIR, 80 name, 81 first name, 82 birth date }.
Bytes vitale_identity() {
    return hex(
        "65 27"
        "   93 0D 31 38 35 30 32 37 35 31 32 33 34 35 36"  // "1850275123456"
        "   80 06 44 55 50 4F 4E 54"                       // "DUPONT"
        "   81 04 4A 45 41 4E"                             // "JEAN"
        "   82 08 31 39 38 35 30 32 32 37");               // "19850227"
}

}  // namespace

TEST_CASE("tag helpers expose class, constructed bit and size") {
    CHECK(cb::tag_class(0x65) == cb::TagClass::application);
    CHECK(cb::is_constructed_tag(0x65));
    CHECK(cb::tag_class(0x93) == cb::TagClass::context_specific);
    CHECK_FALSE(cb::is_constructed_tag(0x93));
    CHECK(cb::tag_class(0x04) == cb::TagClass::universal);
    CHECK(cb::tag_class(0xC0) == cb::TagClass::private_use);
    CHECK(cb::tag_class(0x5F20) == cb::TagClass::application);
    CHECK_FALSE(cb::is_constructed_tag(0x5F20));
    CHECK(cb::tag_class(0x7F49) == cb::TagClass::application);
    CHECK(cb::is_constructed_tag(0x7F49));
    CHECK(cb::tag_class(0xBF8101) == cb::TagClass::context_specific);
    CHECK(cb::is_constructed_tag(0xBF8101));
    CHECK(cb::tag_size(0x93) == 1);
    CHECK(cb::tag_size(0x9F7F) == 2);
    CHECK(cb::tag_size(0xDF8101) == 3);
    CHECK(cb::format_tag(0x5F20) == "5F20");
    CHECK(cb::format_tag(0x04) == "04");
    CHECK(cb::format_tag(0xBF8101) == "BF8101");
}

TEST_CASE("is_valid_tag accepts what the parser accepts") {
    static_assert(cb::is_valid_tag(0x65));
    static_assert(cb::is_valid_tag(0x5F20));
    static_assert(cb::is_valid_tag(0x9F02));  // a tag number below 31 in two bytes, as EMV writes it
    static_assert(cb::is_valid_tag(0x9F7F));
    static_assert(cb::is_valid_tag(0xBF8101));
    static_assert(cb::is_valid_tag(0x5F8101));
    static_assert(!cb::is_valid_tag(0x00));
    static_assert(!cb::is_valid_tag(0xFF));
    static_assert(!cb::is_valid_tag(0x1F));        // announces a following byte
    static_assert(!cb::is_valid_tag(0x6501));      // does not announce one
    static_assert(!cb::is_valid_tag(0x5F80));      // non-minimal
    static_assert(!cb::is_valid_tag(0x5F8080));    // non-minimal, and the last byte continues
    static_assert(!cb::is_valid_tag(0x5F81));      // last byte continues
    static_assert(!cb::is_valid_tag(0x5F0101));    // middle byte does not continue
    static_assert(!cb::is_valid_tag(0xFF2001));    // FF is padding
    static_assert(!cb::is_valid_tag(0x5F818101));  // four bytes
    CHECK(cb::is_valid_tag(0xDF8101));
}

TEST_CASE("a primitive object parses into tag, value and offset") {
    const Bytes input = hex("5F20 06 44 55 50 4F 4E 54");
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 1);
    const cb::Tlv& name = parsed->front();
    CHECK(name.tag == 0x5F20);
    CHECK_FALSE(name.constructed());
    CHECK(name.tag_class() == cb::TagClass::application);
    CHECK(as_text(name.value) == "DUPONT");
    CHECK(name.value.data() == input.data() + 3);  // borrowed from the input
    CHECK(name.offset == 0);
    CHECK(name.children.empty());
}

TEST_CASE("empty input and padding only parse to no objects") {
    CHECK(cb::parse_tlv(std::span<const std::uint8_t>{}).value().empty());
    const Bytes padding_only = hex("00 FF 00 FF");
    CHECK(cb::parse_tlv(padding_only).value().empty());
}

TEST_CASE("multi-byte tags of two and three bytes") {
    const Bytes input = hex("9F7F 02 AB CD   9F02 01 01   DF8101 01 EE   BF8101 03 80 01 11");
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 4);
    CHECK((*parsed)[0].tag == 0x9F7F);
    CHECK((*parsed)[0].value.size() == 2);
    CHECK((*parsed)[1].tag == 0x9F02);
    CHECK((*parsed)[2].tag == 0xDF8101);
    CHECK((*parsed)[2].offset == 9);
    CHECK((*parsed)[3].tag == 0xBF8101);
    CHECK((*parsed)[3].constructed());
    REQUIRE((*parsed)[3].children.size() == 1);
    CHECK((*parsed)[3].children[0].tag == 0x80);
    CHECK((*parsed)[3].children[0].offset == 18);
    CHECK(encode_tree(*parsed) == input);
}

TEST_CASE("long-form lengths 81, 82 and 83") {
    SECTION("81: one length byte") {
        Bytes input = hex("04 81 80");
        input.resize(input.size() + 0x80, 0xAA);
        const auto parsed = cb::parse_tlv(input);
        REQUIRE(parsed);
        CHECK(parsed->front().value.size() == 0x80);
        CHECK(encode_tree(*parsed) == input);
    }
    SECTION("82: two length bytes") {
        Bytes input = hex("04 82 01 2C");
        input.resize(input.size() + 300, 0xBB);
        const auto parsed = cb::parse_tlv(input);
        REQUIRE(parsed);
        CHECK(parsed->front().value.size() == 300);
        CHECK(encode_tree(*parsed) == input);
    }
    SECTION("83: three length bytes") {
        Bytes input = hex("04 83 01 00 00");
        input.resize(input.size() + 0x10000, 0xCC);
        const auto parsed = cb::parse_tlv(input, {.max_input_size = 0x10005});
        REQUIRE(parsed);
        CHECK(parsed->front().value.size() == 0x10000);
        CHECK(encode_tree(*parsed) == input);
    }
}

TEST_CASE("non-minimal long-form lengths are accepted and re-encoded minimally") {
    const Bytes input = hex("80 81 02 AA BB   81 82 00 01 CC   82 83 00 00 00");
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 3);
    CHECK((*parsed)[0].value.size() == 2);
    CHECK((*parsed)[1].value.size() == 1);
    CHECK((*parsed)[2].value.empty());
    CHECK((*parsed)[2].offset == 10);
    CHECK(encode_tree(*parsed) == hex("80 02 AA BB   81 01 CC   82 00"));
}

TEST_CASE("the encoder writes the minimal length form at each boundary") {
    const auto header = [](std::size_t length) {
        const Bytes value(length, 0x5A);
        Bytes encoded = encode_one(0x04, value);
        encoded.resize(encoded.size() - length);
        return encoded;
    };
    CHECK(header(0) == hex("04 00"));
    CHECK(header(0x7F) == hex("04 7F"));
    CHECK(header(0x80) == hex("04 81 80"));
    CHECK(header(0xFF) == hex("04 81 FF"));
    CHECK(header(0x100) == hex("04 82 01 00"));
    CHECK(header(0xFFFF) == hex("04 82 FF FF"));
    CHECK(header(0x10000) == hex("04 83 01 00 00"));
}

TEST_CASE("the encoder refuses values longer than three length bytes can say") {
    const Bytes value(cb::tlv_max_length + 1, 0x00);
    cb::ByteWriter out;
    const auto encoded = cb::encode_tlv(out, 0x04, value);
    REQUIRE_FALSE(encoded);
    CHECK(encoded.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(encoded.error().message() == "tag 04: value of 16777216 bytes exceeds 16777215, the longest BER-TLV length");
    CHECK(out.size() == 0);
}

TEST_CASE("a Vitale-like identity parses into a tree") {
    const Bytes input = vitale_identity();
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 1);
    const cb::Tlv& identity = parsed->front();
    CHECK(identity.tag == 0x65);
    CHECK(identity.constructed());
    REQUIRE(identity.children.size() == 4);
    CHECK(identity.children[0].offset == 2);
    CHECK(identity.children[3].offset == 31);

    const cb::Tlv* nir = cb::find_path(*parsed, {0x65, 0x93});
    REQUIRE(nir != nullptr);
    CHECK(as_text(nir->value) == "1850275123456");
    REQUIRE(identity.find(0x80) != nullptr);
    CHECK(as_text(identity.find(0x80)->value) == "DUPONT");
    CHECK(as_text(identity.find(0x81)->value) == "JEAN");
    CHECK(as_text(identity.find(0x82)->value) == "19850227");
    CHECK(identity.find(0x83) == nullptr);
    CHECK(cb::find_path(*parsed, {0x65, 0x83}) == nullptr);
    CHECK(cb::find_path(*parsed, {0x93}) == nullptr);
    CHECK(cb::find_path(*parsed, {}) == nullptr);
    CHECK(cb::find_tlv(*parsed, 0x65) == &identity);

    CHECK(encode_tree(*parsed) == vitale_identity());
}

TEST_CASE("require_path names what is missing") {
    const Bytes input = vitale_identity();
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    const auto birth_date = cb::require_path(*parsed, {0x65, 0x82});
    REQUIRE(birth_date);
    CHECK(as_text((*birth_date)->value) == "19850227");

    const auto missing_child = cb::require_path(*parsed, {0x65, 0x5F20});
    REQUIRE_FALSE(missing_child);
    CHECK(missing_child.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(missing_child.error().message() == "TLV 65/5F20: no tag 5F20 in tag 65 at offset 0");

    const auto missing_top = cb::require_path(*parsed, {0x6F, 0x84});
    REQUIRE_FALSE(missing_top);
    CHECK(missing_top.error().message() == "TLV 6F/84: no tag 6F at top level");

    const auto empty = cb::require_path(*parsed, {});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message() == "TLV path is empty");
}

TEST_CASE("a tree built by hand encodes and parses back") {
    const Bytes nir = as_bytes("1850275123456");
    const Bytes name = as_bytes("DUPONT");
    const Bytes first_name = as_bytes("JEAN");
    const Bytes birth_date = as_bytes("19850227");
    const std::vector<cb::Tlv> identity{
        cb::constructed_tlv(0x65, {cb::primitive_tlv(0x93, nir), cb::primitive_tlv(0x80, name),
                                   cb::primitive_tlv(0x81, first_name), cb::primitive_tlv(0x82, birth_date)}),
    };
    CHECK(encode_tree(identity) == vitale_identity());
    const Bytes input = vitale_identity();
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    CHECK(cb::same_tlv_structure(identity, *parsed));
}

TEST_CASE("padding 00 and FF is skipped around and between objects, and inside constructed ones") {
    const Bytes padded =
        hex("00 FF"
            "65 14 00 93 02 31 32 FF FF 80 03 44 55 50 00 A5 04 00 81 00 FF 00"
            "FF 00 00"
            "5F20 01 41"
            "FF");
    const auto parsed = cb::parse_tlv(padded);
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 2);
    const cb::Tlv& identity = (*parsed)[0];
    CHECK(identity.offset == 2);
    REQUIRE(identity.children.size() == 3);
    CHECK(identity.children[0].tag == 0x93);
    CHECK(identity.children[1].tag == 0x80);
    CHECK(identity.children[1].offset == 11);
    CHECK(identity.children[2].tag == 0xA5);
    REQUIRE(identity.children[2].children.size() == 1);
    CHECK(identity.children[2].children[0].tag == 0x81);
    CHECK((*parsed)[1].tag == 0x5F20);
    CHECK((*parsed)[1].offset == 27);
    // Re-encoding drops the padding; the tree stays the same.
    const Bytes encoded = encode_tree(*parsed);
    CHECK(encoded == hex("65 0D 93 02 31 32 80 03 44 55 50 A5 02 81 00   5F20 01 41"));
    CHECK(cb::same_tlv_structure(*parsed, cb::parse_tlv(encoded).value()));
}

TEST_CASE("00 and FF inside a primitive value are data, not padding") {
    const Bytes input = hex("04 03 00 FF 00");
    const auto parsed = cb::parse_tlv(input);
    REQUIRE(parsed);
    CHECK(parsed->front().value.size() == 3);
}

TEST_CASE("malformed input is rejected with the tag, the offset and the rule") {
    using cb::ErrorKind;
    SECTION("truncated multi-byte tag") {
        check_rejected(hex("80 00 5F"), ErrorKind::invalid_input,
                       "tag 5F at offset 2: truncated: needed 1 byte for multi-byte tag at offset 3, 0 remain");
        check_rejected(hex("BF 81"), ErrorKind::invalid_input,
                       "tag BF81 at offset 0: truncated: needed 1 byte for multi-byte tag at offset 2, 0 remain");
    }
    SECTION("truncated length") {
        check_rejected(hex("80 00 93"), ErrorKind::invalid_input,
                       "tag 93 at offset 2: truncated: needed 1 byte for length at offset 3, 0 remain");
        check_rejected(hex("5F20 82 01"), ErrorKind::invalid_input,
                       "tag 5F20 at offset 0: truncated: needed 2 bytes for long-form length at offset 3, 1 remains");
    }
    SECTION("indefinite length") {
        check_rejected(hex("65 80 93 01 31 00 00"), ErrorKind::invalid_input,
                       "tag 65 at offset 0: indefinite length (80) is not allowed in BER-TLV");
    }
    SECTION("length of four or more bytes") {
        check_rejected(hex("04 84 00 00 00 01 AA"), ErrorKind::invalid_input,
                       "tag 04 at offset 0: length form 84 announces 4 length bytes, at most 3 are supported");
        check_rejected(hex("04 FF"), ErrorKind::invalid_input,
                       "tag 04 at offset 0: length form FF announces 127 length bytes, at most 3 are supported");
    }
    SECTION("value longer than what remains") {
        Bytes input = hex("80 01 41 00 00 00 00 5F20 82 01 2C");
        input.resize(input.size() + 12, 0x41);
        check_rejected(input, ErrorKind::invalid_input,
                       "tag 5F20 at offset 7: length 300 exceeds the 12 remaining bytes");
        check_rejected(hex("93 02 31"), ErrorKind::invalid_input,
                       "tag 93 at offset 0: length 2 exceeds the 1 remaining byte");
    }
    SECTION("a child longer than its parent's value, even if the input goes on") {
        check_rejected(hex("65 03 93 02 31 32 33"), ErrorKind::invalid_input,
                       "tag 93 at offset 2: length 2 exceeds the 1 remaining byte");
    }
    SECTION("a constructed value that is not BER-TLV") {
        check_rejected(hex("80 00 65 02 80 05"), ErrorKind::invalid_input,
                       "tag 80 at offset 4: length 5 exceeds the 0 remaining bytes");
        check_rejected(hex("65 01 1F"), ErrorKind::invalid_input,
                       "tag 1F at offset 2: truncated: needed 1 byte for multi-byte tag at offset 3, 0 remain");
    }
    SECTION("non-minimal multi-byte tag") {
        check_rejected(hex("80 00 5F 80 20 01 41"), ErrorKind::invalid_input,
                       "tag 5F80 at offset 2: non-minimal multi-byte tag (first following byte is 80)");
    }
    SECTION("tag longer than three bytes") {
        check_rejected(hex("5F 81 82 03 01 41"), ErrorKind::invalid_input,
                       "tag 5F8182 at offset 0: tag longer than 3 bytes");
    }
}

TEST_CASE("max_depth: 8 levels parse, 9 do not") {
    const Bytes deepest = nested(8);
    const auto at_limit = cb::parse_tlv(deepest);
    REQUIRE(at_limit);
    const cb::Tlv* innermost = &at_limit->front();
    for (int level = 1; level < 8; ++level) {
        REQUIRE(innermost->children.size() == 1);
        innermost = &innermost->children.front();
    }
    CHECK(innermost->children.empty());
    CHECK(innermost->offset == 14);

    check_rejected(nested(9), cb::ErrorKind::limit_exceeded,
                   "tag 65 at offset 16: nesting depth 9 exceeds max_depth 8");

    const Bytes two = nested(2);
    CHECK(cb::parse_tlv(two, {.max_depth = 2}));
    check_rejected(nested(3), cb::ErrorKind::limit_exceeded, "tag 65 at offset 4: nesting depth 3 exceeds max_depth 2",
                   {.max_depth = 2});
}

TEST_CASE("max_objects: 1024 objects parse, 1025 do not") {
    const Bytes most = flat(1024);
    const auto at_limit = cb::parse_tlv(most);
    REQUIRE(at_limit);
    CHECK(at_limit->size() == 1024);
    check_rejected(flat(1025), cb::ErrorKind::limit_exceeded,
                   "tag 80 at offset 2048: more than max_objects 1024 objects");

    // Nested objects count too: 65 { 80, 80 } is three objects.
    const Bytes three = hex("65 04 80 00 80 00");
    CHECK(cb::parse_tlv(three, {.max_objects = 3}));
    check_rejected(three, cb::ErrorKind::limit_exceeded, "tag 80 at offset 4: more than max_objects 2 objects",
                   {.max_objects = 2});
}

TEST_CASE("max_input_size: 64 KiB parse, one byte more does not") {
    Bytes input = hex("04 82 FF FC");
    input.resize(64 * 1024, 0x11);
    const auto at_limit = cb::parse_tlv(input);
    REQUIRE(at_limit);
    CHECK(at_limit->front().value.size() == 0xFFFC);

    input.push_back(0x00);  // padding: well-formed, but one byte too many
    check_rejected(input, cb::ErrorKind::limit_exceeded, "TLV input of 65537 bytes exceeds max_input_size 65536");
}

namespace {

// A deterministic generator of random trees (std::mt19937's output is fixed
// by the standard for a given seed; distributions are not, so none is used).
class TreeGenerator {
public:
    explicit TreeGenerator(std::uint32_t seed) : m_random(seed) {}

    std::vector<cb::Tlv> objects(std::size_t depth) {
        std::vector<cb::Tlv> generated(below(depth == 1 ? 4 : 5));
        for (cb::Tlv& object : generated) {
            const bool constructed = depth < 6 && below(3) == 0;
            if (constructed) {
                object.tag = constructed_tags[below(std::size(constructed_tags))];
                object.children = objects(depth + 1);
            } else {
                object.tag = primitive_tags[below(std::size(primitive_tags))];
                // Lengths around the 7F/80 and FF/100 boundaries, and small ones.
                const std::size_t lengths[] = {0, 1, 2, 13, 0x7F, 0x80, 0xFF, 0x100, 0x12C};
                m_values.emplace_back(lengths[below(std::size(lengths))]);
                for (std::uint8_t& byte : m_values.back())
                    byte = static_cast<std::uint8_t>(m_random());
                object.value = m_values.back();
            }
        }
        return generated;
    }

    std::size_t below(std::size_t bound) { return m_random() % bound; }

private:
    static constexpr std::uint32_t primitive_tags[] = {0x04, 0x80, 0x93, 0x5F20, 0x9F02, 0x9F7F, 0xDF8101};
    static constexpr std::uint32_t constructed_tags[] = {0x30, 0x65, 0xA5, 0x7F49, 0xBF0C, 0xBF8101};

    std::mt19937 m_random;
    std::deque<Bytes> m_values;  // the values the generated trees borrow
};

}  // namespace

TEST_CASE("round trip: encode then parse gives the tree back, for 300 random trees") {
    TreeGenerator generator(20240611);
    for (int i = 0; i < 300; ++i) {
        const std::vector<cb::Tlv> tree = generator.objects(1);
        const Bytes encoded = encode_tree(tree);
        const auto parsed = cb::parse_tlv(encoded, {.max_depth = 8, .max_objects = 100000, .max_input_size = 1 << 20});
        REQUIRE(parsed);
        CHECK(cb::same_tlv_structure(tree, *parsed));
        CHECK(encode_tree(*parsed) == encoded);
    }
}

TEST_CASE("damaged encodings are parsed or rejected, never misread") {
    TreeGenerator generator(7);
    for (int i = 0; i < 200; ++i) {
        const std::vector<cb::Tlv> tree = generator.objects(1);
        Bytes damaged = encode_tree(tree);
        if (damaged.empty())
            continue;
        if (generator.below(2) == 0)
            damaged.resize(generator.below(damaged.size()));
        else
            damaged[generator.below(damaged.size())] ^= static_cast<std::uint8_t>(1 + generator.below(255));
        const auto parsed = cb::parse_tlv(damaged, {.max_input_size = 1 << 20});
        if (!parsed) {
            CHECK((parsed.error().kind() == cb::ErrorKind::invalid_input ||
                   parsed.error().kind() == cb::ErrorKind::limit_exceeded));
            CHECK_FALSE(parsed.error().message().empty());
            continue;
        }
        const Bytes encoded = encode_tree(*parsed);
        CHECK(encoded.size() <= damaged.size());
        CHECK(cb::same_tlv_structure(*parsed, cb::parse_tlv(encoded, {.max_input_size = 1 << 20}).value()));
    }
}
