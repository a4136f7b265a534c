// tools/vcard: the card side of docs/cards.md, driven by the reader side's
// own command builders and parsers (protocol/cards), so both ends agree.
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <catch2/catch.hpp>
#include <optional>
#include <variant>

#include "protocol/cards/apdu.hpp"
#include "protocol/cards/patient_card.hpp"
#include "protocol/cards/practitioner_card.hpp"
#include "protocol/tlv.hpp"
#include "tools/vcard/description.hpp"
#include "tools/vcard/virtual_card.hpp"

using cb::cards::Bytes;
using cb::cards::CommandApdu;
using cb::vcard::CardContents;
using cb::vcard::Fault;
using cb::vcard::Profile;
using cb::vcard::VirtualCard;

namespace {

const cb::vcard::PatientFields patient_fields{"280017512345610", "DURAND", "CAMILLE", "19800115", "20240101"};

// Records challenges and answers a fixed signature.
class FakeSigner final : public cb::vcard::ChallengeSigner {
public:
    cb::Result<Bytes> sign(std::span<const std::uint8_t> challenge) override {
        challenges.emplace_back(challenge.begin(), challenge.end());
        return Bytes{0x30, 0x02, 0x01, 0x00};
    }
    std::vector<Bytes> challenges;
};

Bytes encode(const CommandApdu& command) {
    auto bytes = cb::cards::encode_command(command);
    REQUIRE(bytes);
    return *bytes;
}

cb::cards::ResponseApdu exchange(VirtualCard& card, const CommandApdu& command) {
    const Bytes response = card.respond(encode(command));
    auto parsed = cb::cards::parse_response(response);
    REQUIRE(parsed);
    return *parsed;
}

std::uint16_t sw(VirtualCard& card, std::span<const std::uint8_t> command) {
    const Bytes response = card.respond(command);
    REQUIRE(response.size() >= 2);
    return static_cast<std::uint16_t>((response[response.size() - 2] << 8) | response.back());
}

CardContents patient_contents() {
    CardContents contents;
    contents.profile = Profile::patient;
    auto identity = cb::vcard::build_identity_file(patient_fields);
    REQUIRE(identity);
    contents.identity_file = *identity;
    contents.certificate = Bytes(300, 0x42);
    return contents;
}

CardContents practitioner_contents() {
    CardContents contents;
    contents.profile = Profile::practitioner;
    contents.certificate = Bytes{0x30, 0x03, 0x02, 0x01, 0x07};
    contents.pin = "1234";
    return contents;
}

Bytes verify_bytes(const char* digits) {
    auto pin = cb::cards::Pin::from_digits(digits);
    REQUIRE(pin);
    const auto command = cb::cards::verify_pin_command(*pin);
    return Bytes(command.bytes().begin(), command.bytes().end());
}

// Reads EF 2001 the way the gateway does: SELECTs, then IdentityFileReader.
cb::Result<Bytes> read_identity(VirtualCard& card) {
    REQUIRE(exchange(card, cb::cards::select_patient_application()).status.is_success());
    REQUIRE(exchange(card, cb::cards::select_patient_identity_file()).status.is_success());
    cb::cards::IdentityFileReader reader;
    std::optional<CommandApdu> next = cb::cards::IdentityFileReader::first_command();
    while (next) {
        auto step = reader.on_response(exchange(card, *next));
        if (!step)
            return std::move(step).error();
        next.swap(*step);
    }
    return Bytes(reader.content().begin(), reader.content().end());
}

}  // namespace

TEST_CASE("vcard: the patient card answers the documented sequence and the identity parses") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer);
    auto content = read_identity(card);
    REQUIRE(content);
    auto identity = cb::cards::parse_patient_identity(*content);
    INFO((identity ? "" : identity.error().message()));
    REQUIRE(identity);
    CHECK(identity->nir() == "2800175123456");
    CHECK(identity->nir_key() == 10);
    CHECK(identity->family_name() == "DURAND");
    CHECK(identity->first_name() == "CAMILLE");
    CHECK(identity->birth_date() == cb::cards::CalendarDate{1980, 1, 15});
}

