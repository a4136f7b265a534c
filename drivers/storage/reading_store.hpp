// Durable storage of device readings: the role interface and its SQLite
// implementation.
//
// Schema (version 1; see migrations in reading_store.cpp):
//
//   readings
//   | column         | type    | meaning                                                    |
//   |----------------|---------|------------------------------------------------------------|
//   | id             | INTEGER | row id, insertion order                                    |
//   | device_id      | TEXT    | the enrolled device's id (from the MQTT topic)             |
//   | sequence       | INTEGER | the device's monotonically increasing sequence number      |
//   | type           | TEXT    | measurement type ("blood_pressure", ...)                   |
//   | body           | TEXT    | the validated reading, normalised JSON                     |
//   | device_time_us | INTEGER | the device's timestamp, µs since the epoch (UTC)           |
//   | received_us    | INTEGER | when the gateway received it, µs since the epoch (UTC)     |
//   | disposition    | TEXT    | accepted / quarantined / held / rejected (daemon/ingest)   |
//   | reason         | TEXT    | why, when not accepted ("unknown-device", "out_of_range")  |
//   | patient        | TEXT    | the patient reference it belongs to, when known            |
//   UNIQUE (device_id, sequence): a resent reading is recognised, never stored twice.
//   For quarantined and rejected readings, body holds the payload as received.
//
// Schema version 2 adds the outbox to the national space and the pairings
// (drivers/storage/outbox.hpp): an accepted reading with a patient gets its
// outbox row, state 'queued', in the same transaction as the reading.
//
// A reading is durable when commit() returns: the transaction is in the WAL
// and fsynced (synchronous=FULL). Only then may the device be acknowledged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/storage/sqlite.hpp"
#include "protocol/result.hpp"

namespace cb::storage {

struct NewReading {
    std::string device_id;
    std::int64_t sequence = 0;
    std::string type;
    std::string body;
    std::int64_t device_time_us = 0;
    std::int64_t received_us = 0;
    std::string disposition = "accepted";
    std::string reason;   // empty: NULL
    std::string patient;  // empty: NULL
};

enum class CommitOutcome {
    stored,     // new: now durable
    duplicate,  // (device_id, sequence) was already stored: durable too, and not stored twice
};

class ReadingStore {
public:
    virtual ~ReadingStore() = default;

    // Stores the batch in one transaction (one fsync) and returns one outcome
    // per reading, in order. On error nothing of the batch is stored, and the
    // error names the cause (e.g. the disk is full).
    virtual Result<std::vector<CommitOutcome>> commit(std::span<const NewReading> batch) = 0;

    // The highest sequence stored for the device, nullopt if none.
    virtual Result<std::optional<std::int64_t>> highest_sequence(std::string_view device_id) = 0;

    virtual Result<std::int64_t> count() = 0;

    // Calls `visit` for every stored (device, sequence), ordered by device then
    // sequence: how the ingest service rebuilds its acknowledgement state.
    virtual Result<void> for_each_sequence(const std::function<void(std::string_view, std::int64_t)>& visit) = 0;

    // Bytes the store occupies on disk (database + WAL), for the disk quota.
    virtual Result<std::uint64_t> disk_usage() = 0;
};

// Each connection to the store checkpoints its WAL into the database once the
// WAL holds this many pages (32 MiB), not SQLite's 1000: a flood rewrites the
// same index leaves again and again, and a checkpoint copies each distinct
// page once, so fewer, larger checkpoints copy far fewer pages per reading
// (bench/README.md, session 9). Set on the ingest and the outbox connection:
// SQLite checkpoints from whichever connection commits past its own limit.
inline constexpr std::string_view wal_checkpoint_pragma = "PRAGMA wal_autocheckpoint=8192";

// The store's schema steps, oldest first (tests build older versions with a prefix).
std::span<const Migration> reading_store_migrations() noexcept;

class SqliteReadingStore final : public ReadingStore {
public:
    // Opens or creates `path` and migrates it to the current schema.
    static Result<SqliteReadingStore> open(const std::filesystem::path& path, Durability durability = Durability::full,
                                           const std::string& vfs = {});

    Result<std::vector<CommitOutcome>> commit(std::span<const NewReading> batch) override;
    Result<std::optional<std::int64_t>> highest_sequence(std::string_view device_id) override;
    Result<std::int64_t> count() override;
    Result<void> for_each_sequence(const std::function<void(std::string_view, std::int64_t)>& visit) override;
    Result<std::uint64_t> disk_usage() override;

private:
    SqliteReadingStore(std::filesystem::path path, Database database, Statement insert, Statement queue,
                       Statement highest, Statement count)
        : m_path(std::move(path)),
          m_database(std::move(database)),
          m_insert(std::move(insert)),
          m_queue(std::move(queue)),
          m_highest(std::move(highest)),
          m_count(std::move(count)) {}

    Result<std::vector<CommitOutcome>> insert_all(std::span<const NewReading> batch);

    std::filesystem::path m_path;
    Database m_database;
    Statement m_insert;
    Statement m_queue;
    Statement m_highest;
    Statement m_count;
};

}  // namespace cb::storage
