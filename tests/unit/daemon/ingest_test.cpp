// Ingest, end to end inside the process: payload -> placement -> durable
// commit (real SQLite, real group commit thread) -> acknowledgement.
#include "daemon/ingest.hpp"

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <catch2/catch.hpp>

#include "tests/support/fake_message_link.hpp"
#include "tests/support/faulty_vfs.hpp"
#include "tests/support/temp_dir.hpp"

using namespace std::chrono;

namespace {

// 2026-11-22T10:00:00Z
const cb::devices::Microseconds now{seconds(1795341600)};

const char* const catalog_text = R"(
[[model]]
id = "bp"
manufacturer = "Sim"
name = "BP-1"
types = ["blood_pressure", "heart_rate"]
firmware = ["1.0.0"]
purposes = ["Suivi"]

[[device]]
id = "cuff-1"
model = "bp"
certificate_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
binding = "home"
patient = "patient-1"

[[device]]
id = "cuff-shared"
model = "bp"
certificate_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
binding = "home"
users = { "1" = "patient-1", "2" = "patient-2" }

[[device]]
id = "cuff-station"
model = "bp"
certificate_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
binding = "station"
station = "Virtual PCD 00 00"
)";

std::string bp(const std::string& device, std::uint64_t seq, const std::string& extra = R"(,"firmware":"1.0.0")") {
    return R"({"device_id":")" + device + R"(","seq":)" + std::to_string(seq) +
           R"(,"type":"blood_pressure","time":"2026-11-22T10:55:00+01:00","values":[)"
           R"({"code":150021,"value":128,"unit":"mm[Hg]"},{"code":150022,"value":82,"unit":"mm[Hg]"}])" +
           extra + "}";
}

std::string topic(const std::string& device) {
    return "cb/v1/dev/" + device + "/meas";
}

class StationPresence final : public cb::PatientPresence {
public:
    std::optional<std::string> present;
    std::optional<std::string> patient_at(std::string_view station) const override {
        return station == "Virtual PCD 00 00" ? present : std::nullopt;
    }
};

struct Fixture {
    cb::test::TempDir dir;
    cb::Logger log{cb::LogLevel::debug, -1};  // fd -1: lines are discarded
    cb::DeviceCatalog catalog = *cb::load_catalog_text(catalog_text, "devices.toml").catalog;
    std::optional<cb::storage::SqliteReadingStore> store;
    std::optional<cb::storage::GroupCommitter> committer;
    cb::test::FakeMessageLink link;
    StationPresence presence;
    boost::asio::io_context io;
    std::uint64_t disk_usage = 0;
    std::optional<cb::IngestService> ingest;

    explicit Fixture(cb::IngestSettings settings = {}, const std::string& vfs = {}) {
        auto opened = cb::storage::SqliteReadingStore::open(dir / "readings.db", cb::storage::Durability::full, vfs);
        REQUIRE(opened);
        store.emplace(std::move(opened).value());
        committer.emplace(*store);
        ingest.emplace(
            io, log, catalog, *committer, link, presence, [] { return now; }, [this] { return disk_usage; }, settings);
    }

    // Delivers a message and runs the loop until its commit came back.
    void deliver(const std::string& device, const std::string& payload) {
        // The commit completes on the storage thread and posts back: keep the
        // loop waiting for it (without work, run_one() would return at once).
        // (Releasing the guard of the previous delivery stopped the loop: restart it.)
        io.restart();
        auto guard = boost::asio::make_work_guard(io);
        ingest->on_message({topic(device), payload});
        while (ingest->in_flight() > 0)
            io.run_one();
    }

    std::vector<std::string> rows() {
        committer->stop();
        auto db = cb::storage::Database::open(dir / "readings.db");
        REQUIRE(db);
        auto q = db->prepare(
            "SELECT device_id, sequence, disposition, coalesce(reason, '-'), coalesce(patient, '-') FROM readings "
            "ORDER BY device_id, sequence",
            "rows");
        REQUIRE(q);
        std::vector<std::string> out;
        while (q->step().value() == cb::storage::Step::row)
            out.push_back(q->column_text(0) + " " + std::to_string(q->column_int64(1)) + " " + q->column_text(2) + " " +
                          q->column_text(3) + " " + q->column_text(4));
        return out;
    }
};

}  // namespace

