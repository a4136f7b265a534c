// Storage: schema migrations, durable de-duplicated commits, group commit,
// and what happens when the disk fails at the Nth write or fsync.
#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "drivers/storage/group_commit.hpp"
#include "drivers/storage/reading_store.hpp"
#include "drivers/storage/sqlite.hpp"
#include "tests/support/faulty_vfs.hpp"
#include "tests/support/temp_dir.hpp"

using cb::storage::CommitOutcome;
using cb::storage::NewReading;
using cb::storage::SqliteReadingStore;

namespace {

NewReading reading(const std::string& device, std::int64_t sequence) {
    NewReading r;
    r.device_id = device;
    r.sequence = sequence;
    r.type = "heart_rate";
    r.body = R"({"value":72})";
    r.device_time_us = 1'700'000'000'000'000 + sequence;
    r.received_us = 1'700'000'000'000'000;
    r.patient = "patient-1";
    return r;
}

SqliteReadingStore open_store(const cb::test::TempDir& dir, const std::string& vfs = {}) {
    auto store = SqliteReadingStore::open(dir / "readings.db", cb::storage::Durability::full, vfs);
    if (!store)
        FAIL(store.error().message());
    return std::move(store).value();
}

// A store at schema version 3 (before the rebuild of schema 4), with `sql` run on it.
void make_version_3_store(const std::filesystem::path& path, const std::string& sql, const std::string& what) {
    auto database = cb::storage::Database::open(path);
    REQUIRE(database);
    REQUIRE(cb::storage::migrate(*database, cb::storage::reading_store_migrations().first(3)));
    REQUIRE(database->execute(sql, what));
}

}  // namespace

