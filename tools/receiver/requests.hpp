// The receiver's own parsers of untrusted input: the JSON bodies of /pairing,
// /token and /admin/faults, and the query string of /fhir/Observation. HTTP
// itself is Boost.Beast's. Each is bounded and never throws; a failure is an
// Error with ErrorKind::invalid_input (limit_exceeded over a cap) that names
// the member: `nir: expected a string`.
//
//   | body            | members (all others refused)                                  |
//   |-----------------|---------------------------------------------------------------|
//   | POST /pairing   | "nir" string, "code" string (1..64)                           |
//   | POST /token     | "grant_type" string, "refresh_token" string (1..256)          |
//   | POST /admin/    | any of: "fail_next" 0..1000000, "status" 400..599,            |
//   |   faults        | "retry_after_s" 0..86400, "delay_ms" 0..60000, "drop_next"    |
//   |                 | 0..1000000, "refuse_consent" idPe, "allow_consent" idPe,      |
//   |                 | "expire_tokens" true, "reset" true; at least one              |
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace cb::receiver {

// Caps of the JSON bodies of /pairing, /token and /admin/faults.
inline constexpr std::size_t max_control_body = 4 * 1024;
inline constexpr std::size_t max_control_depth = 4;
inline constexpr std::size_t max_query_parameters = 16;

struct PairingRequest {
    std::string nir;
    std::string code;
};
Result<PairingRequest> parse_pairing_request(std::string_view body);

struct TokenRequest {
    std::string grant_type;
    std::string refresh_token;
};
Result<TokenRequest> parse_token_request(std::string_view body);

struct FaultRequest {
    std::optional<std::uint32_t> fail_next;
    std::optional<unsigned> status;              // only with fail_next
    std::optional<std::uint32_t> retry_after_s;  // only with fail_next
    std::optional<std::chrono::milliseconds> delay;
    std::optional<std::uint32_t> drop_next;
    std::optional<std::string> refuse_consent;
    std::optional<std::string> allow_consent;
    bool expire_tokens = false;
    bool reset = false;
};
Result<FaultRequest> parse_fault_request(std::string_view body);

// A request target split into its path and its decoded query parameters
// ("/fhir/Observation?patient=idpe-1" → "/fhir/Observation", {patient: idpe-1}).
// Percent-escapes and '+' are decoded; a repeated parameter, a bad escape, a
// NUL, or more than max_query_parameters parameters are refused.
struct Target {
    std::string path;
    std::map<std::string, std::string, std::less<>> query;
};
Result<Target> parse_target(std::string_view target);

}  // namespace cb::receiver
