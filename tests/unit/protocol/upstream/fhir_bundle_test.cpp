// The bundle of each measurement type against the facts of the ANS IG
// "Mesures de santé" 3.1.0 (profiles, LOINC, MDC, UCUM, subject OID, device
// conditional create), and the refusals parse_bundle makes as the IG's server does.
#include "protocol/upstream/fhir_bundle.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "protocol/upstream/canonical_json.hpp"
#include "tests/unit/protocol/upstream/bundle_fixtures.hpp"

using namespace cb::upstream;
using cb::devices::MeasurementType;
namespace json = boost::json;

namespace {

const std::string profile_base = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition/";

json::object build(const BundleInput& input) {
    auto bundle = build_bundle(input);
    if (!bundle)
        FAIL("build_bundle: " << bundle.error().message);
    return std::move(bundle).value();
}

json::object& observation_of(json::object& bundle) {
    return bundle.at("entry").as_array().at(1).as_object().at("resource").as_object();
}
json::object& device_of(json::object& bundle) {
    return bundle.at("entry").as_array().at(0).as_object().at("resource").as_object();
}
json::object& request_of(json::object& bundle, std::size_t entry) {
    return bundle.at("entry").as_array().at(entry).as_object().at("request").as_object();
}

// The codings of a CodeableConcept as "system|code" strings.
std::vector<std::string> codings(const json::value& concept_value) {
    std::vector<std::string> out;
    for (const auto& coding : concept_value.at("coding").as_array())
        out.push_back(std::string(coding.at("system").as_string()) + "|" + std::string(coding.at("code").as_string()));
    return out;
}

// 8-4-4-4-12 lowercase hex, version 5.
bool bundle_fixture_uuid_shape(const std::string& id) {
    if (id.size() != 36 || id[14] != '5')
        return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (id[i] == '-'))
            return false;
        if (!dash && std::string_view("0123456789abcdef").find(id[i]) == std::string_view::npos)
            return false;
    }
    return true;
}

std::string text_of(const json::object& bundle) {
    return canonicalize(bundle).value();
}

struct Expected {
    MeasurementType type;
    const char* profile;
    const char* loinc;
    const char* mdc;
    const char* ucum;
    double value;
};

}  // namespace

TEST_CASE("a bundle is a transaction of a conditional Device and a conditional Observation") {
    json::object bundle = build(test::bundle_input(MeasurementType::body_weight));
    CHECK(bundle.at("resourceType") == "Bundle");
    CHECK(bundle.at("type") == "transaction");
    CHECK(bundle.at("meta").at("profile").at(0) == json::value(profile_base + "mesures-bundle-flux-alimentation"));
    REQUIRE(bundle.at("entry").as_array().size() == 2);

    json::object& device = device_of(bundle);
    CHECK(device.at("resourceType") == "Device");
    CHECK(device.at("meta").at("profile").at(0) == "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice");
    CHECK(device.at("identifier").at(0).at("system") == "urn:oid:2.25.335560445338171287232695893826237760841.1");
    CHECK(device.at("identifier").at(0).at("value") == "cuff-0042");
    CHECK(device.at("modelNumber") == "HEM-9200T");
    CHECK(device.at("manufacturer") == "OMRON");
    CHECK(request_of(bundle, 0).at("method") == "POST");
    CHECK(request_of(bundle, 0).at("url") == "Device");
    CHECK(request_of(bundle, 0).at("ifNoneExist") ==
          "identifier=urn:oid:2.25.335560445338171287232695893826237760841.1|cuff-0042");

    json::object& observation = observation_of(bundle);
    CHECK(observation.at("status") == "final");
    CHECK(codings(observation.at("category").at(0)) ==
          std::vector<std::string>{"http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"});
    CHECK(observation.at("identifier").at(0).at("system") == "urn:oid:2.25.335560445338171287232695893826237760841.2");
    CHECK(observation.at("identifier").at(0).at("value") == "cuff-0042:17");
    CHECK(request_of(bundle, 1).at("method") == "POST");
    CHECK(request_of(bundle, 1).at("url") == "Observation");
    CHECK(request_of(bundle, 1).at("ifNoneExist") ==
          "identifier=urn:oid:2.25.335560445338171287232695893826237760841.2|cuff-0042:17");
    CHECK(observation.at("subject").at("identifier").at("system") == "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2560");
    CHECK(observation.at("subject").at("identifier").at("value") == "idpe-4f2a9c");
    CHECK(observation.at("effectiveDateTime") == "2026-11-22T10:00:00+01:00");
    CHECK(observation.at("device").at("reference") ==
          json::value("Device/" + std::string(device.at("id").as_string())));
    CHECK_FALSE(observation.contains("performer"));
    CHECK_FALSE(bundle.contains("signature"));
}

