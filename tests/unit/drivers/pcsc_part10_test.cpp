// PC/SC part 10: feature TLVs (hostile ones included), the
// PIN_VERIFY_STRUCTURE bytes, and VERIFY through a fake SCardControl.
#include <catch2/catch.hpp>

#include "drivers/pcsc/secure_pin_entry.hpp"
#include "tests/unit/drivers/pcsc_fake.hpp"

using cb::pcsc::Bytes;
using cb::pcsc::CardFailure;
using cb::test::FakePcscApi;
using cb::test::FakeReply;

TEST_CASE("pcsc part 10: feature TLVs give the control codes") {
    const Bytes answer{0x06, 0x04, 0x42, 0x33, 0x00, 0x06,   // VERIFY_PIN_DIRECT
                       0x13, 0x04, 0x42, 0x33, 0x00, 0x13,   // CCID_ESC_COMMAND (ignored)
                       0x0A, 0x04, 0x42, 0x33, 0x00, 0x0A};  // IFD_PIN_PROPERTIES
    auto features = cb::pcsc::parse_reader_features(answer);
    REQUIRE(features);
    CHECK(features->verify_pin_direct == 0x42330006U);
    CHECK(features->ifd_pin_properties == 0x4233000AU);
    CHECK_FALSE(features->modify_pin_direct);
    auto none = cb::pcsc::parse_reader_features({});
    REQUIRE(none);
    CHECK(*none == cb::pcsc::ReaderFeatures{});
}

TEST_CASE("pcsc part 10: hostile feature TLVs are refused") {
    const auto refused = [](const Bytes& bytes) {
        auto features = cb::pcsc::parse_reader_features(bytes);
        REQUIRE_FALSE(features);
        return features.error().message();
    };
    CHECK_THAT(refused({0x06, 0x04, 0x42, 0x00}), Catch::Contains("truncated"));
    CHECK_THAT(refused({0x06}), Catch::Contains("truncated"));
    CHECK_THAT(refused({0x06, 0x02, 0x42, 0x00}), Catch::Contains("feature 06 has length 2, expected 4"));
    CHECK_THAT(refused({0x06, 0xFF, 0x42, 0x00, 0x00, 0x06}), Catch::Contains("has length 255"));
    CHECK_THAT(refused({0x06, 0x04, 0x42, 0x00, 0x00, 0x06, 0x06, 0x04, 0x42, 0x00, 0x00, 0x07}),
               Catch::Contains("given twice"));
    Bytes many;
    for (int entry = 0; entry < 33; ++entry)
        many.insert(many.end(), {0x20, 0x04, 0x00, 0x00, 0x00, 0x01});
    auto over = cb::pcsc::parse_reader_features(many);
    REQUIRE_FALSE(over);
    CHECK(over.error().kind() == cb::ErrorKind::limit_exceeded);
}

TEST_CASE("pcsc part 10: PIN_VERIFY_STRUCTURE for the practitioner VERIFY") {
    const Bytes expected{0x1E, 0x1E,              // bTimerOut, bTimerOut2: 30 s
                         0x82,                    // bmFormatString: bytes, offset 0, left, ASCII
                         0x08,                    // bmPINBlockString: block of 8 bytes
                         0x00,                    // bmPINLengthFormat
                         0x08, 0x04,              // wPINMaxExtraDigit 0x0408: 4..8 digits
                         0x02,                    // bEntryValidationCondition: validation key
                         0x01,                    // bNumberMessage
                         0x0C, 0x04,              // wLangId 0x040C
                         0x00,                    // bMsgIndex
                         0x00, 0x00, 0x00,        // bTeoPrologue
                         0x0D, 0x00, 0x00, 0x00,  // ulDataLength 13
                         0x00, 0x20, 0x00, 0x81, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(cb::pcsc::build_verify_pin_structure({}) == expected);
    CHECK(cb::pcsc::build_verify_pin_structure({.timeout_seconds = 10, .language = 0x0409})[0] == 0x0A);
}

namespace {

struct Connected {
    FakePcscApi api;
    std::optional<cb::pcsc::PcscContext> context;
    std::optional<cb::pcsc::CardChannel> channel;
    Connected() {
        api.add_reader("Pinpad");
        api.insert_card("Pinpad", {0x3B});
        context.emplace(std::move(cb::pcsc::PcscContext::establish(api)).value());
        channel.emplace(std::move(cb::pcsc::CardChannel::connect(*context, "Pinpad")).value());
    }
};

}  // namespace

TEST_CASE("pcsc part 10: features through SCardControl, a reader without part 10 offers none") {
    Connected c;
    auto none = cb::pcsc::query_reader_features(*c.channel);  // the fake's default: unsupported
    REQUIRE(none);
    CHECK_FALSE(none->verify_pin_direct);

    c.api.set_control_responder([](std::uint32_t code, std::span<const std::uint8_t>) {
        CHECK(code == cb::pcsc::get_feature_request);
        CHECK(code == 0x42000D48U);
        return FakeReply{cb::pcsc::code::success, {0x06, 0x04, 0x42, 0x33, 0x00, 0x06}};
    });
    auto offered = cb::pcsc::query_reader_features(*c.channel);
    REQUIRE(offered);
    CHECK(offered->verify_pin_direct == 0x42330006U);

    c.api.set_control_responder([](std::uint32_t, std::span<const std::uint8_t>) {
        return FakeReply{cb::pcsc::code::success, {0x06, 0x04, 0x42}};
    });
    auto hostile = cb::pcsc::query_reader_features(*c.channel);
    REQUIRE_FALSE(hostile);
    CHECK(hostile.error().failure == CardFailure::reader_error);
    CHECK_THAT(hostile.error().message, Catch::Contains("reader \"Pinpad\": reader features: truncated"));
    CHECK(c.channel->apdus_sent() == 0);
}

TEST_CASE("pcsc part 10: VERIFY on the PIN pad sends the structure and returns the card's SW") {
    Connected c;
    Bytes sent;
    c.api.set_control_responder([&](std::uint32_t code, std::span<const std::uint8_t> input) {
        CHECK(code == 0x42330006U);
        sent.assign(input.begin(), input.end());
        return FakeReply{cb::pcsc::code::success, {0x63, 0xC1}};
    });
    auto status = cb::pcsc::verify_pin_on_pinpad(*c.channel, 0x42330006U, {});
    REQUIRE(status);
    CHECK(status->value() == 0x63C1);
    CHECK(sent == cb::pcsc::build_verify_pin_structure({}));
    CHECK(c.channel->apdus_sent() == 1);

    c.api.set_control_responder([&](std::uint32_t, std::span<const std::uint8_t>) {
        return FakeReply{cb::pcsc::code::success, {0x90, 0x00, 0x00}};
    });
    auto odd = cb::pcsc::verify_pin_on_pinpad(*c.channel, 0x42330006U, {});
    REQUIRE_FALSE(odd);
    CHECK_THAT(odd.error().message, Catch::Contains("answer of 3 bytes, expected SW1 SW2"));
}
