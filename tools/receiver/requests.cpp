#include "tools/receiver/requests.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <set>

#include "tools/receiver/patients.hpp"

namespace cb::receiver {

namespace json = boost::json;

namespace {

Error invalid(const std::string& message) {
    return fail(ErrorKind::invalid_input, message);
}

// Parses a JSON object body within the caps; every member must be in `known`.
Result<json::object> parse_object(std::string_view body, std::initializer_list<std::string_view> known) {
    if (body.size() > max_control_body)
        return fail(ErrorKind::limit_exceeded, "body: larger than " + std::to_string(max_control_body) + " bytes");
    json::parse_options options;
    options.max_depth = max_control_depth;
    boost::system::error_code error;
    json::value value = json::parse(json::string_view(body.data(), body.size()), error, {}, options);
    if (error)
        return invalid("body: not JSON (" + error.message() + ")");
    if (!value.is_object())
        return invalid("body: expected a JSON object");
    for (const auto& member : value.as_object()) {
        const std::string_view name(member.key().data(), member.key().size());
        bool found = false;
        for (const auto candidate : known)
            found = found || candidate == name;
        if (!found)
            return invalid("body: unknown member \"" + std::string(name.substr(0, 32)) + "\"");
    }
    return std::move(value.as_object());
}

Result<std::string> string_member(const json::object& object, std::string_view name, std::size_t max_length) {
    const auto* value = object.if_contains(json::string_view(name.data(), name.size()));
    if (value == nullptr)
        return invalid(std::string(name) + ": missing");
    if (!value->is_string())
        return invalid(std::string(name) + ": expected a string");
    const auto& text = value->get_string();
    if (text.empty() || text.size() > max_length)
        return invalid(std::string(name) + ": expected 1 to " + std::to_string(max_length) + " characters, got " +
                       std::to_string(text.size()));
    return std::string(text.data(), text.size());
}

Result<std::optional<std::uint64_t>> integer_member(const json::object& object, std::string_view name, std::uint64_t lo,
                                                    std::uint64_t hi) {
    const auto* value = object.if_contains(json::string_view(name.data(), name.size()));
    if (value == nullptr)
        return std::optional<std::uint64_t>{};
    std::optional<std::uint64_t> number;
    if (value->is_uint64())
        number = value->get_uint64();
    else if (value->is_int64() && value->get_int64() >= 0)
        number = static_cast<std::uint64_t>(value->get_int64());
    if (!number || *number < lo || *number > hi)
        return invalid(std::string(name) + ": expected an integer " + std::to_string(lo) + ".." + std::to_string(hi));
    return number;
}

Result<bool> true_member(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(json::string_view(name.data(), name.size()));
    if (value == nullptr)
        return false;
    if (!value->is_bool() || !value->get_bool())
        return invalid(std::string(name) + ": expected true");
    return true;
}

Result<std::optional<std::string>> idpe_member(const json::object& object, std::string_view name) {
    if (!object.contains(json::string_view(name.data(), name.size())))
        return std::optional<std::string>{};
    auto text = CB_TRY(string_member(object, name, 128));
    if (!valid_idpe(text))
        return invalid(std::string(name) + ": expected an idPe (printable characters, no space, no '|')");
    return std::optional<std::string>(std::move(text));
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

Result<std::string> percent_decode(std::string_view text, std::string_view what) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
            const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
            if (high < 0 || low < 0)
                return invalid(std::string(what) + ": bad percent-escape");
            c = static_cast<char>(high * 16 + low);
            i += 2;
        }
        if (c == '\0')
            return invalid(std::string(what) + ": NUL character");
        out.push_back(c);
    }
    return out;
}

}  // namespace

Result<PairingRequest> parse_pairing_request(std::string_view body) {
    const auto object = CB_TRY(parse_object(body, {"nir", "code"}));
    PairingRequest request;
    request.nir = CB_TRY(string_member(object, "nir", 15));
    request.code = CB_TRY(string_member(object, "code", 64));
    CB_TRY(nir_key(request.nir));
    return request;
}

Result<TokenRequest> parse_token_request(std::string_view body) {
    const auto object = CB_TRY(parse_object(body, {"grant_type", "refresh_token"}));
    TokenRequest request;
    request.grant_type = CB_TRY(string_member(object, "grant_type", 64));
    request.refresh_token = CB_TRY(string_member(object, "refresh_token", 256));
    return request;
}

Result<FaultRequest> parse_fault_request(std::string_view body) {
    const auto object = CB_TRY(parse_object(body, {"fail_next", "status", "retry_after_s", "delay_ms", "drop_next",
                                                   "refuse_consent", "allow_consent", "expire_tokens", "reset"}));
    if (object.empty())
        return invalid("body: expected at least one fault (docs/receiver.md)");
    FaultRequest request;
    if (const auto n = CB_TRY(integer_member(object, "fail_next", 0, 1'000'000)))
        request.fail_next = static_cast<std::uint32_t>(*n);
    if (const auto status = CB_TRY(integer_member(object, "status", 400, 599)))
        request.status = static_cast<unsigned>(*status);
    if (const auto seconds = CB_TRY(integer_member(object, "retry_after_s", 0, 86'400)))
        request.retry_after_s = static_cast<std::uint32_t>(*seconds);
    if ((request.status || request.retry_after_s) && !request.fail_next)
        return invalid("status, retry_after_s: only with fail_next");
    if (const auto ms = CB_TRY(integer_member(object, "delay_ms", 0, 60'000)))
        request.delay = std::chrono::milliseconds(*ms);
    if (const auto n = CB_TRY(integer_member(object, "drop_next", 0, 1'000'000)))
        request.drop_next = static_cast<std::uint32_t>(*n);
    request.refuse_consent = CB_TRY(idpe_member(object, "refuse_consent"));
    request.allow_consent = CB_TRY(idpe_member(object, "allow_consent"));
    request.expire_tokens = CB_TRY(true_member(object, "expire_tokens"));
    request.reset = CB_TRY(true_member(object, "reset"));
    return request;
}

Result<Target> parse_target(std::string_view target) {
    Target result;
    const auto question = target.find('?');
    result.path = CB_TRY(percent_decode(target.substr(0, question), "path"));
    if (question == std::string_view::npos)
        return result;
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty())
            continue;
        if (result.query.size() >= max_query_parameters)
            return fail(ErrorKind::limit_exceeded,
                        "query: more than " + std::to_string(max_query_parameters) + " parameters");
        const auto eq = pair.find('=');
        auto name = CB_TRY(percent_decode(pair.substr(0, eq), "query parameter name"));
        auto value = CB_TRY(percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1),
                                           "query parameter " + name.substr(0, 32)));
        if (result.query.contains(name))
            return invalid("query: parameter \"" + name.substr(0, 32) + "\" given twice");
        result.query.emplace(std::move(name), std::move(value));
    }
    return result;
}

}  // namespace cb::receiver