TEST_CASE("each type has the IG's profile, LOINC and MDC codes and UCUM unit") {
    const Expected expectations[] = {
        {MeasurementType::body_weight, "mesures-fr-observation-body-weight", "29463-7", "188736", "kg", 71.5},
        {MeasurementType::body_height, "mesures-fr-observation-bodyheight", "8302-2", "188740", "cm", 172},
        {MeasurementType::heart_rate, "mesures-fr-observation-heartrate", "8867-4", "149530", "/min", 64},
        {MeasurementType::body_temperature, "mesures-fr-observation-body-temperature", "8310-5", "150364", "Cel", 37.2},
        {MeasurementType::spo2, "mesures-fr-observation-oxygen-sat", "2708-6", "150456", "%", 97},
        {MeasurementType::steps, "mesures-observation-steps-by-day", "41950-7", "8454247", "1/(24.h)", 8342},
    };
    for (const Expected& expected : expectations) {
        INFO(cb::devices::to_string(expected.type));
        json::object bundle = build(test::bundle_input(expected.type));
        json::object& observation = observation_of(bundle);
        CHECK(observation.at("meta").at("profile").at(0) == json::value(profile_base + expected.profile));
        CHECK(codings(observation.at("code")) ==
              std::vector<std::string>{std::string("http://loinc.org|") + expected.loinc,
                                       std::string("urn:iso:std:iso:11073:10101|") + expected.mdc});
        const json::value& quantity = observation.at("valueQuantity");
        CHECK(quantity.at("system") == "http://unitsofmeasure.org");
        CHECK(quantity.at("code") == expected.ucum);
        CHECK(quantity.at("value").to_number<double>() == expected.value);
        CHECK_FALSE(observation.contains("component"));
    }
}

TEST_CASE("blood pressure is the 85354-9 panel with systolic and diastolic components, pulse dropped") {
    json::object bundle = build(test::bundle_input(MeasurementType::blood_pressure));
    json::object& observation = observation_of(bundle);
    CHECK(observation.at("meta").at("profile").at(0) == json::value(profile_base + "mesures-fr-observation-bp"));
    CHECK(codings(observation.at("code")) ==
          std::vector<std::string>{"http://loinc.org|85354-9", "urn:iso:std:iso:11073:10101|150020"});
    CHECK_FALSE(observation.contains("valueQuantity"));
    const json::array& components = observation.at("component").as_array();
    REQUIRE(components.size() == 2);
    CHECK(codings(components[0].at("code")) ==
          std::vector<std::string>{"http://loinc.org|8480-6", "urn:iso:std:iso:11073:10101|150021"});
    CHECK(components[0].at("valueQuantity").at("value").to_number<double>() == 128);
    CHECK(components[0].at("valueQuantity").at("code") == "mm[Hg]");
    CHECK(codings(components[1].at("code")) ==
          std::vector<std::string>{"http://loinc.org|8462-4", "urn:iso:std:iso:11073:10101|150022"});
    CHECK(components[1].at("valueQuantity").at("value").to_number<double>() == 82);
    CHECK(text_of(bundle).find("149546") == std::string::npos);
}

