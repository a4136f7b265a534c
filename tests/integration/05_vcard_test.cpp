// 05 cards: the virtual card (tools/vcard) in the real pcscd through
// vsmartcard's vpcd driver, read by an independent PC/SC client: scriptor
// (pcsc-tools), which sends the APDU sequences of docs/cards.md.
//
// No sleeps: pcscd is ready when it logs "daemon ready." (socket activation,
// see tests/support/pcsc.hpp); a card is in the reader once pcscd logs its ATR.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "protocol/cards/patient_card.hpp"
#include "tests/support/pcsc.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"

using cb::test::description_value;
using cb::test::make_pki;
using cb::test::Pcscd;
using cb::test::pcscd_dir;
using cb::test::ScriptorResponse;
using cb::test::TempDir;
using cb::test::VirtualCardProcess;

namespace {

const std::string select_patient = "00A404000BD250000002564954414C45";
const std::string select_identity = "00A4020C022001";
const std::string read_binary_0 = "00B0000000";
const std::string select_practitioner = "00A404000DE828BD080F8025000001FF0010";
const std::string query_pin = "00200081";

std::string pin_block(const std::string& digits) {
    std::ostringstream out;
    for (const char digit : digits)
        out << std::hex << std::uppercase << static_cast<int>(digit);
    for (std::size_t at = digits.size(); at < 8; ++at)
        out << "FF";
    return out.str();
}

std::string other_pin(const std::string& pin) {
    std::string wrong = pin;
    wrong[0] = pin[0] == '0' ? '1' : '0';
    return wrong;
}

// A card in slot 0, inserted once pcscd has seen its ATR.
std::unique_ptr<VirtualCardProcess> insert_card(Pcscd& pcscd, const TempDir& dir, const std::filesystem::path& card,
                                                std::vector<std::string> extra = {}) {
    static int cards = 0;
    const auto mark = pcscd.log_mark();
    auto process = std::make_unique<VirtualCardProcess>(
        cb::test::VirtualCardSetup{.executable = VCARD_PATH,
                                   .description = card,
                                   .port = pcscd.vpcd_port(0),
                                   .extra = std::move(extra),
                                   .log = dir / ("vcard-" + std::to_string(++cards) + ".log")});
    INFO("pcscd: " << pcscd.log() << "\nvcard: " << process->log());
    REQUIRE(pcscd.wait_for_log("Card ATR: ", cb::test::pcsc_hang_limit, mark));
    return process;
}

std::vector<ScriptorResponse> run_script(Pcscd& pcscd, const std::vector<std::string>& apdus) {
    const auto result = pcscd.scriptor(Pcscd::reader_name(0), apdus);
    INFO("scriptor: " << result.output);
    REQUIRE(result.status.exited);
    REQUIRE(result.status.code == 0);
    auto responses = cb::test::parse_scriptor_output(result.output);
    REQUIRE(responses.size() == apdus.size());
    return responses;
}

}  // namespace

TEST_CASE("05 cards: scriptor reads the patient card's identity with the documented sequence") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    auto card = insert_card(pcscd, dir, pki / "cards" / "patient.card");

    const auto responses = run_script(pcscd, {select_patient, select_identity, read_binary_0});
    INFO("vcard: " << card->log());
    CHECK(responses[0].status == 0x9000);
    CHECK(responses[0].data.empty());
    CHECK(responses[1].status == 0x9000);
    CHECK(responses[1].data.empty());
    CHECK(responses[2].status == 0x9000);
    // EF 2001: 65 { 93 NIR, 80, 81, 82 } 66 { 80 }, under 256 bytes.
    REQUIRE(responses[2].data.size() < 256);
    CHECK(responses[2].data[0] == 0x65);
    auto identity = cb::cards::parse_patient_identity(responses[2].data);
    INFO((identity ? "" : identity.error().message()));
    REQUIRE(identity);
    const auto description = pki / "cards" / "patient.card";
    CHECK(identity->nir() + (identity->nir_key() < 10 ? "0" : "") + std::to_string(identity->nir_key()) ==
          description_value(description, "nir"));
    CHECK(identity->family_name() == description_value(description, "family_name"));
    CHECK(identity->first_name() == description_value(description, "first_name"));
    CHECK_THAT(card->log(), Catch::Contains("apdu INS B0 -> 9000"));
}

