// Card sessions over the fake pcscd (tests/unit/drivers/pcsc_fake.*), with
// tools/vcard's card emulator answering the APDUs and in-process test
// certificates: every transition of daemon/card_sessions.hpp's table, the
// PIN rules, the idle timeout (fired by the test), reset and removal.
//
// The io_context runs on the test's thread; card I/O runs on the sessions'
// worker threads and is awaited by running the io_context until an expected
// event has been published (bounded by a hang limit, never a sleep).
#include "daemon/card_sessions.hpp"

#include <catch2/catch.hpp>
#include <condition_variable>
#include <fstream>
#include <mutex>

#include "daemon/config.hpp"
#include "daemon/log.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_keys.hpp"
#include "tests/unit/drivers/pcsc_fake.hpp"
#include "tools/vcard/virtual_card.hpp"

using cb::CardEvent;
using cb::SessionState;
using cb::cards::Bytes;
using cb::pcsc::CardFailure;
using cb::pcsc::LastTry;
using cb::pcsc::ReaderEvent;
using cb::pcsc::ReaderEventKind;
using cb::test::FakePcscApi;
using cb::test::FakeReply;

namespace {

const std::string reader = "Virtual PCD 00 00";
const std::string pin_digits = "4821";
constexpr std::int64_t verification_time = 1767225600;  // 2026-01-01; test certificates: 2020..2040
const cb::vcard::PatientFields patient_fields{"280017512345610", "DURAND", "CAMILLE", "19800115", "20240101"};

// A practitioner certificate: the subject of docs/cards.md's practitioner profile.
cb::test::TestCertificate practitioner_certificate(const cb::test::TestCertificate& ca) {
    cb::test::TestCertificate out;
    out.key = cb::test::make_test_key(cb::test::TestKeyType::ec_p256);
    X509* certificate = X509_new();
    X509_set_version(certificate, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 7);
    ASN1_TIME_set_string(X509_getm_notBefore(certificate), "20200101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(certificate), "20400101000000Z");
    X509_set_pubkey(certificate, out.key.get());
    X509_NAME* name = X509_get_subject_name(certificate);
    const std::vector<std::pair<std::string, std::string>> subject{{"CN", "DR JEANNE MARTIN"},
                                                                   {"GN", "Jeanne"},
                                                                   {"SN", "Martin"},
                                                                   {"serialNumber", "810001234565"},
                                                                   {"title", "10"}};
    for (const auto& [field, value] : subject)
        X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
    const unsigned char* cursor = ca.der.data();
    X509* issuer = d2i_X509(nullptr, &cursor, static_cast<long>(ca.der.size()));
    REQUIRE(issuer != nullptr);
    X509_set_issuer_name(certificate, X509_get_subject_name(issuer));
    cb::test::detail::add_extension(certificate, issuer, NID_basic_constraints, "critical,CA:FALSE");
    cb::test::detail::add_extension(certificate, issuer, NID_key_usage, "critical,digitalSignature");
    REQUIRE(X509_sign(certificate, ca.key.get(), EVP_sha256()) > 0);
    const int length = i2d_X509(certificate, nullptr);
    out.der.resize(static_cast<std::size_t>(length));
    unsigned char* out_cursor = out.der.data();
    i2d_X509(certificate, &out_cursor);
    X509_free(issuer);
    X509_free(certificate);
    return out;
}

std::unique_ptr<cb::vcard::KeySigner> signer_for(const cb::test::TestCertificate& certificate) {
    EVP_PKEY* key = certificate.key.get();
    REQUIRE(EVP_PKEY_up_ref(key) == 1);
    return std::make_unique<cb::vcard::KeySigner>(key);
}

// The two CAs and the two cards, made once for the whole executable.
struct Pki {
    cb::test::TestCertificate insurer =
        cb::test::make_test_certificate(cb::test::TestKeyType::ec_p256, "test insurer CA", nullptr, true, 1);
    cb::test::TestCertificate igc_sante =
        cb::test::make_test_certificate(cb::test::TestKeyType::ec_p256, "test IGC-Sante CA", nullptr, true, 2);
    cb::test::TestCertificate patient =
        cb::test::make_test_certificate(cb::test::TestKeyType::ec_p256, "patient card 1", &insurer, false, 3);
    cb::test::TestCertificate practitioner = practitioner_certificate(igc_sante);
};

const Pki& pki() {
    static const Pki instance;
    return instance;
}

// Fires idle timers when the test says so.
class FakeSessionTimers final : public cb::SessionTimers {
public:
    void arm(const std::string& name, std::chrono::seconds delay, std::function<void()> expired) override {
        armed[name] = std::move(expired);
        delays.push_back(delay);
    }
    void cancel(const std::string& name) override { armed.erase(name); }
    bool fire(const std::string& name) {
        const auto found = armed.find(name);
        if (found == armed.end())
            return false;
        auto expired = std::move(found->second);
        armed.erase(found);
        expired();
        return true;
    }
    std::map<std::string, std::function<void()>> armed;
    std::vector<std::chrono::seconds> delays;
};

template <typename T>
std::size_t count_of(const std::vector<CardEvent>& events) {
    std::size_t count = 0;
    for (const auto& event : events)
        count += std::holds_alternative<T>(event) ? 1U : 0U;
    return count;
}

bool is_verify_with_pin(const Bytes& command) {
    return command.size() == 13 && command[1] == 0x20;
}

struct World {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(io);
    FakePcscApi api;
    FakeSessionTimers timers;
    cb::CardEventBus bus;
    std::vector<CardEvent> events;
    std::optional<cb::CardSessions> sessions;

    std::mutex card_mutex;  // the card answers on a worker thread
    std::unique_ptr<cb::vcard::KeySigner> signer;
    std::unique_ptr<cb::vcard::VirtualCard> card;
    std::function<void()> before_answer;  // runs on the worker before each answer

    explicit World(cb::pcsc::PinEntry entry = cb::pcsc::PinEntry::pinpad_if_offered) {
        bus.subscribe([this](const CardEvent& event) { events.push_back(event); });
        cb::CardSessionsOptions options;
        options.practitioner_idle_timeout = std::chrono::seconds(900);
        options.pin_entry = entry;
        options.challenge = [] { return Bytes(32, 0x5A); };
        options.now = [] { return verification_time; };
        sessions.emplace(io, api, bus, timers, cb::CardTrust{pki().insurer.der, pki().igc_sante.der},
                         std::move(options));
        api.set_responder([this](std::span<const std::uint8_t> command) {
            if (before_answer)
                before_answer();
            std::lock_guard lock(card_mutex);
            if (!card)
                return FakeReply{cb::pcsc::code::removed_card, {}};
            return FakeReply{cb::pcsc::code::success, card->respond(command)};
        });
        api.add_reader(reader);
        sessions->on_reader_event({.kind = ReaderEventKind::reader_added, .reader = reader, .atr = {}, .detail = {}});
    }
    ~World() { sessions->stop(); }

    // `foreign_key`: the card signs with a key its certificate does not hold.
    void make_patient(bool foreign_key = false) {
        cb::vcard::CardContents contents;
        contents.profile = cb::vcard::Profile::patient;
        auto identity = cb::vcard::build_identity_file(patient_fields);
        REQUIRE(identity);
        contents.identity_file = *identity;
        contents.certificate = pki().patient.der;
        std::lock_guard lock(card_mutex);
        signer = signer_for(foreign_key ? pki().practitioner : pki().patient);
        card = std::make_unique<cb::vcard::VirtualCard>(std::move(contents), *signer);
    }

    void make_practitioner(cb::vcard::Fault fault = cb::vcard::Fault::none) {
        cb::vcard::CardContents contents;
        contents.profile = cb::vcard::Profile::practitioner;
        contents.certificate = pki().practitioner.der;
        contents.pin = pin_digits;
        std::lock_guard lock(card_mutex);
        signer = signer_for(pki().practitioner);
        card = std::make_unique<cb::vcard::VirtualCard>(std::move(contents), *signer, fault);
    }

    void insert() {
        api.insert_card(reader, cb::vcard::VirtualCard::answer_to_reset());
        sessions->on_reader_event({.kind = ReaderEventKind::card_inserted,
                                   .reader = reader,
                                   .atr = cb::vcard::VirtualCard::answer_to_reset(),
                                   .detail = {}});
    }

    void remove() {
        {
            std::lock_guard lock(card_mutex);
            card.reset();
        }
        api.remove_card(reader);
        sessions->on_reader_event({.kind = ReaderEventKind::card_removed, .reader = reader, .atr = {}, .detail = {}});
    }

    // Runs the io_context until `done` holds (bounded).
    bool run_until(const std::function<bool()>& done) {
        const auto limit = std::chrono::steady_clock::now() + cb::test::fake_wait_limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > limit)
                return false;
            io.run_one_for(std::chrono::milliseconds(50));
        }
        return true;
    }

