// Inputs of build_bundle for each measurement type, shared by the tests.
#pragma once

#include <string>

#include "protocol/upstream/fhir_bundle.hpp"

namespace cb::upstream::test {

// 2026-11-22T09:00:00Z, written by the device at +01:00.
inline constexpr const char* reading_time = "\"time_us\":1795338000000000,\"offset_min\":60";

inline std::string storage_json(devices::MeasurementType type) {
    using devices::MeasurementType;
    std::string values;
    switch (type) {
        case MeasurementType::body_weight:
            values = R"([{"code":188736,"value":71.5,"unit":"kg"},{"code":188752,"value":23.4,"unit":"kg/m2"}])";
            break;
        case MeasurementType::body_height: values = R"([{"code":188740,"value":172,"unit":"cm"}])"; break;
        case MeasurementType::heart_rate: values = R"([{"code":149530,"value":64,"unit":"/min"}])"; break;
        case MeasurementType::blood_pressure:
            values = R"([{"code":150021,"value":128,"unit":"mm[Hg]"},{"code":150022,"value":82,"unit":"mm[Hg]"},)"
                     R"({"code":149546,"value":70,"unit":"/min"}])";
            break;
        case MeasurementType::body_temperature: values = R"([{"code":150364,"value":37.2,"unit":"Cel"}])"; break;
        case MeasurementType::spo2:
            values = R"([{"code":150456,"value":97,"unit":"%"},{"code":149530,"value":66,"unit":"/min"}])";
            break;
        case MeasurementType::blood_glucose: values = R"([{"code":160188,"value":99.088,"unit":"mg/dL"}])"; break;
        case MeasurementType::steps: values = R"([{"code":8454247,"value":8342,"unit":"{steps}"}])"; break;
    }
    return std::string("{\"type\":\"") + devices::to_string(type) + "\"," + reading_time + ",\"values\":" + values +
           ",\"user_index\":255}";
}

inline BundleInput bundle_input(devices::MeasurementType type) {
    BundleInput input{devices::DeviceId::parse("cuff-0042").value(),    std::nullopt,  "OMRON",      "HEM-9200T", 17,
                      StoredReading::parse(storage_json(type)).value(), "idpe-4f2a9c", std::nullopt, std::nullopt};
    if (type == devices::MeasurementType::blood_glucose)
        input.glucose_moment = GlucoseMoment::after_meal;
    return input;
}

}  // namespace cb::upstream::test
