// A Mosquitto 2.0 plugin (interface version 5) that refuses what a client
// publishes under an enrolled device's CN unless its certificate is the one
// the catalog pins (broker/device_pins.hpp). The broker's own checks come
// first: the CA and CRL at the handshake, then the ACL (acl_file).
//
// Configuration (config/mosquitto/carebridge.conf.in, after `listener`):
//
//   plugin /usr/lib/carebridge/carebridge-device-pins.so
//   plugin_opt_catalog /etc/carebridge/devices.toml
//   plugin_opt_catalog_check_ms 1000      optional, 0..60000, default 1000
//
//   | event       | what the plugin does                                                   |
//   |-------------|------------------------------------------------------------------------|
//   | init        | loads the catalog; without plugin_opt_catalog, or with a catalog that  |
//   |             | does not load, the broker does not start (each problem logged, line)  |
//   | message     | first, if catalog_check_ms have passed since the last look, compares   |
//   |             | the catalog file's inode, size and mtime with the loaded one's and     |
//   |             | loads it again when they changed (a catalog that does not load keeps   |
//   |             | the previous pins, logged once per version of the file); then          |
//   |             | the enrolled certificate_sha256 of the username against the SHA-256 of |
//   |             | the client's certificate: different ->                                 |
//   |             | MOSQ_ERR_ACL_DENIED, the message goes nowhere, logged once a minute at |
//   |             | most per device                                                        |
//
// The look at the file happens on messages, not on a timer: Mosquitto 2.0.11
// did not deliver MOSQ_EVT_TICK to this listener's plugin in our tests
// (per_listener_settings true), and pins only matter when a message arrives.
// Runs on the broker's single thread; nothing here is shared with another.
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/x509.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/device_pins.hpp"
#include "daemon/catalog.hpp"
#include "drivers/file_stamp.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto default_check_interval = std::chrono::milliseconds(1000);
constexpr long max_check_interval_ms = 60'000;
constexpr auto log_interval = std::chrono::minutes(1);
constexpr std::size_t max_logged_devices = 10'000;
constexpr std::string_view option_catalog = "catalog";
constexpr std::string_view option_check = "catalog_check_ms";

struct Plugin {
    mosquitto_plugin_id_t* id = nullptr;
    std::filesystem::path catalog_path;
    Clock::duration check_interval = default_check_interval;
    cb::DeviceCatalog catalog;
    std::optional<cb::FileStamp> loaded_stamp;   // of the file the pins come from
    std::optional<cb::FileStamp> refused_stamp;  // of the last file that did not load (logged once)
    Clock::time_point next_check;  // of the file's stamp
    std::unordered_map<std::string, Clock::time_point> last_logged;  // device id -> refusal logged at
};

// Loads the catalog into `plugin`; false (and logged) if it does not load.
bool load(Plugin& plugin) {
    const auto stamp = cb::file_stamp(plugin.catalog_path);
    auto loaded = cb::load_catalog_file(plugin.catalog_path);
    if (!loaded.ok()) {
        if (stamp != plugin.refused_stamp) {
            for (const auto& issue : loaded.issues)
                mosquitto_log_printf(MOSQ_LOG_ERR, "carebridge device pins: %s", issue.to_string().c_str());
            mosquitto_log_printf(MOSQ_LOG_ERR, "carebridge device pins: %s not loaded%s",
                                 plugin.catalog_path.c_str(),
                                 plugin.loaded_stamp ? ", the previous pins stay" : "");
        }
        plugin.refused_stamp = stamp;
        return false;
    }
    plugin.catalog = std::move(*loaded.catalog);
    plugin.loaded_stamp = stamp;
    plugin.refused_stamp.reset();
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "carebridge device pins: %zu enrolled devices from %s",
                         plugin.catalog.device_count(), plugin.catalog_path.c_str());
    return true;
}

void log_refusal(Plugin& plugin, const char* device_id, const std::string& presented) {
    const auto now = Clock::now();
    auto [entry, inserted] = plugin.last_logged.try_emplace(device_id, now);
    if (!inserted && now - entry->second < log_interval)
        return;
    entry->second = now;
    if (plugin.last_logged.size() > max_logged_devices)
        plugin.last_logged.clear();
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "carebridge device pins: refused a message from %s: its certificate (sha256 %s) is not "
                         "the one enrolled in %s",
                         device_id, presented.empty() ? "unknown" : presented.c_str(), plugin.catalog_path.c_str());
}

