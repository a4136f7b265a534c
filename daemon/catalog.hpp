// The device catalog: which device models are referenced (and so may feed a
// patient's health space) and which devices are enrolled on this gateway.
// A TOML file, config/devices.toml; format and example in docs/device-protocol.md
// ("Catalog"). Loaded as a whole: every problem is reported with its line.
//
//   [[model]]                          a referenced model
//   | key          | type            | rule                                        |
//   |--------------|-----------------|---------------------------------------------|
//   | id           | string          | unique; devices refer to it                 |
//   | manufacturer | string          |                                             |
//   | name         | string          | the commercial model name                   |
//   | types        | array of string | measurement types it may send (non-empty)   |
//   | firmware     | array of string | firmware versions referenced (non-empty)    |
//   | purposes     | array of string | purposes of processing shown at consent     |
//
//   [[device]]                         an enrolled device
//   | key                | type   | rule                                                   |
//   |--------------------|--------|--------------------------------------------------------|
//   | id                 | string | device id ([A-Za-z0-9._-]{1,64}), unique; = its certificate CN |
//   | model              | string | a [[model]] id                                          |
//   | certificate_sha256 | string | SHA-256 of its client certificate (64 hex digits, ':' allowed) |
//   | binding            | string | "home" (one patient) or "station" (care station)       |
//   | patient            | string | home: the patient reference the readings belong to     |
//   | station            | string | station: the reader whose patient card names the patient |
//   | users              | table  | optional, multi-user devices: "user index" = patient reference |
//   | first_sequence     | integer| optional (default 1): the first seq this gateway will receive, for a |
//   |                    |        | device enrolled after another collector acknowledged its earlier readings |
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/string_map.hpp"
#include "daemon/toml_reader.hpp"
#include "protocol/devices/reading.hpp"

namespace cb {

struct DeviceModel {
    std::string id;
    std::string manufacturer;
    std::string name;
    std::vector<devices::MeasurementType> types;
    std::vector<std::string> firmware;
    std::vector<std::string> purposes;

    bool allows(devices::MeasurementType type) const;
    bool allows_firmware(std::string_view version) const;
};

enum class BindingKind { home, station };

struct EnrolledDevice {
    std::string id;
    std::string model_id;
    std::string certificate_sha256;  // normalised: 64 lowercase hex digits
    BindingKind binding = BindingKind::home;
    std::string patient;                        // home binding
    std::string station;                        // station binding: reader name
    std::map<std::uint8_t, std::string> users;  // device user index -> patient reference
    std::uint64_t first_sequence = 1;
};

struct CatalogLoad;

class DeviceCatalog {
public:
    DeviceCatalog() = default;  // empty: every device is unknown

    const EnrolledDevice* device(std::string_view id) const;
    const DeviceModel* model(std::string_view id) const;
    std::size_t device_count() const noexcept { return m_devices.size(); }
    std::size_t model_count() const noexcept { return m_models.size(); }
    // Calls visit(device) for every enrolled device, in no particular order.
    template <typename Visit>
    void for_each_device(Visit visit) const {
        for (const auto& [id, device] : m_devices)
            visit(device);
    }

private:
    friend CatalogLoad load_catalog_text(std::string_view text, const std::string& file);
    StringMap<DeviceModel> m_models;
    StringMap<EnrolledDevice> m_devices;
};

struct CatalogLoad {
    std::optional<DeviceCatalog> catalog;  // set only when issues is empty
    std::vector<ConfigIssue> issues;
    bool ok() const noexcept { return catalog.has_value(); }
};

CatalogLoad load_catalog_text(std::string_view text, const std::string& file);
CatalogLoad load_catalog_file(const std::filesystem::path& path);

}  // namespace cb