TEST_CASE("vcard: exact bytes of the patient APDU sequence") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer);
    CHECK(card.respond(Bytes{0x00, 0xA4, 0x04, 0x00, 0x0B, 0xD2, 0x50, 0x00, 0x00, 0x02, 0x56, 0x49, 0x54, 0x41, 0x4C,
                             0x45}) == Bytes{0x90, 0x00});
    CHECK(card.respond(Bytes{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x20, 0x01}) == Bytes{0x90, 0x00});
    const Bytes read = card.respond(Bytes{0x00, 0xB0, 0x00, 0x00, 0x00});
    REQUIRE(read.size() == 58 + 2);  // 65 2C (44 bytes) 66 0A (10 bytes)
    CHECK(read[0] == 0x65);
    CHECK(read[1] == 0x2C);
    CHECK(Bytes(read.end() - 2, read.end()) == Bytes{0x90, 0x00});
    // Past the end of the file.
    CHECK(sw(card, Bytes{0x00, 0xB0, 0x01, 0x00, 0x00}) == 0x6B00);
}

TEST_CASE("vcard: selection rules and malformed commands") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x20, 0x01}) == 0x6A82);  // no application yet
    CHECK(sw(card, Bytes{0x00, 0xB0, 0x00, 0x00, 0x00}) == 0x6986);              // no EF
    CHECK(sw(card, encode(cb::cards::select_practitioner_application())) == 0x6A82);
    CHECK(sw(card, encode(cb::cards::select_patient_application())) == 0x9000);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x02, 0x0C, 0x02, 0x99, 0x99}) == 0x6A82);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x02, 0x0C, 0x01, 0x20}) == 0x6700);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x08, 0x0C, 0x02, 0x20, 0x01}) == 0x6A86);
    CHECK(sw(card, Bytes{0x80, 0xB0, 0x00, 0x00, 0x00}) == 0x6E00);
    CHECK(sw(card, Bytes{0x00, 0xDA, 0x00, 0x00}) == 0x6D00);
    CHECK(sw(card, Bytes{0x00, 0xB0}) == 0x6700);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x02, 0x0C, 0x05, 0x20}) == 0x6700);  // Lc 5, 1 byte
    CHECK(sw(card, Bytes{0x00, 0x20, 0x00, 0x81}) == 0x6D00);              // no PIN on this profile
    CHECK(sw(card, Bytes{0x00, 0xC0, 0x00, 0x00, 0x10}) == 0x6985);        // nothing pending
}

TEST_CASE("vcard: the certificate file reads in 256-byte chunks") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer);
    CHECK(sw(card, encode(cb::cards::select_patient_application())) == 0x9000);
    CHECK(sw(card, Bytes{0x00, 0xA4, 0x02, 0x0C, 0x02, 0xC0, 0x00}) == 0x9000);
    CHECK(card.respond(Bytes{0x00, 0xB0, 0x00, 0x00, 0x00}).size() == 256 + 2);
    CHECK(card.respond(Bytes{0x00, 0xB0, 0x01, 0x00, 0x00}).size() == 44 + 2);
    CHECK(sw(card, Bytes{0x00, 0xB0, 0x01, 0x2C, 0x00}) == 0x6B00);
    CHECK(sw(card, Bytes{0x00, 0xB0, 0x80, 0x00, 0x00}) == 0x6A81);  // short EF id
}

TEST_CASE("vcard: patient INTERNAL AUTHENTICATE signs the challenge") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer);
    const Bytes challenge{1, 2, 3, 4, 5, 6, 7, 8};
    auto command = cb::cards::internal_authenticate_command(challenge);
    REQUIRE(command);
    CHECK(sw(card, encode(*command)) == 0x6985);  // no application selected
    CHECK(sw(card, encode(cb::cards::select_patient_application())) == 0x9000);
    const auto response = exchange(card, *command);
    CHECK(response.status.is_success());
    CHECK(response.data == Bytes{0x30, 0x02, 0x01, 0x00});
    REQUIRE(signer.challenges.size() == 1);
    CHECK(signer.challenges[0] == challenge);
}