    template <typename T>
    const T& wait_for(std::size_t nth = 1) {
        REQUIRE(run_until([&] { return count_of<T>(events) >= nth; }));
        std::size_t seen = 0;
        for (const auto& event : events)
            if (const auto* found = std::get_if<T>(&event); found != nullptr && ++seen == nth)
                return *found;
        FAIL("unreachable");
        throw std::logic_error("unreachable");
    }

    // submit_pin and its outcome.
    cb::pcsc::CardResult<cb::pcsc::Done> submit(const std::string& digits, LastTry last_try = LastTry::refuse) {
        std::optional<cb::pcsc::CardResult<cb::pcsc::Done>> outcome;
        std::optional<cb::cards::Pin> pin;
        if (!digits.empty()) {
            auto parsed = cb::cards::Pin::from_digits(digits);
            REQUIRE(parsed);
            pin.emplace(std::move(parsed).value());
        }
        sessions->submit_pin(reader, std::move(pin), last_try,
                             [&](const cb::pcsc::CardResult<cb::pcsc::Done>& result) { outcome = result; });
        REQUIRE(run_until([&] { return outcome.has_value(); }));
        return *outcome;
    }

    std::size_t verifies_with_pin() {
        std::size_t count = 0;
        for (const auto& command : api.commands)
            count += is_verify_with_pin(command) ? 1U : 0U;
        return count;
    }

