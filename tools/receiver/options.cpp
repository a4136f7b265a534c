#include "tools/receiver/options.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace cb::receiver {

namespace {

Error usage_error(const std::string& message) {
    return fail(ErrorKind::invalid_input, message);
}

std::string quote_text(std::string_view text) {
    return "\"" + std::string(text.substr(0, 64)) + (text.size() > 64 ? "...\"" : "\"");
}

Result<std::uint64_t> parse_count(const std::string& option, std::string_view text, std::uint64_t lo,
                                  std::uint64_t hi) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [last, error] = std::from_chars(text.data(), end, value);
    if (text.empty() || error != std::errc() || last != end || value < lo || value > hi)
        return usage_error(option + ": " + quote_text(text) + " is not an integer " + std::to_string(lo) + ".." +
                           std::to_string(hi));
    return value;
}

bool is_ip_literal(const std::string& host) {
    unsigned char buffer[16];
    return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

}  // namespace

const char* to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::error: return "error";
        case LogLevel::warning: return "warning";
        case LogLevel::info: return "info";
        case LogLevel::debug: return "debug";
    }
    return "?";
}

std::string usage_text() {
    return R"(usage: carebridge-receiver --cert FILE --key FILE --client-ca FILE --facility-ca FILE
                           --db PATH (--patients FILE | --auto-pair) [options]

The reference stand-in for the national health space ("Mon espace santé"):
HTTPS with mutual TLS, pairing and tokens, the FHIR transaction endpoint of
the "Mesures de santé" flow with signature checks, and fault injection.
Manual and wire API: docs/receiver.md.

  --listen ADDR:PORT    IP literal and port (default 127.0.0.1:0); port 0 picks
                        one; the first stdout line is "listening on ADDR:PORT"
  --cert FILE           server certificate chain (PEM)
  --key FILE            server private key (PEM)
  --client-ca FILE      CA certificate(s) of the clients (TLS client certificate
                        required and verified)
  --facility-ca FILE    trust anchors of the bundle signatures (JWS x5c)
  --db PATH             SQLite database (created if needed)
  --patients FILE       known patients, lines "NIR CODE IDPE" (docs/receiver.md)
  --auto-pair           also pair any NIR with code 0000 (idPe derived from it)
  --token-ttl-s N       access-token lifetime in seconds (default 3600)
  --accept-unsigned     store bundles without signature (signature_valid 0);
                        by default they are refused with 422
  --log-level LEVEL     error, warning, info (default) or debug (patient ids
                        appear at debug only)
  --help                this text

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on bad usage
or configuration.
)";
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
    const auto colon = text.rfind(':');
    const Error wrong =
        usage_error("--listen: " + quote_text(text) + " is not ADDRESS:PORT with an IP literal address");
    if (colon == std::string_view::npos || colon == 0)
        return wrong;
    std::string host(text.substr(0, colon));
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']')
            return wrong;
        host = host.substr(1, host.size() - 2);
        if (host.find(':') == std::string::npos)
            return wrong;
    } else if (host.find(':') != std::string::npos) {
        return wrong;  // an IPv6 literal needs brackets
    }
    if (!is_ip_literal(host))
        return wrong;
    const auto port = CB_TRY(parse_count("--listen port", text.substr(colon + 1), 0, 65535));
    return ListenAddress{host, static_cast<std::uint16_t>(port)};
}

Result<Options> parse_options(const std::vector<std::string>& arguments) {
    Options options;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        const std::string& option = arguments[i];
        if (option == "--help" || option == "-h") {
            options.help = true;
            return options;
        }
        if (option == "--auto-pair") {
            options.auto_pair = true;
            continue;
        }
        if (option == "--accept-unsigned") {
            options.unsigned_bundles = UnsignedBundles::accept;
            continue;
        }
        if (!option.starts_with("--"))
            return usage_error("unexpected argument " + quote_text(option));
        if (i + 1 >= arguments.size())
            return usage_error(option + ": missing value");
        const std::string& value = arguments[++i];
        if (option == "--listen") {
            options.listen = CB_TRY(parse_listen_address(value));
        } else if (option == "--cert") {
            options.certificate = value;
        } else if (option == "--key") {
            options.key = value;
        } else if (option == "--client-ca") {
            options.client_ca = value;
        } else if (option == "--facility-ca") {
            options.facility_ca = value;
        } else if (option == "--db") {
            options.database = value;
        } else if (option == "--patients") {
            options.patients = value;
        } else if (option == "--token-ttl-s") {
            options.token_ttl = std::chrono::seconds(CB_TRY(parse_count(option, value, 1, std::uint64_t{366} * 86400)));
        } else if (option == "--log-level") {
            if (value == "error")
                options.log_level = LogLevel::error;
            else if (value == "warning")
                options.log_level = LogLevel::warning;
            else if (value == "info")
                options.log_level = LogLevel::info;
            else if (value == "debug")
                options.log_level = LogLevel::debug;
            else
                return usage_error("--log-level: " + quote_text(value) + " is not error, warning, info or debug");
        } else {
            return usage_error("unknown option " + quote_text(option) + " (see --help)");
        }
        if (value.empty())
            return usage_error(option + ": empty value");
    }
    const std::pair<const char*, const std::filesystem::path*> required[] = {{"--cert", &options.certificate},
                                                                             {"--key", &options.key},
                                                                             {"--client-ca", &options.client_ca},
                                                                             {"--facility-ca", &options.facility_ca},
                                                                             {"--db", &options.database}};
    for (const auto& [name, path] : required)
        if (path->empty())
            return usage_error(std::string(name) + " is required (see --help)");
    if (!options.patients && !options.auto_pair)
        return usage_error("one of --patients FILE or --auto-pair is required (see --help)");
    return options;
}

}  // namespace cb::receiver