TEST_CASE("ingest: an accepted reading is stored, then acknowledged (retained, QoS 1)") {
    Fixture f;
    f.deliver("cuff-1", bp("cuff-1", 1));
    REQUIRE(f.link.published.size() == 1);
    CHECK(f.link.published[0].topic == "cb/v1/dev/cuff-1/ack");
    CHECK(f.link.published[0].payload == R"({"seq":1})");
    CHECK(f.link.published[0].retain == cb::mqtt::Retain::yes);
    CHECK(f.link.published[0].qos == cb::mqtt::Qos::at_least_once);
    CHECK(f.ingest->counters().stored == 1);
    CHECK(f.rows() == std::vector<std::string>{"cuff-1 1 accepted - patient-1"});
}

TEST_CASE("ingest: a duplicate is not stored twice and re-publishes the current ack") {
    Fixture f;
    f.deliver("cuff-1", bp("cuff-1", 1));
    f.deliver("cuff-1", bp("cuff-1", 2));
    f.deliver("cuff-1", bp("cuff-1", 1));
    CHECK(f.link.lines() == std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":1})",
                                                     R"(cb/v1/dev/cuff-1/ack {"seq":2})",
                                                     R"(cb/v1/dev/cuff-1/ack {"seq":2})"});
    CHECK(f.ingest->counters().duplicates == 1);
    CHECK(f.rows().size() == 2);
}

TEST_CASE("ingest: the ack never crosses a gap, and catches up when the gap is filled") {
    Fixture f;
    f.deliver("cuff-1", bp("cuff-1", 1));
    f.deliver("cuff-1", bp("cuff-1", 3));
    f.deliver("cuff-1", bp("cuff-1", 4));
    CHECK(f.link.lines() == std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":1})"});
    CHECK(f.ingest->acks().waiting("cuff-1") == 2);
    f.deliver("cuff-1", bp("cuff-1", 2));
    CHECK(f.link.lines().back() == R"(cb/v1/dev/cuff-1/ack {"seq":4})");
    CHECK(f.rows().size() == 4);
}

TEST_CASE("ingest: unknown device, unreferenced type or firmware are quarantined and acknowledged") {
    Fixture f;
    f.deliver("stranger", bp("stranger", 1));
    f.deliver("cuff-1", bp("cuff-1", 1, ""));                        // no firmware
    f.deliver("cuff-1", bp("cuff-1", 2, R"(,"firmware":"0.9.0")"));  // firmware not referenced
    f.deliver("cuff-1", R"({"device_id":"cuff-1","seq":3,"type":"spo2","time":"2026-11-22T10:55:00+01:00",)"
                        R"("values":[{"code":150456,"value":97,"unit":"%"}],"firmware":"1.0.0"})");
    CHECK(f.rows() == std::vector<std::string>{
                          "cuff-1 1 quarantined firmware-unknown -", "cuff-1 2 quarantined firmware-not-referenced -",
                          "cuff-1 3 quarantined type-not-referenced -", "stranger 1 quarantined unknown-device -"});
    CHECK(f.link.lines().back() == R"(cb/v1/dev/cuff-1/ack {"seq":3})");
    CHECK(f.ingest->counters().by_disposition.at("quarantined") == 4);
}

TEST_CASE("ingest: a rejected reading with a readable seq is recorded and acknowledged, without one it is not") {
    Fixture f;
    f.deliver("cuff-1", bp("cuff-1", 1));
    const std::string out_of_range = R"({"device_id":"cuff-1","seq":2,"type":"blood_pressure",)"
                                     R"("time":"2026-11-22T10:55:00+01:00","values":[)"
                                     R"({"code":150021,"value":900,"unit":"mm[Hg]"},)"
                                     R"({"code":150022,"value":82,"unit":"mm[Hg]"}],"firmware":"1.0.0"})";
    f.deliver("cuff-1", out_of_range);
    f.deliver("cuff-1", "{not json");
    f.deliver("cuff-1", bp("cuff-2", 3));  // another device's id in the payload: no trustworthy seq
    CHECK(f.link.lines() ==
          std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":1})", R"(cb/v1/dev/cuff-1/ack {"seq":2})"});
    CHECK(f.ingest->counters().unreadable == 2);
    CHECK(f.ingest->counters().by_reason.at("malformed_json") == 1);
    CHECK(f.ingest->counters().by_reason.at("device_id_mismatch") == 1);
    CHECK(f.rows() == std::vector<std::string>{"cuff-1 1 accepted - patient-1", "cuff-1 2 rejected out_of_range -"});
}