    void authenticate() {
        make_practitioner();
        insert();
        wait_for<cb::PractitionerAwaitingPin>();
        REQUIRE(submit(pin_digits));
        wait_for<cb::PractitionerAuthenticated>();
        REQUIRE(sessions->state(reader) == SessionState::practitioner_authenticated);
    }
};

std::string wrong_pin() {
    return pin_digits == "0000" ? "1111" : "0000";
}

}  // namespace

TEST_CASE("card sessions: a patient card is identified, present at its station, then leaves") {
    World world;
    world.make_patient();
    CHECK(world.sessions->state(reader) == SessionState::empty);
    world.insert();
    CHECK(world.sessions->state(reader) == SessionState::identifying);
    CHECK_FALSE(world.sessions->patient_at(reader));

    const auto& present = world.wait_for<cb::PatientPresent>();
    CHECK(present.reader == reader);
    CHECK(present.identity.family_name() == "DURAND");
    CHECK(present.apdus >= 6);
    CHECK(world.sessions->state(reader) == SessionState::patient_present);
    CHECK(world.sessions->patient_at(reader) == std::optional<std::string>("280017512345610"));
    CHECK_FALSE(world.sessions->patient_at("Virtual PCD 00 01"));

    const std::string line = cb::describe_for_log(world.events.back());
    CHECK_THAT(line, Catch::Contains("NIR 28001\u2026"));
    CHECK_THAT(line, !Catch::Contains("2800175123456"));
    CHECK_THAT(line, !Catch::Contains("DURAND"));
    CHECK_THAT(line, !Catch::Contains("CAMILLE"));

    world.remove();
    CHECK(std::holds_alternative<cb::PatientLeft>(world.events.back()));
    CHECK(world.sessions->state(reader) == SessionState::empty);
    CHECK_FALSE(world.sessions->patient_at(reader));
}

