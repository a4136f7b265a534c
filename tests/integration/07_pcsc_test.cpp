// 07 PC/SC driver: drivers/pcsc (LibPcscApi, ReaderMonitor, CardChannel,
// card operations) against the real pcscd with vpcd and carebridge-vcard.
//
// libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so every pcscd of
// this executable uses one socket path (a directory made for the process);
// CTest runs each case in its own process anyway.
//
// No sleeps: events from the monitor are awaited on a condition variable
// with a bound (pcsc_hang_limit); pcscd readiness as in tests/support/pcsc.hpp.
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <mutex>

#include "drivers/pcsc/card_operations.hpp"
#include "drivers/pcsc/libpcsclite_api.hpp"
#include "drivers/pcsc/reader_monitor.hpp"
#include "tests/support/pcsc.hpp"
#include "tests/support/temp_dir.hpp"

using cb::pcsc::CardFailure;
using cb::pcsc::ReaderEvent;
using cb::pcsc::ReaderEventKind;
using cb::test::description_value;
using cb::test::make_pki;
using cb::test::Pcscd;
using cb::test::pcscd_dir;
using cb::test::TempDir;
using cb::test::VirtualCardProcess;

namespace {

const std::string reader0 = Pcscd::reader_name(0);

cb::cards::Bytes der_of_pem(const std::filesystem::path& path) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
    REQUIRE(bio);
    std::unique_ptr<X509, decltype(&X509_free)> certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                            &X509_free);
    REQUIRE(certificate);
    const int size = i2d_X509(certificate.get(), nullptr);
    REQUIRE(size > 0);
    cb::cards::Bytes der(static_cast<std::size_t>(size));
    unsigned char* out = der.data();
    i2d_X509(certificate.get(), &out);
    return der;
}

const cb::cards::Bytes challenge{0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE, 0x01, 0x23, 0x45, 0x67,
                                 0x89, 0xAB, 0xCD, 0xEF, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

std::int64_t now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// The monitor's events, awaited with a bound.
class EventLog {
public:
    void push(const ReaderEvent& event) {
        std::lock_guard lock(m_mutex);
        m_events.push_back(event);
        m_changed.notify_all();
    }
    // True once an event after the first `from` matches; `from` then points past it.
    bool wait_for(ReaderEventKind kind, std::size_t& from, const std::string& reader = {}) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, cb::test::pcsc_hang_limit, [&] {
            for (; from < m_events.size(); ++from)
                if (m_events[from].kind == kind && (reader.empty() || m_events[from].reader == reader)) {
                    ++from;
                    return true;
                }
            return false;
        });
    }
    std::string text() {
        std::lock_guard lock(m_mutex);
        std::string out;
        for (const auto& event : m_events)
            out += std::string(cb::pcsc::to_string(event.kind)) + " " + event.reader + " " + event.detail + "\n";
        return out;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<ReaderEvent> m_events;
};

// pcscd, the monitor on it, and a PKI.
struct Bench {
    TempDir dir;
    std::filesystem::path pki;
    Pcscd pcscd;
    cb::pcsc::LibPcscApi api;
    cb::pcsc::SteadyBackoffTimer timer;
    EventLog events;
    cb::pcsc::ReaderMonitor monitor;
    std::size_t seen = 0;  // events consumed by the test
    int cards = 0;

    Bench()
        : pki(make_pki(dir.path())),
          pcscd({.work_dir = pcscd_dir()}),
          monitor(api, timer, [this](const ReaderEvent& event) { events.push(event); },
                  {.backoff = {.initial = std::chrono::milliseconds{50},
                               .maximum = std::chrono::milliseconds{1000},
                               .jitter = 0.5},
                   .seed = 7}) {
        monitor.start();
    }

    std::unique_ptr<VirtualCardProcess> insert(const std::string& card, std::vector<std::string> extra = {}) {
        auto process = std::make_unique<VirtualCardProcess>(
            cb::test::VirtualCardSetup{.executable = VCARD_PATH,
                                       .description = pki / "cards" / card,
                                       .port = pcscd.vpcd_port(0),
                                       .extra = std::move(extra),
                                       .log = dir / ("vcard-" + std::to_string(++cards) + ".log")});
        INFO("events:\n" << events.text() << "pcscd: " << pcscd.log());
        REQUIRE(events.wait_for(ReaderEventKind::card_inserted, seen, reader0));
        return process;
    }