TEST_CASE("vcard: practitioner VERIFY counts tries, blocks at 0, and a reset forgets the PIN") {
    FakeSigner signer;
    VirtualCard card(practitioner_contents(), signer);
    const Bytes query = encode(cb::cards::query_pin_command());
    auto challenge = cb::cards::internal_authenticate_command(Bytes{9, 9, 9});
    REQUIRE(challenge);

    CHECK(sw(card, encode(cb::cards::select_practitioner_application())) == 0x9000);
    CHECK(sw(card, query) == 0x63C3);
    CHECK(sw(card, encode(*challenge)) == 0x6982);  // not before VERIFY
    CHECK(sw(card, verify_bytes("9999")) == 0x63C2);
    CHECK(sw(card, query) == 0x63C2);
    CHECK(sw(card, verify_bytes("1234")) == 0x9000);
    CHECK(card.pin_tries() == 3);
    CHECK(sw(card, query) == 0x9000);
    CHECK(sw(card, encode(*challenge)) == 0x9000);

    card.reset();
    CHECK(sw(card, encode(cb::cards::select_practitioner_application())) == 0x9000);
    CHECK(sw(card, query) == 0x63C3);
    CHECK(sw(card, encode(*challenge)) == 0x6982);

    CHECK(sw(card, verify_bytes("0000")) == 0x63C2);
    CHECK(sw(card, verify_bytes("0000")) == 0x63C1);
    CHECK(sw(card, verify_bytes("0000")) == 0x63C0);
    CHECK(sw(card, verify_bytes("1234")) == 0x6983);  // blocked, even with the right PIN
    CHECK(sw(card, query) == 0x6983);
    const auto status = cb::cards::interpret_pin_query(cb::cards::StatusWord(0x6983));
    CHECK(status.state == cb::cards::PinState::blocked);

    CHECK(sw(card, Bytes{0x00, 0x20, 0x00, 0x82}) == 0x6A88);
    CHECK(sw(card, Bytes{0x00, 0x20, 0x00, 0x81, 0x02, 0x31, 0x32}) == 0x6700);
}

TEST_CASE("vcard: fault blocked-pin starts with 0 tries") {
    FakeSigner signer;
    VirtualCard card(practitioner_contents(), signer, Fault::blocked_pin);
    CHECK(sw(card, encode(cb::cards::select_practitioner_application())) == 0x9000);
    CHECK(sw(card, verify_bytes("1234")) == 0x6983);
    CHECK(sw(card, encode(cb::cards::query_pin_command())) == 0x6983);
}

TEST_CASE("vcard: malformed-tlv faults make the identity unparsable, each for its reason") {
    const struct {
        Fault fault;
        const char* expected;
    } cases[] = {
        {Fault::malformed_tlv_overlong, "exceeds"},
        {Fault::malformed_tlv_truncated, ""},
        {Fault::malformed_tlv_deep, "nesting depth"},
    };
    for (const auto& test : cases) {
        INFO(cb::vcard::to_string(test.fault));
        FakeSigner signer;
        VirtualCard card(patient_contents(), signer, test.fault);
        auto content = read_identity(card);
        REQUIRE(content);
        auto identity = cb::cards::parse_patient_identity(*content);
        REQUIRE_FALSE(identity);
        CHECK_THAT(identity.error().message(), Catch::Contains(test.expected));
    }
}

TEST_CASE("vcard: endless-61xx makes the reader's planner give up") {
    FakeSigner signer;
    VirtualCard card(patient_contents(), signer, Fault::endless_61xx);
    REQUIRE(exchange(card, cb::cards::select_patient_application()).status.is_success());
    REQUIRE(exchange(card, cb::cards::select_patient_identity_file()).status.is_success());
    const auto first = cb::cards::IdentityFileReader::first_command();
    cb::cards::ResponsePlanner planner(first);
    auto response = exchange(card, first);
    for (int round = 0; round < 100; ++round) {
        auto step = planner.next(response);
        if (!step) {
            CHECK(step.error().kind() == cb::ErrorKind::limit_exceeded);
            CHECK(planner.get_response_rounds() == cb::cards::ResponsePlanner::max_get_response_rounds);
            return;
        }
        auto* send = std::get_if<cb::cards::SendCommand>(&*step);
        REQUIRE(send != nullptr);
        CHECK(send->command.ins == 0xC0);
        response = exchange(card, send->command);
    }
    FAIL("the planner never gave up");
}

