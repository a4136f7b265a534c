#include "protocol/byte_reader.hpp"

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

namespace {

constexpr std::array<std::uint8_t, 7> message{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};

}  // namespace

TEST_CASE("ByteReader reads big-endian integers in order") {
    cb::ByteReader in(message);
    CHECK(in.read_u8("class").value() == 0x01);
    CHECK(in.read_u16_be("p1p2").value() == 0x0203);
    CHECK(in.read_u32_be("length").value() == 0x04050607u);
    CHECK(in.at_end());
    CHECK(in.remaining() == 0);
    CHECK(in.offset() == 7);
}

TEST_CASE("ByteReader read_bytes returns a view into the input") {
    cb::ByteReader in(message);
    const auto first = in.read_bytes(3, "header").value();
    CHECK(first.data() == message.data());
    CHECK(first.size() == 3);
    const auto empty = in.read_bytes(0, "nothing").value();
    CHECK(empty.empty());
    CHECK(in.offset() == 3);
    CHECK(in.remaining_bytes().size() == 4);
    CHECK(in.remaining_bytes()[0] == 0x04);
}

TEST_CASE("ByteReader names the field, the offset and what remains when truncated") {
    cb::ByteReader in(message);
    REQUIRE(in.skip(5, "header"));

    auto r32 = in.read_u32_be("length");
    REQUIRE_FALSE(r32);
    CHECK(r32.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(r32.error().message() == "truncated: needed 4 bytes for length at offset 5, 2 remain");

    auto bytes = in.read_bytes(3, "value");
    REQUIRE_FALSE(bytes);
    CHECK(bytes.error().message() == "truncated: needed 3 bytes for value at offset 5, 2 remain");

    // A failed read does not move the reader.
    CHECK(in.offset() == 5);
    CHECK(in.read_u8("sw1").value() == 0x06);

    auto r16 = in.read_u16_be("status word");
    REQUIRE_FALSE(r16);
    CHECK(r16.error().message() == "truncated: needed 2 bytes for status word at offset 6, 1 remains");

    REQUIRE(in.skip(1, "sw2"));
    auto r8 = in.read_u8("tag");
    REQUIRE_FALSE(r8);
    CHECK(r8.error().message() == "truncated: needed 1 byte for tag at offset 7, 0 remain");
    auto peeked = in.peek_u8("tag");
    REQUIRE_FALSE(peeked);
    CHECK(peeked.error().message() == "truncated: needed 1 byte for tag at offset 7, 0 remain");
    auto skipped = in.skip(1, "padding");
    REQUIRE_FALSE(skipped);
    CHECK(skipped.error().message() == "truncated: needed 1 byte for padding at offset 7, 0 remain");
}

TEST_CASE("ByteReader peek does not consume") {
    cb::ByteReader in(message);
    CHECK(in.peek_u8("tag").value() == 0x01);
    CHECK(in.peek_u8("tag").value() == 0x01);
    CHECK(in.offset() == 0);
    CHECK(in.read_u8("tag").value() == 0x01);
    CHECK(in.peek_u8("tag").value() == 0x02);
}

TEST_CASE("ByteReader offsets are absolute in nested readers") {
    cb::ByteReader in(message);
    REQUIRE(in.skip(2, "header"));
    auto block = in.read_reader(3, "block");
    REQUIRE(block);
    CHECK(in.offset() == 5);
    CHECK(block->offset() == 2);
    CHECK(block->remaining() == 3);
    CHECK(block->read_u16_be("first").value() == 0x0304);
    auto past = block->read_u16_be("second");
    REQUIRE_FALSE(past);
    CHECK(past.error().message() == "truncated: needed 2 bytes for second at offset 4, 1 remains");

    auto too_long = in.read_reader(3, "trailer");
    REQUIRE_FALSE(too_long);
    CHECK(too_long.error().message() == "truncated: needed 3 bytes for trailer at offset 5, 2 remain");

    const cb::ByteReader slice{std::span(message).subspan(4), 4};
    CHECK(slice.offset() == 4);
}

TEST_CASE("ByteReader over nothing is at its end") {
    cb::ByteReader in({});
    CHECK(in.at_end());
    CHECK(in.remaining() == 0);
    CHECK(in.read_bytes(0, "nothing"));
    CHECK_FALSE(in.read_u8("tag"));
}

TEST_CASE("ByteWriter appends big-endian fields") {
    cb::ByteWriter out;
    out.write_u8(0x00);
    out.write_u16_be(0xA404);
    out.write_u32_be(0x01020304);
    const std::array<std::uint8_t, 2> tail{0xAB, 0xCD};
    out.write_bytes(tail);
    const std::vector<std::uint8_t> expected{0x00, 0xA4, 0x04, 0x01, 0x02, 0x03, 0x04, 0xAB, 0xCD};
    CHECK(out.size() == expected.size());
    CHECK(std::vector<std::uint8_t>(out.bytes().begin(), out.bytes().end()) == expected);
    CHECK(out.take_bytes() == expected);
    CHECK(out.size() == 0);

    // What a writer writes, a reader reads back.
    out.write_u32_be(0xDEADBEEF);
    out.write_u16_be(0x9000);
    const auto bytes = out.take_bytes();
    cb::ByteReader in(bytes);
    CHECK(in.read_u32_be("value").value() == 0xDEADBEEF);
    CHECK(in.read_u16_be("status word").value() == 0x9000);
    CHECK(in.at_end());
}