TEST_CASE("blood glucose uses the IG's value sets and carries the moment of measurement") {
    json::object bundle = build(test::bundle_input(MeasurementType::blood_glucose));
    json::object& observation = observation_of(bundle);
    CHECK(observation.at("meta").at("profile").at(0) == json::value(profile_base + "mesures-observation-glucose"));
    CHECK(codings(observation.at("code")) ==
          std::vector<std::string>{"https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc|2345-7",
                                   "urn:iso:std:iso:11073:10101|160188"});
    CHECK(observation.at("valueQuantity").at("code") == "mg/dL");
    CHECK(observation.at("valueQuantity").at("value").to_number<double>() == 99.088);
    const json::value& extension = observation.at("extension").at(0);
    CHECK(extension.at("url") == json::value(profile_base + "mesures-moment-of-measurement"));
    CHECK(codings(extension.at("valueCodeableConcept")) ==
          std::vector<std::string>{"https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc|16915-1"});

    auto malaise = test::bundle_input(MeasurementType::blood_glucose);
    malaise.glucose_moment = GlucoseMoment::during_malaise;
    json::object other = build(malaise);
    CHECK(codings(observation_of(other).at("extension").at(0).at("valueCodeableConcept")) ==
          std::vector<std::string>{"https://mos.esante.gouv.fr/NOS/TRE_R313-CISP2/FHIR/TRE-R313-CISP2|A05"});
}

TEST_CASE("values are rounded to 3 decimals") {
    auto input = test::bundle_input(MeasurementType::blood_glucose);
    input.reading.components[0].value = 5.5 * 18.016;  // 99.08800000000001
    json::object bundle = build(input);
    CHECK(observation_of(bundle).at("valueQuantity").at("value").to_number<double>() == 99.088);
    CHECK(text_of(bundle).find("\"value\":99.088}") != std::string::npos);
}

TEST_CASE("a weight bundle never carries BMI") {
    const std::string text = text_of(build(test::bundle_input(MeasurementType::body_weight)));
    CHECK(text.find("39156-5") == std::string::npos);
    CHECK(text.find("188752") == std::string::npos);
    CHECK(text.find("kg/m2") == std::string::npos);
    CHECK(text.find("mesures-fr-observation-bmi") == std::string::npos);
}

TEST_CASE("an EUI-64 identifies the device with the IEEE system and SYSID type") {
    auto input = test::bundle_input(MeasurementType::body_weight);
    input.eui64 = std::array<std::uint8_t, 8>{0xFE, 0xED, 0xAB, 0xAA, 0xDE, 0xAD, 0x77, 0xC5};
    json::object bundle = build(input);
    const json::value& identifier = device_of(bundle).at("identifier").at(0);
    CHECK(identifier.at("system") == "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680");
    CHECK(identifier.at("value") == "FE-ED-AB-AA-DE-AD-77-C5");
    CHECK(codings(identifier.at("type")) ==
          std::vector<std::string>{"http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers|SYSID"});
    CHECK(request_of(bundle, 0).at("ifNoneExist") ==
          "identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|FE-ED-AB-AA-DE-AD-77-C5");
    // The observation's business key stays our (device, seq).
    CHECK(observation_of(bundle).at("identifier").at(0).at("value") == "cuff-0042:17");
}

TEST_CASE("the performer is the practitioner's IDNPS when one validated the reading") {
    auto input = test::bundle_input(MeasurementType::heart_rate);
    input.practitioner_idnps = "810001234567";
    json::object bundle = build(input);
    const json::value& performer = observation_of(bundle).at("performer").at(0);
    CHECK(performer.at("type") == "Practitioner");
    CHECK(performer.at("identifier").at("system") == "urn:oid:1.2.250.1.71.4.2.1");
    CHECK(performer.at("identifier").at("value") == "810001234567");
}

TEST_CASE("building is deterministic and ids follow the business keys") {
    const auto input = test::bundle_input(MeasurementType::spo2);
    json::object first = build(input);
    json::object second = build(input);
    CHECK(text_of(first) == text_of(second));
    auto next = input;
    next.sequence = 18;
    json::object third = build(next);
    CHECK(device_of(third).at("id") == device_of(first).at("id"));
    CHECK(observation_of(third).at("id") != observation_of(first).at("id"));
    CHECK(bundle_fixture_uuid_shape(std::string(observation_of(first).at("id").as_string())));
}

TEST_CASE("effectiveDateTime keeps the device's offset and microseconds") {
    auto input = test::bundle_input(MeasurementType::steps);
    input.reading.time.offset = std::chrono::minutes(-210);
    input.reading.time.utc += std::chrono::microseconds(123456);
    json::object bundle = build(input);
    CHECK(observation_of(bundle).at("effectiveDateTime") == "2026-11-22T05:30:00.123456-03:30");
}

