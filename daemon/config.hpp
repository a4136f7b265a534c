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

    struct Cards {
        // The card path (PC/SC reader monitor and card sessions); off unless asked for.
        bool enabled = false;
        // Trust anchors (PEM or DER): patient cards chain to the insurer CA,
        // practitioner cards to the IGC-Santé CA. Required when enabled.
        std::filesystem::path insurer_ca_file;
        std::filesystem::path igc_sante_ca_file;
        // A practitioner session with no activity ends after this long.
        std::chrono::seconds practitioner_idle_timeout{900};

        bool operator==(const Cards&) const = default;
    } cards;

    struct Upstream {
        // Forwarding to the national space (docs/upstream.md); off unless asked for.
        bool enabled = false;
        std::string host;  // also the name its certificate must carry
        std::uint16_t port = 443;
        // Mutual TLS: the platform's CA, the facility's certificate and key.
        std::filesystem::path ca_file;
        std::filesystem::path crl_file;  // optional: CRLs the platform's certificate is checked against
        std::filesystem::path cert_file;
        // The TLS client key: "file" (key_file, mode 0600) or "pkcs11"
        // (pkcs11_tls_key_label on the token of the pkcs11_* settings).
        std::string tls_key = "file";
        std::filesystem::path key_file;
        std::string pkcs11_tls_key_label;
        std::size_t max_connections = 4;
        std::size_t pipeline_depth = 4;  // requests in flight per connection (HTTP/1.1 pipelining)
        std::chrono::seconds timeout{10};
        // Bundle.signature.who: the facility's identifier (FINESS by default).
        std::string facility_id_system = "urn:oid:1.2.250.1.71.4.2.2";
        std::string facility_id;
        // The signing key: "pem" (a key file, mode 0600) or "pkcs11".
        std::string signer = "pem";
        std::filesystem::path signing_key_file;
        std::filesystem::path signing_chain_file;
        // The PKCS#11 token, when the signing key or the TLS key is on it.
        std::filesystem::path pkcs11_module;
        std::string pkcs11_token;
        std::string pkcs11_key_label;  // the signing key
        std::filesystem::path pkcs11_pin_file;

        bool uses_pkcs11() const { return signer == "pkcs11" || tls_key == "pkcs11"; }

        bool operator==(const Upstream&) const = default;
    } upstream;

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
