// 08 card sessions: daemon/card_sessions (CardSessions + ReaderMonitor over
// LibPcscApi) in-process against the real pcscd with vpcd and
// carebridge-vcard, and carebridged with [cards] enabled logging a patient's
// presence (masked).
//
// The sessions run in-process because nothing can submit a PIN to
// carebridged yet (no local API). libpcsclite reads PCSCLITE_CSOCK_NAME once
// per process, so every pcscd of this executable uses one socket path;
// carebridged inherits it.
//
// No sleeps: the io_context runs on the test's thread until the expected
// event is published (bounded by pcsc_hang_limit); carebridged's log is
// awaited with inotify (wait_for_file_text).
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>

#include "daemon/card_sessions.hpp"
#include "drivers/pcsc/libpcsclite_api.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/pcsc.hpp"
#include "tests/support/temp_dir.hpp"

using cb::CardEvent;
using cb::SessionState;
using cb::pcsc::CardFailure;
using cb::pcsc::LastTry;
using cb::test::description_value;
using cb::test::make_pki;
using cb::test::Pcscd;
using cb::test::pcscd_dir;
using cb::test::TempDir;
using cb::test::VirtualCardProcess;

namespace {

const std::string reader0 = Pcscd::reader_name(0);

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++count;
    return count;
}

template <typename T>
std::size_t count_events(const std::vector<CardEvent>& events) {
    std::size_t count = 0;
    for (const auto& event : events)
        count += std::holds_alternative<T>(event) ? 1U : 0U;
    return count;
}

cb::CardTrust trust_of(const std::filesystem::path& pki) {
    auto insurer = cb::load_ca_certificate(pki / "insurer-ca.crt", "insurer");
    auto igc_sante = cb::load_ca_certificate(pki / "igc-sante-ca.crt", "igc-sante");
    REQUIRE(insurer);
    REQUIRE(igc_sante);
    return {*insurer, *igc_sante};
}

// pcscd, the monitor and the sessions on it, and a PKI.
struct Bench {
    TempDir dir;
    std::filesystem::path pki;
    Pcscd pcscd;
    cb::pcsc::LibPcscApi api;
    cb::pcsc::SteadyBackoffTimer backoff;
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(io);
    cb::AsioSessionTimers timers{io};
    cb::CardEventBus bus;
    std::vector<CardEvent> events;
    std::optional<cb::CardSessions> sessions;
    std::optional<cb::pcsc::ReaderMonitor> monitor;
    int cards = 0;

    Bench() : pki(make_pki(dir.path())), pcscd({.work_dir = pcscd_dir()}) {
        bus.subscribe([this](const CardEvent& event) { events.push_back(event); });
        sessions.emplace(io, api, bus, timers, trust_of(pki), cb::CardSessionsOptions{});
        monitor.emplace(api, backoff, sessions->monitor_callback());
        monitor->start();
    }
    ~Bench() {
        monitor->stop();
        sessions->stop();
    }

    std::string text() const {
        std::string out;
        for (const auto& event : events)
            out += cb::describe_for_log(event) + "\n";
        return out;
    }

    bool run_until(const std::function<bool()>& done) {
        const auto limit = std::chrono::steady_clock::now() + cb::test::pcsc_hang_limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > limit)
                return false;
            io.run_one_for(std::chrono::milliseconds(100));
        }
        return true;
    }

    template <typename T>
    T wait_for(std::size_t nth = 1) {
        INFO("events:\n" << text());
        REQUIRE(run_until([&] { return count_events<T>(events) >= nth; }));
        std::size_t seen = 0;
        for (const auto& event : events)
            if (const auto* found = std::get_if<T>(&event); found != nullptr && ++seen == nth)
                return *found;
        throw std::logic_error("unreachable");
    }

    std::unique_ptr<VirtualCardProcess> insert(const std::string& card, std::vector<std::string> extra = {}) {
        return std::make_unique<VirtualCardProcess>(
            cb::test::VirtualCardSetup{.executable = VCARD_PATH,
                                       .description = pki / "cards" / card,
                                       .port = pcscd.vpcd_port(0),
                                       .extra = std::move(extra),
                                       .log = dir / ("vcard-" + std::to_string(++cards) + ".log")});
    }

    cb::pcsc::CardResult<cb::pcsc::Done> submit(const std::string& digits, LastTry last_try = LastTry::refuse) {
        auto pin = cb::cards::Pin::from_digits(digits);
        REQUIRE(pin);
        std::optional<cb::pcsc::CardResult<cb::pcsc::Done>> outcome;
        sessions->submit_pin(reader0, std::move(pin).value(), last_try,
                             [&](const cb::pcsc::CardResult<cb::pcsc::Done>& result) { outcome = result; });
        REQUIRE(run_until([&] { return outcome.has_value(); }));
        return *outcome;
    }
};

std::string wrong(const std::string& pin) {
    std::string other = pin;
    other[0] = pin[0] == '0' ? '1' : '0';
    return other;
}

}  // namespace

TEST_CASE("08 card sessions: a patient card is present with its verified identity, then leaves") {
    Bench bench;
    auto card = bench.insert("patient.card");
    const auto present = bench.wait_for<cb::PatientPresent>();
    const auto description = bench.pki / "cards" / "patient.card";
    CHECK(present.reader == reader0);
    CHECK(present.identity.family_name() == description_value(description, "family_name"));
    CHECK(present.identity.first_name() == description_value(description, "first_name"));
    CHECK(present.apdus == count_of(card->log(), "apdu INS"));
    CHECK(bench.sessions->patient_at(reader0) == description_value(description, "nir"));
    CHECK(bench.sessions->state(reader0) == SessionState::patient_present);

    card->stop();
    bench.wait_for<cb::PatientLeft>();
    CHECK_FALSE(bench.sessions->patient_at(reader0));
    CHECK(bench.sessions->state(reader0) == SessionState::empty);
}