TEST_CASE("vcard: parse_command reads short and extended forms") {
    auto case4 = cb::vcard::parse_command(Bytes{0x00, 0x88, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0x00});
    REQUIRE(case4);
    CHECK(case4->data == Bytes{0xAA, 0xBB});
    CHECK(case4->expected == 256);
    CommandApdu extended{0x00, 0xB0, 0x00, 0x00, Bytes(300, 0x11), 1000};
    auto parsed = cb::vcard::parse_command(encode(extended));
    REQUIRE(parsed);
    CHECK(*parsed == extended);
    auto case2e = cb::vcard::parse_command(Bytes{0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00});
    REQUIRE(case2e);
    CHECK(case2e->expected == 65536);
    CHECK_FALSE(cb::vcard::parse_command(Bytes{0x00, 0xB0, 0x00}));
    CHECK_FALSE(cb::vcard::parse_command(Bytes{0x00, 0xB0, 0x00, 0x00, 0x03, 0x01}));
}

TEST_CASE("vcard: KeySigner signs with SHA-256 verifiably") {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    REQUIRE(EVP_PKEY_up_ref(key) == 1);
    cb::vcard::KeySigner signer(key);
    const Bytes challenge{1, 2, 3};
    auto signature = signer.sign(challenge);
    REQUIRE(signature);
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestVerifyInit(context, nullptr, EVP_sha256(), nullptr, key) == 1);
    CHECK(EVP_DigestVerify(context, signature->data(), signature->size(), challenge.data(), challenge.size()) == 1);
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
}

TEST_CASE("vcard: the ATR is well formed") {
    const Bytes atr = VirtualCard::answer_to_reset();
    std::uint8_t check = 0;
    for (std::size_t at = 1; at < atr.size(); ++at)
        check = static_cast<std::uint8_t>(check ^ atr[at]);
    CHECK(atr[0] == 0x3B);
    CHECK(check == 0);  // TCK makes the XOR of T0..TCK zero
}

TEST_CASE("vcard: description files") {
    const std::string patient =
        "# comment\nprofile = patient\ncertificate = patient.crt\nkey = /abs/patient.key\n"
        "nir = 280017512345610\nfamily_name = DURAND\nfirst_name = CAMILLE\n"
        "birth_date = 19800115\nvalidity_start = 20240101\n";
    auto description = cb::vcard::parse_description(patient, "p.card", "/base");
    REQUIRE(description);
    CHECK(description->profile == Profile::patient);
    CHECK(description->certificate == "/base/patient.crt");
    CHECK(description->key == "/abs/patient.key");
    CHECK(description->patient.first_name == "CAMILLE");

    const std::string practitioner = "profile = practitioner\ncertificate = c\nkey = k\npin = 4321\ntries = 1\n";
    auto second = cb::vcard::parse_description(practitioner, "d.card", "/b");
    REQUIRE(second);
    CHECK(second->tries == 1);

    const struct {
        std::string text;
        std::string message;
    } bad[] = {
        {"profile = robot\n", "d.card:1: profile: expected patient or practitioner"},
        {"profile = practitioner\npin = 12a4\n", "d.card:2: pin: expected 4 to 8 digits"},
        {"colour = blue\n", "d.card:1: unknown key 'colour'"},
        {"profile = practitioner\ncertificate = c\nkey = k\n", "d.card: missing key 'pin'"},
        {"pin\n", "d.card:1: expected 'key = value'"},
        {"tries = 1\ntries = 2\n", "d.card:2: tries: given twice"},
    };
    for (const auto& test : bad) {
        auto result = cb::vcard::parse_description(test.text, "d.card", "/b");
        REQUIRE_FALSE(result);
        CHECK(result.error().message() == test.message);
    }
}

TEST_CASE("vcard: fault names round-trip") {
    for (const char* name :
         {"remove-mid-sequence", "slow", "malformed-tlv-overlong", "malformed-tlv-truncated", "malformed-tlv-deep",
          "endless-61xx", "wrong-certificate", "wrong-signature", "blocked-pin"}) {
        auto fault = cb::vcard::parse_fault(name);
        REQUIRE(fault);
        CHECK(std::string(cb::vcard::to_string(*fault)) == name);
    }
    CHECK_FALSE(cb::vcard::parse_fault("melt"));
}
