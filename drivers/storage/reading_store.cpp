#include "drivers/storage/reading_store.hpp"

#include <array>

namespace cb::storage {

namespace {

// migrations[i] takes the schema from version i to i + 1. Never edit a
// released step: append a new one.
constexpr std::array<Migration, 4> migrations{{
    {"readings with (device_id, sequence) unique",
     "CREATE TABLE readings ("
     "  id INTEGER PRIMARY KEY,"
     "  device_id TEXT NOT NULL,"
     "  sequence INTEGER NOT NULL CHECK (sequence >= 0),"
     "  type TEXT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  device_time_us INTEGER NOT NULL,"
     "  received_us INTEGER NOT NULL,"
     "  disposition TEXT NOT NULL CHECK (disposition IN ('accepted', 'quarantined', 'held', 'rejected')),"
     "  reason TEXT,"
     "  patient TEXT,"
     "  UNIQUE (device_id, sequence)"
     ");"},
    {"outbox for the national space, and patient pairings",
     "CREATE TABLE outbox ("
     "  reading_id INTEGER PRIMARY KEY REFERENCES readings (id),"
     "  state TEXT NOT NULL CHECK (state IN ('queued', 'in_flight', 'delivered', 'refused', 'held')),"
     "  reason TEXT,"
     "  server_id TEXT,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  updated_us INTEGER NOT NULL"
     ");"
     "CREATE INDEX outbox_pending ON outbox (reading_id) WHERE state IN ('queued', 'in_flight');"
     "CREATE TABLE pairings ("
     "  patient TEXT PRIMARY KEY,"
     "  id_pe TEXT NOT NULL,"
     "  access_token TEXT NOT NULL,"
     "  refresh_token TEXT NOT NULL,"
     "  access_expires_us INTEGER NOT NULL,"
     "  paired_us INTEGER NOT NULL"
     ");"
     "INSERT INTO outbox (reading_id, state, updated_us)"
     "  SELECT id, 'queued', received_us FROM readings WHERE disposition = 'accepted' AND patient IS NOT NULL;"},
    // The forwarder's query (state = 'queued', in reading order) cannot use a
    // partial index on "state IN (...)": it walked the whole outbox, delivered
    // rows included, at every window (quadratic in the backlog: bench/forward).
    {"outbox: one partial index per pending state",
     "DROP INDEX outbox_pending;"
     "CREATE INDEX outbox_queued ON outbox (reading_id) WHERE state = 'queued';"
     "CREATE INDEX outbox_in_flight ON outbox (reading_id) WHERE state = 'in_flight';"},
    // A CHECK (x IN ('a', 'b', 'c', ...)) builds a temporary b-tree of its
    // list at every row it checks (SQLite codes an IN of more than two
    // constants that way): 2-3 us per insert or update, twice per reading on
    // ingest and twice on forwarding (bench/README.md, session 7). The same
    // sets written as OR chains are plain comparisons. SQLite cannot alter a
    // CHECK, so both tables are rebuilt (same columns, rows and ids).
    {"CHECK constraints as comparisons, not IN lists",
     "CREATE TABLE readings_v4 ("
     "  id INTEGER PRIMARY KEY,"
     "  device_id TEXT NOT NULL,"
     "  sequence INTEGER NOT NULL CHECK (sequence >= 0),"
     "  type TEXT NOT NULL,"
     "  body TEXT NOT NULL,"
     "  device_time_us INTEGER NOT NULL,"
     "  received_us INTEGER NOT NULL,"
     "  disposition TEXT NOT NULL CHECK (disposition = 'accepted' OR disposition = 'quarantined'"
     "                                   OR disposition = 'held' OR disposition = 'rejected'),"
     "  reason TEXT,"
     "  patient TEXT,"
     "  UNIQUE (device_id, sequence)"
     ");"
     "INSERT INTO readings_v4 (id, device_id, sequence, type, body, device_time_us, received_us, disposition, reason,"
     "                         patient)"
     "  SELECT id, device_id, sequence, type, body, device_time_us, received_us, disposition, reason, patient"
     "  FROM readings ORDER BY id;"
     "CREATE TABLE outbox_v4 ("
     "  reading_id INTEGER PRIMARY KEY REFERENCES readings (id),"
     "  state TEXT NOT NULL CHECK (state = 'queued' OR state = 'in_flight' OR state = 'delivered'"
     "                             OR state = 'refused' OR state = 'held'),"
     "  reason TEXT,"
     "  server_id TEXT,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  updated_us INTEGER NOT NULL"
     ");"
     "INSERT INTO outbox_v4 (reading_id, state, reason, server_id, attempts, updated_us)"
     "  SELECT reading_id, state, reason, server_id, attempts, updated_us FROM outbox ORDER BY reading_id;"
     // Dropped before the renames: renaming a table that others reference
     // would rewrite their REFERENCES to the old name.
     "DROP TABLE outbox;"
     "DROP TABLE readings;"
     "ALTER TABLE readings_v4 RENAME TO readings;"
     "ALTER TABLE outbox_v4 RENAME TO outbox;"
     "CREATE INDEX outbox_queued ON outbox (reading_id) WHERE state = 'queued';"
     "CREATE INDEX outbox_in_flight ON outbox (reading_id) WHERE state = 'in_flight';",
     true},
}};

}  // namespace

std::span<const Migration> reading_store_migrations() noexcept {
    return migrations;
}

Result<SqliteReadingStore> SqliteReadingStore::open(const std::filesystem::path& path, Durability durability,
                                                    const std::string& vfs) {
    auto database = CB_TRY(Database::open(path, durability, vfs));
    // A page cache of 16 MiB instead of SQLite's 2: a flood from 1000 devices
    // touches a leaf of the (device_id, sequence) index per device per commit,
    // and with 2 MiB those leaves were read back from the OS at every commit
    // (measured in bench/README.md, session 8).
    CB_TRY(database.execute("PRAGMA cache_size=-16384", "size the page cache of " + path.string()));
    CB_TRY(database.execute(wal_checkpoint_pragma, "set the WAL checkpoint size of " + path.string()));
    CB_TRY(migrate(database, migrations));
    // ON CONFLICT DO NOTHING: a duplicate leaves changes() at 0, which is how
    // commit() tells "stored" from "duplicate" without a second query.
    auto insert =
        CB_TRY(database.prepare("INSERT INTO readings (device_id, sequence, type, body, device_time_us, received_us,"
                                " disposition, reason, patient)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, nullif(?8, ''), nullif(?9, ''))"
                                " ON CONFLICT (device_id, sequence) DO NOTHING",
                                "insert reading"));
    auto queue = CB_TRY(database.prepare("INSERT INTO outbox (reading_id, state, updated_us) VALUES (?1, 'queued', ?2)",
                                         "queue reading for upstream"));
    auto highest =
        CB_TRY(database.prepare("SELECT max(sequence) FROM readings WHERE device_id = ?1", "read highest sequence"));
    auto count = CB_TRY(database.prepare("SELECT count(*) FROM readings", "count readings"));
    return SqliteReadingStore(path, std::move(database), std::move(insert), std::move(queue), std::move(highest),
                              std::move(count));
}

Result<std::vector<CommitOutcome>> SqliteReadingStore::insert_all(std::span<const NewReading> batch) {
    std::vector<CommitOutcome> outcomes;
    outcomes.reserve(batch.size());
    for (const NewReading& reading : batch) {
        m_insert.reset();
        m_insert.bind(1, reading.device_id)
            .bind(2, reading.sequence)
            .bind(3, reading.type)
            .bind(4, reading.body)
            .bind(5, reading.device_time_us)
            .bind(6, reading.received_us)
            .bind(7, reading.disposition)
            .bind(8, reading.reason)
            .bind(9, reading.patient);
        CB_TRY(m_insert.step());
        const bool stored = m_database.changes() == 1;
        outcomes.push_back(stored ? CommitOutcome::stored : CommitOutcome::duplicate);
        if (stored && reading.disposition == "accepted" && !reading.patient.empty()) {
            // Queued for the national space in the same transaction: a stored
            // reading of a known patient is never forgotten by the forwarder.
            m_queue.reset();
            m_queue.bind(1, m_database.last_insert_rowid()).bind(2, reading.received_us);
            CB_TRY(m_queue.step());
        }
    }
    m_insert.reset();
    m_queue.reset();
    return outcomes;
}

Result<std::vector<CommitOutcome>> SqliteReadingStore::commit(std::span<const NewReading> batch) {
    // Devices wait for these commits: they go before the forwarder's writes.
    auto transaction =
        CB_TRY(WriteTransaction::begin(m_database, "begin commit of " + std::to_string(batch.size()) + " readings",
                                       WriteTransaction::Priority::first));
    auto outcomes = CB_TRY(insert_all(batch));
    // COMMIT is where the WAL is fsynced; if it fails, nothing is durable
    // (the transaction rolls back as it ends).
    CB_TRY(transaction.commit("commit " + std::to_string(batch.size()) + " readings"));
    return outcomes;
}

Result<std::optional<std::int64_t>> SqliteReadingStore::highest_sequence(std::string_view device_id) {
    m_highest.reset();
    m_highest.bind(1, device_id);
    CB_TRY(m_highest.step());
    std::optional<std::int64_t> highest;
    if (!m_highest.column_is_null(0))
        highest = m_highest.column_int64(0);
    m_highest.reset();
    return highest;
}

Result<std::int64_t> SqliteReadingStore::count() {
    m_count.reset();
    CB_TRY(m_count.step());
    const std::int64_t n = m_count.column_int64(0);
    m_count.reset();
    return n;
}

Result<void> SqliteReadingStore::for_each_sequence(const std::function<void(std::string_view, std::int64_t)>& visit) {
    // The UNIQUE index covers (device_id, sequence): an index-only scan, in order.
    auto scan = CB_TRY(
        m_database.prepare("SELECT device_id, sequence FROM readings ORDER BY device_id, sequence", "scan sequences"));
    for (;;) {
        if (CB_TRY(scan.step()) == Step::done)
            return {};
        visit(scan.column_text(0), scan.column_int64(1));
    }
}

Result<std::uint64_t> SqliteReadingStore::disk_usage() {
    std::uint64_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
        std::error_code error;
        const auto size = std::filesystem::file_size(m_path.string() + suffix, error);
        if (!error)
            total += size;
    }
    return total;
}

}  // namespace cb::storage