TEST_CASE("build_bundle refuses what the IG would refuse") {
    auto glucose = test::bundle_input(MeasurementType::blood_glucose);
    glucose.glucose_moment.reset();
    auto refused = build_bundle(glucose);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::glucose_without_moment);
    CHECK(refused.error().to_error().message().rfind("glucose_without_moment: ", 0) == 0);

    auto underscore = test::bundle_input(MeasurementType::body_weight);
    underscore.device = cb::devices::DeviceId::parse("cuff_42").value();
    refused = build_bundle(underscore);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::bad_identifier);
    underscore.eui64 = std::array<std::uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(build_bundle(underscore).has_value());

    auto pipe = test::bundle_input(MeasurementType::body_weight);
    pipe.patient_idpe = "a|b";
    refused = build_bundle(pipe);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::bad_subject);

    auto bad_unit = test::bundle_input(MeasurementType::body_weight);
    bad_unit.reading.components[0].unit = "g";
    refused = build_bundle(bad_unit);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::wrong_unit);

    auto missing = test::bundle_input(MeasurementType::blood_pressure);
    missing.reading.components.erase(missing.reading.components.begin() + 1);
    refused = build_bundle(missing);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::bad_value);
}

TEST_CASE("bundle_text is canonical as written, for every type and optional member") {
    // The forwarder signs bundle_text as the JWS payload without canonicalizing
    // it: it must be what canonicalize gives for the same value.
    for (int type = 0; type <= static_cast<int>(MeasurementType::steps); ++type) {
        for (int variant = 0; variant < 8; ++variant) {
            auto input = test::bundle_input(static_cast<MeasurementType>(type));
            if ((variant & 1) != 0)
                input.eui64 = std::array<std::uint8_t, 8>{0x00, 0x1B, 0xC5, 0x01, 0x02, 0x03, 0x04, 0xFF};
            if ((variant & 2) != 0) {
                input.manufacturer.clear();
                input.model = "Mod\"el\x01 \xC3\xA9\\";  // escapes and UTF-8
            }
            if ((variant & 4) != 0)
                input.practitioner_idnps = "810001234567";
            if (input.reading.type == MeasurementType::blood_glucose)
                input.glucose_moment = static_cast<GlucoseMoment>(variant % 6);
            INFO("type " << type << " variant " << variant);
            const auto text = bundle_text(input);
            if (!text)
                FAIL(text.error().message);
            CHECK(canonicalize(json::parse(*text)).value() == *text);
            CHECK(json::parse(*text).as_object() == build(input));
            CHECK(parse_bundle(*text).has_value());
        }
    }

    auto not_utf8 = test::bundle_input(MeasurementType::body_weight);
    not_utf8.manufacturer = "OMR\xFFN";
    const auto refused = bundle_text(not_utf8);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().problem == BundleProblem::malformed);
    CHECK(refused.error().message == "device \"cuff-0042\": canonical JSON: a string is not valid UTF-8");
}

TEST_CASE("StoredReading reads the storage JSON of a reading") {
    const auto reading = StoredReading::parse(test::storage_json(MeasurementType::blood_pressure));
    REQUIRE(reading.has_value());
    CHECK(reading->type == MeasurementType::blood_pressure);
    CHECK(reading->time.offset == std::chrono::minutes(60));
    REQUIRE(reading->components.size() == 3);
    CHECK(reading->components[1].code == 150022);
    CHECK(reading->components[1].unit == "mm[Hg]");
    const auto bad = StoredReading::parse(R"({"type":"steps","time_us":1,"offset_min":0,"values":[{"code":0}]})");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message() == "stored reading: values[0].code: expected an integer 1..4294967295");
    CHECK_FALSE(StoredReading::parse(R"({"type":"nope"})").has_value());
    CHECK_FALSE(StoredReading::parse("[").has_value());
}

