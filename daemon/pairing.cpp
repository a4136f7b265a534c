#include "daemon/pairing.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>

#include "daemon/forwarder.hpp"

namespace cb {

namespace {

bool printable_token(std::string_view text, std::size_t max) {
    if (text.empty() || text.size() > max)
        return false;
    for (char c : text)
        if (c <= 0x20 || c >= 0x7f)
            return false;
    return true;
}

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TokenAnswer parse_token_answer(std::string_view body) {
    TokenAnswer answer;
    if (body.size() > std::size_t{64} * 1024)
        return answer;
    boost::json::parse_options options;
    options.max_depth = 8;
    boost::system::error_code error;
    const auto value = boost::json::parse(body, error, {}, options);
    if (error || !value.is_object())
        return answer;
    const auto& object = value.as_object();
    const auto text = [&object](std::string_view key, std::size_t max) -> std::string {
        const auto* member = object.if_contains(key);
        if (member == nullptr || !member->is_string() || !printable_token(member->as_string(), max))
            return {};
        return std::string(member->as_string());
    };
    answer.id_pe = text("idPe", 128);
    answer.access_token = text("access_token", 4096);
    answer.refresh_token = text("refresh_token", 4096);
    if (const auto* e = object.if_contains("expires_in"); e != nullptr && e->is_int64() && e->as_int64() > 0)
        answer.expires_in = e->as_int64();
    return answer;
}

Result<void> check_pairing_request(const PairingRequest& request) {
    if (!printable_token(request.patient, 128))
        return fail(ErrorKind::invalid_input, "--pair: the patient reference must be 1..128 printable characters");
    if (request.nir.size() < 13 || request.nir.size() > 15)
        return fail(ErrorKind::invalid_input, "--nir: expected 13 to 15 characters (the NIR, with or without its key)");
    for (char c : request.nir)
        if (!((c >= '0' && c <= '9') || c == 'A' || c == 'B'))  // 2A/2B: Corsica
            return fail(ErrorKind::invalid_input, "--nir: only digits (and 2A/2B for Corsica) are allowed");
    if (!printable_token(request.code, 64))
        return fail(ErrorKind::invalid_input, "--code: expected 1..64 printable characters");
    return {};
}

Result<void> read_pairing_fields(std::istream& input, PairingRequest& request) {
    constexpr std::size_t max_line = 256;
    for (auto [field, name] : {std::pair{&request.nir, "--nir"}, std::pair{&request.code, "--code"}}) {
        if (*field != "-")
            continue;
        std::string line;
        bool ended = false;
        for (int c; (c = input.get()) != std::char_traits<char>::eof();) {
            if (c == '\n') {
                ended = true;
                break;
            }
            if (line.size() == max_line)
                return fail(ErrorKind::invalid_input,
                            std::string(name) + " -: the line read from standard input is over 256 bytes");
            line.push_back(static_cast<char>(c));
        }
        if (!ended && line.empty())
            return fail(ErrorKind::invalid_input, std::string(name) + " -: standard input ended before its line");
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        *field = std::move(line);
    }
    return {};
}

Result<std::string> pair_patient(boost::asio::io_context& io, upstream::HttpsClient& client, storage::Outbox& outbox,
                                 const PairingRequest& request) {
    CB_TRY(check_pairing_request(request));
    upstream::HttpRequest http;
    http.target = "/pairing";
    http.content_type = "application/json";
    http.body = boost::json::serialize(boost::json::object{{"nir", request.nir}, {"code", request.code}});
    std::optional<Result<upstream::HttpResponse>> answer;
    client.send(http, [&answer](Result<upstream::HttpResponse> result) { answer = std::move(result); });
    io.restart();
    while (!answer && io.run_one() > 0) {
    }
    if (!answer)
        return fail(ErrorKind::internal, "pairing: no answer and nothing left to run");
    if (!*answer)
        return std::move(*answer).error();
    const auto& response = answer->value();
    if (response.status != 200) {
        const std::string why = diagnostics_of(response.body);
        return fail(
            response.status == 403 || response.status == 400 ? ErrorKind::invalid_input : ErrorKind::unavailable,
            "pairing refused by the national space (HTTP " + std::to_string(response.status) + ")" +
                (why.empty() ? "" : ": " + why));
    }
    const TokenAnswer tokens = parse_token_answer(response.body);
    if (tokens.id_pe.empty() || tokens.access_token.empty() || tokens.refresh_token.empty())
        return fail(ErrorKind::invalid_input,
                    "pairing: the answer lacks a usable idPe, access_token or refresh_token (printable, bounded)");
    storage::Pairing pairing;
    pairing.patient = request.patient;
    pairing.id_pe = tokens.id_pe;
    pairing.access_token = tokens.access_token;
    pairing.refresh_token = tokens.refresh_token;
    pairing.paired_us = now_us();
    pairing.access_expires_us = pairing.paired_us + tokens.expires_in * 1'000'000;
    CB_TRY(outbox.save_pairing(pairing));
    CB_TRY(outbox.requeue_held(request.patient, "not-paired", pairing.paired_us));
    return pairing.id_pe;
}

}  // namespace cb
