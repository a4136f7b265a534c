// A thin, owning wrapper over SQLite 3: a connection, prepared statements and
// transactions, each failure an Error that names what was being done and
// SQLite's own message ("insert reading: UNIQUE constraint failed: ...").
//
// One connection is used by one thread at a time (SQLite's "multi-thread"
// mode); the storage thread owns it. Connections of this process to the same
// file write one at a time through WriteTransaction (below).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace cb::storage {

enum class Durability {
    full,    // journal_mode=WAL, synchronous=FULL: a committed transaction survives power loss
    memory,  // in-memory database, for unit tests of queries
};

class Statement;

// The write lock of one database file within this process (see
// WriteTransaction), shared by every connection of the process to that file.
struct WriterLock {
    std::mutex mutex;
    std::condition_variable released;
    bool held = false;            // guarded by mutex
    int first_waiting = 0;        // writers of Priority::first waiting; guarded by mutex
    std::atomic<int> waiting{0};  // every writer waiting, for tests and diagnostics
};

class Database {
public:
    // Opens (creating if needed) the database file, mode 0600, with foreign
    // keys on and a busy timeout. `vfs` names a registered SQLite VFS (empty:
    // the default; tests use a fault-injecting one). Returns the error naming the path.
    static Result<Database> open(const std::filesystem::path& path, Durability durability = Durability::full,
                                 const std::string& vfs = {});

    Database(Database&&) noexcept = default;
    Database& operator=(Database&&) noexcept = default;
    ~Database();

    // Runs one or more statements without results. `what` names the step in errors.
    Result<void> execute(std::string_view sql, std::string_view what);
    Result<Statement> prepare(std::string_view sql, std::string_view what);

    // Rows changed by the last INSERT/UPDATE/DELETE.
    std::int64_t changes() const;
    // The rowid of the last successful INSERT on this connection.
    std::int64_t last_insert_rowid() const;
    sqlite3* handle() const noexcept { return m_handle.get(); }
    // How many threads wait for this file's write lock in WriteTransaction::begin.
    int writers_waiting() const noexcept { return m_writer->waiting.load(); }

private:
    friend class WriteTransaction;
    struct Closer {
        void operator()(sqlite3* handle) const;
    };
    Database(sqlite3* handle, std::shared_ptr<WriterLock> writer) : m_handle(handle), m_writer(std::move(writer)) {}
    std::unique_ptr<sqlite3, Closer> m_handle;
    std::shared_ptr<WriterLock> m_writer;
};

// A write transaction (BEGIN IMMEDIATE) under the process's write lock for
// the file. SQLite lets one connection write at a time and makes the others
// poll in its busy handler, sleeping 1, 2, 5, 10 ... 25 ms between tries
// (bench/ingest --catch-up: 646 sleeps, 2.5 s, in one catch-up). Connections
// of one process wait here instead and write as soon as the lock is free; a
// writer of Priority::first (ingest's commits, which devices wait for) goes
// before any waiting writer of Priority::normal (the forwarder's outcomes).
// The busy handler remains for other processes. Destroyed without commit(),
// it rolls back.
class WriteTransaction {
public:
    enum class Priority { normal, first };
    static Result<WriteTransaction> begin(Database& database, std::string_view what,
                                          Priority priority = Priority::normal);
    WriteTransaction(WriteTransaction&& other) noexcept;
    WriteTransaction& operator=(WriteTransaction&&) = delete;
    WriteTransaction(const WriteTransaction&) = delete;
    WriteTransaction& operator=(const WriteTransaction&) = delete;
    ~WriteTransaction();

    // COMMIT; if it fails, the transaction stays open and rolls back when
    // destroyed.
    Result<void> commit(std::string_view what);

private:
    explicit WriteTransaction(Database& database) : m_database(&database) {}
    void release() noexcept;
    Database* m_database;
    bool m_locked = true;  // holds the WriterLock
    bool m_open = true;    // BEGIN done, neither COMMIT nor ROLLBACK yet
};

enum class Step { row, done };

class Statement {
public:
    Statement(Statement&&) noexcept = default;
    Statement& operator=(Statement&&) noexcept = default;
    ~Statement();

    // Parameters are 1-based, as in SQL (?1, ?2, ...).
    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view text);
    Statement& bind_null(int index);

    Result<Step> step();
    // Resets for another execution and clears the bindings.
    void reset();

    std::int64_t column_int64(int index) const;
    std::string column_text(int index) const;
    bool column_is_null(int index) const;

private:
    friend class Database;
    struct Finalizer {
        void operator()(sqlite3_stmt* statement) const;
    };
    Statement(sqlite3_stmt* statement, std::string what) : m_statement(statement), m_what(std::move(what)) {}
    std::unique_ptr<sqlite3_stmt, Finalizer> m_statement;
    std::string m_what;
};

// A schema step: migrations[i] brings the schema from version i to i + 1.
struct Migration {
    std::string_view description;
    std::string_view sql;
    // The step rebuilds tables (create the new one, copy, drop the old one,
    // rename the new one): SQLite's documented way to change what ALTER TABLE
    // cannot, such as a CHECK constraint. It runs with foreign keys off, as
    // that procedure requires, and commits only if foreign_key_check finds
    // nothing; they are on again afterwards.
    bool rebuilds_tables = false;
};

// Brings the database to migrations.size() (PRAGMA user_version), each step in
// its own transaction. A database newer than the code is refused, untouched.
Result<void> migrate(Database& database, std::span<const Migration> migrations);

Result<std::int64_t> schema_version(Database& database);

}  // namespace cb::storage
