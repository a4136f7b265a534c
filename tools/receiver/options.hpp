// The command line of carebridge-receiver (usage_text() is its --help; the
// manual, with the wire API, is docs/receiver.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "protocol/result.hpp"

namespace cb::receiver {

enum class LogLevel : std::uint8_t { error, warning, info, debug };

const char* to_string(LogLevel level) noexcept;  // "info"

// What to do with a bundle that carries no signature at all (an invalid one is
// always refused).
enum class UnsignedBundles : std::uint8_t { refuse, accept };

struct ListenAddress {
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal, never a name
    std::uint16_t port = 0;          // 0: the kernel picks one, printed at start-up
};

struct Options {
    ListenAddress listen;
    std::filesystem::path certificate;                           // --cert: server chain, PEM
    std::filesystem::path key;                                   // --key: server key, PEM
    std::filesystem::path client_ca;                             // --client-ca: CA(s) of accepted TLS clients
    std::filesystem::path facility_ca;                           // --facility-ca: trust anchors of bundle signatures
    std::filesystem::path database;                              // --db
    std::optional<std::filesystem::path> patients;               // --patients
    bool auto_pair = false;                                      // --auto-pair
    std::chrono::seconds token_ttl{3600};                        // --token-ttl-s
    LogLevel log_level = LogLevel::info;                         // --log-level
    UnsignedBundles unsigned_bundles = UnsignedBundles::refuse;  // --accept-unsigned
    bool help = false;
};

// The --help text.
std::string usage_text();

// Parses argv[1..] (without the program name). Fails with
// ErrorKind::invalid_input naming the option: `--listen: "localhost:80" is not
// ADDRESS:PORT with an IP literal`; a missing required option or neither
// --patients nor --auto-pair is named likewise.
Result<Options> parse_options(const std::vector<std::string>& arguments);

// "127.0.0.1:8443", "[::1]:0". Fails with ErrorKind::invalid_input.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace cb::receiver
