#include "drivers/storage/sqlite.hpp"

#include <sqlite3.h>

#include <climits>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

namespace cb::storage {

namespace {

Error sqlite_error(sqlite3* handle, std::string_view what) {
    const int code = handle != nullptr ? sqlite3_extended_errcode(handle) : SQLITE_ERROR;
    const char* message = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(code);
    // SQLITE_FULL is the disk; busy/locked is another process holding the file.
    const ErrorKind kind = (code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB ? ErrorKind::invalid_input
                           : (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED  ? ErrorKind::unavailable
                                                                                             : ErrorKind::io;
    return Error(kind, std::string(what) + ": " + message);
}

// SQLite keeps allocation statistics for sqlite3_status() under one global
// mutex taken by every sqlite3_malloc and sqlite3_free (SQLITE_CONFIG_MEMSTATUS,
// on by default). Nothing here reads them, and the mutex was about a tenth of
// the outbox thread's time in bench/forward: off, once, before the library
// initializes (sqlite3_config refuses afterwards, which would only keep the
// default).
void configure_library() {
    static std::once_flag once;
    std::call_once(once, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

// The write lock shared by this process's connections to the file at `path`
// (by canonical path); an in-memory database is its own file.
std::shared_ptr<WriterLock> writer_lock_of(const std::filesystem::path& path, bool in_memory) {
    if (in_memory)
        return std::make_shared<WriterLock>();
    static std::mutex registry_mutex;
    static std::map<std::string, std::weak_ptr<WriterLock>> registry;
    std::error_code error;
    const auto canonical = std::filesystem::weakly_canonical(path, error);
    const std::string key = error ? path.string() : canonical.string();
    std::lock_guard lock(registry_mutex);
    std::erase_if(registry, [](const auto& entry) { return entry.second.expired(); });
    auto& slot = registry[key];
    auto writer = slot.lock();
    if (!writer) {
        writer = std::make_shared<WriterLock>();
        slot = writer;
    }
    return writer;
}

}  // namespace

void Database::Closer::operator()(sqlite3* handle) const {
    sqlite3_close_v2(handle);
}

Database::~Database() = default;

Result<Database> Database::open(const std::filesystem::path& path, Durability durability, const std::string& vfs) {
    configure_library();
    sqlite3* handle = nullptr;
    const bool in_memory = durability == Durability::memory;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
                      (in_memory ? SQLITE_OPEN_MEMORY : 0);
    const std::string name = in_memory ? ":memory:" : path.string();
    const int rc = sqlite3_open_v2(name.c_str(), &handle, flags, vfs.empty() ? nullptr : vfs.c_str());
    Database database(handle, writer_lock_of(path, in_memory));
    if (rc != SQLITE_OK)
        return sqlite_error(handle, "open database " + name);
    if (!in_memory) {
        // The store holds health data: 0600, or not opened at all (SQLite
        // gives the -wal and -shm files the database's mode).
        std::error_code error;
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                     error);
        if (error)
            return fail(ErrorKind::io, "open database " + name + ": cannot set its mode to 0600: " + error.message());
    }
    sqlite3_busy_timeout(handle, 5000);
    // WAL: readers never block the writer. synchronous=FULL: a commit fsyncs
    // the WAL, so what we acknowledged survives power loss (NORMAL would not).
    const char* pragmas = in_memory ? "PRAGMA foreign_keys=ON;"
                                    : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
    CB_TRY(database.execute(pragmas, "configure database " + name));
    return database;
}

Result<void> Database::execute(std::string_view sql, std::string_view what) {
    const std::string text(sql);
    char* message = nullptr;
    if (sqlite3_exec(m_handle.get(), text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        Error error = sqlite_error(m_handle.get(), what);
        sqlite3_free(message);
        return error;
    }
    return {};
}

Result<Statement> Database::prepare(std::string_view sql, std::string_view what) {
    sqlite3_stmt* statement = nullptr;
    if (sql.size() > INT_MAX)
        return fail(ErrorKind::internal, std::string(what) + ": statement too long");
    if (sqlite3_prepare_v3(m_handle.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &statement, nullptr) != SQLITE_OK)
        return sqlite_error(m_handle.get(), what);
    return Statement(statement, std::string(what));
}

std::int64_t Database::changes() const {
    return sqlite3_changes64(m_handle.get());
}

std::int64_t Database::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(m_handle.get());
}

void Statement::Finalizer::operator()(sqlite3_stmt* statement) const {
    sqlite3_finalize(statement);
}

Statement::~Statement() = default;

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(m_statement.get(), index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
    sqlite3_bind_text64(m_statement.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}

Statement& Statement::bind_null(int index) {
    sqlite3_bind_null(m_statement.get(), index);
    return *this;
}

Result<Step> Statement::step() {
    const int rc = sqlite3_step(m_statement.get());
    if (rc == SQLITE_ROW)
        return Step::row;
    if (rc == SQLITE_DONE)
        return Step::done;
    return sqlite_error(sqlite3_db_handle(m_statement.get()), m_what);
}

void Statement::reset() {
    sqlite3_reset(m_statement.get());
    sqlite3_clear_bindings(m_statement.get());
}

std::int64_t Statement::column_int64(int index) const {
    return sqlite3_column_int64(m_statement.get(), index);
}

std::string Statement::column_text(int index) const {
    const unsigned char* text = sqlite3_column_text(m_statement.get(), index);
    const int size = sqlite3_column_bytes(m_statement.get(), index);
    if (text == nullptr || size <= 0)
        return {};
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

bool Statement::column_is_null(int index) const {
    return sqlite3_column_type(m_statement.get(), index) == SQLITE_NULL;
}

Result<WriteTransaction> WriteTransaction::begin(Database& database, std::string_view what, Priority priority) {
    WriterLock& writer = *database.m_writer;
    {
        std::unique_lock lock(writer.mutex);
        if (writer.held || (priority == Priority::normal && writer.first_waiting > 0)) {
            ++writer.waiting;
            if (priority == Priority::first) {
                ++writer.first_waiting;
                writer.released.wait(lock, [&] { return !writer.held; });
                --writer.first_waiting;
            } else {
                writer.released.wait(lock, [&] { return !writer.held && writer.first_waiting == 0; });
            }
            --writer.waiting;
        }
        writer.held = true;
    }
    WriteTransaction transaction(database);
    if (auto begun = database.execute("BEGIN IMMEDIATE", what); !begun) {
        transaction.m_open = false;  // nothing to roll back; the destructor releases the lock
        return std::move(begun).error();
    }
    return transaction;
}

WriteTransaction::WriteTransaction(WriteTransaction&& other) noexcept
    : m_database(other.m_database),
      m_locked(std::exchange(other.m_locked, false)),
      m_open(std::exchange(other.m_open, false)) {}

WriteTransaction::~WriteTransaction() {
    if (m_open)
        (void)m_database->execute("ROLLBACK", "roll back");
    release();
}

void WriteTransaction::release() noexcept {
    if (!m_locked)
        return;
    m_locked = false;
    WriterLock& writer = *m_database->m_writer;
    {
        std::lock_guard lock(writer.mutex);
        writer.held = false;
    }
    writer.released.notify_all();
}

Result<void> WriteTransaction::commit(std::string_view what) {
    CB_TRY(m_database->execute("COMMIT", what));
    m_open = false;
    release();
    return {};
}

Result<std::int64_t> schema_version(Database& database) {
    auto query = CB_TRY(database.prepare("PRAGMA user_version", "read schema version"));
    CB_TRY(query.step());
    return query.column_int64(0);
}

namespace {

// The rows foreign_key_check reports (none, when the rebuilt tables still
// reference what they did).
Result<std::int64_t> foreign_key_violations(Database& database, std::string_view what) {
    auto check = CB_TRY(database.prepare("PRAGMA foreign_key_check", what));
    std::int64_t violations = 0;
    while (CB_TRY(check.step()) == Step::row)
        ++violations;
    return violations;
}

Result<void> apply_step(Database& database, const Migration& step, std::int64_t version, const std::string& what) {
    auto transaction = CB_TRY(WriteTransaction::begin(database, what));
    auto applied = database.execute(step.sql, what);
    if (applied && step.rebuilds_tables) {
        if (auto violations = foreign_key_violations(database, what); !violations)
            applied = std::move(violations).error();
        else if (*violations != 0)
            applied = fail(ErrorKind::invalid_input, what + ": " + std::to_string(*violations) +
                                                         " rows would break a foreign key; nothing was changed");
    }
    if (applied)
        applied = database.execute("PRAGMA user_version=" + std::to_string(version), what);
    if (applied)
        applied = transaction.commit(what);
    return applied;  // not committed: rolled back as `transaction` ends
}

}  // namespace

Result<void> migrate(Database& database, std::span<const Migration> migrations) {
    const std::int64_t current = CB_TRY(schema_version(database));
    const auto target = static_cast<std::int64_t>(migrations.size());
    if (current > target)
        return fail(ErrorKind::unsupported, "database schema version " + std::to_string(current) +
                                                " is newer than this carebridged supports (" + std::to_string(target) +
                                                "): refusing to open it");
    for (std::int64_t version = current; version < target; ++version) {
        const Migration& step = migrations[static_cast<std::size_t>(version)];
        const std::string what =
            "migrate schema to version " + std::to_string(version + 1) + " (" + std::string(step.description) + ")";
        // foreign_keys is a no-op inside a transaction: set it before.
        if (step.rebuilds_tables)
            CB_TRY(database.execute("PRAGMA foreign_keys=OFF", what));
        auto applied = apply_step(database, step, version + 1, what);
        if (step.rebuilds_tables) {
            auto restored = database.execute("PRAGMA foreign_keys=ON", what);
            if (applied && !restored)
                applied = std::move(restored);
        }
        CB_TRY(std::move(applied));
    }
    return {};
}

}  // namespace cb::storage