TEST_CASE("a glucose reading's meal context becomes the moment of measurement") {
    const std::string stored = R"({"type":"blood_glucose","time_us":1795341300000000,"offset_min":60,)"
                               R"("values":[{"code":160184,"value":104,"unit":"mg/dL"}],"user_index":255,)"
                               R"("meal":"postprandial"})";
    const auto reading = StoredReading::parse(stored);
    REQUIRE(reading.has_value());
    REQUIRE(reading->meal.has_value());
    CHECK(*reading->meal == cb::devices::Meal::postprandial);
    CHECK(glucose_moment_of(cb::devices::Meal::preprandial) == GlucoseMoment::before_meal);
    CHECK(glucose_moment_of(cb::devices::Meal::postprandial) == GlucoseMoment::after_meal);
    CHECK(glucose_moment_of(cb::devices::Meal::fasting) == GlucoseMoment::fasting);
    CHECK(glucose_moment_of(cb::devices::Meal::casual) == GlucoseMoment::other);
    CHECK(glucose_moment_of(cb::devices::Meal::bedtime) == GlucoseMoment::other);
    const auto bad = StoredReading::parse(R"({"type":"blood_glucose","time_us":1,"offset_min":0,)"
                                          R"("values":[{"code":160184,"value":104,"unit":"mg/dL"}],"meal":"lunch"})");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message() == "stored reading: meal: expected a meal context name");
}

TEST_CASE("parse_bundle accepts every bundle we build and summarises it") {
    for (const auto type : {MeasurementType::blood_pressure, MeasurementType::body_weight, MeasurementType::body_height,
                            MeasurementType::heart_rate, MeasurementType::spo2, MeasurementType::body_temperature,
                            MeasurementType::blood_glucose, MeasurementType::steps}) {
        INFO(cb::devices::to_string(type));
        auto input = test::bundle_input(type);
        input.practitioner_idnps = "810001234567";
        const std::string text = text_of(build(input));
        const auto summary = parse_bundle(text);
        if (!summary)
            FAIL(summary.error().message);
        CHECK(summary->type == type);
        CHECK(summary->observation_system == carebridge_observation_system);
        CHECK(summary->observation_value == "cuff-0042:17");
        CHECK(summary->device_system == carebridge_device_system);
        CHECK(summary->device_value == "cuff-0042");
        CHECK(summary->patient_idpe == "idpe-4f2a9c");
        CHECK(summary->practitioner_idnps == std::optional<std::string>("810001234567"));
        CHECK(summary->effective == input.reading.time);
        CHECK(summary->values.size() == (type == MeasurementType::blood_pressure ? 2U : 1U));
        CHECK(summary->glucose_moment.has_value() == (type == MeasurementType::blood_glucose));
        CHECK_FALSE(summary->has_signature);
    }
}

namespace {

// Builds a weight (or `type`) bundle, lets `change` alter it, and parses it.
template <typename Change>
BundleResult<BundleSummary> parse_changed(MeasurementType type, Change change) {
    json::object bundle = build(test::bundle_input(type));
    change(bundle);
    return parse_bundle(text_of(bundle));
}

void check_refused(const BundleResult<BundleSummary>& result, BundleProblem problem) {
    REQUIRE_FALSE(result.has_value());
    INFO(result.error().message);
    CHECK(result.error().problem == problem);
    CHECK_FALSE(result.error().message.empty());
}

}  // namespace

TEST_CASE("parse_bundle refuses BMI") {
    check_refused(parse_changed(MeasurementType::body_weight,
                                [](json::object& bundle) {
                                    observation_of(bundle)["meta"].as_object()["profile"] =
                                        json::array{profile_base + "mesures-fr-observation-bmi"};
                                }),
                  BundleProblem::bmi_refused);
    check_refused(parse_changed(MeasurementType::body_weight,
                                [](json::object& bundle) {
                                    observation_of(bundle)["code"].as_object()["coding"].as_array().push_back(
                                        json::object{{"system", "http://loinc.org"}, {"code", "39156-5"}});
                                }),
                  BundleProblem::bmi_refused);
}

