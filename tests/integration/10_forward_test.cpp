// 10 forward: carebridged forwards stored readings to carebridge-receiver
// (the stand-in for the national space) over mutual TLS, signed; exactly once
// as the receiver sees it, whatever the receiver or the daemon do; each
// answer class leads to its documented outbox state (docs/upstream.md).
//
// The readings are put in the store before the daemon starts (ingest is off:
// 06_ingest covers MQTT), so each case controls exactly what is to be sent.
// No sleeps: the daemon's "caught up" line and the receiver's log lines are
// awaited with inotify.
#include <sys/stat.h>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "drivers/storage/outbox.hpp"
#include "drivers/storage/reading_store.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/pki.hpp"
#include "tests/support/process.hpp"
#include "tests/support/receiver.hpp"
#include "tests/support/softhsm.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;
using cb::test::Process;

namespace {

constexpr std::chrono::seconds hang_limit{60};
constexpr const char* nir_1 = "1800175123456";
constexpr const char* nir_2 = "2800175123456";

std::string heart_rate_body(int i) {
    return R"({"type":"heart_rate","time_us":)" + std::to_string(1'795'338'000'000'000 + i * 60'000'000LL) +
           R"(,"offset_min":60,"values":[{"code":149530,"value":)" + std::to_string(60 + i % 40) +
           R"(,"unit":"/min"}],"user_index":0})";
}

cb::storage::NewReading reading_of(const std::string& device, int sequence, const std::string& type,
                                   const std::string& body, const std::string& patient) {
    cb::storage::NewReading reading;
    reading.device_id = device;
    reading.sequence = sequence;
    reading.type = type;
    reading.body = body;
    reading.device_time_us = 1'795'338'000'000'000;
    reading.received_us = 1'795'338'000'000'000;
    reading.patient = patient;
    return reading;
}

cb::test::ReceiverSetup receiver_setup(const cb::test::TempDir& dir) {
    cb::test::ReceiverSetup setup;
    setup.executable = RECEIVER_PATH;
    setup.pki_dir = dir / "pki";
    setup.work_dir = dir.path();
    setup.extra = {"--auto-pair", "--log-level", "info"};
    return setup;
}

class Forward {
public:
    Forward() : m_pki(CAREBRIDGE_SOURCE_DIR, m_dir / "pki", {}), m_receiver(receiver_setup(m_dir)) {
        fs::create_directories(state());
        fs::permissions(state(), fs::perms::owner_all);
        REQUIRE(cb::storage::SqliteReadingStore::open(database()));
    }

    fs::path state() const { return m_dir / "state"; }
    fs::path database() const { return state() / "readings.db"; }
    cb::test::ReceiverProcess& receiver() { return m_receiver; }

    // Stores `count` heart-rate readings of `device` for `patient`, sequences from `first`.
    void seed(int count, const std::string& patient, const std::string& device = "cuff-1", int first = 1) {
        auto store = cb::storage::SqliteReadingStore::open(database());
        REQUIRE(store);
        std::vector<cb::storage::NewReading> batch;
        for (int i = 0; i < count; ++i)
            batch.push_back(reading_of(device, first + i, "heart_rate", heart_rate_body(first + i), patient));
        REQUIRE(store->commit(batch));
    }

    // Stores one reading of `type` with its storage JSON `body`.
    void seed_one(const std::string& device, int sequence, const std::string& type, const std::string& body,
                  const std::string& patient) {
        auto store = cb::storage::SqliteReadingStore::open(database());
        REQUIRE(store);
        REQUIRE(store->commit(std::vector{reading_of(device, sequence, type, body, patient)}));
    }

    // Puts the facility's keys on a SoftHSM2 token: the EC signing key, and an
    // RSA key for TLS (so that TLS 1.3 client authentication signs RSA-PSS on
    // the token); the daemon is configured to use them from there.
    void keys_on_token() {
        const auto facility = m_dir / "pki" / "facility";
        m_token = std::make_unique<cb::test::SoftHsmToken>(
            m_dir / "softhsm", "carebridge",
            std::vector<cb::test::SoftHsmToken::Key>{{facility / "ec.key", "facility-sign", "01"},
                                                     {facility / "rsa.key", "facility-tls", "02"}});
    }

    fs::path config() {
        const auto path = m_dir / "carebridged.toml";
        const auto pki = m_dir / "pki";
        std::ofstream out(path);
        out << "[daemon]\nstate_dir = \"" << state().string() << "\"\nlog_level = \"debug\"\n"
            << "[upstream]\nenabled = true\nhost = \"localhost\"\nport = " << m_receiver.port() << "\n"
            << "ca_file = \"" << (pki / "ca.crt").string() << "\"\n"
            << "crl_file = \"" << (pki / "ca.crl").string() << "\"\n"  // the receiver's certificate is not listed
            << "facility_id = \"750000000\"\n"
            << "signing_chain_file = \"" << (pki / "facility/ec.crt").string() << "\"\n";
        if (m_token) {
            out << "cert_file = \"" << (pki / "facility/rsa.crt").string() << "\"\n"
                << "tls_key = \"pkcs11\"\npkcs11_tls_key_label = \"facility-tls\"\n"
                << "signer = \"pkcs11\"\npkcs11_key_label = \"facility-sign\"\n"
                << "pkcs11_module = \"" << cb::test::SoftHsmToken::module << "\"\n"
                << "pkcs11_token = \"" << m_token->label() << "\"\n"
                << "pkcs11_pin_file = \"" << m_token->pin_file().string() << "\"\n";
        } else {
            out << "cert_file = \"" << (pki / "facility/ec.crt").string() << "\"\n"
                << "key_file = \"" << (pki / "facility/ec.key").string() << "\"\n"
                << "signing_key_file = \"" << (pki / "facility/ec.key").string() << "\"\n";
        }
        return path;
    }

    // From standard input (--nir - --code -) as an operator should, or on the command line.
    void pair(const std::string& patient, const std::string& nir, bool from_stdin = false) {
        const auto result = from_stdin ? cb::test::run_command(
                                             {"/bin/sh", "-c",
                                              "printf '%s\\n%s\\n' \"$1\" 0000 | \"$2\" --config \"$3\" --pair \"$4\" "
                                              "--nir - --code -",
                                              "sh", nir, CAREBRIDGED_PATH, config().string(), patient},
                                             hang_limit)
                                       : cb::test::run_command({CAREBRIDGED_PATH, "--config", config().string(),
                                                                "--pair", patient, "--nir", nir, "--code", "0000"},
                                                               hang_limit);
        INFO(result.output);
        REQUIRE(result.status.exited);
        REQUIRE(result.status.code == 0);
    }

    void start_daemon() {
        ++m_starts;
        m_log_offset = 0;
        m_daemon = std::make_unique<Process>(std::vector<std::string>{CAREBRIDGED_PATH, "--config", config().string()},
                                             m_dir / ("daemon-" + std::to_string(m_starts) + ".out"), daemon_log());
    }
    void kill_daemon() {
        m_daemon->signal(SIGKILL);
        REQUIRE(m_daemon->wait_for_exit(hang_limit));
        m_daemon.reset();
    }
    void stop_daemon() {
        m_daemon->signal(SIGTERM);
        const auto status = m_daemon->wait_for_exit(hang_limit);
        REQUIRE(status);
        CHECK(status->exited);
        CHECK(status->code == 0);
        m_daemon.reset();
    }
    fs::path pin_file() const { return m_token->pin_file(); }
    fs::path daemon_log() const { return m_dir / ("daemon-" + std::to_string(m_starts) + ".log"); }
    std::string log() const { return cb::test::read_file(daemon_log()); }

    // Waits for `text` in the daemon's log after what the previous wait found.
    void expect_log(const std::string& text) {
        INFO("waiting for \"" << text << "\" in " << daemon_log().string());
        const bool found =
            cb::test::wait_for_file_text(daemon_log(), text, hang_limit, m_log_offset, m_daemon ? m_daemon->pid() : -1);
        if (!found)
            FAIL(log());
        m_log_offset = log().find(text, m_log_offset) + text.size();
    }

    std::map<std::string, std::int64_t> outbox() {
        auto opened = cb::storage::Outbox::open(database());
        REQUIRE(opened);
        auto counts = opened->counts();
        REQUIRE(counts);
        return *counts;
    }

    std::int64_t stat(const char* name) { return m_receiver.stats().as_object().at(name).as_int64(); }

private:
    cb::test::TempDir m_dir;
    cb::test::TestPki m_pki;
    cb::test::ReceiverProcess m_receiver;
    std::unique_ptr<cb::test::SoftHsmToken> m_token;
    std::unique_ptr<Process> m_daemon;
    int m_starts = 0;
    std::size_t m_log_offset = 0;
};

}  // namespace

TEST_CASE("forward: a paired patient's readings reach the receiver once each, with valid signatures") {
    Forward f;
    f.seed(20, "patient-1");
    f.pair("patient-1", nir_1);
    f.start_daemon();
    f.expect_log("caught up: 20 delivered, 0 held, 0 refused");
    CHECK(f.stat("observations") == 20);
    CHECK(f.stat("valid_signatures") == 20);
    CHECK(f.outbox()["delivered"] == 20);
    // A restart has nothing left to send.
    f.stop_daemon();
    f.start_daemon();
    f.expect_log("upstream: forwarding to localhost");
    f.seed(1, "patient-1", "cuff-1", 21);
    f.expect_log("caught up: 1 delivered");
    CHECK(f.stat("observations") == 21);
    f.stop_daemon();
}

TEST_CASE("forward: signing key and TLS client key on a PKCS#11 token (SoftHSM2)") {
    Forward f;
    f.keys_on_token();
    f.seed(5, "patient-1");
    f.pair("patient-1", nir_1);  // --pair authenticates with the token's TLS key too
    f.start_daemon();
    f.expect_log("signed ES256 (pkcs11 key), TLS key on PKCS#11 token \"carebridge\"");
    f.expect_log("caught up: 5 delivered, 0 held, 0 refused");
    CHECK(f.stat("observations") == 5);
    CHECK(f.stat("valid_signatures") == 5);
    // The PIN is in no log line.
    CHECK(f.log().find(cb::test::read_file(f.pin_file()).substr(0, 6)) == std::string::npos);
    f.stop_daemon();
}

TEST_CASE("forward: glucose with a meal context reaches the receiver with its moment, one without it is held") {
    Forward f;
    const auto glucose = [](const std::string& meal) {
        return R"({"type":"blood_glucose","time_us":1795338000000000,"offset_min":60,)"
               R"("values":[{"code":160184,"value":104,"unit":"mg/dL"}],"user_index":255)" +
               (meal.empty() ? std::string() : R"(,"meal":")" + meal + "\"") + "}";
    };
    f.seed_one("gluco-1", 1, "blood_glucose", glucose("fasting"), "patient-1");
    f.seed_one("gluco-1", 2, "blood_glucose", glucose("bedtime"), "patient-1");
    f.seed_one("gluco-1", 3, "blood_glucose", glucose(""), "patient-1");
    f.pair("patient-1", nir_1);
    f.start_daemon();
    // The receiver enforces the IG: a glucose Observation without its moment is a 422.
    f.expect_log("caught up: 2 delivered, 1 held, 0 refused");
    CHECK(f.stat("observations") == 2);
    CHECK(f.stat("valid_signatures") == 2);
    auto outbox = f.outbox();
    CHECK(outbox["delivered"] == 2);
    CHECK(outbox["held: glucose_without_moment"] == 1);
    f.stop_daemon();
}

