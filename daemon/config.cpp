#include "daemon/config.hpp"

#include <array>

namespace cb {

namespace {

constexpr std::array<std::string_view, 5> log_levels{"error", "warning", "notice", "info", "debug"};

// [cards]: the CA files are required once the card path is on; reported at
// the line of `cards.enabled`.
void read_cards(TomlReader& reader, const toml::table& root, Config& config) {
    reader.boolean("cards.enabled", config.cards.enabled);
    reader.path("cards.insurer_ca_file", config.cards.insurer_ca_file);
    reader.path("cards.igc_sante_ca_file", config.cards.igc_sante_ca_file);
    reader.seconds("cards.practitioner_idle_timeout_s", config.cards.practitioner_idle_timeout, 30, 86400);
    if (!config.cards.enabled)
        return;
    const toml::node* enabled = root.at_path("cards.enabled").node();
    if (enabled == nullptr)
        return;
    if (config.cards.insurer_ca_file.empty())
        reader.report(*enabled, "cards.insurer_ca_file", "missing: required when cards.enabled = true");
    if (config.cards.igc_sante_ca_file.empty())
        reader.report(*enabled, "cards.igc_sante_ca_file", "missing: required when cards.enabled = true");
}

// [upstream]: what forwarding needs is required once it is on; reported at
// the line of `upstream.enabled`.
void read_upstream(TomlReader& reader, const toml::table& root, Config& config) {
    auto& upstream = config.upstream;
    reader.boolean("upstream.enabled", upstream.enabled);
    reader.string("upstream.host", upstream.host, 253);
    reader.integer("upstream.port", upstream.port, 1, 65535);
    reader.path("upstream.ca_file", upstream.ca_file);
    reader.path("upstream.crl_file", upstream.crl_file);
    reader.path("upstream.cert_file", upstream.cert_file);
    constexpr std::array<std::string_view, 2> tls_keys{"file", "pkcs11"};
    if (const auto tls_key = reader.choice("upstream.tls_key", tls_keys))
        upstream.tls_key = std::string(tls_keys[*tls_key]);
    reader.path("upstream.key_file", upstream.key_file);
    reader.string("upstream.pkcs11_tls_key_label", upstream.pkcs11_tls_key_label, 256);
    reader.integer("upstream.max_connections", upstream.max_connections, 1, 64);
    reader.integer("upstream.pipeline_depth", upstream.pipeline_depth, 1, 16);
    reader.seconds("upstream.timeout_s", upstream.timeout, 1, 300);
    reader.string("upstream.facility_id_system", upstream.facility_id_system, 256);
    reader.string("upstream.facility_id", upstream.facility_id, 64);
    constexpr std::array<std::string_view, 2> signers{"pem", "pkcs11"};
    if (const auto signer = reader.choice("upstream.signer", signers))
        upstream.signer = std::string(signers[*signer]);
    reader.path("upstream.signing_key_file", upstream.signing_key_file);
    reader.path("upstream.signing_chain_file", upstream.signing_chain_file);
    reader.path("upstream.pkcs11_module", upstream.pkcs11_module);
    reader.string("upstream.pkcs11_token", upstream.pkcs11_token, 32);
    reader.string("upstream.pkcs11_key_label", upstream.pkcs11_key_label, 256);
    reader.path("upstream.pkcs11_pin_file", upstream.pkcs11_pin_file);
    if (!upstream.enabled)
        return;
    const toml::node* enabled = root.at_path("upstream.enabled").node();
    if (enabled == nullptr)
        return;
    const auto require = [&](bool missing, const char* key) {
        if (missing)
            reader.report(*enabled, key, "missing: required when upstream.enabled = true");
    };
    require(upstream.host.empty(), "upstream.host");
    require(upstream.ca_file.empty(), "upstream.ca_file");
    require(upstream.cert_file.empty(), "upstream.cert_file");
    require(upstream.facility_id.empty(), "upstream.facility_id");
    require(upstream.signing_chain_file.empty(), "upstream.signing_chain_file");
    if (upstream.tls_key == "file")
        require(upstream.key_file.empty(), "upstream.key_file");
    else
        require(upstream.pkcs11_tls_key_label.empty(), "upstream.pkcs11_tls_key_label");
    if (upstream.signer == "pem")
        require(upstream.signing_key_file.empty(), "upstream.signing_key_file");
    else
        require(upstream.pkcs11_key_label.empty(), "upstream.pkcs11_key_label");
    if (upstream.uses_pkcs11()) {
        require(upstream.pkcs11_module.empty(), "upstream.pkcs11_module");
        require(upstream.pkcs11_token.empty(), "upstream.pkcs11_token");
        require(upstream.pkcs11_pin_file.empty(), "upstream.pkcs11_pin_file");
    }
}

void read_config(TomlReader& reader, Config& config) {
    reader.path("daemon.state_dir", config.daemon.state_dir);
    if (const auto level = reader.choice("daemon.log_level", log_levels))
        config.daemon.log_level = *parse_log_level(log_levels[*level]);
    reader.seconds("daemon.shutdown_timeout_s", config.daemon.shutdown_timeout, 1, 60);

    reader.string("mqtt.host", config.mqtt.host, 253);
    reader.integer("mqtt.port", config.mqtt.port, 1, 65535);
    reader.string("mqtt.client_id", config.mqtt.client_id, 23);  // MQTT 3.1.1 §3.1.3.1 guarantees 23 bytes
    reader.seconds("mqtt.keepalive_s", config.mqtt.keepalive, 5, 3600);
    reader.path("mqtt.ca_file", config.mqtt.ca_file);
    reader.path("mqtt.cert_file", config.mqtt.cert_file);
    reader.path("mqtt.key_file", config.mqtt.key_file);

    reader.path("ingest.catalog", config.ingest.catalog);
    reader.integer("ingest.quota_mb", config.ingest.quota_mb, 0, std::int64_t{16} * 1024 * 1024);
    std::int64_t max_age_days = config.ingest.max_age.count() / 86400;
    reader.integer("ingest.max_age_days", max_age_days, 1, 3650);
    config.ingest.max_age = std::chrono::seconds(max_age_days * 86400);
    reader.integer("ingest.max_acks_per_s", config.ingest.max_acks_per_s, 10, 1'000'000);
}

}  // namespace

ConfigLoad load_config_text(std::string_view text, const std::string& file) {
    ConfigLoad load;
    const auto root = parse_toml(text, file, load.issues);
    if (!root)
        return load;
    Config config;
    TomlReader reader(*root, file, load.issues);
    read_config(reader, config);
    read_cards(reader, *root, config);
    read_upstream(reader, *root, config);
    reader.report_unknown_keys();
    sort_issues(load.issues);
    if (load.issues.empty())
        load.config = std::move(config);
    return load;
}

ConfigLoad load_config_file(const std::filesystem::path& path) {
    return load_toml_file<ConfigLoad>(path, load_config_text);
}

}  // namespace cb