TEST_CASE("ingest: multi-user and station bindings name the patient or hold the reading") {
    Fixture f;
    f.deliver("cuff-shared", bp("cuff-shared", 1, R"(,"firmware":"1.0.0","user_index":2)"));
    f.deliver("cuff-shared", bp("cuff-shared", 2, R"(,"firmware":"1.0.0","user_index":7)"));
    f.deliver("cuff-shared", bp("cuff-shared", 3, R"(,"firmware":"1.0.0")"));  // 255: unknown user
    f.deliver("cuff-station", bp("cuff-station", 1));
    f.presence.present = "patient-9";
    f.deliver("cuff-station", bp("cuff-station", 2));
    CHECK(f.rows() == std::vector<std::string>{"cuff-shared 1 accepted - patient-2",
                                               "cuff-shared 2 held unknown-user -", "cuff-shared 3 held unknown-user -",
                                               "cuff-station 1 held no-patient-at-station -",
                                               "cuff-station 2 accepted - patient-9"});
}

TEST_CASE("ingest: at the disk quota nothing is stored nor acknowledged, below it ingest resumes") {
    cb::IngestSettings settings;
    settings.quota_bytes = 1000;
    Fixture f(settings);
    f.disk_usage = 5000;
    f.deliver("cuff-1", bp("cuff-1", 1));
    CHECK(f.link.published.empty());
    CHECK(f.ingest->counters().over_quota == 1);
    f.disk_usage = 10;
    f.deliver("cuff-1", bp("cuff-1", 1));
    CHECK(f.link.lines() == std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":1})"});
    CHECK(f.rows().size() == 1);
}

TEST_CASE("ingest: a failed commit is not acknowledged, the resend is") {
    cb::test::FaultyVfs vfs;
    Fixture f({}, cb::test::FaultyVfs::name);
    vfs.fail_syncs_after(0);
    f.deliver("cuff-1", bp("cuff-1", 1));
    vfs.heal();
    CHECK(f.link.published.empty());
    CHECK(f.ingest->counters().commit_failures == 1);
    f.deliver("cuff-1", bp("cuff-1", 1));
    CHECK(f.link.lines() == std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":1})"});
}

TEST_CASE("ingest: restore rebuilds and re-publishes acks from the store") {
    cb::test::TempDir dir;
    {
        Fixture f;
        f.deliver("cuff-1", bp("cuff-1", 1));
        f.deliver("cuff-1", bp("cuff-1", 2));
        f.deliver("cuff-1", bp("cuff-1", 4));
        f.deliver("stranger", bp("stranger", 7));
        f.committer->stop();
        std::filesystem::copy(f.dir / "readings.db", dir / "readings.db");
        if (std::filesystem::exists(f.dir / "readings.db-wal"))
            std::filesystem::copy(f.dir / "readings.db-wal", dir / "readings.db-wal");
    }
    auto store = cb::storage::SqliteReadingStore::open(dir / "readings.db");
    REQUIRE(store);
    cb::Logger log(cb::LogLevel::debug, -1);
    cb::DeviceCatalog catalog;
    cb::storage::GroupCommitter committer(*store);
    cb::test::FakeMessageLink link;
    cb::NoPatientPresent nobody;
    boost::asio::io_context io;
    cb::IngestService ingest(
        io, log, catalog, committer, link, nobody, [] { return now; }, [] { return std::uint64_t{0}; });
    REQUIRE(ingest.restore(*store));
    // stranger's 7 is stored but 1..6 never came: no ack for it yet.
    CHECK(link.lines() == std::vector<std::string>{R"(cb/v1/dev/cuff-1/ack {"seq":2})"});
    CHECK(ingest.acks().waiting("cuff-1") == 1);
}

TEST_CASE("ack tracker: the prefix starts at the device's first sequence, never at the first one seen") {
    cb::AckTracker acks;
    // 1 may be the reading a crash lost after the broker's PUBACK: wait for it.
    CHECK_FALSE(acks.handled("d", 2).has_value());
    CHECK_FALSE(acks.handled("d", 3).has_value());
    CHECK_FALSE(acks.acknowledged("d").has_value());
    CHECK(acks.handled("d", 1) == 3U);
    CHECK_FALSE(acks.handled("d", 3).has_value());  // duplicate
    CHECK_FALSE(acks.handled("d", 5).has_value());
    CHECK(acks.handled("d", 4) == 5U);
    CHECK(acks.acknowledged("d") == 5U);
    // A device enrolled mid-life (catalog first_sequence).
    CHECK(acks.handled("e", 500, 500) == 500U);
    CHECK_FALSE(acks.acknowledged("f").has_value());
}