TEST_CASE("forward: an unpaired patient's readings are held not-paired, then sent once paired") {
    Forward f;
    f.seed(5, "patient-2");
    f.start_daemon();
    f.expect_log("caught up: 0 delivered, 5 held");
    CHECK(f.outbox()["held: not-paired"] == 5);
    f.pair("patient-2", nir_2, /*from_stdin=*/true);
    f.expect_log("caught up: 5 delivered");
    CHECK(f.stat("observations") == 5);
    CHECK(f.outbox()["delivered"] == 5);
    f.stop_daemon();
}

TEST_CASE("forward: the receiver down for a while, then up: everything delivered, nothing twice") {
    Forward f;
    f.seed(30, "patient-1");
    f.pair("patient-1", nir_1);
    f.receiver().stop();
    f.start_daemon();
    f.expect_log("sending paused");
    f.receiver().restart();
    f.expect_log("caught up: 30 delivered");
    CHECK(f.stat("observations") == 30);
    f.stop_daemon();
}

TEST_CASE("forward: carebridged SIGKILLed during delivery, three times: exactly once at the receiver") {
    Forward f;
    f.seed(300, "patient-1", "cuff-1");
    f.seed(300, "patient-2", "cuff-2");
    f.pair("patient-1", nir_1);
    f.pair("patient-2", nir_2);
    f.receiver().call("/admin/faults", R"({"delay_ms":2})");  // so that a kill lands mid-delivery
    std::size_t receiver_offset = 0;
    for (int round = 0; round < 3; ++round) {
        f.start_daemon();
        // Killed once the receiver stored something new in this round.
        INFO("round " << round);
        REQUIRE(cb::test::wait_for_file_text(f.receiver().log_path(), "stored an observation", hang_limit,
                                             receiver_offset));
        f.kill_daemon();
        receiver_offset = f.receiver().log().size();
    }
    const auto before_last = f.stat("observations");
    CHECK(before_last < 600);  // the kills did land before the end
    f.start_daemon();
    f.expect_log("caught up: ");
    CHECK(f.stat("observations") == 600);
    const auto outbox = f.outbox();
    CHECK(outbox.at("delivered") == 600);
    CHECK(outbox.count("in_flight") == 0);
    f.stop_daemon();
}