TEST_CASE("storage: a new database is migrated, WAL and synchronous FULL, mode 0600") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    auto database = cb::storage::Database::open(dir / "readings.db");
    REQUIRE(database);
    CHECK(cb::storage::schema_version(*database).value() == 4);
    auto mode = database->prepare("PRAGMA journal_mode", "journal mode");
    REQUIRE(mode);
    REQUIRE(mode->step().value() == cb::storage::Step::row);
    CHECK(mode->column_text(0) == "wal");
    auto sync = database->prepare("PRAGMA synchronous", "synchronous");
    REQUIRE(sync->step().value() == cb::storage::Step::row);
    CHECK(sync->column_int64(0) == 2);  // FULL
    CHECK((std::filesystem::status(dir / "readings.db").permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
}

TEST_CASE("storage: a database newer than the code is refused, untouched") {
    cb::test::TempDir dir;
    {
        auto database = cb::storage::Database::open(dir / "readings.db");
        REQUIRE(database);
        REQUIRE(database->execute("PRAGMA user_version=7", "set version"));
    }
    auto store = SqliteReadingStore::open(dir / "readings.db");
    REQUIRE_FALSE(store);
    CHECK(store.error().message() ==
          "database schema version 7 is newer than this carebridged supports (4): refusing to open it");
}

TEST_CASE("storage: a version 3 store is rebuilt with the same rows, ids, outbox states and pairings") {
    cb::test::TempDir dir;
    const auto path = dir / "readings.db";
    make_version_3_store(
        path,
        "INSERT INTO readings VALUES (7, 'cuff-1', 1, 'heart_rate', '{}', 1, 2, 'accepted', NULL, 'p');"
        "INSERT INTO readings VALUES (9, 'cuff-1', 2, 'heart_rate', '{}', 1, 2, 'held', 'no-patient', NULL);"
        "INSERT INTO outbox VALUES (7, 'delivered', NULL, 'Observation/1', 1, 3);"
        "INSERT INTO pairings VALUES ('p', 'idpe', 'a', 'r', 4, 5);",
        "fill a version 3 store");
    auto store = open_store(dir);
    auto database = cb::storage::Database::open(path);
    REQUIRE(database);
    CHECK(cb::storage::schema_version(*database).value() == 4);
    {  // statements in a scope: a statement left on a row would hold its read snapshot
        auto rows = database->prepare(
            "SELECT group_concat(id || ':' || disposition || ':' || coalesce(reason, '-'), ' ') FROM readings", "rows");
        REQUIRE(rows->step().value() == cb::storage::Step::row);
        CHECK(rows->column_text(0) == "7:accepted:- 9:held:no-patient");
        auto outbox = database->prepare("SELECT reading_id, state, server_id, attempts FROM outbox", "outbox");
        REQUIRE(outbox->step().value() == cb::storage::Step::row);
        CHECK(outbox->column_int64(0) == 7);
        CHECK(outbox->column_text(1) == "delivered");
        CHECK(outbox->column_text(2) == "Observation/1");
        CHECK(outbox->column_int64(3) == 1);
        auto pairing = database->prepare("SELECT id_pe FROM pairings WHERE patient = 'p'", "pairing");
        REQUIRE(pairing->step().value() == cb::storage::Step::row);
        CHECK(pairing->column_text(0) == "idpe");
    }
    // The constraints hold as before: unique (device, sequence), the value
    // sets, and the outbox's reference to its reading.
    CHECK(store.commit(std::vector<NewReading>{reading("cuff-1", 2), reading("cuff-1", 3)}).value() ==
          std::vector<CommitOutcome>{CommitOutcome::duplicate, CommitOutcome::stored});
    auto bad_state = database->execute("UPDATE outbox SET state = 'lost' WHERE reading_id = 7", "bad state");
    REQUIRE_FALSE(bad_state);
    CHECK_THAT(bad_state.error().message(), Catch::Contains("CHECK constraint failed"));
    auto bad_disposition = database->execute("UPDATE readings SET disposition = 'x' WHERE id = 9", "bad disposition");
    REQUIRE_FALSE(bad_disposition);
    CHECK_THAT(bad_disposition.error().message(), Catch::Contains("CHECK constraint failed"));
    auto orphan = database->execute("INSERT INTO outbox VALUES (999, 'queued', NULL, NULL, 0, 1)", "orphan");
    REQUIRE_FALSE(orphan);
    CHECK_THAT(orphan.error().message(), Catch::Contains("FOREIGN KEY constraint failed"));
}

TEST_CASE("storage: a rebuild that would break a foreign key is refused, and nothing changes") {
    cb::test::TempDir dir;
    const auto path = dir / "readings.db";
    // An outbox row whose reading is gone (foreign keys were off when it was written).
    make_version_3_store(path, "PRAGMA foreign_keys=OFF; INSERT INTO outbox VALUES (5, 'queued', NULL, NULL, 0, 1);",
                         "write an orphan");
    auto store = SqliteReadingStore::open(path);
    REQUIRE_FALSE(store);
    CHECK_THAT(store.error().message(),
               Catch::Contains("migrate schema to version 4") && Catch::Contains("1 rows would break a foreign key"));
    auto database = cb::storage::Database::open(path);
    REQUIRE(database);
    CHECK(cb::storage::schema_version(*database).value() == 3);
    auto foreign_keys = database->prepare("PRAGMA foreign_keys", "foreign keys");
    REQUIRE(foreign_keys->step().value() == cb::storage::Step::row);
    CHECK(foreign_keys->column_int64(0) == 1);
}

TEST_CASE("storage: no statement of a reading's way builds a temporary table for a CHECK") {
    // An IN list of more than two constants in a CHECK is coded as a
    // temporary b-tree built at every row checked (2-3 us each: bench/README.md).
    cb::test::TempDir dir;
    auto store = open_store(dir);
    auto database = cb::storage::Database::open(dir / "readings.db");
    REQUIRE(database);
    for (const char* sql :
         {"INSERT INTO readings (device_id, sequence, type, body, device_time_us, received_us, disposition)"
          " VALUES ('d', 1, 't', '{}', 1, 1, 'accepted')",
          "INSERT INTO outbox (reading_id, state, updated_us) VALUES (1, 'queued', 1)",
          "UPDATE outbox SET state = 'delivered', updated_us = 2 WHERE reading_id = 1"}) {
        auto program = database->prepare(std::string("EXPLAIN ") + sql, "explain");
        REQUIRE(program);
        std::string opcodes;
        while (program->step().value() == cb::storage::Step::row)
            opcodes += program->column_text(1) + " ";
        INFO(sql);
        CHECK(opcodes.find("OpenEphemeral") == std::string::npos);
    }
}

TEST_CASE("storage: a file that is not a database is reported, not overwritten") {
    cb::test::TempDir dir;
    const auto path = dir.write("readings.db", std::string(4096, 'x'));
    auto store = SqliteReadingStore::open(path);
    REQUIRE_FALSE(store);
    CHECK_THAT(store.error().message(), Catch::Contains("file is not a database"));
    CHECK(std::filesystem::file_size(path) == 4096);
}

TEST_CASE("storage: (device, sequence) is stored once, a resend is a duplicate") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    const std::vector<NewReading> first{reading("cuff-1", 1), reading("cuff-1", 2), reading("scale-1", 1)};
    CHECK(store.commit(first).value() ==
          std::vector<CommitOutcome>{CommitOutcome::stored, CommitOutcome::stored, CommitOutcome::stored});
    const std::vector<NewReading> resend{reading("cuff-1", 2), reading("cuff-1", 3), reading("cuff-1", 3)};
    CHECK(store.commit(resend).value() ==
          std::vector<CommitOutcome>{CommitOutcome::duplicate, CommitOutcome::stored, CommitOutcome::duplicate});
    CHECK(store.count().value() == 4);
    CHECK(store.highest_sequence("cuff-1").value() == 3);
    CHECK(store.highest_sequence("scale-1").value() == 1);
    CHECK_FALSE(store.highest_sequence("unknown").value().has_value());
}

