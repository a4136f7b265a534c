#include "protocol/cards/patient_card.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/byte_reader.hpp"
#include "protocol/hex.hpp"
#include "protocol/tlv.hpp"

namespace {

using cb::cards::Bytes;
using cb::cards::CalendarDate;

constexpr std::string_view valid_nir = "185027512345625";  // key 25 = 97 - (1850275123456 mod 97)

Bytes as_bytes(std::string_view text) {
    return Bytes(text.begin(), text.end());
}

// The fields of a Vitale-like identity, each replaceable by a test.
struct Fields {
    Bytes nir = as_bytes(valid_nir);
    Bytes family_name = as_bytes("DUPONT");
    Bytes first_name = as_bytes("JEAN");
    Bytes birth_date = as_bytes("19850227");
    Bytes validity_start = as_bytes("20240115");
    bool with_nir = true;
    bool with_card = true;
};

// 65 { 93 NIR, 80 family name, 81 first name, 82 birth date } 66 { 80 validity start }
Bytes identity_file(const Fields& fields) {
    std::vector<cb::Tlv> beneficiary;
    if (fields.with_nir)
        beneficiary.push_back(cb::primitive_tlv(0x93, fields.nir));
    beneficiary.push_back(cb::primitive_tlv(0x80, fields.family_name));
    beneficiary.push_back(cb::primitive_tlv(0x81, fields.first_name));
    beneficiary.push_back(cb::primitive_tlv(0x82, fields.birth_date));
    std::vector<cb::Tlv> objects{cb::constructed_tlv(0x65, std::move(beneficiary))};
    if (fields.with_card)
        objects.push_back(cb::constructed_tlv(0x66, {cb::primitive_tlv(0x80, fields.validity_start)}));
    cb::ByteWriter out;
    REQUIRE(cb::encode_tlv_tree(out, objects));
    return out.take_bytes();
}

// `fields` is rejected as invalid_input with exactly `message`, which never
// contains the NIR.
void check_rejected(const Fields& fields, const std::string& message) {
    const Bytes content = identity_file(fields);
    const auto parsed = cb::cards::parse_patient_identity(content);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(parsed.error().message() == message);
    CHECK(parsed.error().message().find(std::string(valid_nir.substr(0, 13))) == std::string::npos);
}

std::string encoded(const cb::cards::CommandApdu& command) {
    const auto bytes = cb::cards::encode_command(command);
    REQUIRE(bytes);
    return cb::to_hex(*bytes);
}

}  // namespace