    void remove(std::unique_ptr<VirtualCardProcess>& card) {
        card->stop();
        card.reset();
        INFO("events:\n" << events.text());
        REQUIRE(events.wait_for(ReaderEventKind::card_removed, seen, reader0));
    }

    cb::pcsc::CardResult<cb::pcsc::PatientReading> read_patient() {
        auto context = cb::pcsc::PcscContext::establish(api);
        REQUIRE(context);
        auto channel = cb::pcsc::CardChannel::connect(*context, reader0);
        if (!channel)
            return std::move(channel).error();
        const auto ca = der_of_pem(pki / "insurer-ca.crt");
        return cb::pcsc::read_patient(*channel,
                                      {.challenge = challenge, .insurer_ca_der = ca, .verification_time = now()});
    }

    cb::pcsc::CardResult<cb::pcsc::PractitionerAuthentication> authenticate(const std::string& digits) {
        auto pin = cb::cards::Pin::from_digits(digits);
        REQUIRE(pin);
        auto context = cb::pcsc::PcscContext::establish(api);
        REQUIRE(context);
        auto channel = cb::pcsc::CardChannel::connect(*context, reader0);
        if (!channel)
            return std::move(channel).error();
        const auto ca = der_of_pem(pki / "igc-sante-ca.crt");
        return cb::pcsc::authenticate_practitioner(
            *channel, {.pin = &*pin, .challenge = challenge, .igc_sante_ca_der = ca, .verification_time = now()});
    }
};

std::string wrong(const std::string& pin) {
    std::string other = pin;
    other[0] = pin[0] == '0' ? '1' : '0';
    return other;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

}  // namespace

TEST_CASE("07 pcsc: the monitor sees the reader, the patient card is read and its key verified") {
    Bench bench;
    std::size_t from = 0;
    REQUIRE(bench.events.wait_for(ReaderEventKind::reader_added, from, reader0));
    auto card = bench.insert("patient.card");

    auto reading = bench.read_patient();
    INFO("vcard: " << card->log() << (reading ? "" : reading.error().message));
    REQUIRE(reading);
    const auto description = bench.pki / "cards" / "patient.card";
    CHECK(reading->identity.family_name() == description_value(description, "family_name"));
    CHECK(reading->identity.first_name() == description_value(description, "first_name"));
    CHECK(description_value(description, "nir").rfind(reading->identity.nir(), 0) == 0);
    // SELECT x2, READ BINARY, SELECT EF C000, READ BINARY (certificate), INTERNAL AUTHENTICATE.
    CHECK(reading->apdus >= 6);
    CHECK(reading->apdus == count_of(card->log(), "apdu INS"));
    bench.remove(card);
}

TEST_CASE("07 pcsc: practitioner good PIN authenticates, a wrong PIN reports tries and is not retried") {
    Bench bench;
    const auto pin = description_value(bench.pki / "cards" / "practitioner.card", "pin");
    auto card = bench.insert("practitioner.card");

    auto refused = bench.authenticate(wrong(pin));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().failure == CardFailure::wrong_pin);
    CHECK(refused.error().tries_left == 2U);
    CHECK(refused.error().message == "card in \"" + reader0 + "\": wrong PIN, 2 tries left");
    CHECK_THAT(refused.error().message, !Catch::Contains(pin));
    // One query and one VERIFY with a PIN: never a second one.
    CHECK(count_of(card->log(), "apdu INS 20") == 2);
    CHECK(count_of(card->log(), "apdu INS 88") == 0);

    auto authenticated = bench.authenticate(pin);
    INFO("vcard: " << card->log() << (authenticated ? "" : authenticated.error().message));
    REQUIRE(authenticated);
    CHECK(authenticated->identity.family_name() == "Martin");
    CHECK(authenticated->identity.idnps().size() == 12);
    CHECK(authenticated->identity.profession_code() == "10");
    CHECK_FALSE(authenticated->pinpad_used);  // vpcd has no PIN pad
    CHECK(count_of(card->log(), "apdu INS 88 -> 9000") == 1);

    // Two wrong PINs leave one try: not sent without the caller's confirmation.
    REQUIRE_FALSE(bench.authenticate(wrong(pin)));
    auto second = bench.authenticate(wrong(pin));
    REQUIRE_FALSE(second);
    CHECK(second.error().tries_left == 1U);
    const auto verifies = count_of(card->log(), "apdu INS 20");
    auto last = bench.authenticate(wrong(pin));
    REQUIRE_FALSE(last);
    CHECK(last.error().failure == CardFailure::pin_last_try);
    CHECK(last.error().tries_left == 1U);
    CHECK(count_of(card->log(), "apdu INS 20") == verifies + 1);  // the query only
}

