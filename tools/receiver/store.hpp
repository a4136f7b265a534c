// The receiver's SQLite store (drivers/storage's Database). Tokens are kept as
// the SHA-256 of their text, never the text itself.
//
//   | table        | column          | meaning                                          |
//   |--------------|-----------------|--------------------------------------------------|
//   | devices      | id              | server id (UUID), "Device/<id>"                  |
//   |              | identifier      | "<system>|<value>", unique: the conditional create |
//   |              | body            | the Device resource as stored (server id)        |
//   |              | created_at      | unix microseconds                                |
//   | observations | id              | server id (UUID), "Observation/<id>"             |
//   |              | identifier      | "<system>|<value>", unique: the conditional create |
//   |              | patient         | the subject's idPe                               |
//   |              | device          | devices.id                                       |
//   |              | body            | the Observation resource as stored (server ids)  |
//   |              | payload_sha256  | hex SHA-256 of the bundle's canonical JSON       |
//   |              |                 | without its signature (jws.hpp signing_payload)  |
//   |              | signature_valid | 1 when the JWS verified, 0 (--accept-unsigned)   |
//   |              | signer          | the signer certificate's subject, or NULL        |
//   |              | received_at     | unix microseconds                                |
//   | tokens       | hash            | hex SHA-256 of the token                         |
//   |              | kind            | 'access' or 'refresh'                            |
//   |              | patient         | idPe                                             |
//   |              | expires_at      | unix microseconds; NULL: never (refresh tokens)  |
//
// Every failure is an Error naming the step and SQLite's message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "drivers/storage/sqlite.hpp"
#include "protocol/result.hpp"

namespace cb::receiver {

enum class TokenKind : std::uint8_t { access, refresh };

struct TokenRecord {
    std::string patient;
    std::optional<std::int64_t> expires_at_us;
};

struct StoredObservation {
    std::string id;
    std::string patient;
    std::string device_id;
    std::string payload_sha256;
};

struct NewObservation {
    std::string identifier;
    std::string patient;
    std::string body;  // with the server ids
    std::string payload_sha256;
    bool signature_valid = false;
    std::optional<std::string> signer;
    std::int64_t received_at_us = 0;
};

struct NewDevice {
    std::string id;  // used when the device is new
    std::string identifier;
    std::string body;
};

enum class Created : std::uint8_t { created, existed };

struct Counts {
    std::int64_t observations = 0;
    std::int64_t valid_signatures = 0;
};

class Store {
public:
    // Opens `path` (Durability::memory: in memory, `path` ignored) and brings the
    // schema up to date. On a file, synchronous=NORMAL in WAL mode: a commit
    // survives a crash of the receiver, not a power loss (a test stand-in).
    static Result<Store> open(const std::filesystem::path& path, storage::Durability durability);

    Result<void> add_token(TokenKind kind, const std::string& hash, const std::string& patient,
                           std::optional<std::int64_t> expires_at_us);
    Result<std::optional<TokenRecord>> find_token(TokenKind kind, const std::string& hash);
    // Every access token expires at `now_us` (refresh tokens stay valid).
    Result<void> expire_access_tokens(std::int64_t now_us);

    Result<std::optional<StoredObservation>> find_observation(const std::string& identifier);
    // The device (conditional create on its identifier) and the observation, in
    // one transaction: `observation.body` is made by `make_body` once the device's
    // server id is known. Returns the device id and whether it was created.
    struct Stored {
        std::string device_id;
        Created device = Created::created;
    };
    template <typename MakeBody>
    Result<Stored> create(const NewDevice& device, NewObservation observation, const std::string& observation_id,
                          MakeBody&& make_body);

    // Bodies of the patient's observations, oldest first (at most `limit`).
    Result<std::vector<std::string>> observations_of(const std::string& patient, std::int64_t limit);
    Result<Counts> counts();

private:
    explicit Store(storage::Database database) : m_database(std::move(database)) {}
    Result<Stored> put_device(const NewDevice& device);
    Result<void> put_observation(const NewObservation& observation, const std::string& id,
                                 const std::string& device_id);
    Result<void> begin();
    Result<void> commit();
    void rollback();

    storage::Database m_database;
};

template <typename MakeBody>
Result<Store::Stored> Store::create(const NewDevice& device, NewObservation observation,
                                    const std::string& observation_id, MakeBody&& make_body) {
    CB_TRY(begin());
    auto stored = put_device(device);
    if (!stored) {
        rollback();
        return std::move(stored).error();
    }
    observation.body = make_body(stored->device_id);
    auto put = put_observation(observation, observation_id, stored->device_id);
    if (!put) {
        rollback();
        return std::move(put).error();
    }
    CB_TRY(commit());
    return std::move(stored).value();
}

}  // namespace cb::receiver