TEST_CASE(
    "08 card sessions: practitioner awaiting PIN, wrong PIN reports tries, good PIN authenticates, removal ends") {
    Bench bench;
    const auto pin = description_value(bench.pki / "cards" / "practitioner.card", "pin");
    auto card = bench.insert("practitioner.card");
    CHECK(bench.wait_for<cb::PractitionerAwaitingPin>().tries_left == 3U);
    CHECK(count_of(card->log(), "apdu INS 20") == 1);  // the query: no PIN sent on its own

    auto refused = bench.submit(wrong(pin));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().failure == CardFailure::wrong_pin);
    CHECK(refused.error().tries_left == 2U);
    CHECK(bench.wait_for<cb::PinRejected>().tries_left == 2U);
    CHECK(bench.wait_for<cb::PractitionerAwaitingPin>(2).tries_left == 2U);
    CHECK(count_of(card->log(), "apdu INS 20") == 3);  // + query and one VERIFY: never retried

    auto accepted = bench.submit(pin);
    INFO("vcard: " << card->log() << (accepted ? "" : accepted.error().message));
    REQUIRE(accepted);
    const auto authenticated = bench.wait_for<cb::PractitionerAuthenticated>();
    CHECK(authenticated.identity.family_name() == "Martin");
    CHECK(authenticated.identity.profession_code() == "10");
    CHECK(count_of(card->log(), "apdu INS 88 -> 9000") == 1);
    CHECK(bench.sessions->state(reader0) == SessionState::practitioner_authenticated);

    // Activity: the card is asked whether it still holds the PIN; it does, nothing ends.
    bench.sessions->practitioner_activity(reader0);
    REQUIRE(
        card->wait_for_log("apdu INS 88 -> 9000\ncarebridge-vcard: apdu INS A4 -> 9000\n"
                           "carebridge-vcard: apdu INS 20 -> 9000"));
    card->stop();
    const auto ended = bench.wait_for<cb::PractitionerEnded>();
    CHECK(ended.reason == cb::SessionEnd::card_removed);
    CHECK(count_events<cb::PractitionerEnded>(bench.events) == 1);
    CHECK(bench.sessions->state(reader0) == SessionState::empty);
}

TEST_CASE("08 card sessions: a card removed mid-identification leaves the reader usable") {
    Bench bench;
    auto card = bench.insert("patient.card", {"--fault", "remove-mid-sequence", "--after", "3"});
    // Our identification is under way once the card is seen: the 4th APDU pulls the card.
    bench.run_until([&] { return !card->process().running(); });
    INFO("events:\n" << bench.text() << "vcard: " << card->log());
    REQUIRE(card->process().wait_for_exit(cb::test::pcsc_hang_limit));
    INFO("events:\n" << bench.text());
    REQUIRE(bench.run_until([&] { return bench.sessions->state(reader0) == SessionState::empty; }));
    CHECK(count_events<cb::PatientPresent>(bench.events) == 0);
    card = bench.insert("patient.card");
    bench.wait_for<cb::PatientPresent>();
    CHECK(bench.sessions->patient_at(reader0));
}

TEST_CASE("08 card sessions: carebridged with [cards] enabled logs the patient's presence, masked") {
    TempDir dir;
    const auto pki = make_pki(dir.path());
    Pcscd pcscd({.work_dir = pcscd_dir()});
    const auto config = dir / "carebridged.toml";
    std::ofstream(config) << "[daemon]\nstate_dir = \"" << (dir / "state").string()
                          << "\"\nlog_level = \"info\"\n[cards]\nenabled = true\ninsurer_ca_file = \""
                          << (pki / "insurer-ca.crt").string() << "\"\nigc_sante_ca_file = \""
                          << (pki / "igc-sante-ca.crt").string() << "\"\n";
    const auto log = dir / "carebridged.log";
    cb::test::Process daemon({CAREBRIDGED_PATH, "--config", config.string()}, dir / "carebridged.out", log,
                             pcscd.client_environment());
    REQUIRE(cb::test::wait_for_file_text(log, "reader added: \"" + reader0 + "\"", cb::test::pcsc_hang_limit, 0,
                                         daemon.pid()));

    VirtualCardProcess card({.executable = VCARD_PATH,
                             .description = pki / "cards" / "patient.card",
                             .port = pcscd.vpcd_port(0),
                             .extra = {},
                             .log = dir / "vcard.log"});
    const auto nir = description_value(pki / "cards" / "patient.card", "nir");
    const std::string line =
        "<6>cards: patient card in \"" + reader0 + "\": present, NIR " + nir.substr(0, 5) + "\u2026";
    INFO(cb::test::read_file(log));
    REQUIRE(cb::test::wait_for_file_text(log, line, cb::test::pcsc_hang_limit, 0, daemon.pid()));
    card.stop();
    REQUIRE(cb::test::wait_for_file_text(log, "patient card in \"" + reader0 + "\": left", cb::test::pcsc_hang_limit, 0,
                                         daemon.pid()));

    daemon.signal(SIGTERM);
    const auto status = daemon.wait_for_exit(cb::test::pcsc_hang_limit);
    REQUIRE(status);
    CHECK(status->code == 0);
    const std::string text = cb::test::read_file(log);
    CHECK_THAT(text, !Catch::Contains(nir.substr(0, 6)));
    CHECK_THAT(text, !Catch::Contains(description_value(pki / "cards" / "patient.card", "family_name")));
    CHECK_THAT(text, !Catch::Contains(description_value(pki / "cards" / "patient.card", "first_name")));
}
