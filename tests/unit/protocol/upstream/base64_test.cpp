#include "protocol/upstream/base64.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace cb::upstream;

namespace {
Bytes bytes(const std::string& text) {
    return Bytes(text.begin(), text.end());
}
}  // namespace

TEST_CASE("base64 encodes the RFC 4648 test vectors") {
    CHECK(base64_encode(bytes("")) == "");
    CHECK(base64_encode(bytes("f")) == "Zg==");
    CHECK(base64_encode(bytes("fo")) == "Zm8=");
    CHECK(base64_encode(bytes("foo")) == "Zm9v");
    CHECK(base64_encode(bytes("foob")) == "Zm9vYg==");
    CHECK(base64_encode(bytes("fooba")) == "Zm9vYmE=");
    CHECK(base64_encode(bytes("foobar")) == "Zm9vYmFy");
    CHECK(base64url_encode(Bytes{0xFB, 0xFF}) == "-_8");
    CHECK(base64_encode(Bytes{0xFB, 0xFF}) == "+/8=");
}

TEST_CASE("base64 decodes what it encodes, and only the canonical form") {
    for (const std::string text : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        CHECK(base64_decode(base64_encode(bytes(text))).value() == bytes(text));
        CHECK(base64url_decode(base64url_encode(bytes(text))).value() == bytes(text));
    }
    CHECK_FALSE(base64_decode("Zg=").has_value());       // length
    CHECK_FALSE(base64_decode("Zh==").has_value());      // non-zero trailing bits
    CHECK_FALSE(base64_decode("Zm 9v").has_value());     // whitespace
    CHECK_FALSE(base64_decode("Zm9v-_8=").has_value());  // url alphabet
    CHECK_FALSE(base64url_decode("Zg==").has_value());   // padding
    CHECK_FALSE(base64url_decode("Z").has_value());      // impossible length
    const auto error = base64_decode("Zm9!");
    REQUIRE_FALSE(error.has_value());
    CHECK(error.error().message() == "base64: character '!' at 3 is not in the alphabet");
}

TEST_CASE("base64 encodes every 12-bit half of a 3-byte group in both alphabets") {
    // The encoder looks up two characters at a time: every value of each half,
    // against RFC 4648 §4 and §5 written out one character at a time.
    const std::string standard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::string url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    Bytes data;
    std::string expected_standard;
    std::string expected_url;
    for (std::uint32_t value = 0; value < 4096; ++value) {
        const std::uint32_t group = (value << 12) | (4095 - value);
        data.push_back(static_cast<std::uint8_t>(group >> 16));
        data.push_back(static_cast<std::uint8_t>(group >> 8));
        data.push_back(static_cast<std::uint8_t>(group));
        for (const int shift : {18, 12, 6, 0}) {
            expected_standard += standard[(group >> shift) & 0x3F];
            expected_url += url[(group >> shift) & 0x3F];
        }
    }
    CHECK(base64_encode(data) == expected_standard);
    CHECK(base64url_encode(data) == expected_url);
    CHECK(base64_decode(expected_standard).value() == data);
    CHECK(base64url_decode(expected_url).value() == data);
}