// Loads the catalog again if its file changed, at most once per check_interval.
void refresh_if_due(Plugin& plugin) {
    const auto now = Clock::now();
    if (now < plugin.next_check)
        return;
    plugin.next_check = now + plugin.check_interval;
    const auto stamp = cb::file_stamp(plugin.catalog_path);
    if (stamp != plugin.loaded_stamp && stamp != plugin.refused_stamp)
        load(plugin);
}

int on_message(int /*event*/, void* event_data, void* user_data) {
    auto& plugin = *static_cast<Plugin*>(user_data);
    const auto& message = *static_cast<const mosquitto_evt_message*>(event_data);
    refresh_if_due(plugin);
    const char* username = mosquitto_client_username(message.client);
    if (username == nullptr)
        return MOSQ_ERR_ACL_DENIED;  // the listener requires a certificate: cannot happen
    const cb::EnrolledDevice* device = plugin.catalog.device(username);
    if (device == nullptr)
        return MOSQ_ERR_SUCCESS;  // not enrolled: no pin (the gateway quarantines its readings)
    std::unique_ptr<X509, decltype(&X509_free)> certificate(
        static_cast<X509*>(mosquitto_client_certificate(message.client)), X509_free);
    const std::string presented = cb::broker::certificate_sha256(certificate.get());
    if (presented == device->certificate_sha256)
        return MOSQ_ERR_SUCCESS;
    log_refusal(plugin, username, presented);
    return MOSQ_ERR_ACL_DENIED;
}

// plugin_opt_catalog_check_ms: 0..60000; false (logged) otherwise.
bool parse_check_interval(const char* text, Plugin& plugin) {
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > max_check_interval_ms) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "carebridge device pins: plugin_opt_catalog_check_ms: expected 0..60000, got \"%s\"",
                             text);
        return false;
    }
    plugin.check_interval = std::chrono::milliseconds(value);
    return true;
}

}  // namespace

// The three entry points the broker looks up; everything else stays hidden.
#define CAREBRIDGE_PLUGIN_EXPORT __attribute__((visibility("default")))

extern "C" {

CAREBRIDGE_PLUGIN_EXPORT int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
    for (int i = 0; i < supported_version_count; ++i)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

CAREBRIDGE_PLUGIN_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata, mosquitto_opt* options,
                          int option_count) {
    auto plugin = std::unique_ptr<Plugin>(new (std::nothrow) Plugin);
    if (!plugin)
        return MOSQ_ERR_NOMEM;
    plugin->id = identifier;
    for (int i = 0; i < option_count; ++i) {
        if (options[i].key == nullptr || options[i].value == nullptr)
            continue;
        if (options[i].key == option_catalog)
            plugin->catalog_path = options[i].value;
        else if (options[i].key == option_check && !parse_check_interval(options[i].value, *plugin))
            return MOSQ_ERR_INVAL;
    }
    if (plugin->catalog_path.empty()) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "carebridge device pins: plugin_opt_catalog is missing");
        return MOSQ_ERR_INVAL;
    }
    if (!load(*plugin))
        return MOSQ_ERR_INVAL;
    plugin->next_check = Clock::now() + plugin->check_interval;
    if (mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, nullptr, plugin.get()) !=
        MOSQ_ERR_SUCCESS) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "carebridge device pins: cannot register with the broker");
        return MOSQ_ERR_UNKNOWN;
    }
    *userdata = plugin.release();
    return MOSQ_ERR_SUCCESS;
}

CAREBRIDGE_PLUGIN_EXPORT int mosquitto_plugin_cleanup(void* userdata, mosquitto_opt* /*options*/, int /*option_count*/) {
    auto* plugin = static_cast<Plugin*>(userdata);
    if (plugin == nullptr)
        return MOSQ_ERR_SUCCESS;
    mosquitto_callback_unregister(plugin->id, MOSQ_EVT_MESSAGE, on_message, nullptr);
    delete plugin;
    return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
