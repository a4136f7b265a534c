#include "tools/receiver/service.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <ctime>

#include "protocol/hex.hpp"
#include "protocol/upstream/base64.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "tools/receiver/requests.hpp"

namespace cb::receiver {

namespace json = boost::json;

namespace {

constexpr std::size_t max_token_length = 256;
constexpr std::int64_t max_search_results = 1000;

std::string lower_hex(std::span<const std::uint8_t> bytes) {
    std::string hex = to_hex(bytes);
    for (char& c : hex)
        if (c >= 'A' && c <= 'F')
            c = static_cast<char>(c - 'A' + 'a');
    return hex;
}

std::string sha256_hex(std::string_view text) {
    std::array<std::uint8_t, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
    return lower_hex(digest);
}

std::string rfc3339(std::chrono::system_clock::time_point when) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
    std::tm parts{};
    ::gmtime_r(&seconds, &parts);
    char text[80];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1,
                  parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
    return text;
}

HttpAnswer json_answer(unsigned status, const json::value& body) {
    HttpAnswer answer;
    answer.status = status;
    answer.body = json::serialize(body);
    return answer;
}

HttpAnswer outcome_answer(unsigned status, const char* issue_code, const std::string& diagnostics) {
    HttpAnswer answer;
    answer.status = status;
    answer.content_type = "application/fhir+json";
    answer.body = operation_outcome(issue_code, diagnostics);
    return answer;
}

HttpAnswer oauth_error(const char* error, const std::string& description = {}) {
    json::object body{{"error", error}};
    if (!description.empty())
        body["error_description"] = description;
    return json_answer(400, body);
}

// "application/fhir+json; charset=utf-8" → "application/fhir+json"
std::string media_type(std::string_view content_type) {
    std::string type(content_type.substr(0, content_type.find(';')));
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t'))
        type.pop_back();
    for (char& c : type)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return type;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
        if (x != b[i])
            return false;
    }
    return true;
}

}  // namespace

std::string operation_outcome(const char* issue_code, const std::string& diagnostics) {
    const json::object issue{{"severity", "error"}, {"code", issue_code}, {"diagnostics", diagnostics}};
    return json::serialize(json::object{{"resourceType", "OperationOutcome"}, {"issue", json::array{issue}}});
}

HttpAnswer body_too_large_answer(std::size_t limit) {
    return outcome_answer(413, "too-costly", "body: larger than " + std::to_string(limit) + " bytes");
}

Service::Service(Store store, upstream::TrustAnchors facility_anchors, ServiceConfig config, Clock clock,
                 RandomSource random, LogFunction log)
    : m_store(std::move(store)),
      m_anchors(std::move(facility_anchors)),
      m_config(std::move(config)),
      m_clock(std::move(clock)),
      m_random(std::move(random)),
      m_log(std::move(log)) {}

std::int64_t Service::now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(m_clock().time_since_epoch()).count();
}

std::string Service::new_id() {
    std::array<std::uint8_t, 16> bytes{};
    m_random(bytes);
    bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40);  // UUID version 4
    bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    const std::string hex = lower_hex(bytes);
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
           hex.substr(20);
}

Result<std::string> Service::issue_token(TokenKind kind, const std::string& patient) {
    std::array<std::uint8_t, 32> bytes{};
    m_random(bytes);
    std::string token = upstream::base64url_encode(bytes);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    std::optional<std::int64_t> expires;
    if (kind == TokenKind::access)
        expires = now_us() + std::chrono::duration_cast<std::chrono::microseconds>(m_config.token_ttl).count();
    CB_TRY(m_store.add_token(kind, sha256_hex(token), patient, expires));
    return token;
}

HttpAnswer Service::refuse(unsigned status, const std::string& reason, const char* issue_code,
                           const std::string& diagnostics) {
    ++m_refused[reason];
    m_log(LogLevel::info, "POST /fhir refused: " + std::to_string(status) + " " + reason);
    return outcome_answer(status, issue_code, diagnostics);
}

HttpAnswer Service::internal_error(const Error& error) {
    m_log(LogLevel::error, error.message());
    return outcome_answer(500, "exception", "the receiver's store failed; see its log");
}

HttpAnswer Service::handle(const HttpRequest& request) {
    HttpAnswer answer = route(request);
    m_log(LogLevel::debug, request.method + " " + request.target.substr(0, request.target.find('?')) + " -> " +
                               std::to_string(answer.status));
    return answer;
}