TEST_CASE("storage: a batch is atomic: one bad reading stores none of it") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    const std::vector<NewReading> batch{reading("cuff-1", 1), reading("cuff-1", -5)};
    auto outcome = store.commit(batch);
    REQUIRE_FALSE(outcome);
    CHECK_THAT(outcome.error().message(), Catch::Contains("CHECK constraint failed"));
    CHECK(store.count().value() == 0);
    // The store is usable afterwards.
    CHECK(store.commit(std::vector<NewReading>{reading("cuff-1", 1)}).value().front() == CommitOutcome::stored);
}

TEST_CASE("storage: data survives closing and reopening") {
    cb::test::TempDir dir;
    {
        auto store = open_store(dir);
        REQUIRE(store.commit(std::vector<NewReading>{reading("a", 1), reading("a", 2)}));
    }
    auto store = open_store(dir);
    CHECK(store.count().value() == 2);
    CHECK(store.disk_usage().value() > 0);
}

TEST_CASE("storage: the Nth write fails (disk full): nothing half-stored, nothing lost, nothing twice") {
    cb::test::FaultyVfs vfs;
    cb::test::TempDir dir;
    auto store = open_store(dir, cb::test::FaultyVfs::name);
    REQUIRE(store.commit(std::vector<NewReading>{reading("a", 1)}));

    // Fail at each write position of a commit in turn: every attempt either
    // stores the whole batch or nothing, and a retry after healing completes it.
    for (std::int64_t successes = 0; successes < 4; ++successes) {
        const std::int64_t base = 100 * (successes + 1);
        const std::vector<NewReading> batch{reading("a", base), reading("a", base + 1), reading("b", base)};
        const std::int64_t before = store.count().value();
        vfs.fail_writes_after(successes);
        auto failed = store.commit(batch);
        vfs.heal();
        const std::int64_t after = store.count().value();
        if (failed) {
            CHECK(after == before + 3);  // the fault came after the commit point
            continue;
        }
        CHECK_THAT(failed.error().message(), Catch::Contains("full"));
        CHECK(after == before);  // atomic: none of the batch
        auto retried = store.commit(batch);
        REQUIRE(retried);
        CHECK(retried.value() ==
              std::vector<CommitOutcome>{CommitOutcome::stored, CommitOutcome::stored, CommitOutcome::stored});
        CHECK(store.count().value() == before + 3);
    }
    CHECK(vfs.failures() > 0);
}

TEST_CASE("storage: a failed fsync at commit reports failure and the retry stores exactly once") {
    cb::test::FaultyVfs vfs;
    cb::test::TempDir dir;
    auto store = open_store(dir, cb::test::FaultyVfs::name);
    const std::vector<NewReading> batch{reading("a", 1), reading("a", 2)};
    vfs.fail_syncs_after(0);
    auto failed = store.commit(batch);
    vfs.heal();
    REQUIRE_FALSE(failed);
    CHECK(vfs.failures() > 0);
    // Not acknowledged, so the device resends: each reading ends up stored once,
    // whether or not the failed commit had reached the WAL.
    auto retried = store.commit(batch);
    REQUIRE(retried);
    CHECK(store.count().value() == 2);
}

