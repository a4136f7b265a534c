// What the receiver answers, as a function of the request, its store, its
// fault state, an injected clock and an injected random source: no sockets
// here (server.hpp is the HTTPS transport), so unit tests drive it directly.
// docs/receiver.md is the wire API; the order of the checks of POST /fhir:
//
//   | step | check                                       | answer on failure                    |
//   |------|---------------------------------------------|--------------------------------------|
//   | 1    | fault fail_next                             | its status (503), Retry-After        |
//   | 2    | bearer access token known and not expired   | 401, WWW-Authenticate invalid_token  |
//   | 3    | Content-Type application/fhir+json (or json)| 415                                  |
//   | 4    | signature (jws.hpp) against --facility-ca   | 422 "signature <problem>: ..."       |
//   | 5    | parse_bundle (fhir_bundle.hpp)              | 422 "<problem>: ..."                 |
//   | 6    | subject idPe = the token's patient          | 403 forbidden "subject: ..."         |
//   | 7    | consent not refused (fault refuse_consent)  | 403 forbidden "consent"              |
//   | 8    | conditional create on the identifiers       | 409 when the identifier holds another|
//   |      |                                             | patient's or different content       |
//
// Faults delay_ms and drop_next apply to every POST /fhir answer, after the
// request was handled (a dropped answer may have stored the bundle, as a
// connection lost on the way back does).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "protocol/upstream/jws.hpp"
#include "tools/receiver/options.hpp"
#include "tools/receiver/patients.hpp"
#include "tools/receiver/store.hpp"

namespace cb::receiver {

struct HttpRequest {
    std::string method;  // "POST"
    std::string target;  // "/fhir/Observation?patient=idpe-1"
    std::string content_type;
    std::string authorization;
    std::string body;
};

enum class Delivery : std::uint8_t { normal, drop_after_headers };

struct HttpAnswer {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // beyond Content-Type and Content-Length
    std::string body;
    std::chrono::milliseconds delay{0};
    Delivery delivery = Delivery::normal;
};

using Clock = std::function<std::chrono::system_clock::time_point()>;
using RandomSource = std::function<void(std::span<std::uint8_t>)>;
using LogFunction = std::function<void(LogLevel, const std::string&)>;

struct ServiceConfig {
    PatientDirectory patients;
    std::chrono::seconds token_ttl{3600};
    UnsignedBundles unsigned_bundles = UnsignedBundles::refuse;
};

// The answer for a request whose body exceeds the transport's limit: 413.
HttpAnswer body_too_large_answer(std::size_t limit);

class Service {
public:
    Service(Store store, upstream::TrustAnchors facility_anchors, ServiceConfig config, Clock clock,
            RandomSource random, LogFunction log);

    // Never throws on any request; a store failure is a 500 OperationOutcome.
    HttpAnswer handle(const HttpRequest& request);

private:
    struct Faults {
        std::uint32_t fail_next = 0;
        unsigned fail_status = 503;
        std::optional<std::uint32_t> retry_after_s;
        std::chrono::milliseconds delay{0};
        std::uint32_t drop_next = 0;
        std::set<std::string, std::less<>> refused_consent;
    };

    HttpAnswer route(const HttpRequest& request);
    HttpAnswer post_pairing(const HttpRequest& request);
    HttpAnswer post_token(const HttpRequest& request);
    HttpAnswer post_bundle(const HttpRequest& request);
    HttpAnswer get_observations(const HttpRequest& request, const std::string& patient);
    HttpAnswer get_stats();
    HttpAnswer post_faults(const HttpRequest& request);

    // The patient of a valid access token, or the 401 answer.
    Result<std::string, HttpAnswer> authenticate(const HttpRequest& request);
    Result<std::string> issue_token(TokenKind kind, const std::string& patient);
    HttpAnswer refuse(unsigned status, const std::string& reason, const char* issue_code,
                      const std::string& diagnostics);
    HttpAnswer internal_error(const Error& error);
    std::string new_id();
    std::int64_t now_us() const;

    Store m_store;
    upstream::TrustAnchors m_anchors;
    ServiceConfig m_config;
    Clock m_clock;
    RandomSource m_random;
    LogFunction m_log;
    Faults m_faults;
    std::uint64_t m_requests = 0;                    // POST /fhir requests
    std::map<std::string, std::uint64_t> m_refused;  // POST /fhir refusals by reason
};

// {"resourceType":"OperationOutcome","issue":[{"severity":"error","code":..,"diagnostics":..}]}
std::string operation_outcome(const char* issue_code, const std::string& diagnostics);

}  // namespace cb::receiver