TEST_CASE("card sessions: practitioner awaiting PIN, good PIN, authenticated, removal ends the session") {
    World world;
    world.make_practitioner();
    world.insert();
    const auto& awaiting = world.wait_for<cb::PractitionerAwaitingPin>();
    CHECK(awaiting.tries_left == 3U);
    CHECK_FALSE(awaiting.pinpad);
    CHECK(world.sessions->state(reader) == SessionState::practitioner_awaiting_pin);
    CHECK(world.verifies_with_pin() == 0);
    CHECK_FALSE(world.sessions->patient_at(reader));

    auto outcome = world.submit(pin_digits);
    CHECK(outcome);
    const auto& authenticated = world.wait_for<cb::PractitionerAuthenticated>();
    CHECK(authenticated.identity.idnps() == "810001234565");
    CHECK(authenticated.identity.family_name() == "Martin");
    CHECK(world.sessions->state(reader) == SessionState::practitioner_authenticated);
    CHECK(world.timers.armed.contains(reader));
    CHECK(world.timers.delays.back() == std::chrono::seconds(900));
    CHECK(world.verifies_with_pin() == 1);

    world.remove();
    const auto& ended = world.wait_for<cb::PractitionerEnded>();
    CHECK(ended.reason == cb::SessionEnd::card_removed);
    CHECK(world.sessions->state(reader) == SessionState::empty);
    CHECK_FALSE(world.timers.armed.contains(reader));
}

TEST_CASE("card sessions: a wrong PIN reports the tries left and is never retried, the last try needs confirmation") {
    World world;
    world.make_practitioner();
    world.insert();
    world.wait_for<cb::PractitionerAwaitingPin>();

    auto first = world.submit(wrong_pin());
    REQUIRE_FALSE(first);
    CHECK(first.error().failure == CardFailure::wrong_pin);
    CHECK(first.error().tries_left == 2U);
    CHECK_THAT(first.error().message, !Catch::Contains(wrong_pin()));
    CHECK(world.verifies_with_pin() == 1);  // sent once, not retried
    const auto& rejected = world.wait_for<cb::PinRejected>();
    CHECK(rejected.tries_left == 2U);
    CHECK(world.wait_for<cb::PractitionerAwaitingPin>(2).tries_left == 2U);
    CHECK(world.sessions->state(reader) == SessionState::practitioner_awaiting_pin);

    REQUIRE_FALSE(world.submit(wrong_pin()));
    CHECK(world.wait_for<cb::PractitionerAwaitingPin>(3).tries_left == 1U);
    CHECK(world.verifies_with_pin() == 2);

    // One try left: not sent unless the caller confirms.
    auto refused = world.submit(pin_digits, LastTry::refuse);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().failure == CardFailure::pin_last_try);
    CHECK(refused.error().tries_left == 1U);
    CHECK(world.verifies_with_pin() == 2);
    CHECK(world.sessions->state(reader) == SessionState::practitioner_awaiting_pin);

    auto confirmed = world.submit(pin_digits, LastTry::allow);
    CHECK(confirmed);
    world.wait_for<cb::PractitionerAuthenticated>();
    CHECK(world.verifies_with_pin() == 3);
}