TEST_CASE("group commit: every submission is answered, stored once, in fewer transactions under load") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    std::mutex mutex;
    std::vector<CommitOutcome> outcomes;
    constexpr int producers = 4;
    constexpr int per_producer = 500;
    {
        cb::storage::GroupCommitter committer(store);
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (int i = 1; i <= per_producer; ++i)
                    committer.submit(reading("dev-" + std::to_string(p), i),
                                     [&](const cb::Result<CommitOutcome>& result) {
                                         std::lock_guard lock(mutex);
                                         outcomes.push_back(result.value());
                                     });
            });
        }
        for (auto& thread : threads)
            thread.join();
        committer.stop();
        const auto stats = committer.stats();
        CHECK(stats.readings == producers * per_producer);
        CHECK(stats.failed_transactions == 0);
        CHECK(stats.transactions <= stats.readings);
    }
    CHECK(outcomes.size() == producers * per_producer);
    CHECK(std::count(outcomes.begin(), outcomes.end(), CommitOutcome::stored) == producers * per_producer);
    CHECK(store.count().value() == producers * per_producer);
}

TEST_CASE("group commit: a failed transaction fails each of its readings, later ones succeed") {
    cb::test::FaultyVfs vfs;
    cb::test::TempDir dir;
    auto store = open_store(dir, cb::test::FaultyVfs::name);
    cb::storage::GroupCommitter committer(store);
    vfs.fail_syncs_after(0);
    std::optional<cb::Result<CommitOutcome>> first;
    std::mutex mutex;
    std::condition_variable done;
    committer.submit(reading("a", 1), [&](const cb::Result<CommitOutcome>& result) {
        std::lock_guard lock(mutex);
        first = result;
        done.notify_one();
    });
    {
        std::unique_lock lock(mutex);
        done.wait(lock, [&] { return first.has_value(); });
    }
    REQUIRE_FALSE(first->has_value());
    vfs.heal();
    std::optional<cb::Result<CommitOutcome>> second;
    committer.submit(reading("a", 1), [&](const cb::Result<CommitOutcome>& result) {
        std::lock_guard lock(mutex);
        second = result;
        done.notify_one();
    });
    committer.stop();
    REQUIRE(second.has_value());
    REQUIRE(second->has_value());
    CHECK(committer.stats().failed_transactions == 1);
    CHECK(store.count().value() == 1);
}

TEST_CASE("group commit: submissions after stop are refused through their callback") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    cb::storage::GroupCommitter committer(store);
    committer.stop();
    std::optional<std::string> error;
    committer.submit(reading("a", 1), [&](const cb::Result<CommitOutcome>& result) {
        if (!result)
            error = result.error().message();
    });
    CHECK(error == "storage is stopping: reading not stored");
}

TEST_CASE("storage: sequences are visited in (device, sequence) order, with their disposition kept") {
    cb::test::TempDir dir;
    auto store = open_store(dir);
    auto rejected = reading("b", 5);
    rejected.disposition = "rejected";
    rejected.reason = "out_of_range";
    auto bad = reading("b", 6);
    bad.disposition = "lost";  // not a disposition
    REQUIRE_FALSE(store.commit(std::vector<NewReading>{bad}));
    REQUIRE(store.commit(std::vector<NewReading>{reading("b", 7), rejected, reading("a", 2), reading("a", 1)}));
    std::vector<std::pair<std::string, std::int64_t>> seen;
    REQUIRE(store.for_each_sequence(
        [&](std::string_view device, std::int64_t sequence) { seen.emplace_back(std::string(device), sequence); }));
    CHECK(seen == std::vector<std::pair<std::string, std::int64_t>>{{"a", 1}, {"a", 2}, {"b", 5}, {"b", 7}});
}

namespace {

// A connection to `path` whose writes fail at once if SQLite finds the file
// locked: only WriteTransaction's own lock can make it wait.
cb::storage::Database open_impatient(const std::filesystem::path& path) {
    auto database = cb::storage::Database::open(path);
    if (!database)
        FAIL(database.error().message());
    sqlite3_busy_timeout(database->handle(), 0);
    return std::move(database).value();
}

// Begins a write transaction of `priority`, inserts `who`, commits; the
// outcome (or the first error) in `result`, `done` set at the end.
void write_row(cb::storage::Database& database, const std::string& who,
               cb::storage::WriteTransaction::Priority priority, std::optional<cb::Result<void>>& result,
               std::atomic<bool>& done) {
    auto transaction = cb::storage::WriteTransaction::begin(database, who + " begins", priority);
    if (!transaction) {
        result = transaction.error();
    } else {
        auto inserted = database.execute("INSERT INTO t VALUES ('" + who + "')", who + " inserts");
        result = inserted ? transaction->commit(who + " commits") : inserted;
    }
    done = true;
}

// A thread writing a row through write_row, and its outcome.
struct Writer {
    std::optional<cb::Result<void>> wrote;
    std::atomic<bool> done{false};
    std::thread thread;

