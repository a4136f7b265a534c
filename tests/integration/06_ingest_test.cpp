// 06 ingest: carebridged between the real broker (TLS, ACLs) and the virtual
// devices. Every reading the simulator produced is acknowledged, and the
// store holds each (device, seq) exactly once with its disposition, also when
// the daemon is SIGKILLed during a flood or the broker restarts under load.
//
// No sleeps: the simulator runs with --until-acked (it exits 0 only once every
// reading it made is acknowledged); the daemon's readiness comes through a
// real notify socket; "during the flood" is the moment the daemon's log shows
// its first acknowledgement.
#include <catch2/catch.hpp>
#include <csignal>
#include <map>

#include "drivers/storage/sqlite.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/notify_socket.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace std::chrono_literals;
using cb::test::Broker;
using cb::test::NotifySocket;
using cb::test::Process;
using cb::test::TempDir;

namespace {

constexpr auto limit = 120s;

const std::vector<std::string> devices{"cuff-1", "scale-1", "oxi-1", "band-1", "stranger-1"};

// cuff-1 and scale-1 at home, oxi-1 at a station (nobody present: held),
// band-1 enrolled, stranger-1 has a certificate but is not enrolled. Each
// enrolled device is pinned to the certificate test-pki made for it.
std::string catalog(const std::filesystem::path& source_dir, const cb::test::TestPki& pki) {
    std::string text = cb::test::read_file(source_dir / "config/devices.toml");
    const auto cut = text.find("[[device]]");
    text = text.substr(0, cut);
    const auto enrol = [&](const std::string& id, const std::string& model, const std::string& binding) {
        text += "[[device]]\nid = \"" + id + "\"\nmodel = \"" + model + "\"\ncertificate_sha256 = \"" +
                cb::test::certificate_fingerprint(pki.device(id).certificate) + "\"\n" + binding;
    };
    enrol("cuff-1", "sim-bp-1", "binding = \"home\"\npatient = \"patient-1\"\n");
    enrol("scale-1", "sim-scale-1", "binding = \"home\"\npatient = \"patient-2\"\n");
    enrol("oxi-1", "sim-oxi-1", "binding = \"station\"\nstation = \"Virtual PCD 00 00\"\n");
    enrol("band-1", "sim-band-1", "binding = \"home\"\npatient = \"patient-1\"\n");
    return text;
}

// The broker as deployed: its device-pins plugin reads the gateway's catalog
// (dir/devices.toml), written here from a test PKI made first.
Broker ingest_broker(const TempDir& dir) {
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", devices);
    dir.write("devices.toml", catalog(CAREBRIDGE_SOURCE_DIR, pki));
    return Broker({.source_dir = CAREBRIDGE_SOURCE_DIR,
                   .work_dir = dir.path(),
                   .pki_dir = dir / "pki",
                   .catalog = dir / "devices.toml"});
}

// carebridged with its own state directory, on the broker of `broker`, with
// the catalog ingest_broker wrote.
class Gateway {
public:
    Gateway(const TempDir& dir, const Broker& broker) : m_dir(dir) {
        const auto& pki = broker.pki();
        dir.write(
            "carebridged.toml",
            "[daemon]\nstate_dir = \"" + (dir / "state").string() +
                "\"\nlog_level = \"debug\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = " + std::to_string(broker.port()) +
                "\nca_file = \"" + pki.ca_certificate().string() + "\"\ncert_file = \"" +
                pki.gateway().certificate.string() + "\"\nkey_file = \"" + pki.gateway().key.string() +
                "\"\n[ingest]\ncatalog = \"" + (dir / "devices.toml").string() + "\"\n");
    }

    // Starts the daemon and returns once it is READY and connected to the broker.
    void start() {
        ++m_starts;
        m_log = m_dir / ("carebridged-" + std::to_string(m_starts) + ".log");
        m_notify.emplace(m_dir / ("notify-" + std::to_string(m_starts) + ".sock"));
        m_process.emplace(std::vector<std::string>{CAREBRIDGED_PATH, "--config", (m_dir / "carebridged.toml").string()},
                          m_dir / "carebridged.out", m_log,
                          std::map<std::string, std::string>{{"NOTIFY_SOCKET", m_notify->path().string()}});
        INFO(cb::test::read_file(m_log));
        REQUIRE(m_notify->wait_for("READY=1", limit));
        REQUIRE(cb::test::wait_for_file_text(m_log, "mqtt: connected", limit, 0, m_process->pid()));
    }

