#include "daemon/catalog.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace cb {

namespace {

constexpr std::array<std::string_view, 2> binding_names{"home", "station"};

// 64 hex digits, optionally in colon-separated pairs; nullopt otherwise.
std::optional<std::string> normalise_sha256(std::string_view text) {
    std::string digits;
    for (const char c : text) {
        if (c == ':')
            continue;
        if (std::isxdigit(static_cast<unsigned char>(c)) == 0)
            return std::nullopt;
        digits += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (digits.size() != 64)
        return std::nullopt;
    return digits;
}

void read_model(TomlReader& reader, const TomlReader::Element& element, DeviceModel& model) {
    reader.string("id", model.id, 64);
    reader.string("manufacturer", model.manufacturer, 128);
    reader.string("name", model.name, 128);
    std::vector<std::string> type_names;
    reader.string_array("types", type_names, 16, 32);
    for (std::size_t i = 0; i < type_names.size(); ++i) {
        const auto type = devices::measurement_type_from_string(type_names[i]);
        if (!type) {
            reader.report(*element.table->get("types"), "types[" + std::to_string(i) + "]",
                          "\"" + type_names[i] +
                              "\" is not a measurement type (blood_pressure, body_weight, body_height, heart_rate, "
                              "spo2, body_temperature, blood_glucose, steps)");
            continue;
        }
        model.types.push_back(*type);
    }
    reader.string_array("firmware", model.firmware, 64, 64);
    reader.string_array("purposes", model.purposes, 16, 512);
    for (const char* key : {"id", "manufacturer", "name", "types", "firmware", "purposes"})
        if (element.table->get(key) == nullptr)
            reader.report(*element.table, key, "missing (required)");
    if (element.table->get("types") != nullptr && type_names.empty())
        reader.report(*element.table->get("types"), "types", "expected at least one measurement type");
    if (element.table->get("firmware") != nullptr && model.firmware.empty())
        reader.report(*element.table->get("firmware"), "firmware", "expected at least one firmware version");
}

void read_device(TomlReader& reader, const TomlReader::Element& element, EnrolledDevice& device) {
    const toml::table& table = *element.table;
    reader.string("id", device.id, 64);
    if (const auto* node = table.get("id");
        node != nullptr && !device.id.empty() && !devices::DeviceId::parse(device.id))
        reader.report(*node, "id", "\"" + device.id + "\" is not a device id ([A-Za-z0-9._-], 1..64 characters)");
    reader.string("model", device.model_id, 64);
    std::string fingerprint;
    reader.string("certificate_sha256", fingerprint, 128);
    if (!fingerprint.empty()) {
        if (auto normalised = normalise_sha256(fingerprint))
            device.certificate_sha256 = *normalised;
        else
            reader.report(*table.get("certificate_sha256"), "certificate_sha256",
                          "expected 64 hex digits (colons allowed)");
    }
    if (const auto binding = reader.choice("binding", binding_names))
        device.binding = *binding == 0 ? BindingKind::home : BindingKind::station;
    reader.string("patient", device.patient, 64);
    reader.string("station", device.station, 128);
    reader.integer("first_sequence", device.first_sequence, 1, static_cast<std::int64_t>(devices::max_sequence));
    for (const char* key : {"id", "model", "certificate_sha256", "binding"})
        if (table.get(key) == nullptr)
            reader.report(table, key, "missing (required)");
    if (table.get("binding") != nullptr) {
        if (device.binding == BindingKind::home && table.get("patient") == nullptr && table.get("users") == nullptr)
            reader.report(table, "patient", "missing: a home device needs a patient (or users)");
        if (device.binding == BindingKind::station && table.get("station") == nullptr)
            reader.report(table, "station", "missing: a station device needs the station's reader name");
    }
    // users = { "1" = "patient-a", "2" = "patient-b" }: the keys are device user indexes.
    const toml::node* users = table.get("users");
    if (users == nullptr)
        return;
    const auto* user_table = users->as_table();
    if (user_table == nullptr) {
        reader.report(*users, "users", "expected a table of \"index\" = \"patient\"");
        return;
    }
    // Mark users.* as known: they are read here, not through the reader.
    for (const auto& [key, value] : *user_table) {
        const std::string index_text(key.str());
        const std::string full = "users." + index_text;
        unsigned index = 0;
        const auto [end, error] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
        std::string patient;
        reader.string(full, patient, 64);
        if (error != std::errc{} || end != index_text.data() + index_text.size() || index > 254) {
            reader.report(value, full, "user index must be an integer 0..254 (255 means unknown user)");
            continue;
        }
        if (!patient.empty())
            device.users[static_cast<std::uint8_t>(index)] = patient;
    }
}

}  // namespace

bool DeviceModel::allows(devices::MeasurementType type) const {
    return std::find(types.begin(), types.end(), type) != types.end();
}

bool DeviceModel::allows_firmware(std::string_view version) const {
    return std::find(firmware.begin(), firmware.end(), version) != firmware.end();
}

const EnrolledDevice* DeviceCatalog::device(std::string_view id) const {
    const auto it = m_devices.find(id);
    return it == m_devices.end() ? nullptr : &it->second;
}

const DeviceModel* DeviceCatalog::model(std::string_view id) const {
    const auto it = m_models.find(id);
    return it == m_models.end() ? nullptr : &it->second;
}

CatalogLoad load_catalog_text(std::string_view text, const std::string& file) {
    CatalogLoad load;
    const auto root = parse_toml(text, file, load.issues);
    if (!root)
        return load;
    DeviceCatalog catalog;
    TomlReader reader(*root, file, load.issues);
    for (const auto& element : reader.table_array("model")) {
        TomlReader model_reader(*element.table, file, load.issues, element.label);
        DeviceModel model;
        read_model(model_reader, element, model);
        model_reader.report_unknown_keys();
        if (model.id.empty())
            continue;
        if (catalog.m_models.count(model.id) != 0) {
            model_reader.report(*element.table->get("id"), "id", "duplicate model id \"" + model.id + "\"");
            continue;
        }
        catalog.m_models.emplace(model.id, std::move(model));
    }
    for (const auto& element : reader.table_array("device")) {
        TomlReader device_reader(*element.table, file, load.issues, element.label);
        EnrolledDevice device;
        read_device(device_reader, element, device);
        device_reader.report_unknown_keys();
        if (!device.model_id.empty() && catalog.m_models.count(device.model_id) == 0)
            device_reader.report(*element.table->get("model"), "model",
                                 "\"" + device.model_id + "\" is not a [[model]] id of this catalog");
        if (device.id.empty())
            continue;
        if (catalog.m_devices.count(device.id) != 0) {
            device_reader.report(*element.table->get("id"), "id", "duplicate device id \"" + device.id + "\"");
            continue;
        }
        catalog.m_devices.emplace(device.id, std::move(device));
    }
    reader.report_unknown_keys();
    sort_issues(load.issues);
    if (load.issues.empty())
        load.catalog = std::move(catalog);
    return load;
}

CatalogLoad load_catalog_file(const std::filesystem::path& path) {
    return load_toml_file<CatalogLoad>(path, load_catalog_text);
}

}  // namespace cb
