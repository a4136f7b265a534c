// RFC 8785 test vectors: §3.2.2 (structures), §3.2.3 (sorting) and Appendix B
// (numbers, as IEEE 754 bit patterns).
#include "protocol/upstream/canonical_json.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace cb::upstream;

namespace {
double from_bits(std::uint64_t bits) {
    double value = 0;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}
std::string canonical(const std::string& json) {
    return canonicalize(boost::json::parse(json)).value();
}
}  // namespace

TEST_CASE("JCS serializes numbers as ECMAScript does (RFC 8785 Appendix B)") {
    const std::pair<std::uint64_t, const char*> vectors[] = {
        {0x0000000000000000, "0"},
        {0x8000000000000000, "0"},
        {0x0000000000000001, "5e-324"},
        {0x8000000000000001, "-5e-324"},
        {0x7fefffffffffffff, "1.7976931348623157e+308"},
        {0xffefffffffffffff, "-1.7976931348623157e+308"},
        {0x4340000000000000, "9007199254740992"},
        {0xc340000000000000, "-9007199254740992"},
        {0x4430000000000000, "295147905179352830000"},
        {0x44b52d02c7e14af5, "9.999999999999997e+22"},
        {0x44b52d02c7e14af6, "1e+23"},
        {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
        {0x444b1ae4d6e2ef4e, "999999999999999700000"},
        {0x444b1ae4d6e2ef4f, "999999999999999900000"},
        {0x444b1ae4d6e2ef50, "1e+21"},
        {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
        {0x3eb0c6f7a0b5ed8d, "0.000001"},
        {0x41b3de4355555553, "333333333.3333332"},
        {0x41b3de4355555554, "333333333.33333325"},
        {0x41b3de4355555555, "333333333.3333333"},
        {0x41b3de4355555556, "333333333.3333334"},
        {0x41b3de4355555557, "333333333.33333343"},
        {0xbecbf647612f3696, "-0.0000033333333333333333"},
        {0x43143ff3c1cb0959, "1424953923781206.2"},
    };
    for (const auto& [bits, expected] : vectors) {
        INFO(expected);
        CHECK(ecmascript_number(from_bits(bits)) == expected);
    }
}

TEST_CASE("JCS refuses non-finite numbers") {
    const auto result = canonicalize(boost::json::value(std::numeric_limits<double>::infinity()));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().kind() == cb::ErrorKind::invalid_input);
}

TEST_CASE("JCS canonicalizes the RFC 8785 §3.2.2 example") {
    // Boost.JSON 1.81 reads 333333333.33333329 one ulp off (its parser is not
    // correctly rounded at 17 digits), so that number is set from a C++ literal,
    // which the compiler reads exactly. See "values are rounded" in fhir_bundle.cpp.
    const std::string input = R"({
        "numbers": [0, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    })";
    boost::json::value value = boost::json::parse(input);
    value.at("numbers").as_array()[0] = 333333333.33333329;
    CHECK(canonicalize(value).value() ==
          "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
          "\"string\":\"\xE2\x82\xAC$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

TEST_CASE("JCS sorts members by UTF-16 code units (RFC 8785 §3.2.3)") {
    const std::string input = R"({
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    })";
    CHECK(canonical(input) ==
          "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xC2\x80\":\"Control\","
          "\"\xC3\xB6\":\"Latin Small Letter O With Diaeresis\",\"\xE2\x82\xAC\":\"Euro Sign\","
          "\"\xF0\x9F\x98\x80\":\"Emoji: Grinning Face\",\"\xEF\xAC\xB3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

TEST_CASE("JCS writes integers as doubles and nests objects") {
    CHECK(canonical(R"({"b":[1,{"d":2,"c":-0}],"a":9007199254740993})") ==
          R"({"a":9007199254740992,"b":[1,{"c":0,"d":2}]})");
    CHECK(canonical(R"([1.0, 100, 1e2, 0.1, -1.5e-7])") == "[1,100,100,0.1,-1.5e-7]");
}

TEST_CASE("JCS prints integers exactly up to 2^53 and as doubles beyond") {
    boost::json::array values{std::int64_t{9007199254740992},
                              std::int64_t{-9007199254740992},
                              std::int64_t{-9007199254740993},
                              std::numeric_limits<std::int64_t>::min(),
                              std::uint64_t{9007199254740992},
                              std::uint64_t{9007199254740993},
                              std::numeric_limits<std::uint64_t>::max(),
                              std::int64_t{0},
                              std::int64_t{-7}};
    CHECK(canonicalize(values).value() ==
          "[9007199254740992,-9007199254740992,-9007199254740992,-9223372036854776000,9007199254740992,"
          "9007199254740992,18446744073709552000,0,-7]");
}

TEST_CASE("JCS sorts large objects and leaves out one member on request") {
    boost::json::object object;
    std::string expected = "{";
    for (int i = 0; i < 40; ++i) {
        const std::string key = "k" + std::to_string(100 + i);
        object[key] = i;
        if (i != 7)
            expected += (i == 0 ? "" : ",") + ("\"" + key + "\":" + std::to_string(i));
    }
    expected += "}";
    object["a"] = "first";
    object["z"] = "last";
    expected = R"({"a":"first",)" + expected.substr(1, expected.size() - 2) + R"(,"z":"last"})";
    CHECK(canonicalize_without(object, "k107").value() == expected);
    CHECK(canonicalize_without(object, "absent").value() == canonicalize(object).value());
    boost::json::object small{{"signature", 1}, {"b", 2}, {"a", 3}};
    CHECK(canonicalize_without(small, "signature").value() == R"({"a":3,"b":2})");
    // Only the top level: a nested member of that name stays.
    boost::json::object nested{{"n", boost::json::object{{"signature", 1}}}, {"signature", 2}};
    CHECK(canonicalize_without(nested, "signature").value() == R"({"n":{"signature":1}})");
}

TEST_CASE("JCS refuses invalid UTF-8 and excessive depth") {
    boost::json::object object;
    object["bad"] = std::string("\xC3\x28");
    const auto bad_string = canonicalize(object);
    REQUIRE_FALSE(bad_string.has_value());
    CHECK(bad_string.error().message() == "canonical JSON: a string is not valid UTF-8");

    boost::json::object bad_key;
    bad_key[std::string("\xED\xA0\x80")] = 1;  // an encoded surrogate
    CHECK_FALSE(canonicalize(bad_key).has_value());

    boost::json::value deep = boost::json::array{};
    for (std::size_t i = 0; i < max_canonical_depth; ++i)
        deep = boost::json::array{deep};
    const auto too_deep = canonicalize(deep);
    REQUIRE_FALSE(too_deep.has_value());
    CHECK(too_deep.error().kind() == cb::ErrorKind::limit_exceeded);
}

TEST_CASE("JCS escapes every byte that needs it, wherever it falls in a string") {
    // write_string looks at 8 bytes at a time: each character that needs an
    // escape, or is not ASCII, at every position of strings of 1 to 40 bytes,
    // against RFC 8785 §3.2.2.2 written out one byte at a time.
    const auto expected_of = [](const std::string& text) {
        std::string out = "\"";
        for (const char c : text) {
            const auto byte = static_cast<unsigned char>(c);
            if (c == '"')
                out += "\\\"";
            else if (c == '\\')
                out += "\\\\";
            else if (byte == 0x08)
                out += "\\b";
            else if (byte == 0x09)
                out += "\\t";
            else if (byte == 0x0A)
                out += "\\n";
            else if (byte == 0x0C)
                out += "\\f";
            else if (byte == 0x0D)
                out += "\\r";
            else if (byte < 0x20) {
                char buffer[8];
                std::snprintf(buffer, sizeof buffer, "\\u%04x", byte);
                out += buffer;
            } else {
                out += c;
            }
        }
        return out + "\"";
    };
    std::vector<std::string> specials{"\"", "\\", "\x7F", "\xC3\xA9", "\x20", "\x1F", "!", "#", "[", "]"};
    for (int byte = 0; byte < 0x20; ++byte)
        specials.emplace_back(1, static_cast<char>(byte));
    std::size_t checked = 0;
    for (std::size_t length = 1; length <= 40; ++length) {
        for (const std::string& special : specials) {
            for (std::size_t at = 0; at + special.size() <= length; ++at) {
                std::string text(length, 'A');
                text.replace(at, special.size(), special);
                CanonicalWriter out;
                out.string(text);
                const auto written = std::move(out).finish();
                REQUIRE(written.has_value());
                CHECK(*written == expected_of(text));
                ++checked;
            }
        }
    }
    CHECK(checked > 10'000);
    // Invalid UTF-8 after a long valid run, and in the last partial word.
    for (std::size_t at : {0U, 7U, 8U, 15U, 16U, 33U}) {
        std::string text(34, 'A');
        text[at] = '\xFF';
        CanonicalWriter out;
        out.begin_array().string("ok").string(text).end_array();
        CHECK(std::move(out).finish().error().message() == "canonical JSON: a string is not valid UTF-8");
    }
}

TEST_CASE("CanonicalWriter writes canonical text directly and keeps its first problem") {
    CanonicalWriter out;
    out.begin_object()
        .member("a", 1.5)
        .key("b")
        .begin_array()
        .string("x\n\"")
        .number(1e21)
        .begin_object()
        .end_object()
        .begin_array()
        .end_array()
        .end_array()
        .member("c", "\xC3\xA9/")
        .end_object();
    const std::string text = std::move(out).finish().value();
    CHECK(text == "{\"a\":1.5,\"b\":[\"x\\n\\\"\",1e+21,{},[]],\"c\":\"\xC3\xA9/\"}");
    CHECK(canonical(text) == text);

    CanonicalWriter bad_string;
    bad_string.begin_array().string("\xFF").number(std::numeric_limits<double>::quiet_NaN()).end_array();
    const auto refused = std::move(bad_string).finish();
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(refused.error().message() == "canonical JSON: a string is not valid UTF-8");

    CanonicalWriter bad_number;
    bad_number.begin_array().number(std::numeric_limits<double>::infinity()).end_array();
    CHECK(std::move(bad_number).finish().error().message() == "canonical JSON: a number is not finite");

    CanonicalWriter deep;
    for (std::size_t i = 0; i <= max_canonical_depth; ++i)
        deep.begin_array();
    for (std::size_t i = 0; i <= max_canonical_depth; ++i)
        deep.end_array();
    CHECK(std::move(deep).finish().error().kind() == cb::ErrorKind::limit_exceeded);
}
