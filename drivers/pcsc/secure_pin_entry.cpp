#include "drivers/pcsc/secure_pin_entry.hpp"

#include "protocol/byte_reader.hpp"
#include "protocol/cards/practitioner_card.hpp"
#include "protocol/hex.hpp"

namespace cb::pcsc {

namespace {

std::string tag_name(std::uint8_t tag) {
    return to_hex(std::span<const std::uint8_t>(&tag, 1));
}

void write_u16_le(cards::Bytes& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value & 0xFF));
    out.push_back(static_cast<std::uint8_t>(value >> 8));
}

void write_u32_le(cards::Bytes& out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8)
        out.push_back(static_cast<std::uint8_t>((value >> shift) & 0xFF));
}

}  // namespace

namespace {

Result<ReaderFeatures> parse_features(std::span<const std::uint8_t> bytes) {
    ReaderFeatures features;
    ByteReader in(bytes);
    std::size_t count = 0;
    while (!in.at_end()) {
        if (++count > max_features)
            return fail(ErrorKind::limit_exceeded,
                        "reader features: more than " + std::to_string(max_features) + " entries");
        const std::uint8_t tag = CB_TRY(in.read_u8("feature tag"));
        const std::uint8_t length = CB_TRY(in.read_u8("feature " + tag_name(tag) + " length"));
        if (length != 4)
            return fail(ErrorKind::invalid_input, "reader features: feature " + tag_name(tag) + " has length " +
                                                      std::to_string(length) + ", expected 4");
        const std::uint32_t value = CB_TRY(in.read_u32_be("feature " + tag_name(tag) + " value"));
        std::optional<std::uint32_t>* slot = nullptr;
        switch (tag) {
            case feature_verify_pin_direct: slot = &features.verify_pin_direct; break;
            case feature_modify_pin_direct: slot = &features.modify_pin_direct; break;
            case feature_ifd_pin_properties: slot = &features.ifd_pin_properties; break;
            case feature_get_tlv_properties: slot = &features.get_tlv_properties; break;
            default: continue;  // a feature we do not use
        }
        if (*slot && **slot != value)
            return fail(ErrorKind::invalid_input,
                        "reader features: feature " + tag_name(tag) + " given twice with different control codes");
        *slot = value;
    }
    return features;
}

}  // namespace

Result<ReaderFeatures> parse_reader_features(std::span<const std::uint8_t> bytes) {
    auto features = parse_features(bytes);
    if (!features && features.error().message().rfind("reader features: ", 0) != 0)
        return features.error().with_context("reader features");
    return features;
}

cards::Bytes build_verify_pin_structure(const PinpadOptions& options) {
    // VERIFY 00 20 00 81 08 and a block of FF the reader fills (practitioner_card.hpp).
    cards::Bytes apdu{0x00, 0x20, 0x00, cards::practitioner_pin_reference,
                      static_cast<std::uint8_t>(cards::pin_block_size)};
    apdu.insert(apdu.end(), cards::pin_block_size, cards::pin_padding);

    cards::Bytes out;
    out.reserve(19 + apdu.size());
    out.push_back(options.timeout_seconds);                           // bTimerOut
    out.push_back(options.timeout_seconds);                           // bTimerOut2
    out.push_back(0x82);                                              // bmFormatString: bytes, offset 0, left, ASCII
    out.push_back(static_cast<std::uint8_t>(cards::pin_block_size));  // bmPINBlockString
    out.push_back(0x00);                                              // bmPINLengthFormat
    write_u16_le(out, static_cast<std::uint16_t>((cards::pin_min_digits << 8) | cards::pin_max_digits));
    out.push_back(0x02);  // bEntryValidationCondition: validation key
    out.push_back(0x01);  // bNumberMessage
    write_u16_le(out, options.language);
    out.push_back(0x00);             // bMsgIndex
    out.insert(out.end(), 3, 0x00);  // bTeoPrologue
    write_u32_le(out, static_cast<std::uint32_t>(apdu.size()));
    out.insert(out.end(), apdu.begin(), apdu.end());
    return out;
}

CardResult<ReaderFeatures> query_reader_features(CardChannel& channel) {
    auto answer = channel.control(get_feature_request, {}, ControlKind::reader_query, "GET FEATURE REQUEST");
    if (!answer) {
        if (answer.error().failure == CardFailure::reader_error)
            return ReaderFeatures{};  // the reader has no part 10 support
        return std::move(answer).error();
    }
    return lift(parse_reader_features(*answer), CardFailure::reader_error, "reader \"" + channel.reader() + "\"");
}

CardResult<cards::StatusWord> verify_pin_on_pinpad(CardChannel& channel, std::uint32_t verify_pin_direct,
                                                   const PinpadOptions& options) {
    const auto structure = build_verify_pin_structure(options);
    const auto answer =
        CB_TRY(channel.control(verify_pin_direct, structure, ControlKind::card_command, "PIN pad VERIFY"));
    if (answer.size() != 2)
        return CardError{CardFailure::reader_error,
                         "reader \"" + channel.reader() + "\": PIN pad VERIFY: answer of " +
                             std::to_string(answer.size()) + " bytes, expected SW1 SW2",
                         std::nullopt};
    return cards::StatusWord(answer[0], answer[1]);
}

}  // namespace cb::pcsc