TEST_CASE("patient card command builders follow the documented sequence") {
    CHECK(encoded(cb::cards::select_patient_application()) == "00A404000BD250000002564954414C45");
    CHECK(encoded(cb::cards::select_patient_identity_file()) == "00A4020C022001");
    const auto first_read = cb::cards::read_patient_identity_command(0);
    REQUIRE(first_read);
    CHECK(encoded(*first_read) == "00B0000000");
    const auto second_read = cb::cards::read_patient_identity_command(256);
    REQUIRE(second_read);
    CHECK(encoded(*second_read) == "00B0010000");
    const auto last_read = cb::cards::read_patient_identity_command(4095);
    REQUIRE(last_read);
    CHECK(encoded(*last_read) == "00B00FFF00");

    const auto past_cap = cb::cards::read_patient_identity_command(4096);
    REQUIRE_FALSE(past_cap);
    CHECK(past_cap.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(past_cap.error().message() == "READ BINARY EF 2001: offset 4096 is past the 4096-byte cap");
}

TEST_CASE("parse_patient_identity reads a well-formed identity") {
    const Bytes content = identity_file({});
    const auto identity = cb::cards::parse_patient_identity(content);
    REQUIRE(identity);
    CHECK(identity->nir() == "1850275123456");
    CHECK(identity->nir_key() == 25);
    CHECK(identity->family_name() == "DUPONT");
    CHECK(identity->first_name() == "JEAN");
    CHECK(identity->birth_date() == CalendarDate{1985, 2, 27});
    CHECK(identity->card_validity_start() == CalendarDate{2024, 1, 15});
}

TEST_CASE("parse_patient_identity accepts padding and unknown objects") {
    Bytes content{0xFF, 0x00};
    const Bytes identity = identity_file({});
    content.insert(content.end(), identity.begin(), identity.end());
    const Bytes unknown_then_padding = cb::from_hex("90 02 01 02 FF FF").value();
    content.insert(content.end(), unknown_then_padding.begin(), unknown_then_padding.end());
    const auto parsed = cb::cards::parse_patient_identity(content);
    REQUIRE(parsed);
    CHECK(parsed->family_name() == "DUPONT");
}

TEST_CASE("parse_patient_identity handles Corsican departments 2A and 2B") {
    Fields corsica_a;
    corsica_a.nir = as_bytes("185022A12345682");  // 2A counts as 19
    const Bytes content_a = identity_file(corsica_a);
    const auto parsed_a = cb::cards::parse_patient_identity(content_a);
    REQUIRE(parsed_a);
    CHECK(parsed_a->nir() == "185022A123456");
    CHECK(parsed_a->nir_key() == 82);

    Fields corsica_b;
    corsica_b.nir = as_bytes("185022B12345612");  // 2B counts as 18
    const Bytes content_b = identity_file(corsica_b);
    REQUIRE(cb::cards::parse_patient_identity(content_b));

    Fields swapped;
    swapped.nir = as_bytes("185022B12345682");  // 2A's key on a 2B NIR
    check_rejected(swapped, "patient identity: tag 65/93 (NIR): key mismatch");

    Fields misplaced;
    misplaced.nir = as_bytes("18502A312345682");  // 'A' outside the department
    check_rejected(misplaced, "patient identity: tag 65/93 (NIR): non-digit at position 5");

    Fields not_corsica;
    not_corsica.nir = as_bytes("185022C12345682");  // only 2A and 2B exist
    check_rejected(not_corsica, "patient identity: tag 65/93 (NIR): non-digit at position 6");
}

TEST_CASE("parse_patient_identity rejects a bad NIR without echoing it") {
    Fields short_nir;
    short_nir.nir = as_bytes("18502751234562");
    check_rejected(short_nir, "patient identity: tag 65/93 (NIR): expected 15 bytes, got 14");

    Fields letter;
    letter.nir = as_bytes("1850X7512345625");
    check_rejected(letter, "patient identity: tag 65/93 (NIR): non-digit at position 4");

    Fields key_letter;
    key_letter.nir = as_bytes("18502751234562X");
    check_rejected(key_letter, "patient identity: tag 65/93 (NIR): non-digit at position 14");

    Fields wrong_key;
    wrong_key.nir = as_bytes("185027512345626");
    check_rejected(wrong_key, "patient identity: tag 65/93 (NIR): key mismatch");

    Fields missing;
    missing.with_nir = false;
    check_rejected(missing, "patient identity: TLV 65/93: no tag 93 in tag 65 at offset 0");
}

TEST_CASE("parse_patient_identity rejects bad names") {
    Fields empty;
    empty.family_name = {};
    check_rejected(empty, "patient identity: tag 65/80 (family name): empty");

    Fields too_long;
    too_long.first_name = Bytes(65, 'A');
    check_rejected(too_long, "patient identity: tag 65/81 (first name): 65 bytes exceed the 64-byte cap");

    Fields at_cap;
    at_cap.first_name = Bytes(64, 'A');
    const Bytes content = identity_file(at_cap);
    REQUIRE(cb::cards::parse_patient_identity(content));

    Fields control;
    control.first_name = as_bytes("JE\nAN");
    check_rejected(control, "patient identity: tag 65/81 (first name): non-printable byte 0A at position 2");

    Fields high;
    high.family_name = Bytes{'D', 0xC9};
    check_rejected(high, "patient identity: tag 65/80 (family name): non-printable byte C9 at position 1");
}

TEST_CASE("parse_patient_identity rejects impossible dates") {
    Fields february_30;
    february_30.birth_date = as_bytes("19800230");
    check_rejected(february_30, "patient identity: tag 65/82 (birth date): 19800230 is not a calendar date");

    Fields not_leap;
    not_leap.birth_date = as_bytes("19000229");
    check_rejected(not_leap, "patient identity: tag 65/82 (birth date): 19000229 is not a calendar date");

    Fields leap;
    leap.birth_date = as_bytes("20000229");
    const Bytes content = identity_file(leap);
    REQUIRE(cb::cards::parse_patient_identity(content));

    Fields month_13;
    month_13.validity_start = as_bytes("20241301");
    check_rejected(month_13, "patient identity: tag 66/80 (validity start): 20241301 is not a calendar date");

    Fields short_date;
    short_date.birth_date = as_bytes("1985022");
    check_rejected(short_date, "patient identity: tag 65/82 (birth date): expected 8 digits YYYYMMDD, got 7 bytes");

    Fields letters;
    letters.validity_start = as_bytes("2024-1-1");
    check_rejected(letters, "patient identity: tag 66/80 (validity start): non-digit at position 4");
}

TEST_CASE("parse_patient_identity rejects missing objects and malformed BER-TLV") {
    Fields no_card;
    no_card.with_card = false;
    check_rejected(no_card, "patient identity: TLV 66: no tag 66 (card) at top level");

    const Bytes only_card = cb::from_hex("66 0A 80 08 3230323430313135").value();
    const auto no_beneficiary = cb::cards::parse_patient_identity(only_card);
    REQUIRE_FALSE(no_beneficiary);
    CHECK(no_beneficiary.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(no_beneficiary.error().message() == "patient identity: TLV 65: no tag 65 (beneficiary) at top level");

    const Bytes truncated = cb::from_hex("65 10 93 0F 31").value();
    const auto malformed = cb::cards::parse_patient_identity(truncated);
    REQUIRE_FALSE(malformed);
    CHECK(malformed.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(malformed.error().message() ==
          "patient identity: tag 65 at offset 0: length 16 exceeds the 3 remaining bytes");

    const auto empty = cb::cards::parse_patient_identity({});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message() == "patient identity: TLV 65: no tag 65 (beneficiary) at top level");
}

TEST_CASE("is_calendar_date follows the Gregorian calendar") {
    CHECK(cb::cards::is_calendar_date({2024, 2, 29}));
    CHECK_FALSE(cb::cards::is_calendar_date({2023, 2, 29}));
    CHECK(cb::cards::is_calendar_date({2000, 2, 29}));
    CHECK_FALSE(cb::cards::is_calendar_date({1900, 2, 29}));
    CHECK(cb::cards::is_calendar_date({2024, 12, 31}));
    CHECK_FALSE(cb::cards::is_calendar_date({2024, 4, 31}));
    CHECK_FALSE(cb::cards::is_calendar_date({2024, 0, 1}));
    CHECK_FALSE(cb::cards::is_calendar_date({2024, 1, 0}));
    CHECK_FALSE(cb::cards::is_calendar_date({0, 1, 1}));
}

TEST_CASE("check_patient_select accepts 9000 and 61xx and names the SELECT otherwise") {
    const auto application = cb::cards::select_patient_application();
    const auto file = cb::cards::select_patient_identity_file();
    CHECK(cb::cards::check_patient_select(application, cb::cards::StatusWord(0x9000)));
    CHECK(cb::cards::check_patient_select(application, cb::cards::StatusWord(0x6120)));

    const auto no_application = cb::cards::check_patient_select(application, cb::cards::StatusWord(0x6A82));
    REQUIRE_FALSE(no_application);
    CHECK(no_application.error().kind() == cb::ErrorKind::unsupported);
    CHECK(no_application.error().message() == "SELECT patient application returned 6A82 (file not found)");

    const auto no_file = cb::cards::check_patient_select(file, cb::cards::StatusWord(0x6A82));
    REQUIRE_FALSE(no_file);
    CHECK(no_file.error().message() == "SELECT EF 2001 returned 6A82 (file not found)");
}

namespace {

cb::cards::ResponseApdu answer(Bytes data, std::uint16_t status) {
    return cb::cards::ResponseApdu{std::move(data), cb::cards::StatusWord(status)};
}

}  // namespace

TEST_CASE("IdentityFileReader reads one chunk when the file is short") {
    cb::cards::IdentityFileReader reader;
    CHECK(encoded(cb::cards::IdentityFileReader::first_command()) == "00B0000000");
    const Bytes content = identity_file({});
    const auto next = reader.on_response(answer(content, 0x9000));
    REQUIRE(next);
    CHECK_FALSE(next->has_value());
    CHECK(Bytes(reader.content().begin(), reader.content().end()) == content);
    REQUIRE(cb::cards::parse_patient_identity(reader.content()));
}

TEST_CASE("IdentityFileReader continues while chunks are full") {
    cb::cards::IdentityFileReader reader;
    auto next = reader.on_response(answer(Bytes(256, 0xFF), 0x9000));
    REQUIRE(next);
    REQUIRE(next->has_value());
    CHECK(encoded(**next) == "00B0010000");
    next = reader.on_response(answer(Bytes(10, 0xFF), 0x6282));
    REQUIRE(next);
    CHECK_FALSE(next->has_value());
    CHECK(reader.content().size() == 266);

    cb::cards::IdentityFileReader exact;
    REQUIRE(exact.on_response(answer(Bytes(256, 0x00), 0x9000)));
    next = exact.on_response(answer({}, 0x6B00));
    REQUIRE(next);
    CHECK_FALSE(next->has_value());
    CHECK(exact.content().size() == 256);
}

TEST_CASE("IdentityFileReader rejects card errors, oversized answers and endless files") {
    cb::cards::IdentityFileReader denied;
    const auto security = denied.on_response(answer({}, 0x6982));
    REQUIRE_FALSE(security);
    CHECK(security.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(security.error().message() ==
          "READ BINARY EF 2001 at offset 0 returned 6982 (security status not satisfied)");

    cb::cards::IdentityFileReader first_6b00;
    const auto outside = first_6b00.on_response(answer({}, 0x6B00));
    REQUIRE_FALSE(outside);
    CHECK(outside.error().message() ==
          "READ BINARY EF 2001 at offset 0 returned 6B00 (wrong parameters P1-P2 (offset outside the EF))");

    cb::cards::IdentityFileReader flooded;
    const auto too_big = flooded.on_response(answer(Bytes(300, 0x00), 0x9000));
    REQUIRE_FALSE(too_big);
    CHECK(too_big.error().kind() == cb::ErrorKind::invalid_input);
    CHECK(too_big.error().message() == "READ BINARY EF 2001 at offset 0 returned 300 bytes, asked 256");

    cb::cards::IdentityFileReader endless;
    for (std::size_t chunk = 0; chunk < 15; ++chunk) {
        const auto next = endless.on_response(answer(Bytes(256, 0x00), 0x9000));
        REQUIRE(next);
        REQUIRE(next->has_value());
    }
    const auto capped = endless.on_response(answer(Bytes(256, 0x00), 0x9000));
    REQUIRE_FALSE(capped);
    CHECK(capped.error().kind() == cb::ErrorKind::limit_exceeded);
    CHECK(capped.error().message() == "READ BINARY EF 2001: offset 4096 is past the 4096-byte cap");
}