TEST_CASE("card sessions: the last wrong PIN blocks the card, a blocked card is an error at insertion") {
    SECTION("blocked by the last try") {
        World world;
        world.make_practitioner();
        world.insert();
        world.wait_for<cb::PractitionerAwaitingPin>();
        REQUIRE_FALSE(world.submit(wrong_pin()));
        REQUIRE_FALSE(world.submit(wrong_pin()));
        auto last = world.submit(wrong_pin(), LastTry::allow);
        REQUIRE_FALSE(last);
        CHECK(last.error().failure == CardFailure::pin_blocked);
        CHECK(world.sessions->state(reader) == SessionState::error);
        CHECK(world.wait_for<cb::CardError>().failure == CardFailure::pin_blocked);
        // No session awaits a PIN any more: refused without card I/O.
        const auto verifies = world.verifies_with_pin();
        auto after = world.submit(pin_digits, LastTry::allow);
        REQUIRE_FALSE(after);
        CHECK(after.error().failure == CardFailure::invalid_request);
        CHECK(world.verifies_with_pin() == verifies);
    }
    SECTION("blocked before") {
        World world;
        world.make_practitioner(cb::vcard::Fault::blocked_pin);
        world.insert();
        const auto& error = world.wait_for<cb::CardError>();
        CHECK(error.failure == CardFailure::pin_blocked);
        CHECK_THAT(error.message, Catch::Contains("PIN blocked"));
        CHECK(world.sessions->state(reader) == SessionState::error);
        CHECK(count_of<cb::PractitionerAwaitingPin>(world.events) == 0);
        world.remove();
        CHECK(world.sessions->state(reader) == SessionState::empty);
    }
}

TEST_CASE("card sessions: the idle timeout ends the practitioner session and resets the card") {
    World world;
    world.authenticate();
    const auto disconnects = world.api.disconnects;
    REQUIRE(world.timers.fire(reader));
    const auto& ended = world.wait_for<cb::PractitionerEnded>();
    CHECK(ended.reason == cb::SessionEnd::idle_timeout);
    // Reset, then identified again: waiting for a PIN.
    world.wait_for<cb::PractitionerAwaitingPin>(2);
    CHECK(world.sessions->state(reader) == SessionState::practitioner_awaiting_pin);
    CHECK(world.api.disconnects > disconnects);

    // Activity restarts the timer; a timer of an ended session does nothing.
    world.timers.armed.clear();
    REQUIRE(world.submit(pin_digits));
    world.wait_for<cb::PractitionerAuthenticated>(2);
    auto stale = world.timers.armed.at(reader);
    world.sessions->practitioner_activity(reader);
    CHECK(world.timers.delays.size() >= 3);
    world.remove();
    stale();
    CHECK(count_of<cb::PractitionerEnded>(world.events) == 2);
    CHECK(world.sessions->state(reader) == SessionState::empty);
}

TEST_CASE("card sessions: a card reset during a practitioner session ends it") {
    World world;
    world.authenticate();
    {
        std::lock_guard lock(world.card_mutex);
        world.card->reset();  // another application reset the card: the PIN is no longer verified
    }
    world.api.begin_codes.push_back(cb::pcsc::code::reset_card);
    world.sessions->practitioner_activity(reader);
    const auto& ended = world.wait_for<cb::PractitionerEnded>();
    CHECK(ended.reason == cb::SessionEnd::card_reset);
    CHECK(world.wait_for<cb::PractitionerAwaitingPin>(2).tries_left == 3U);
    CHECK(world.sessions->state(reader) == SessionState::practitioner_awaiting_pin);
}

TEST_CASE("card sessions: a card removed during identification leaves nothing behind") {
    World world;
    world.make_patient();
    std::mutex mutex;
    std::condition_variable changed;
    bool answering = false;
    bool released = false;
    world.before_answer = [&] {
        std::unique_lock lock(mutex);
        if (released)
            return;
        answering = true;
        changed.notify_all();
        changed.wait(lock, [&] { return released; });
    };
    world.insert();
    {
        std::unique_lock lock(mutex);
        REQUIRE(changed.wait_for(lock, cb::test::fake_wait_limit, [&] { return answering; }));
    }
    world.remove();  // the worker is inside the first APDU
    CHECK(world.sessions->state(reader) == SessionState::empty);
    {
        std::lock_guard lock(mutex);
        released = true;
        changed.notify_all();
    }
    // The next card: its result comes after the stale one (same worker, in order).
    world.make_patient();
    world.insert();
    world.wait_for<cb::PatientPresent>();
    CHECK(count_of<cb::PatientPresent>(world.events) == 1);
    CHECK(count_of<cb::PatientLeft>(world.events) == 0);
    CHECK(world.sessions->patient_at(reader));
}