TEST_CASE("parse_bundle refuses glucose without a moment") {
    check_refused(parse_changed(MeasurementType::blood_glucose,
                                [](json::object& bundle) { observation_of(bundle).erase("extension"); }),
                  BundleProblem::glucose_without_moment);
    check_refused(
        parse_changed(
            MeasurementType::blood_glucose,
            [](json::object& bundle) {
                observation_of(bundle)["extension"].as_array()[0].as_object()["valueCodeableConcept"] = json::object{
                    {"coding", json::array{json::object{{"system", "http://loinc.org"}, {"code", "0000-0"}}}}};
            }),
        BundleProblem::glucose_without_moment);
}

TEST_CASE("parse_bundle refuses a wrong unit") {
    check_refused(parse_changed(MeasurementType::body_weight,
                                [](json::object& bundle) {
                                    observation_of(bundle)["valueQuantity"].as_object()["code"] = "[lb_av]";
                                }),
                  BundleProblem::wrong_unit);
    check_refused(
        parse_changed(
            MeasurementType::blood_pressure,
            [](json::object& bundle) {
                observation_of(bundle)["component"].as_array()[1].as_object()["valueQuantity"].as_object()["code"] =
                    "kPa";
            }),
        BundleProblem::wrong_unit);
    check_refused(parse_changed(MeasurementType::spo2,
                                [](json::object& bundle) {
                                    observation_of(bundle)["valueQuantity"].as_object()["system"] =
                                        "http://example.org";
                                }),
                  BundleProblem::wrong_unit);
}

TEST_CASE("parse_bundle refuses a missing or foreign profile") {
    check_refused(
        parse_changed(MeasurementType::heart_rate, [](json::object& bundle) { observation_of(bundle).erase("meta"); }),
        BundleProblem::missing_profile);
    check_refused(parse_changed(MeasurementType::heart_rate,
                                [](json::object& bundle) {
                                    observation_of(bundle)["meta"].as_object()["profile"] =
                                        json::array{"http://hl7.org/fhir/StructureDefinition/heartrate"};
                                }),
                  BundleProblem::missing_profile);
    check_refused(
        parse_changed(MeasurementType::heart_rate, [](json::object& bundle) { device_of(bundle).erase("meta"); }),
        BundleProblem::missing_profile);
}

TEST_CASE("parse_bundle refuses wrong codes, subjects, links, identifiers and times") {
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) {
                                    observation_of(bundle)["code"] =
                                        json::object{{"coding", json::array{json::object{{"system", "http://loinc.org"},
                                                                                         {"code", "29463-7"}}}}};
                                }),
                  BundleProblem::unknown_code);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) {
                                    observation_of(bundle)["subject"].as_object()["identifier"].as_object()["system"] =
                                        "urn:oid:1.2.3";
                                }),
                  BundleProblem::bad_subject);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) {
                                    observation_of(bundle)["device"].as_object()["reference"] = "Device/other";
                                }),
                  BundleProblem::bad_device_link);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) { request_of(bundle, 0).erase("ifNoneExist"); }),
                  BundleProblem::bad_identifier);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) {
                                    request_of(bundle, 1)["ifNoneExist"] =
                                        "identifier=" + std::string(carebridge_observation_system) + "|cuff-0042:18";
                                }),
                  BundleProblem::bad_identifier);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) {
                                    observation_of(bundle)["effectiveDateTime"] = "2026-11-22T10:00:00";
                                }),
                  BundleProblem::bad_time);
    check_refused(parse_changed(MeasurementType::body_height,
                                [](json::object& bundle) { observation_of(bundle).erase("valueQuantity"); }),
                  BundleProblem::bad_value);
}

TEST_CASE("parse_bundle is bounded and refuses what is not a bundle") {
    check_refused(parse_bundle(std::string(max_bundle_size + 1, ' ')), BundleProblem::too_large);
    check_refused(parse_bundle(std::string(40, '[') + std::string(40, ']')), BundleProblem::too_large);
    check_refused(parse_bundle("{\"resourceType\":"), BundleProblem::malformed);
    check_refused(parse_bundle("[]"), BundleProblem::malformed);
    check_refused(parse_bundle(R"({"resourceType":"Bundle","type":"batch","entry":[]})"), BundleProblem::malformed);
    check_refused(parse_changed(MeasurementType::steps,
                                [](json::object& bundle) {
                                    bundle["entry"].as_array().push_back(bundle["entry"].as_array()[1]);
                                }),
                  BundleProblem::malformed);
}
