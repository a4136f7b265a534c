#include "daemon/config.hpp"

#include <array>

namespace cb {

namespace {

constexpr std::array<std::string_view, 5> log_levels{"error", "warning", "notice", "info", "debug"};

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