TEST_CASE("forward: 503/429/dropped pause and retry, 422/409 are refused, 403 holds, 401 refreshes the token") {
    Forward f;
    f.pair("patient-1", nir_1);
    f.start_daemon();
    f.expect_log("upstream: forwarding to localhost");

    // 503 twice with Retry-After: paused, then delivered.
    f.receiver().call("/admin/faults", R"({"fail_next":2,"status":503,"retry_after_s":1})");
    f.seed(2, "patient-1", "cuff-1", 1);
    f.expect_log("sending paused for ");
    f.expect_log("caught up: 2 delivered");

    // 422: refused with the receiver's message, not retried.
    f.receiver().call("/admin/faults", R"({"fail_next":1,"status":422})");
    f.seed(1, "patient-1", "cuff-1", 3);
    f.expect_log("caught up: 2 delivered, 0 held, 1 refused");
    CHECK(f.outbox()["refused"] == 1);

    // 409: refused too (a conflict is not cured by resending).
    f.receiver().call("/admin/faults", R"({"fail_next":1,"status":409})");
    f.seed(1, "patient-1", "cuff-1", 100);
    f.expect_log("caught up: 2 delivered, 0 held, 2 refused");

    // 429 without Retry-After, and a connection dropped mid-answer: paused, resent, delivered once.
    f.receiver().call("/admin/faults", R"({"fail_next":1,"status":429})");
    f.seed(1, "patient-1", "cuff-1", 101);
    f.expect_log("national space unavailable (HTTP 429)");
    f.expect_log("caught up: 3 delivered, 0 held, 2 refused");
    f.receiver().call("/admin/faults", R"({"drop_next":1})");
    f.seed(1, "patient-1", "cuff-1", 102);
    f.expect_log("caught up: 4 delivered, 0 held, 2 refused");

    // 401: the token is refreshed and the reading delivered.
    f.receiver().call("/admin/faults", R"({"expire_tokens":true})");
    f.seed(1, "patient-1", "cuff-1", 4);
    f.expect_log("caught up: 5 delivered, 0 held, 2 refused");

    // 403 consent refused: held with that reason.
    auto opened = cb::storage::Outbox::open(f.database());
    REQUIRE(opened);
    const auto pairing = opened->pairing("patient-1");
    REQUIRE(pairing);
    REQUIRE(pairing->has_value());
    f.receiver().call("/admin/faults", R"({"refuse_consent":")" + (*pairing)->id_pe + R"("})");
    f.seed(1, "patient-1", "cuff-1", 5);
    f.expect_log("caught up: 5 delivered, 1 held, 2 refused");
    CHECK(f.outbox()["held"] == 1);
    bool consent = false;
    for (const auto& [key, count] : f.outbox())
        consent = consent || key.rfind("held: consent-refused", 0) == 0;
    CHECK(consent);
    CHECK(f.stat("observations") == 5);  // the dropped answer's bundle was stored once
    CHECK(f.outbox()["refused"] == 2);
    f.stop_daemon();
}

TEST_CASE("forward: pairing before the daemon's first start makes the state directory and the store") {
    Forward f;
    fs::remove_all(f.state());
    f.pair("patient-1", nir_1);
    CHECK((fs::status(f.state()).permissions() & fs::perms::all) == fs::perms::owner_all);
    f.seed(3, "patient-1");
    f.start_daemon();
    f.expect_log("caught up: 3 delivered");
    CHECK(f.stat("observations") == 3);
    f.stop_daemon();
}