HttpAnswer Service::route(const HttpRequest& request) {
    auto target = parse_target(request.target);
    if (!target)
        return outcome_answer(400, "invalid", target.error().message());
    const std::string& path = target->path;
    const auto method_not_allowed = [](const char* allowed) {
        HttpAnswer answer = outcome_answer(405, "not-supported", std::string("method not allowed; use ") + allowed);
        answer.headers.emplace_back("Allow", allowed);
        return answer;
    };
    if (path == "/pairing")
        return request.method == "POST" ? post_pairing(request) : method_not_allowed("POST");
    if (path == "/token")
        return request.method == "POST" ? post_token(request) : method_not_allowed("POST");
    if (path == "/fhir")
        return request.method == "POST" ? post_bundle(request) : method_not_allowed("POST");
    if (path == "/fhir/Observation") {
        if (request.method != "GET")
            return method_not_allowed("GET");
        const auto patient = target->query.find("patient");
        if (patient == target->query.end() || target->query.size() != 1)
            return outcome_answer(400, "invalid", "query: expected exactly one parameter, patient=<idPe>");
        return get_observations(request, patient->second);
    }
    if (path == "/admin/stats")
        return request.method == "GET" ? get_stats() : method_not_allowed("GET");
    if (path == "/admin/faults")
        return request.method == "POST" ? post_faults(request) : method_not_allowed("POST");
    return outcome_answer(404, "not-found", "no such endpoint (docs/receiver.md)");
}

HttpAnswer Service::post_pairing(const HttpRequest& request) {
    const auto pairing = parse_pairing_request(request.body);
    if (!pairing)
        return outcome_answer(400, "invalid", pairing.error().message());
    const auto idpe = m_config.patients.pair(pairing->nir, pairing->code);
    if (!idpe) {
        m_log(LogLevel::info, "pairing refused: unknown patient or wrong code");
        return outcome_answer(403, "forbidden", "pairing: unknown patient or wrong code");
    }
    auto access = issue_token(TokenKind::access, *idpe);
    if (!access)
        return internal_error(access.error());
    auto refresh = issue_token(TokenKind::refresh, *idpe);
    if (!refresh)
        return internal_error(refresh.error());
    m_log(LogLevel::info, "paired a patient");
    m_log(LogLevel::debug, "paired idPe " + *idpe);
    return json_answer(200, json::object{{"idPe", *idpe},
                                         {"access_token", *access},
                                         {"token_type", "Bearer"},
                                         {"expires_in", m_config.token_ttl.count()},
                                         {"refresh_token", *refresh}});
}

HttpAnswer Service::post_token(const HttpRequest& request) {
    const auto token_request = parse_token_request(request.body);
    if (!token_request)
        return oauth_error("invalid_request", token_request.error().message());
    if (token_request->grant_type != "refresh_token")
        return oauth_error("unsupported_grant_type");
    const auto record = m_store.find_token(TokenKind::refresh, sha256_hex(token_request->refresh_token));
    if (!record)
        return internal_error(record.error());
    if (!*record) {
        m_log(LogLevel::info, "token refresh refused: unknown refresh token");
        return oauth_error("invalid_grant");
    }
    auto access = issue_token(TokenKind::access, (*record)->patient);
    if (!access)
        return internal_error(access.error());
    return json_answer(200, json::object{{"idPe", (*record)->patient},
                                         {"access_token", *access},
                                         {"token_type", "Bearer"},
                                         {"expires_in", m_config.token_ttl.count()},
                                         {"refresh_token", token_request->refresh_token}});
}

Result<std::string, HttpAnswer> Service::authenticate(const HttpRequest& request) {
    const auto unauthorized = [](const std::string& diagnostics) {
        HttpAnswer answer = outcome_answer(401, "login", diagnostics);
        answer.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return answer;
    };
    const std::string_view header = request.authorization;
    constexpr std::string_view scheme = "bearer ";
    if (header.size() <= scheme.size() || header.size() > scheme.size() + max_token_length ||
        !equal_ignoring_case(header.substr(0, scheme.size()), scheme))
        return unauthorized("Authorization: expected \"Bearer <access token>\"");
    const auto record = m_store.find_token(TokenKind::access, sha256_hex(header.substr(scheme.size())));
    if (!record)
        return internal_error(record.error());
    if (!*record)
        return unauthorized("access token unknown");
    if ((*record)->expires_at_us && *(*record)->expires_at_us <= now_us())
        return unauthorized("access token expired");
    return (*record)->patient;
}