TEST_CASE("card sessions: unknown cards and failed verification are errors, never a presence") {
    SECTION("unknown card") {
        World world;
        world.api.set_responder([](std::span<const std::uint8_t>) {
            return FakeReply{cb::pcsc::code::success, {0x6A, 0x82}};
        });
        world.insert();
        const auto& error = world.wait_for<cb::CardError>();
        CHECK(error.failure == CardFailure::unsupported_card);
        CHECK(world.sessions->state(reader) == SessionState::unknown_card);
        world.remove();
        CHECK(world.sessions->state(reader) == SessionState::empty);
        CHECK(count_of<cb::PatientLeft>(world.events) == 0);
    }
    SECTION("wrong signature") {
        World world;
        world.make_patient(true);
        world.insert();
        const auto& error = world.wait_for<cb::CardError>();
        CHECK(error.failure == CardFailure::invalid_card);
        CHECK_THAT(error.message, !Catch::Contains("DURAND"));
        CHECK(world.sessions->state(reader) == SessionState::error);
        CHECK_FALSE(world.sessions->patient_at(reader));
    }
}

TEST_CASE("card sessions: a PIN without a practitioner card is refused without card I/O") {
    World world;
    auto outcome = world.submit(pin_digits);
    REQUIRE_FALSE(outcome);
    CHECK(outcome.error().failure == CardFailure::invalid_request);
    CHECK(world.api.commands.empty());
    world.make_patient();
    world.insert();
    world.wait_for<cb::PatientPresent>();
    const auto commands = world.api.commands.size();
    REQUIRE_FALSE(world.submit(pin_digits));
    CHECK(world.api.commands.size() == commands);
}

TEST_CASE("card sessions: PIN entry on the reader's PIN pad") {
    World world;
    world.make_practitioner();
    world.api.set_control_responder([&](std::uint32_t code, std::span<const std::uint8_t>) {
        if (code == cb::pcsc::get_feature_request)
            return FakeReply{cb::pcsc::code::success, {0x06, 0x04, 0x42, 0x33, 0x00, 0x06}};
        // The pad builds the VERIFY with what the practitioner typed.
        auto pin = cb::cards::Pin::from_digits(pin_digits);
        const auto command = cb::cards::verify_pin_command(*pin);
        std::lock_guard lock(world.card_mutex);
        return FakeReply{cb::pcsc::code::success, world.card->respond(command.bytes())};
    });
    world.insert();
    CHECK(world.wait_for<cb::PractitionerAwaitingPin>().pinpad);
    auto outcome = world.submit("");
    CHECK(outcome);
    world.wait_for<cb::PractitionerAuthenticated>();
    CHECK(world.verifies_with_pin() == 0);  // the PIN never passed through the gateway
}

TEST_CASE("card sessions: fed by the reader monitor, presence follows insertion and removal") {
    World world;
    cb::test::FakeBackoffTimer backoff;
    cb::pcsc::ReaderMonitor monitor(world.api, backoff, world.sessions->monitor_callback());
    monitor.start();
    REQUIRE(world.api.wait_until_blocked());
    world.make_patient();
    world.api.insert_card(reader, cb::vcard::VirtualCard::answer_to_reset());
    world.wait_for<cb::PatientPresent>();
    CHECK(world.sessions->patient_at(reader));
    {
        std::lock_guard lock(world.card_mutex);
        world.card.reset();
    }
    world.api.remove_card(reader);
    world.wait_for<cb::PatientLeft>();
    CHECK_FALSE(world.sessions->patient_at(reader));
    monitor.stop();
}

