// carebridged configuration: a TOML file, validated as a whole.
//
// Every key, its type, range and default is listed in docs/operations.md
// ("Configuration reference") and in the shipped config/carebridged.toml.
// Without a file the daemon runs on the embedded defaults of Config{}, suited
// to a single box: state in ./carebridge-state, broker on localhost.
//
// Loading never stops at the first problem: it reports every wrong type,
// unknown key and out-of-range value, each as
//     <file>:<line>: <key>: <what was expected>, got <what was found>
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/log.hpp"
#include "daemon/toml_reader.hpp"

namespace cb {

struct Config {
    struct Daemon {
        std::filesystem::path state_dir = "carebridge-state";
        LogLevel log_level = LogLevel::info;
        std::chrono::seconds shutdown_timeout{5};

        bool operator==(const Daemon&) const = default;
    } daemon;

    struct Mqtt {
        std::string host = "localhost";
        std::uint16_t port = 8883;
        std::string client_id = "carebridged";
        std::chrono::seconds keepalive{30};
        // TLS: the CA of the broker's certificate, and our client certificate and key.
        std::filesystem::path ca_file;
        std::filesystem::path cert_file;
        std::filesystem::path key_file;

        bool operator==(const Mqtt&) const = default;
    } mqtt;

    struct Ingest {
        // The device catalog (devices.toml). Empty: device ingest is off.
        std::filesystem::path catalog;
        std::uint64_t quota_mb = 0;  // disk quota of the readings store; 0: none
        std::chrono::seconds max_age{std::chrono::hours(24 * 30)};
        std::uint32_t max_acks_per_s = 2000;  // acks beyond this rate are coalesced (AckBudget)

        bool operator==(const Ingest&) const = default;
    } ingest;

    bool operator==(const Config&) const = default;
};

struct ConfigLoad {
    std::optional<Config> config;  // set only when issues is empty
    std::vector<ConfigIssue> issues;

    bool ok() const noexcept { return config.has_value(); }
};

// Parses TOML text; `file` is only used to name the source in issues.
ConfigLoad load_config_text(std::string_view text, const std::string& file);

// Reads and parses a file; an unreadable file is one issue naming the OS error.
ConfigLoad load_config_file(const std::filesystem::path& path);

}  // namespace cb
