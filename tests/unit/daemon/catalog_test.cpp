#include "daemon/catalog.hpp"

#include <catch2/catch.hpp>

namespace {

std::vector<std::string> messages(const cb::CatalogLoad& load) {
    std::vector<std::string> out;
    for (const auto& issue : load.issues)
        out.push_back(issue.to_string());
    return out;
}

const char* const good = R"(
[[model]]
id = "bp"
manufacturer = "Acme"
name = "BP-1"
types = ["blood_pressure", "heart_rate"]
firmware = ["1.0"]
purposes = ["Suivi"]

[[device]]
id = "cuff-1"
model = "bp"
certificate_sha256 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
binding = "home"
patient = "p-1"

[[device]]
id = "cuff-2"
model = "bp"
certificate_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
binding = "station"
station = "Virtual PCD 00 00"
users = { "1" = "p-1", "2" = "p-2" }
)";

}  // namespace

TEST_CASE("catalog: models and devices are read") {
    const auto load = cb::load_catalog_text(good, "devices.toml");
    INFO((messages(load).empty() ? "" : messages(load).front()));
    REQUIRE(load.ok());
    const auto& catalog = *load.catalog;
    CHECK(catalog.model_count() == 1);
    CHECK(catalog.device_count() == 2);
    const auto* model = catalog.model("bp");
    REQUIRE(model != nullptr);
    CHECK(model->allows(cb::devices::MeasurementType::heart_rate));
    CHECK_FALSE(model->allows(cb::devices::MeasurementType::spo2));
    CHECK(model->allows_firmware("1.0"));
    CHECK_FALSE(model->allows_firmware("1.1"));
    const auto* home = catalog.device("cuff-1");
    REQUIRE(home != nullptr);
    CHECK(home->binding == cb::BindingKind::home);
    CHECK(home->patient == "p-1");
    CHECK(home->certificate_sha256 == "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    const auto* station = catalog.device("cuff-2");
    REQUIRE(station != nullptr);
    CHECK(station->binding == cb::BindingKind::station);
    CHECK(station->station == "Virtual PCD 00 00");
    CHECK(station->users.at(2) == "p-2");
    CHECK(catalog.device("nope") == nullptr);
}

TEST_CASE("catalog: every problem is reported with its line") {
    const auto load = cb::load_catalog_text(R"([[model]]
id = "bp"
manufacturer = "Acme"
name = "BP-1"
types = ["blood_pressure", "pressure"]
firmware = []
purposes = ["Suivi"]
colour = "red"

[[device]]
id = "cuff 1"
model = "bq"
certificate_sha256 = "xyz"
binding = "car"
users = { "300" = "p" }

[[device]]
id = "cuff-9"
model = "bp"
certificate_sha256 = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
binding = "station"
)",
                                            "d.toml");
    REQUIRE_FALSE(load.ok());
    const auto all = messages(load);
    const auto has = [&](const std::string& text) { return std::find(all.begin(), all.end(), text) != all.end(); };
    for (const auto& m : all)
        UNSCOPED_INFO(m);
    CHECK(
        has("d.toml:5: model[0].types[1]: \"pressure\" is not a measurement type (blood_pressure, body_weight, "
            "body_height, heart_rate, spo2, body_temperature, blood_glucose, steps)"));
    CHECK(has("d.toml:6: model[0].firmware: expected at least one firmware version"));
    CHECK(has("d.toml:8: model[0].colour: unknown key"));
    CHECK(has("d.toml:11: device[0].id: \"cuff 1\" is not a device id ([A-Za-z0-9._-], 1..64 characters)"));
    CHECK(has("d.toml:12: device[0].model: \"bq\" is not a [[model]] id of this catalog"));
    CHECK(has("d.toml:13: device[0].certificate_sha256: expected 64 hex digits (colons allowed)"));
    CHECK(has("d.toml:14: device[0].binding: expected one of \"home\", \"station\", got \"car\""));
    CHECK(has("d.toml:15: device[0].users.300: user index must be an integer 0..254 (255 means unknown user)"));
    CHECK(has("d.toml:17: device[1].station: missing: a station device needs the station's reader name"));
}

TEST_CASE("catalog: duplicates and missing required keys") {
    const auto load = cb::load_catalog_text(R"([[model]]
id = "m"
[[model]]
id = "m"
manufacturer = "x"
name = "y"
types = ["spo2"]
firmware = ["1"]
purposes = ["z"]
)",
                                            "dup.toml");
    const auto all = messages(load);
    for (const auto& m : all)
        UNSCOPED_INFO(m);
    CHECK(std::find(all.begin(), all.end(), "dup.toml:4: model[1].id: duplicate model id \"m\"") != all.end());
    CHECK(std::find(all.begin(), all.end(), "dup.toml:1: model[0].manufacturer: missing (required)") != all.end());
}

TEST_CASE("catalog: the shipped catalog is valid") {
    const auto load = cb::load_catalog_file(CAREBRIDGE_SOURCE_DIR "/config/devices.toml");
    for (const auto& m : messages(load))
        UNSCOPED_INFO(m);
    REQUIRE(load.ok());
    CHECK(load.catalog->device("scale-home-1")->users.size() == 2);
}