    bool wait_for_log(const std::string& needle) {
        return cb::test::wait_for_file_text(m_log, needle, limit, 0, m_process->pid());
    }

    void kill() {
        m_process->signal(SIGKILL);
        REQUIRE(m_process->wait_for_exit(limit));
    }

    void stop() {
        m_process->signal(SIGTERM);
        const auto status = m_process->wait_for_exit(limit);
        REQUIRE(status);
        CHECK(status->exited);
        CHECK(status->code == 0);
    }

    std::string log() const { return cb::test::read_file(m_log); }

    // "device seq disposition reason" for every stored row, and the count per (device, disposition).
    std::map<std::string, int> summary() const {
        auto db = cb::storage::Database::open(m_dir / "state" / "readings.db");
        REQUIRE(db);
        auto q = db->prepare(
            "SELECT device_id, disposition, coalesce(reason, ''), count(*) FROM readings "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "summary");
        REQUIRE(q);
        std::map<std::string, int> out;
        while (q->step().value() == cb::storage::Step::row) {
            std::string key = q->column_text(0) + " " + q->column_text(1);
            if (!q->column_text(2).empty())
                key += " " + q->column_text(2);
            out[key] = static_cast<int>(q->column_int64(3));
        }
        return out;
    }

    // For each device, whether its stored sequences are exactly 1..n.
    bool complete(const std::string& device, int n) const {
        auto db = cb::storage::Database::open(m_dir / "state" / "readings.db");
        REQUIRE(db);
        auto q =
            db->prepare("SELECT count(*), min(sequence), max(sequence) FROM readings WHERE device_id = ?1", "complete");
        REQUIRE(q);
        q->bind(1, device);
        REQUIRE(q->step().value() == cb::storage::Step::row);
        return q->column_int64(0) == n && q->column_int64(1) == 1 && q->column_int64(2) == n;
    }

private:
    const TempDir& m_dir;
    int m_starts = 0;
    std::filesystem::path m_log;
    std::optional<NotifySocket> m_notify;
    std::optional<Process> m_process;
};

std::vector<std::string> devsim(const Broker& broker, const TempDir& dir, std::vector<std::string> extra) {
    std::vector<std::string> argv{DEVSIM_PATH,
                                  "--host",
                                  "127.0.0.1",
                                  "--port",
                                  std::to_string(broker.port()),
                                  "--pki-dir",
                                  broker.pki().directory().string(),
                                  "--state-dir",
                                  (dir / "devsim").string(),
                                  "--until-acked",
                                  "--timeout-s",
                                  "240",
                                  "--rate",
                                  "0",
                                  "--resend-after-s",
                                  "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

}  // namespace

TEST_CASE("06 ingest: readings from enrolled devices are stored once and acknowledged by disposition") {
    TempDir dir;
    Broker broker = ingest_broker(dir);
    Gateway gateway(dir, broker);
    gateway.start();
    const auto run = cb::test::run_command(
        devsim(broker, dir,
               {"--readings", "20", "--device", "cuff-1:sim-bp-1", "--device", "scale-1:sim-scale-1", "--device",
                "oxi-1:sim-oxi-1", "--device", "stranger-1:sim-bp-1"}),
        limit * 2);
    INFO(run.output << "\n--- carebridged:\n" << gateway.log());
    REQUIRE(run.status.code == 0);
    const auto mark = broker.log_mark();
    gateway.stop();
    // A clean DISCONNECT reached the broker (the gateway's writes are
    // buffered: a stop that lost them would leave the broker a bare close).
    CHECK(broker.wait_for_log("Client carebridged disconnected.", cb::test::broker_hang_limit, mark));
    CHECK(gateway.summary() == std::map<std::string, int>{{"cuff-1 accepted", 20},
                                                          {"oxi-1 held no-patient-at-station", 20},
                                                          {"scale-1 accepted", 20},
                                                          {"stranger-1 quarantined unknown-device", 20}});
    for (const auto& device : {"cuff-1", "scale-1", "oxi-1", "stranger-1"})
        CHECK(gateway.complete(device, 20));
    CHECK_THAT(gateway.log(), Catch::Contains("<4>ingest: device stranger-1: readings quarantined (unknown-device)"));
}

TEST_CASE("06 ingest: misbehaving devices are rejected with their reason and nothing valid is lost") {
    TempDir dir;
    Broker broker = ingest_broker(dir);
    Gateway gateway(dir, broker);
    gateway.start();
    for (const std::string mode : {"out-of-range", "wrong-unit", "unknown-field", "replay", "out-of-order"}) {
        const auto run = cb::test::run_command(
            devsim(broker, dir,
                   {"--readings", "10", "--misbehave", mode, "--misbehave-every", "3", "--device", "cuff-1:sim-bp-1"}),
            limit * 2);
        INFO(mode << "\n" << run.output << "\n--- carebridged:\n" << gateway.log());
        REQUIRE(run.status.code == 0);
    }
    gateway.stop();
    const auto summary = gateway.summary();
    for (const auto& [key, count] : summary)
        UNSCOPED_INFO(key << ": " << count);
    // 5 runs of 10 readings, sequences continuing across runs: 1..50, each once.
    CHECK(gateway.complete("cuff-1", 50));
    // Every reading whose seq is a multiple of 3 was bad in the first three
    // runs (seq 1..10: 3, 11..20: 3, 21..30: 4); replayed and swapped ones are
    // valid readings, stored once.
    CHECK(summary.at("cuff-1 rejected out_of_range") == 3);
    CHECK(summary.at("cuff-1 rejected unknown_unit") == 3);
    CHECK(summary.at("cuff-1 rejected unknown_field") == 4);
    CHECK(summary.at("cuff-1 accepted") == 40);
}

TEST_CASE("06 ingest: carebridged SIGKILLed during a flood loses nothing and stores nothing twice") {
    TempDir dir;
    Broker broker = ingest_broker(dir);
    Gateway gateway(dir, broker);
    gateway.start();
    Process simulator(devsim(broker, dir,
                             {"--readings", "300", "--device", "cuff-1:sim-bp-1", "--device", "scale-1:sim-scale-1",
                              "--device", "band-1:sim-band-1"}),
                      dir / "devsim.out", dir / "devsim.err");
    for (int kill = 0; kill < 3; ++kill) {
        REQUIRE(gateway.wait_for_log("<7>ingest: ack "));
        gateway.kill();
        gateway.start();
    }
    const auto status = simulator.wait_for_exit(limit * 2);
    INFO(cb::test::read_file(dir / "devsim.err") << "\n--- carebridged:\n" << gateway.log());
    REQUIRE(status);
    REQUIRE(status->code == 0);
    gateway.stop();
    for (const auto& device : {"cuff-1", "scale-1", "band-1"})
        CHECK(gateway.complete(device, 300));
    CHECK(gateway.summary() ==
          std::map<std::string, int>{{"band-1 accepted", 300}, {"cuff-1 accepted", 300}, {"scale-1 accepted", 300}});
}

TEST_CASE("06 ingest: the broker restarted under load: reconnection with nothing lost or duplicated") {
    TempDir dir;
    Broker broker = ingest_broker(dir);
    Gateway gateway(dir, broker);
    gateway.start();
    Process simulator(
        devsim(broker, dir, {"--readings", "300", "--device", "cuff-1:sim-bp-1", "--device", "scale-1:sim-scale-1"}),
        dir / "devsim.out", dir / "devsim.err");
    REQUIRE(gateway.wait_for_log("<7>ingest: ack "));
    broker.restart();
    const auto status = simulator.wait_for_exit(limit * 2);
    INFO(cb::test::read_file(dir / "devsim.err") << "\n--- carebridged:\n" << gateway.log());
    REQUIRE(status);
    REQUIRE(status->code == 0);
    CHECK(gateway.wait_for_log("<4>mqtt: "));  // the outage was seen and logged once
    gateway.stop();
    CHECK(gateway.complete("cuff-1", 300));
    CHECK(gateway.complete("scale-1", 300));
}

TEST_CASE("06 ingest: a gateway MQTT key readable by others is refused at start, naming the setting") {
    TempDir dir;
    Broker broker = ingest_broker(dir);
    Gateway gateway(dir, broker);
    std::filesystem::permissions(broker.pki().gateway().key, std::filesystem::perms::group_read,
                                 std::filesystem::perm_options::add);
    const auto run = cb::test::run_command({CAREBRIDGED_PATH, "--config", (dir / "carebridged.toml").string()}, limit);
    INFO(run.output);
    CHECK(run.status.code != 0);
    CHECK_THAT(run.output, Catch::Contains("mqtt.key_file"));
    CHECK_THAT(run.output, Catch::Contains(broker.pki().gateway().key.string()));
    CHECK_THAT(run.output, !Catch::Contains("BEGIN"));  // never the key itself
}