TEST_CASE("card sessions: stop ends authenticated sessions and publishes nothing afterwards") {
    World world;
    world.authenticate();
    world.sessions->stop();
    CHECK(std::get<cb::PractitionerEnded>(world.events.back()).reason == cb::SessionEnd::shutdown);
    const auto published = world.events.size();
    world.remove();
    CHECK(world.events.size() == published);
    CHECK(cb::mask_nir("280017512345610") == "28001\u2026");
}

TEST_CASE("card sessions: the [cards] configuration section") {
    SECTION("defaults: off, 900 s") {
        const auto load = cb::load_config_text("", "c.toml");
        REQUIRE(load.ok());
        CHECK_FALSE(load.config->cards.enabled);
        CHECK(load.config->cards.practitioner_idle_timeout == std::chrono::seconds(900));
    }
    SECTION("a full section") {
        const auto load = cb::load_config_text(
            "[cards]\nenabled = true\ninsurer_ca_file = \"/p/i.crt\"\n"
            "igc_sante_ca_file = \"/p/g.crt\"\npractitioner_idle_timeout_s = 60\n",
            "c.toml");
        REQUIRE(load.ok());
        CHECK(load.config->cards.enabled);
        CHECK(load.config->cards.insurer_ca_file == "/p/i.crt");
        CHECK(load.config->cards.igc_sante_ca_file == "/p/g.crt");
        CHECK(load.config->cards.practitioner_idle_timeout == std::chrono::seconds(60));
    }
    SECTION("every problem, with file, line and key") {
        const auto load =
            cb::load_config_text("[cards]\nenabled = true\npractitioner_idle_timeout_s = 5\nenable = 1\n", "c.toml");
        REQUIRE_FALSE(load.ok());
        std::vector<std::string> issues;
        for (const auto& issue : load.issues)
            issues.push_back(issue.to_string());
        INFO(Catch::Detail::stringify(issues));
        REQUIRE(issues.size() == 4);
        CHECK_THAT(issues[0], Catch::StartsWith("c.toml:2: cards.insurer_ca_file: missing: required when"));
        CHECK_THAT(issues[1], Catch::StartsWith("c.toml:2: cards.igc_sante_ca_file: missing"));
        CHECK_THAT(issues[2], Catch::StartsWith("c.toml:3: cards.practitioner_idle_timeout_s: expected"));
        CHECK_THAT(issues[3], Catch::StartsWith("c.toml:4: cards.enable"));
        const auto wrong_type = cb::load_config_text("[cards]\nenabled = \"yes\"\n", "c.toml");
        REQUIRE(wrong_type.issues.size() == 1);
        CHECK_THAT(wrong_type.issues[0].to_string(),
                   Catch::StartsWith("c.toml:2: cards.enabled: expected true or false"));
    }
    SECTION("CA files: PEM or DER, clear errors") {
        const auto missing = cb::load_ca_certificate("/nonexistent/ca.crt", "cards.insurer_ca_file");
        REQUIRE_FALSE(missing);
        CHECK_THAT(missing.error().message(),
                   Catch::StartsWith("cards.insurer_ca_file /nonexistent/ca.crt: cannot read: "));
        const cb::test::TempDir dir;
        const auto path = dir / "ca.pem";
        std::ofstream(path) << pki().insurer.pem;
        const auto pem = cb::load_ca_certificate(path, "k");
        REQUIRE(pem);
        CHECK(*pem == pki().insurer.der);
        std::ofstream(path, std::ios::binary | std::ios::trunc) << "not a certificate";
        const auto garbage = cb::load_ca_certificate(path, "k");
        REQUIRE_FALSE(garbage);
        CHECK_THAT(garbage.error().message(), Catch::EndsWith("not a PEM or DER certificate"));
    }
}
