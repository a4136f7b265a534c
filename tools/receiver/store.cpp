#include "tools/receiver/store.hpp"

#include <array>

namespace cb::receiver {

namespace {

constexpr std::array<storage::Migration, 1> migrations{{
    {"receiver schema 1",
     R"(CREATE TABLE devices (
          id TEXT PRIMARY KEY,
          identifier TEXT NOT NULL UNIQUE,
          body TEXT NOT NULL,
          created_at INTEGER NOT NULL);
        CREATE TABLE observations (
          id TEXT PRIMARY KEY,
          identifier TEXT NOT NULL UNIQUE,
          patient TEXT NOT NULL,
          device TEXT NOT NULL REFERENCES devices(id),
          body TEXT NOT NULL,
          payload_sha256 TEXT NOT NULL,
          signature_valid INTEGER NOT NULL CHECK (signature_valid IN (0, 1)),
          signer TEXT,
          received_at INTEGER NOT NULL);
        CREATE INDEX observations_by_patient ON observations(patient, received_at);
        CREATE TABLE tokens (
          hash TEXT PRIMARY KEY,
          kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
          patient TEXT NOT NULL,
          expires_at INTEGER);)"},
}};

const char* kind_text(TokenKind kind) {
    return kind == TokenKind::access ? "access" : "refresh";
}

}  // namespace

Result<Store> Store::open(const std::filesystem::path& path, storage::Durability durability) {
    auto database = CB_TRY(storage::Database::open(path, durability));
    if (durability == storage::Durability::full)
        CB_TRY(database.execute("PRAGMA synchronous=NORMAL", "configure receiver database"));
    CB_TRY(storage::migrate(database, migrations));
    return Store(std::move(database));
}

Result<void> Store::begin() {
    return m_database.execute("BEGIN IMMEDIATE", "begin transaction");
}

Result<void> Store::commit() {
    return m_database.execute("COMMIT", "commit transaction");
}

void Store::rollback() {
    (void)m_database.execute("ROLLBACK", "roll back transaction");
}

Result<void> Store::add_token(TokenKind kind, const std::string& hash, const std::string& patient,
                              std::optional<std::int64_t> expires_at_us) {
    auto insert = CB_TRY(m_database.prepare(
        "INSERT INTO tokens (hash, kind, patient, expires_at) VALUES (?1, ?2, ?3, ?4)", "insert token"));
    insert.bind(1, hash).bind(2, std::string_view(kind_text(kind))).bind(3, patient);
    if (expires_at_us)
        insert.bind(4, *expires_at_us);
    else
        insert.bind_null(4);
    CB_TRY(insert.step());
    return {};
}

Result<std::optional<TokenRecord>> Store::find_token(TokenKind kind, const std::string& hash) {
    auto query = CB_TRY(
        m_database.prepare("SELECT patient, expires_at FROM tokens WHERE hash = ?1 AND kind = ?2", "find token"));
    query.bind(1, hash).bind(2, std::string_view(kind_text(kind)));
    if (CB_TRY(query.step()) == storage::Step::done)
        return std::optional<TokenRecord>{};
    TokenRecord record{query.column_text(0), std::nullopt};
    if (!query.column_is_null(1))
        record.expires_at_us = query.column_int64(1);
    return std::optional<TokenRecord>(std::move(record));
}

Result<void> Store::expire_access_tokens(std::int64_t now_us) {
    auto update = CB_TRY(m_database.prepare(
        "UPDATE tokens SET expires_at = ?1 WHERE kind = 'access' AND (expires_at IS NULL OR expires_at > ?1)",
        "expire access tokens"));
    update.bind(1, now_us);
    CB_TRY(update.step());
    return {};
}

Result<std::optional<StoredObservation>> Store::find_observation(const std::string& identifier) {
    auto query = CB_TRY(m_database.prepare(
        "SELECT id, patient, device, payload_sha256 FROM observations WHERE identifier = ?1", "find observation"));
    query.bind(1, identifier);
    if (CB_TRY(query.step()) == storage::Step::done)
        return std::optional<StoredObservation>{};
    return std::optional<StoredObservation>(
        StoredObservation{query.column_text(0), query.column_text(1), query.column_text(2), query.column_text(3)});
}

Result<Store::Stored> Store::put_device(const NewDevice& device) {
    auto query = CB_TRY(m_database.prepare("SELECT id FROM devices WHERE identifier = ?1", "find device"));
    query.bind(1, device.identifier);
    if (CB_TRY(query.step()) == storage::Step::row)
        return Stored{query.column_text(0), Created::existed};
    auto insert = CB_TRY(m_database.prepare(
        "INSERT INTO devices (id, identifier, body, created_at) VALUES (?1, ?2, ?3, strftime('%s','now') * 1000000)",
        "insert device"));
    insert.bind(1, device.id).bind(2, device.identifier).bind(3, device.body);
    CB_TRY(insert.step());
    return Stored{device.id, Created::created};
}

Result<void> Store::put_observation(const NewObservation& observation, const std::string& id,
                                    const std::string& device_id) {
    auto insert = CB_TRY(m_database.prepare(
        "INSERT INTO observations (id, identifier, patient, device, body, payload_sha256, signature_valid, signer, "
        "received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        "insert observation"));
    insert.bind(1, id)
        .bind(2, observation.identifier)
        .bind(3, observation.patient)
        .bind(4, device_id)
        .bind(5, observation.body)
        .bind(6, observation.payload_sha256)
        .bind(7, std::int64_t{observation.signature_valid ? 1 : 0});
    if (observation.signer)
        insert.bind(8, *observation.signer);
    else
        insert.bind_null(8);
    insert.bind(9, observation.received_at_us);
    CB_TRY(insert.step());
    return {};
}

Result<std::vector<std::string>> Store::observations_of(const std::string& patient, std::int64_t limit) {
    auto query = CB_TRY(m_database.prepare(
        "SELECT body FROM observations WHERE patient = ?1 ORDER BY received_at, rowid LIMIT ?2", "list observations"));
    query.bind(1, patient).bind(2, limit);
    std::vector<std::string> bodies;
    while (CB_TRY(query.step()) == storage::Step::row)
        bodies.push_back(query.column_text(0));
    return bodies;
}

Result<Counts> Store::counts() {
    auto query = CB_TRY(m_database.prepare("SELECT COUNT(*), COALESCE(SUM(signature_valid), 0) FROM observations",
                                           "count observations"));
    CB_TRY(query.step());
    return Counts{query.column_int64(0), query.column_int64(1)};
}

}  // namespace cb::receiver