HttpAnswer Service::post_bundle(const HttpRequest& request) {
    ++m_requests;
    HttpAnswer answer = [&]() -> HttpAnswer {
        if (m_faults.fail_next > 0) {
            --m_faults.fail_next;
            HttpAnswer failed = refuse(m_faults.fail_status, "fault_fail_next", "transient",
                                       "fault injected: fail_next (" + std::to_string(m_faults.fail_next) + " left)");
            if (m_faults.retry_after_s)
                failed.headers.emplace_back("Retry-After", std::to_string(*m_faults.retry_after_s));
            return failed;
        }
        auto patient = authenticate(request);
        if (!patient) {
            ++m_refused["invalid_token"];
            return std::move(patient).error();
        }
        const std::string type = media_type(request.content_type);
        if (type != "application/fhir+json" && type != "application/json")
            return refuse(415, "unsupported_media_type", "not-supported",
                          "Content-Type: expected application/fhir+json");

        const auto at = devices::Microseconds(std::chrono::microseconds(now_us()));
        const auto verified = upstream::verify_bundle_signature(request.body, m_anchors, at);
        if (!verified && !(verified.error().problem == upstream::SignatureProblem::missing &&
                           m_config.unsigned_bundles == UnsignedBundles::accept))
            return refuse(422, std::string("signature_") + upstream::to_string(verified.error().problem), "invalid",
                          std::string("signature ") + upstream::to_string(verified.error().problem) + ": " +
                              verified.error().message);

        const auto summary = upstream::parse_bundle(request.body);
        if (!summary)
            return refuse(422, upstream::to_string(summary.error().problem), "invalid",
                          std::string(upstream::to_string(summary.error().problem)) + ": " + summary.error().message);
        if (summary->patient_idpe != *patient)
            return refuse(403, "subject", "forbidden",
                          "subject: the bundle's patient is not the patient of the access token");
        if (m_faults.refused_consent.contains(summary->patient_idpe))
            return refuse(403, "consent", "forbidden", "consent");

        // parse_bundle accepted it: JSON within the caps, Device then Observation.
        json::value bundle = json::parse(request.body);
        std::string payload;
        if (verified) {
            payload = verified->payload;
        } else {
            auto canonical = upstream::signing_payload(bundle.as_object());
            if (!canonical)
                return refuse(422, "malformed", "invalid", canonical.error().message());
            payload = std::move(*canonical);
        }
        const std::string payload_hash = sha256_hex(payload);
        const std::string observation_identifier = summary->observation_system + "|" + summary->observation_value;
        const auto existing = m_store.find_observation(observation_identifier);
        if (!existing)
            return internal_error(existing.error());
        if (*existing) {
            if ((*existing)->patient != summary->patient_idpe || (*existing)->payload_sha256 != payload_hash)
                return refuse(409, "conflict", "conflict",
                              "Observation.identifier: already holds a different observation");
            m_log(LogLevel::debug, "already stored: Observation/" + (*existing)->id);
            return json_answer(
                200,
                json::object{
                    {"resourceType", "Bundle"},
                    {"type", "transaction-response"},
                    {"entry",
                     json::array{
                         json::object{{"response",
                                       json::object{{"status", "200 OK"},
                                                    {"location", "Observation/" + (*existing)->id + "/_history/1"}}}},
                         json::object{{"response",
                                       json::object{{"status", "200 OK"},
                                                    {"location", "Device/" + (*existing)->device_id + "/_history/1"}}}},
                     }}});
        }

        const auto now = m_clock();
        const std::string last_updated = rfc3339(now);
        json::object device = bundle.at("entry").at(0).at("resource").as_object();
        json::object observation = bundle.at("entry").at(1).at("resource").as_object();
        const std::string device_id = new_id();
        const std::string observation_id = new_id();
        const auto stamp = [&](json::object& resource, const std::string& id) {
            resource["id"] = id;
            json::value& meta = resource["meta"];
            if (!meta.is_object())
                meta = json::object{};
            meta.as_object()["versionId"] = "1";
            meta.as_object()["lastUpdated"] = last_updated;
        };
        stamp(device, device_id);
        stamp(observation, observation_id);
        NewObservation row;
        row.identifier = observation_identifier;
        row.patient = summary->patient_idpe;
        row.payload_sha256 = payload_hash;
        row.signature_valid = verified.has_value();
        if (verified)
            row.signer = verified->signer;
        row.received_at_us = now_us();
        const auto stored = m_store.create(
            NewDevice{device_id, summary->device_system + "|" + summary->device_value, json::serialize(device)},
            std::move(row), observation_id, [&](const std::string& stored_device_id) {
                observation["device"] = json::object{{"reference", "Device/" + stored_device_id}};
                return json::serialize(observation);
            });
        if (!stored)
            return internal_error(stored.error());
        m_log(LogLevel::info, std::string("stored an observation (") + devices::to_string(summary->type) +
                                  (verified ? ", signature valid)" : ", unsigned)"));
        m_log(LogLevel::debug, "stored Observation/" + observation_id + " for idPe " + summary->patient_idpe);
        return json_answer(
            200, json::object{
                     {"resourceType", "Bundle"},
                     {"type", "transaction-response"},
                     {"entry",
                      json::array{
                          json::object{{"response",
                                        json::object{{"status", "201 Created"},
                                                     {"location", "Observation/" + observation_id + "/_history/1"}}}},
                          json::object{
                              {"response",
                               json::object{{"status", stored->device == Created::created ? "201 Created" : "200 OK"},
                                            {"location", "Device/" + stored->device_id + "/_history/1"}}}},
                      }}});
    }();
    answer.delay = m_faults.delay;
    if (m_faults.drop_next > 0) {
        --m_faults.drop_next;
        answer.delivery = Delivery::drop_after_headers;
    }
    return answer;
}

