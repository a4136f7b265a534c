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