TEST_CASE("05 cards: scriptor runs the practitioner VERIFY sequence") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    const auto description = pki / "cards" / "practitioner.card";
    const auto pin = description_value(description, "pin");
    auto card = insert_card(pcscd, dir, description);

    const auto responses = run_script(pcscd, {select_practitioner, "0020008108" + pin_block(other_pin(pin)), query_pin,
                                              "0020008108" + pin_block(pin), query_pin,
                                              "008800000401020304"
                                              "00"});
    INFO("vcard: " << card->log());
    CHECK(responses[0].status == 0x9000);
    CHECK(responses[1].status == 0x63C2);  // wrong PIN, 2 tries left
    CHECK(responses[2].status == 0x63C2);  // query: not verified, 2 left
    CHECK(responses[3].status == 0x9000);  // good PIN
    CHECK(responses[4].status == 0x9000);  // query: verified
    CHECK(responses[5].status == 0x9000);  // INTERNAL AUTHENTICATE after VERIFY
    CHECK(responses[5].data.size() >= 8);  // an ECDSA DER signature
    // The PIN never reaches the card's log.
    CHECK_THAT(card->log(), !Catch::Contains(pin_block(pin)));
}

TEST_CASE("05 cards: a card with the blocked-pin fault answers 6983 to VERIFY") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    const auto description = pki / "cards" / "practitioner.card";
    const auto pin = description_value(description, "pin");
    auto card = insert_card(pcscd, dir, description, {"--fault", "blocked-pin"});

    const auto responses = run_script(pcscd, {select_practitioner, "0020008108" + pin_block(pin), query_pin,
                                              "008800000401020304"
                                              "00"});
    CHECK(responses[0].status == 0x9000);
    CHECK(responses[1].status == 0x6983);
    CHECK(responses[2].status == 0x6983);
    CHECK(responses[3].status == 0x6982);  // no INTERNAL AUTHENTICATE without VERIFY
}

TEST_CASE("05 cards: a malformed-tlv-overlong card returns an identity the parser rejects") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    auto card = insert_card(pcscd, dir, pki / "cards" / "patient.card", {"--fault", "malformed-tlv-overlong"});

    const auto responses = run_script(pcscd, {select_patient, select_identity, read_binary_0});
    CHECK(responses[2].status == 0x9000);
    auto identity = cb::cards::parse_patient_identity(responses[2].data);
    REQUIRE_FALSE(identity);
    CHECK_THAT(identity.error().message(), Catch::Contains("exceeds"));
}

TEST_CASE("05 cards: a card removed mid-sequence fails the transmission, and a new card is read") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    {
        auto card =
            insert_card(pcscd, dir, pki / "cards" / "patient.card", {"--fault", "remove-mid-sequence", "--after", "2"});
        const auto mark = pcscd.log_mark();
        const auto result = pcscd.scriptor(Pcscd::reader_name(0), {select_patient, select_identity, read_binary_0});
        INFO("scriptor: " << result.output << "\nvcard: " << card->log());
        // vpcd answers the third APDU with nothing; pcscd passes it on as an
        // empty response, which scriptor reports (and still exits 0).
        const auto responses = cb::test::parse_scriptor_output(result.output);
        REQUIRE(responses.size() == 2);
        CHECK(responses[1].status == 0x9000);
        CHECK_THAT(result.output, Catch::Contains("wrong SW size"));
        const auto status = card->process().wait_for_exit(cb::test::pcsc_hang_limit);
        REQUIRE(status);
        CHECK(status->code == 0);
        // pcscd polls vpcd for presence: a card inserted before it saw the
        // removal would be taken for the same card, not powered up again.
        REQUIRE(pcscd.wait_for_log("Card Removed From " + Pcscd::reader_name(0), cb::test::pcsc_hang_limit, mark));
    }
    auto card = insert_card(pcscd, dir, pki / "cards" / "patient.card");
    const auto responses = run_script(pcscd, {select_patient});
    CHECK(responses[0].status == 0x9000);
}

TEST_CASE("05 cards: pcscd restarted, the card is found again") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = dir.path()});
    auto card = insert_card(pcscd, dir, pki / "cards" / "patient.card");
    pcscd.restart();
    INFO("pcscd: " << pcscd.log() << "\nvcard: " << card->log());
    // The card reconnects to vpcd on its own (vpcd closed the connection).
    REQUIRE(pcscd.wait_for_log("Card ATR: "));
    const auto responses = run_script(pcscd, {select_patient});
    CHECK(responses[0].status == 0x9000);
}