HttpAnswer Service::get_observations(const HttpRequest& request, const std::string& patient) {
    auto token_patient = authenticate(request);
    if (!token_patient)
        return std::move(token_patient).error();
    if (*token_patient != patient)
        return outcome_answer(403, "forbidden", "patient: not the patient of the access token");
    const auto bodies = m_store.observations_of(patient, max_search_results);
    if (!bodies)
        return internal_error(bodies.error());
    std::string body =
        "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":" + std::to_string(bodies->size()) +
        ",\"entry\":[";
    for (std::size_t i = 0; i < bodies->size(); ++i)
        body +=
            (i == 0 ? "" : ",") + std::string("{\"resource\":") + (*bodies)[i] + ",\"search\":{\"mode\":\"match\"}}";
    body += "]}";
    HttpAnswer answer;
    answer.content_type = "application/fhir+json";
    answer.body = std::move(body);
    return answer;
}

HttpAnswer Service::get_stats() {
    const auto counts = m_store.counts();
    if (!counts)
        return internal_error(counts.error());
    json::object refused;
    for (const auto& [reason, count] : m_refused)
        refused[reason] = count;
    return json_answer(200, json::object{{"observations", counts->observations},
                                         {"valid_signatures", counts->valid_signatures},
                                         {"refused", std::move(refused)},
                                         {"requests", m_requests}});
}

HttpAnswer Service::post_faults(const HttpRequest& request) {
    const auto faults = parse_fault_request(request.body);
    if (!faults)
        return outcome_answer(400, "invalid", faults.error().message());
    if (faults->reset)
        m_faults = Faults{};
    if (faults->fail_next) {
        m_faults.fail_next = *faults->fail_next;
        m_faults.fail_status = faults->status.value_or(503);
        m_faults.retry_after_s = faults->retry_after_s;
    }
    if (faults->delay)
        m_faults.delay = *faults->delay;
    if (faults->drop_next)
        m_faults.drop_next = *faults->drop_next;
    if (faults->refuse_consent)
        m_faults.refused_consent.insert(*faults->refuse_consent);
    if (faults->allow_consent)
        m_faults.refused_consent.erase(*faults->allow_consent);
    if (faults->expire_tokens) {
        const auto expired = m_store.expire_access_tokens(now_us());
        if (!expired)
            return internal_error(expired.error());
    }
    m_log(LogLevel::info, "faults changed");
    json::array consent;
    for (const auto& idpe : m_faults.refused_consent)
        consent.emplace_back(idpe);
    json::object state{{"fail_next", m_faults.fail_next},
                       {"status", m_faults.fail_status},
                       {"delay_ms", m_faults.delay.count()},
                       {"drop_next", m_faults.drop_next},
                       {"refuse_consent", std::move(consent)}};
    if (m_faults.retry_after_s)
        state["retry_after_s"] = *m_faults.retry_after_s;
    return json_answer(200, state);
}

}  // namespace cb::receiver