TEST_CASE("07 pcsc: a card removed mid-read gives a clean error, and the reader works afterwards") {
    Bench bench;
    auto card = bench.insert("patient.card", {"--fault", "remove-mid-sequence", "--after", "3"});
    auto reading = bench.read_patient();
    INFO("events:\n" << bench.events.text() << "vcard: " << card->log());
    REQUIRE_FALSE(reading);
    CHECK((reading.error().failure == CardFailure::card_removed ||
           reading.error().failure == CardFailure::invalid_card ||
           reading.error().failure == CardFailure::reader_error));
    CHECK_THAT(reading.error().message, Catch::Contains("card in \"" + reader0 + "\""));
    REQUIRE(card->process().wait_for_exit(cb::test::pcsc_hang_limit));
    REQUIRE(bench.events.wait_for(ReaderEventKind::card_removed, bench.seen, reader0));

    card = bench.insert("patient.card");
    auto again = bench.read_patient();
    INFO((again ? "" : again.error().message));
    CHECK(again);
}

TEST_CASE("07 pcsc: pcscd killed and restarted, the monitor recovers and sees the next insertion") {
    Bench bench;
    auto card = bench.insert("patient.card");
    bench.pcscd.kill();
    INFO("events:\n" << bench.events.text());
    REQUIRE(bench.events.wait_for(ReaderEventKind::service_lost, bench.seen));
    bench.pcscd.restart();
    REQUIRE(bench.events.wait_for(ReaderEventKind::service_restored, bench.seen));
    REQUIRE(bench.events.wait_for(ReaderEventKind::reader_added, bench.seen, reader0));
    // The card reconnects to the new vpcd by itself; then a removal and a new insertion.
    REQUIRE(bench.events.wait_for(ReaderEventKind::card_inserted, bench.seen, reader0));
    bench.remove(card);
    card = bench.insert("patient.card");
    auto reading = bench.read_patient();
    INFO((reading ? "" : reading.error().message));
    CHECK(reading);
}

TEST_CASE("07 pcsc: every fault mode of the virtual card gives a clear error, without a hang") {
    Bench bench;
    struct Case {
        std::string card;
        std::string fault;
        CardFailure failure;
        std::string message;
    };
    const std::vector<Case> cases{
        {"patient.card", "malformed-tlv-overlong", CardFailure::invalid_card, "patient identity"},
        {"patient.card", "malformed-tlv-truncated", CardFailure::invalid_card, "patient identity"},
        {"patient.card", "malformed-tlv-deep", CardFailure::invalid_card, "patient identity"},
        {"patient.card", "endless-61xx", CardFailure::invalid_card, "more than 32 rounds"},
        {"patient.card", "wrong-certificate", CardFailure::invalid_card, "card certificate"},
        {"patient.card", "wrong-signature", CardFailure::invalid_card, "card signature"},
        {"practitioner.card", "wrong-certificate", CardFailure::invalid_card, "card certificate"},
        {"practitioner.card", "blocked-pin", CardFailure::pin_blocked, "PIN blocked"},
    };
    const auto pin = description_value(bench.pki / "cards" / "practitioner.card", "pin");
    for (const auto& test : cases) {
        INFO(test.card << " --fault " << test.fault);
        auto card = bench.insert(test.card, {"--fault", test.fault});
        const auto error = [&]() -> std::optional<cb::pcsc::CardError> {
            if (test.card == "patient.card") {
                auto reading = bench.read_patient();
                return reading ? std::nullopt : std::optional(reading.error());
            }
            auto authenticated = bench.authenticate(pin);
            return authenticated ? std::nullopt : std::optional(authenticated.error());
        }();
        REQUIRE(error);
        INFO(error->message);
        CHECK(error->failure == test.failure);
        CHECK_THAT(error->message, Catch::Contains(test.message));
        bench.remove(card);
    }

    // slow answers: slower, but read.
    auto slow = bench.insert("patient.card", {"--fault", "slow", "--delay-ms", "20"});
    auto reading = bench.read_patient();
    INFO((reading ? "" : reading.error().message));
    CHECK(reading);
}