    Writer(cb::storage::Database& database, const std::string& who, cb::storage::WriteTransaction::Priority priority)
        : thread([this, &database, who, priority] { write_row(database, who, priority, wrote, done); }) {}
    // Until `waiting` writers wait for the lock of `database`'s file (they say
    // so themselves), or this one has already finished (SQLITE_BUSY: no lock
    // between the connections).
    void wait_until_waiting(const cb::storage::Database& database, int waiting) const {
        while (database.writers_waiting() < waiting && !done)
            std::this_thread::yield();
    }
};

std::string rows_of(cb::storage::Database& database) {
    auto rows = database.prepare("SELECT group_concat(who, ',') FROM (SELECT who FROM t ORDER BY rowid)", "read");
    if (!rows || rows->step().value() != cb::storage::Step::row)
        FAIL("cannot read t");
    return rows->column_text(0);
}

}  // namespace

TEST_CASE("storage: connections of one process to a store write one after the other, without SQLite's busy wait") {
    using Priority = cb::storage::WriteTransaction::Priority;
    cb::test::TempDir dir;
    auto first = open_impatient(dir / "readings.db");
    auto second = open_impatient(dir / "readings.db");
    REQUIRE(first.execute("CREATE TABLE t (who TEXT)", "create"));

    auto writing = cb::storage::WriteTransaction::begin(first, "first begins");
    REQUIRE(writing);
    REQUIRE(first.execute("INSERT INTO t VALUES ('first')", "first inserts"));
    Writer other(second, "second", Priority::normal);
    other.wait_until_waiting(first, 1);
    REQUIRE(writing->commit("first commits"));
    other.thread.join();
    REQUIRE(other.wrote.has_value());
    INFO((*other.wrote ? std::string() : other.wrote->error().message()));
    REQUIRE(*other.wrote);
    CHECK(rows_of(first) == "first,second");
    CHECK(first.writers_waiting() == 0);
}

TEST_CASE("storage: a writer of priority first goes before a normal writer that waited longer") {
    using Priority = cb::storage::WriteTransaction::Priority;
    cb::test::TempDir dir;
    auto holder = open_impatient(dir / "readings.db");
    auto forwarder = open_impatient(dir / "readings.db");
    auto ingest = open_impatient(dir / "readings.db");
    REQUIRE(holder.execute("CREATE TABLE t (who TEXT)", "create"));

    auto writing = cb::storage::WriteTransaction::begin(holder, "holder begins");
    REQUIRE(writing);
    REQUIRE(holder.execute("INSERT INTO t VALUES ('holder')", "holder inserts"));
    Writer normal(forwarder, "forwarder", Priority::normal);
    normal.wait_until_waiting(holder, 1);
    Writer urgent(ingest, "ingest", Priority::first);
    urgent.wait_until_waiting(holder, 2);
    REQUIRE(writing->commit("holder commits"));
    normal.thread.join();
    urgent.thread.join();
    REQUIRE(normal.wrote.has_value());
    REQUIRE(urgent.wrote.has_value());
    REQUIRE(*normal.wrote);
    REQUIRE(*urgent.wrote);
    CHECK(rows_of(holder) == "holder,ingest,forwarder");
}

TEST_CASE("storage: a write transaction ended without commit is rolled back and frees the lock") {
    cb::test::TempDir dir;
    auto database = cb::storage::Database::open(dir / "readings.db");
    REQUIRE(database);
    REQUIRE(database->execute("CREATE TABLE t (who TEXT)", "create"));
    {
        auto transaction = cb::storage::WriteTransaction::begin(*database, "begin");
        REQUIRE(transaction);
        REQUIRE(database->execute("INSERT INTO t VALUES ('dropped')", "insert"));
    }
    auto again = cb::storage::WriteTransaction::begin(*database, "begin again");  // would wait forever if still held
    REQUIRE(again);
    REQUIRE(database->execute("INSERT INTO t VALUES ('kept')", "insert"));
    REQUIRE(again->commit("commit"));
    CHECK(rows_of(*database) == "kept");
}
