// The outbox to the national space and the patient pairings, in the readings
// store (schema version 2, reading_store.hpp). The forwarder (daemon/forwarder)
// uses it from its own thread through its own connection.
//
//   outbox
//   | column     | meaning                                                         |
//   |------------|-----------------------------------------------------------------|
//   | reading_id | readings.id                                                     |
//   | state      | queued → in_flight → delivered / refused / held (below)         |
//   | reason     | refused: the platform's message; held: why ("not-paired",       |
//   |            | "consent-refused: ...")                                         |
//   | server_id  | delivered: the Observation id the platform gave                 |
//   | attempts   | requests sent for it                                            |
//   | updated_us | last change, µs since the epoch                                 |
//
//   | state     | meaning                                  | leaves it when                |
//   |-----------|------------------------------------------|-------------------------------|
//   | queued    | waiting to be sent                       | the forwarder takes it        |
//   | in_flight | sent, no final answer recorded yet       | answer; at start → queued     |
//   | delivered | the platform holds it (2xx)              | never                         |
//   | refused   | the platform refused it (409/422)        | never (an operator decides)   |
//   | held      | not sent: no pairing, consent refused    | pairing made → queued         |
//
//   pairings: patient (readings.patient) → idPe, access and refresh tokens.
//   Tokens are secrets: never logged; the file is mode 0600.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/storage/sqlite.hpp"
#include "protocol/result.hpp"

namespace cb::storage {

enum class OutboxState { queued, in_flight, delivered, refused, held };
const char* to_string(OutboxState state) noexcept;

struct OutboxItem {
    std::int64_t reading_id = 0;
    std::string device_id;
    std::int64_t sequence = 0;
    std::string type;
    std::string body;  // the reading as to_storage_json wrote it
    std::string patient;
    std::int64_t attempts = 0;
};

struct OutboxTransition {
    std::int64_t reading_id = 0;
    OutboxState state = OutboxState::queued;
    std::string reason;      // refused, held
    std::string server_id;   // delivered
    bool attempted = false;  // one more request was sent for it
};

struct Pairing {
    std::string patient;  // the local patient reference
    std::string id_pe;    // the patient's account id in the national space
    std::string access_token;
    std::string refresh_token;
    std::int64_t access_expires_us = 0;
    std::int64_t paired_us = 0;
};

class Outbox {
public:
    // Opens the readings store's file, creating and migrating it as
    // SqliteReadingStore::open does.
    static Result<Outbox> open(const std::filesystem::path& path);

    // Up to `limit` queued items with reading_id > after_id, in reading order.
    Result<std::vector<OutboxItem>> next(std::int64_t after_id, std::size_t limit);
    // The SQL next() runs; it must search the partial index of queued rows
    // (a test checks its plan).
    static const char* const next_query;
    // Applies the transitions in one transaction.
    Result<void> record(std::span<const OutboxTransition> transitions, std::int64_t now_us);
    // At start: whatever was in flight when the process stopped is queued again
    // (the platform de-duplicates by Observation.identifier). Returns how many.
    Result<std::int64_t> resume_in_flight(std::int64_t now_us);
    // Held items of `patient` (every patient if empty) whose reason starts with
    // `reason` are queued again. Returns how many.
    Result<std::int64_t> requeue_held(std::string_view patient, std::string_view reason, std::int64_t now_us);

    Result<std::optional<Pairing>> pairing(std::string_view patient);
    Result<void> save_pairing(const Pairing& pairing);

    // Items per state, and per "held: <reason>" / "refused: <reason>".
    Result<std::map<std::string, std::int64_t>> counts();

private:
    explicit Outbox(Database database) : m_database(std::move(database)) {}
    // Prepared on first use, kept: the forwarder runs these for every batch.
    Result<Statement*> cached(std::optional<Statement>& slot, std::string_view sql, std::string_view what);

    Database m_database;
    std::optional<Statement> m_next;
    std::optional<Statement> m_update;
    std::optional<Statement> m_pairing;
};

}  // namespace cb::storage