TEST_CASE("ingest: a burst is acknowledged with increasing acks ending at its last sequence") {
    Fixture f;
    for (std::uint64_t seq = 1; seq <= 200; ++seq)
        f.ingest->on_message({topic("cuff-1"), bp("cuff-1", seq)});
    f.io.restart();
    auto guard = boost::asio::make_work_guard(f.io);
    while (f.ingest->in_flight() > 0)
        f.io.run_one();
    REQUIRE_FALSE(f.link.published.empty());
    CHECK(f.link.published.back().payload == R"({"seq":200})");
    // Coalesced: never the same or an older ack twice in a row.
    std::uint64_t previous = 0;
    for (const auto& p : f.link.published) {
        const auto seq = std::stoull(p.payload.substr(7));
        CHECK(seq > previous);
        previous = seq;
    }
    CHECK(f.ingest->counters().stored == 200);
}

TEST_CASE("ack budget: grants up to the rate at once, then one per 1/rate, never more than saved up") {
    using namespace std::chrono_literals;
    cb::AckBudget budget(100);  // 100 per second, 100 saved up at most
    const cb::AckBudget::Clock::time_point t0 = cb::AckBudget::Clock::time_point{} + 1h;
    CHECK(budget.take(t0, 150) == 100U);
    CHECK(budget.take(t0, 1) == 0U);
    CHECK(budget.until_next(t0) > 9ms);
    CHECK(budget.until_next(t0) <= 11ms);
    CHECK(budget.take(t0 + 50ms, 10) == 5U);
    // A long pause saves up no more than one second's worth.
    CHECK(budget.take(t0 + 1h, 1000) == 100U);
    // A clock that goes back grants nothing new and does not underflow.
    CHECK(budget.take(t0, 1) == 0U);
    CHECK(budget.take(t0 + 10ms, 1) == 1U);
}

TEST_CASE("ingest: over the ack budget, waiting acks are merged and every device still gets its last one") {
    cb::IngestSettings settings;
    settings.max_acks_per_s = 10;
    Fixture f(settings);
    const int devices = 15;
    f.io.restart();
    auto guard = boost::asio::make_work_guard(f.io);
    // Three rounds: each device's readings 1, 2, 3, committed round by round.
    for (std::uint64_t seq = 1; seq <= 3; ++seq) {
        for (int d = 1; d <= devices; ++d) {
            const std::string device = "cuff-" + std::to_string(d);
            f.ingest->on_message({topic(device), bp(device, seq)});
        }
        while (f.ingest->counters().stored < seq * devices)
            f.io.run_one();
    }
    while (f.ingest->in_flight() > 0)
        f.io.run_one();
    CHECK(f.ingest->counters().stored == 45U);
    // Each device's last published ack is 3, and fewer acks than advances
    // were published: the budget (10, plus what refilled) merged the rest.
    std::map<std::string, std::string> last;
    for (const auto& p : f.link.published)
        last[p.topic] = p.payload;
    CHECK(last.size() == static_cast<std::size_t>(devices));
    for (const auto& [ack_topic, payload] : last)
        CHECK(payload == R"({"seq":3})");
    CHECK(f.link.published.size() < 45U);
}

TEST_CASE("ingest: the link stops receiving at max_in_flight uncommitted readings and resumes at half") {
    cb::IngestSettings settings;
    settings.max_in_flight = 16;
    Fixture f(settings);
    f.io.restart();
    auto guard = boost::asio::make_work_guard(f.io);
    for (std::uint64_t seq = 1; seq <= 15; ++seq)
        f.ingest->on_message({topic("cuff-1"), bp("cuff-1", seq)});
    CHECK(f.link.receiving);  // 15 waiting: below the limit (commits only complete on the loop)
    f.ingest->on_message({topic("cuff-1"), bp("cuff-1", 16)});
    CHECK_FALSE(f.link.receiving);
    CHECK(f.link.pauses == 1);
    while (f.ingest->in_flight() > 0)
        f.io.run_one();
    CHECK(f.link.receiving);
    CHECK(f.ingest->counters().stored == 16U);
    CHECK(f.link.published.back().payload == R"({"seq":16})");
}
