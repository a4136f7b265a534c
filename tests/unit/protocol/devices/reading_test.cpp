#include "protocol/devices/reading.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono;
using cb::devices::MeasurementType;
using cb::devices::Reading;
using cb::devices::RejectReason;
using cb::devices::StatusFlag;

// 2026-11-22T10:00:00Z, the gateway's clock in every test.
const cb::devices::Microseconds now{seconds(1795341600)};

const cb::devices::DeviceId& device() {
    static const cb::devices::DeviceId id = cb::devices::DeviceId::parse("cuff-0042").value();
    return id;
}

// A reading of `type` with `values` (the inside of the array) and extra members.
std::string payload(std::string_view type, std::string_view values, std::string_view extra = "") {
    std::string out = R"({"device_id":"cuff-0042","seq":7,"type":")";
    out += type;
    out += R"(","time":"2026-11-22T10:55:00+01:00","values":[)";
    out += values;
    out += "]";
    if (!extra.empty()) {
        out += ",";
        out += extra;
    }
    return out + "}";
}

const std::string bp_values =
    R"({"code":150021,"value":128,"unit":"mm[Hg]"},{"code":150022,"value":82,"unit":"mm[Hg]"})";

Reading accept(const std::string& json) {
    INFO(json);
    auto parsed = Reading::parse(device(), json, now);
    if (!parsed)
        FAIL(parsed.error().message);
    return std::move(parsed).value();
}

// `json` is rejected for `reason` with exactly `message`.
void check_rejected(const std::string& json, RejectReason reason, const std::string& message) {
    INFO(json);
    const auto parsed = Reading::parse(device(), json, now);
    REQUIRE_FALSE(parsed);
    CHECK(cb::devices::to_string(parsed.error().reason) == std::string(cb::devices::to_string(reason)));
    CHECK(parsed.error().message == message);
}

}  // namespace

// ---- accepted readings, one per type -------------------------------------------

TEST_CASE("blood pressure with mean and pulse", "[devices][reading]") {
    const Reading reading = accept(payload("blood_pressure",
                                           bp_values + R"(,{"code":150023,"value":97,"unit":"mm[Hg]"},)"
                                                       R"({"code":149546,"value":64,"unit":"/min"})",
                                           R"("user_index":1,"clock_offset_s":-12,"flags":["irregular_pulse"])"));
    CHECK(reading.device().str() == "cuff-0042");
    CHECK(reading.sequence() == 7);
    CHECK(reading.type() == MeasurementType::blood_pressure);
    REQUIRE(reading.components().size() == 4);
    CHECK(reading.components()[0] == cb::devices::Component{150021, 128, "mm[Hg]"});
    CHECK(reading.components()[1] == cb::devices::Component{150022, 82, "mm[Hg]"});
    CHECK(reading.component(150023)->value == 97);
    CHECK(reading.component(149546)->unit == "/min");
    CHECK(reading.component(150456) == nullptr);
    CHECK(reading.device_time().utc == now - minutes(5));
    CHECK(reading.device_time().offset == minutes(60));
    CHECK(reading.clock_offset() == seconds(-12));
    CHECK(reading.user_index() == 1);
    CHECK(reading.flags().contains(StatusFlag::irregular_pulse));
    CHECK_FALSE(reading.flags().contains(StatusFlag::body_movement));
}

TEST_CASE("defaults: unknown user, no clock offset, no flags", "[devices][reading]") {
    const Reading reading = accept(payload("blood_pressure", bp_values));
    CHECK(reading.user_index() == cb::devices::unknown_user);
    CHECK_FALSE(reading.clock_offset().has_value());
    CHECK(reading.flags().empty());
}

TEST_CASE("blood pressure in kPa is converted to mm[Hg]", "[devices][reading]") {
    const Reading reading = accept(payload(
        "blood_pressure", R"({"code":150021,"value":16,"unit":"kPa"},{"code":150022,"value":10.5,"unit":"kPa"})"));
    CHECK(reading.components()[0].value == Approx(120.01).epsilon(1e-4));
    CHECK(reading.components()[0].unit == "mm[Hg]");
    CHECK(reading.components()[1].value == Approx(78.756).epsilon(1e-4));
}

TEST_CASE("all BPS flags are accepted on blood pressure", "[devices][reading]") {
    const Reading reading =
        accept(payload("blood_pressure", bp_values,
                       R"("flags":["body_movement","cuff_fit_too_loose","irregular_pulse","pulse_rate_out_of_range",)"
                       R"("improper_measurement_position","body_movement"])"));
    for (const StatusFlag flag :
         {StatusFlag::body_movement, StatusFlag::cuff_fit_too_loose, StatusFlag::irregular_pulse,
          StatusFlag::pulse_rate_out_of_range, StatusFlag::improper_measurement_position})
        CHECK(reading.flags().contains(flag));
    CHECK(reading.flags().bits() == 0x1Fu);
}

TEST_CASE("body weight in kg, g, [lb_av] and lb, with BMI", "[devices][reading]") {
    CHECK(accept(payload("body_weight", R"({"code":188736,"value":72.4,"unit":"kg"})")).components()[0].value == 72.4);
    CHECK(accept(payload("body_weight", R"({"code":188736,"value":3400,"unit":"g"})")).components()[0].value ==
          Approx(3.4));
    const Reading pounds = accept(payload("body_weight", R"({"code":188736,"value":160,"unit":"[lb_av]"},)"
                                                         R"({"code":188752,"value":24.7,"unit":"kg/m2"})"));
    CHECK(pounds.type() == MeasurementType::body_weight);
    CHECK(pounds.components()[0].value == Approx(72.5747792));
    CHECK(pounds.components()[0].unit == "kg");
    CHECK(pounds.component(188752)->value == 24.7);
    CHECK(accept(payload("body_weight", R"({"code":188736,"value":160,"unit":"lb"})")).components()[0].value ==
          Approx(72.5747792));
}

TEST_CASE("body height in cm, m, mm, [in_i] and in", "[devices][reading]") {
    CHECK(accept(payload("body_height", R"({"code":188740,"value":172,"unit":"cm"})")).components()[0].value == 172);
    CHECK(accept(payload("body_height", R"({"code":188740,"value":1.72,"unit":"m"})")).components()[0].value ==
          Approx(172));
    CHECK(accept(payload("body_height", R"({"code":188740,"value":1720,"unit":"mm"})")).components()[0].value ==
          Approx(172));
    CHECK(accept(payload("body_height", R"({"code":188740,"value":70,"unit":"[in_i]"})")).components()[0].value ==
          Approx(177.8));
    const Reading inches = accept(payload("body_height", R"({"code":188740,"value":70,"unit":"in"})"));
    CHECK(inches.components()[0].value == Approx(177.8));
    CHECK(inches.components()[0].unit == "cm");
}

TEST_CASE("heart rate from any of its three codes, bpm accepted", "[devices][reading]") {
    const Reading cuff = accept(payload("heart_rate", R"({"code":149546,"value":64,"unit":"bpm"})"));
    CHECK(cuff.type() == MeasurementType::heart_rate);
    CHECK(cuff.components()[0] == cb::devices::Component{149546, 64, "/min"});
    CHECK(accept(payload("heart_rate", R"({"code":149530,"value":70,"unit":"{beat}/min"})")).components()[0].unit ==
          "/min");
    CHECK(accept(payload("heart_rate", R"({"code":147842,"value":70,"unit":"1/min"})", R"("flags":["low_perfusion"])"))
              .flags()
              .contains(StatusFlag::low_perfusion));
}

TEST_CASE("SpO2 with pulse rate and PLXS flags", "[devices][reading]") {
    const Reading reading = accept(payload("spo2",
                                           R"({"code":150456,"value":97,"unit":"%"},)"
                                           R"({"code":149530,"value":72,"unit":"/min"})",
                                           R"("flags":["low_perfusion","sensor_displaced"])"));
    CHECK(reading.type() == MeasurementType::spo2);
    CHECK(reading.component(150456)->value == 97);
    CHECK(reading.flags().contains(StatusFlag::sensor_displaced));
}

TEST_CASE("body temperature in Cel and [degF]", "[devices][reading]") {
    CHECK(accept(payload("body_temperature", R"({"code":150364,"value":37.2,"unit":"Cel"})")).components()[0].value ==
          37.2);
    const Reading fahrenheit = accept(payload("body_temperature", R"({"code":150364,"value":98.6,"unit":"[degF]"})"));
    CHECK(fahrenheit.type() == MeasurementType::body_temperature);
    CHECK(fahrenheit.components()[0].value == Approx(37.0));
    CHECK(fahrenheit.components()[0].unit == "Cel");
}

TEST_CASE("blood glucose in mg/dL and mmol/L (x 18.016), with GLS flags", "[devices][reading]") {
    const Reading plasma = accept(payload("blood_glucose", R"({"code":160188,"value":5.5,"unit":"mmol/L"})",
                                          R"("flags":["result_below_device_range","device_fault"])"));
    CHECK(plasma.type() == MeasurementType::blood_glucose);
    CHECK(plasma.components()[0].value == Approx(99.088));
    CHECK(plasma.components()[0].unit == "mg/dL");
    CHECK(plasma.flags().contains(StatusFlag::device_fault));
    CHECK(accept(payload("blood_glucose", R"({"code":160184,"value":104,"unit":"mg/dL"})")).components()[0].value ==
          104);
}

TEST_CASE("steps as {steps} or 1, whole numbers from 0", "[devices][reading]") {
    const Reading steps = accept(payload("steps", R"({"code":8454247,"value":8342,"unit":"{steps}"})"));
    CHECK(steps.type() == MeasurementType::steps);
    CHECK(steps.components()[0] == cb::devices::Component{8454247, 8342, "{steps}"});
    CHECK(accept(payload("steps", R"({"code":8454247,"value":0,"unit":"1"})")).components()[0].value == 0);
}

TEST_CASE("raw SFLOAT and FLOAT values are decoded", "[devices][reading]") {
    // 0xF4E2: exponent -1, mantissa 1250 -> 125.0; 0x0052: 82.
    const Reading sfloat =
        accept(payload("blood_pressure", R"({"code":150021,"value":{"sfloat":62690},"unit":"mm[Hg]"},)"
                                         R"({"code":150022,"value":{"sfloat":82},"unit":"mm[Hg]"})"));
    CHECK(sfloat.components()[0].value == Approx(125.0));
    CHECK(sfloat.components()[1].value == Approx(82.0));
    // 0xFF000172: exponent -1, mantissa 370 -> 37.0; 0xFE00FFFF... negative mantissa not plausible, see rejections.
    const Reading fl =
        accept(payload("body_temperature", R"({"code":150364,"value":{"float":4278190450},"unit":"Cel"})"));
    CHECK(fl.components()[0].value == Approx(37.0));
}

TEST_CASE("timestamps at the edges of the window are accepted", "[devices][reading]") {
    const auto at = [](std::string_view time) {
        return std::string(R"({"device_id":"cuff-0042","seq":1,"type":"steps","time":")") + std::string(time) +
               R"(","values":[{"code":8454247,"value":1,"unit":"{steps}"}]})";
    };
    CHECK(accept(at("2026-11-22T10:05:00Z")).device_time().utc == now + minutes(5));
    CHECK(accept(at("2026-10-23T10:00:00Z")).device_time().utc == now - hours(24 * 30));
    const auto limits = cb::devices::ReadingLimits{.max_future_skew = minutes(5), .max_age = hours(24 * 365)};
    CHECK(Reading::parse(device(), at("2026-01-01T00:00:00Z"), now, limits));
}

TEST_CASE("seq spans 1..2^53-1, user_index 0..255", "[devices][reading]") {
    const auto with = [](std::string_view seq, std::string_view extra) {
        return std::string(R"({"device_id":"cuff-0042","seq":)") + std::string(seq) +
               R"(,"type":"steps","time":"2026-11-22T10:00:00Z","values":[{"code":8454247,"value":1,"unit":"1"}])" +
               std::string(extra) + "}";
    };
    CHECK(accept(with("1", "")).sequence() == 1);
    CHECK(accept(with("9007199254740991", "")).sequence() == 9007199254740991u);
    CHECK(accept(with("2", R"(,"user_index":0)")).user_index() == 0);
    CHECK(accept(with("2", R"(,"user_index":255)")).user_index() == 255);
}

// ---- rejections, one or more per reason --------------------------------------

TEST_CASE("reject: malformed_json", "[devices][reading][reject]") {
    check_rejected("{\"device_id\":", RejectReason::malformed_json, "payload: not JSON (incomplete JSON)");
    const auto trailing = Reading::parse(device(), payload("steps", "") + ",", now);
    REQUIRE_FALSE(trailing);
    CHECK(trailing.error().reason == RejectReason::malformed_json);
    const auto bad_utf8 = Reading::parse(device(), "{\"device_id\":\"\xFF\"}", now);
    REQUIRE_FALSE(bad_utf8);
    CHECK(bad_utf8.error().reason == RejectReason::malformed_json);
    const auto empty = Reading::parse(device(), "", now);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().reason == RejectReason::malformed_json);
}

TEST_CASE("reject: payload_too_large (size, depth, counts)", "[devices][reading][reject]") {
    check_rejected(std::string(4097, ' '), RejectReason::payload_too_large, "payload: 4097 bytes (at most 4096)");
    check_rejected("[[[[[[[[[1]]]]]]]]]", RejectReason::payload_too_large, "payload: nested deeper than 8 levels");
    std::string nine = bp_values;
    for (int i = 0; i < 7; ++i)
        nine += R"(,{"code":150023,"value":97,"unit":"mm[Hg]"})";
    check_rejected(payload("blood_pressure", nine), RejectReason::payload_too_large, "values: 9 values (at most 8)");
    std::string flags = R"("flags":["body_movement")";
    for (int i = 0; i < 16; ++i)
        flags += R"(,"body_movement")";
    check_rejected(payload("blood_pressure", bp_values, flags + "]"), RejectReason::payload_too_large,
                   "flags: 17 flags (at most 16)");
    const auto error = Reading::parse(device(), std::string(5000, ' '), now).error().to_error();
    CHECK(error.kind() == cb::ErrorKind::limit_exceeded);
    CHECK(error.message() == "payload_too_large: payload: 5000 bytes (at most 4096)");
}

TEST_CASE("reject: missing_field", "[devices][reading][reject]") {
    check_rejected(R"({"device_id":"cuff-0042","type":"steps","time":"2026-11-22T10:00:00Z","values":[]})",
                   RejectReason::missing_field, "seq: missing");
    check_rejected(R"({"seq":1})", RejectReason::missing_field, "device_id: missing");
    check_rejected(payload("blood_pressure", ""), RejectReason::missing_field,
                   "values: empty (expected 1..8 values of blood_pressure)");
    check_rejected(payload("blood_pressure", R"({"code":150021,"value":128,"unit":"mm[Hg]"})"),
                   RejectReason::missing_field, "values: blood_pressure requires 150022 (MDC_PRESS_BLD_NONINV_DIA)");
    check_rejected(payload("spo2", R"({"code":149530,"value":72,"unit":"/min"})"), RejectReason::missing_field,
                   "values: spo2 requires 150456 (MDC_PULS_OXIM_SAT_O2)");
    check_rejected(payload("steps", R"({"code":8454247,"value":1})"), RejectReason::missing_field,
                   "values[0].unit: missing");
}

TEST_CASE("reject: unknown_field", "[devices][reading][reject]") {
    check_rejected(payload("blood_pressure", bp_values, R"("patient":"Dupont")"), RejectReason::unknown_field,
                   "\"patient\": not a member of a reading (device_id, seq, type, time, clock_offset_s, user_index, "
                   "values, flags, firmware, meal)");
    check_rejected(payload("steps", R"({"code":8454247,"value":1,"unit":"1","note":"x"})"), RejectReason::unknown_field,
                   "values[0].\"note\": not a member of a value (code, value, unit)");
}

TEST_CASE("reject: wrong_type", "[devices][reading][reject]") {
    check_rejected("[1,2]", RejectReason::wrong_type, "payload: expected a JSON object, got an array");
    check_rejected(R"({"device_id":42,"seq":1,"type":"steps","time":"x","values":[]})", RejectReason::wrong_type,
                   "device_id: expected a string, got an integer");
    check_rejected(R"({"device_id":"cuff-0042","seq":"7","type":"steps","time":"x","values":[]})",
                   RejectReason::wrong_type, "seq: expected an integer 1..9007199254740991, got a string");
    check_rejected(R"({"device_id":"cuff-0042","seq":7,"type":3,"time":"x","values":[]})", RejectReason::wrong_type,
                   "type: expected a measurement type name, got an integer");
    check_rejected(R"({"device_id":"cuff-0042","seq":7,"type":"steps","time":1795341600,"values":[]})",
                   RejectReason::wrong_type, "time: expected an RFC 3339 string, got an integer");
    check_rejected(payload("steps", "", R"("clock_offset_s":1.5)"), RejectReason::wrong_type,
                   "clock_offset_s: expected an integer number of seconds, got a number with a fraction or exponent");
    check_rejected(R"({"device_id":"cuff-0042","seq":7,"type":"steps","time":"2026-11-22T10:00:00Z","values":{}})",
                   RejectReason::wrong_type, "values: expected an array of values, got an object");
    check_rejected(payload("steps", "1"), RejectReason::wrong_type,
                   "values[0]: expected an object {\"code\", \"value\", \"unit\"}, got an integer");
    check_rejected(payload("steps", R"({"code":"8454247","value":1,"unit":"1"})"), RejectReason::wrong_type,
                   "values[0].code: expected an integer MDC code, got a string");
    check_rejected(payload("steps", R"({"code":8454247,"value":"12","unit":"1"})"), RejectReason::wrong_type,
                   "values[0].value: expected a number, null, {\"sfloat\": N} or {\"float\": N}, got a string");
    check_rejected(payload("steps", R"({"code":8454247,"value":1,"unit":1})"), RejectReason::wrong_type,
                   "values[0].unit: expected a UCUM unit string, got an integer");
    check_rejected(payload("steps", R"({"code":8454247,"value":12.5,"unit":"{steps}"})"), RejectReason::wrong_type,
                   "values[0].value: 12.5 is not a whole number of {steps}");
    check_rejected(payload("steps", R"({"code":8454247,"value":{"sfloat":70000},"unit":"1"})"),
                   RejectReason::wrong_type,
                   "values[0].value.sfloat: expected the raw 16-bit value as an integer 0..65535");
    check_rejected(payload("steps", R"({"code":8454247,"value":{"sfloat":1,"float":1},"unit":"1"})"),
                   RejectReason::wrong_type,
                   "values[0].value: expected a number, null, {\"sfloat\": N} or {\"float\": N}, got an object");
    check_rejected(payload("blood_pressure", bp_values, R"("flags":"irregular_pulse")"), RejectReason::wrong_type,
                   "flags: expected an array of flag names, got a string");
    check_rejected(payload("blood_pressure", bp_values, R"("flags":[1])"), RejectReason::wrong_type,
                   "flags[0]: expected a flag name, got an integer");
}

TEST_CASE("reject: unknown_type", "[devices][reading][reject]") {
    check_rejected(payload("bp", bp_values), RejectReason::unknown_type,
                   "type: \"bp\" is not a measurement type (blood_pressure, body_weight, body_height, heart_rate, "
                   "spo2, body_temperature, blood_glucose, steps)");
    CHECK(Reading::parse(device(), payload("bp", bp_values), now).error().to_error().kind() ==
          cb::ErrorKind::unsupported);
}

TEST_CASE("reject: device_id_mismatch", "[devices][reading][reject]") {
    std::string other = payload("blood_pressure", bp_values);
    other.replace(other.find("cuff-0042"), 9, "cuff-0043");
    check_rejected(other, RejectReason::device_id_mismatch,
                   "device_id: \"cuff-0043\" is not the device of the topic (\"cuff-0042\")");
    std::string invalid = payload("blood_pressure", bp_values);
    invalid.replace(invalid.find("cuff-0042"), 9, "a/\\n");
    check_rejected(invalid, RejectReason::device_id_mismatch,
                   "device_id: \"a/\\x0A\" is not the device of the topic (\"cuff-0042\")");
}

TEST_CASE("reject: bad_sequence", "[devices][reading][reject]") {
    const auto with_seq = [](std::string_view seq) {
        std::string json = payload("blood_pressure", bp_values);
        json.replace(json.find("\"seq\":7"), 7, "\"seq\":" + std::string(seq));
        return json;
    };
    check_rejected(with_seq("0"), RejectReason::bad_sequence,
                   "seq: 0 is outside 1..9007199254740991 (sequences start at 1)");
    check_rejected(with_seq("-3"), RejectReason::bad_sequence,
                   "seq: -3 is outside 1..9007199254740991 (sequences start at 1)");
    check_rejected(with_seq("-9223372036854775808"), RejectReason::bad_sequence,
                   "seq: -9223372036854775808 is outside 1..9007199254740991 (sequences start at 1)");
    check_rejected(with_seq("9007199254740992"), RejectReason::bad_sequence,
                   "seq: 9007199254740992 is outside 1..9007199254740991 (sequences start at 1)");
    check_rejected(with_seq("18446744073709551615"), RejectReason::bad_sequence,
                   "seq: 18446744073709551615 is outside 1..9007199254740991 (sequences start at 1)");
    check_rejected(with_seq("7.5"), RejectReason::bad_sequence,
                   "seq: 7.5 is not a whole number (expected 1..9007199254740991)");
}

TEST_CASE("reject: unknown_code and duplicate_code", "[devices][reading][reject]") {
    check_rejected(payload("body_temperature", R"({"code":150021,"value":37,"unit":"Cel"})"),
                   RejectReason::unknown_code,
                   "values[0].code: 150021 is not a component of body_temperature (expected 150364 (MDC_TEMP_BODY))");
    check_rejected(payload("steps", R"({"code":-1,"value":1,"unit":"1"})"), RejectReason::unknown_code,
                   "values[0].code: -1 is not a component of steps (expected 8454247 (MDC_HF_STEPS))");
    check_rejected(payload("blood_pressure", bp_values + R"(,{"code":150021,"value":120,"unit":"mm[Hg]"})"),
                   RejectReason::duplicate_code, "values[2].code: 150021 (MDC_PRESS_BLD_NONINV_SYS) is given twice");
}

TEST_CASE("reject: unknown_unit", "[devices][reading][reject]") {
    check_rejected(payload("blood_pressure", R"({"code":150021,"value":128,"unit":"mm[Hg]"},)"
                                             R"({"code":150022,"value":82,"unit":"mmHg"})"),
                   RejectReason::unknown_unit,
                   "values[1].unit: \"mmHg\" is not a UCUM unit accepted for blood pressure; expected \"mm[Hg]\" or "
                   "\"kPa\"");
    check_rejected(payload("body_weight", R"({"code":188736,"value":72,"unit":"KG"})"), RejectReason::unknown_unit,
                   "values[0].unit: \"KG\" is not a UCUM unit accepted for body mass; expected \"kg\", \"g\", "
                   "\"[lb_av]\" or \"lb\"");
    check_rejected(payload("body_temperature", R"({"code":150364,"value":37,"unit":"°C"})"), RejectReason::unknown_unit,
                   "values[0].unit: \"°C\" is not a UCUM unit accepted for body temperature; expected \"Cel\" or "
                   "\"[degF]\"");
    check_rejected(payload("spo2", R"({"code":150456,"value":0.97,"unit":"1"})"), RejectReason::unknown_unit,
                   "values[0].unit: \"1\" is not a UCUM unit accepted for SpO2; expected \"%\"");
}

TEST_CASE("reject: out_of_range, in canonical units", "[devices][reading][reject]") {
    check_rejected(payload("blood_pressure", R"({"code":150021,"value":350,"unit":"mm[Hg]"},)"
                                             R"({"code":150022,"value":82,"unit":"mm[Hg]"})"),
                   RejectReason::out_of_range,
                   "values[0].value: 350 mm[Hg] is outside 40..300 mm[Hg] for MDC_PRESS_BLD_NONINV_SYS");
    check_rejected(payload("blood_pressure", R"({"code":150021,"value":50,"unit":"kPa"},)"
                                             R"({"code":150022,"value":82,"unit":"mm[Hg]"})"),
                   RejectReason::out_of_range,
                   "values[0].value: 375.0308 mm[Hg] (from 50 kPa) is outside 40..300 mm[Hg] for "
                   "MDC_PRESS_BLD_NONINV_SYS");
    check_rejected(payload("blood_pressure", R"({"code":150021,"value":80,"unit":"mm[Hg]"},)"
                                             R"({"code":150022,"value":90,"unit":"mm[Hg]"})"),
                   RejectReason::out_of_range, "values: diastolic 90 mm[Hg] is not below systolic 80 mm[Hg]");
    check_rejected(payload("blood_pressure", bp_values + R"(,{"code":150023,"value":140,"unit":"mm[Hg]"})"),
                   RejectReason::out_of_range,
                   "values: mean 140 mm[Hg] is not between diastolic 82 and systolic 128 mm[Hg]");
    check_rejected(payload("spo2", R"({"code":150456,"value":101,"unit":"%"})"), RejectReason::out_of_range,
                   "values[0].value: 101 % is outside 50..100 % for MDC_PULS_OXIM_SAT_O2");
    check_rejected(payload("body_temperature", R"({"code":150364,"value":115,"unit":"[degF]"})"),
                   RejectReason::out_of_range,
                   "values[0].value: 46.11111 Cel (from 115 [degF]) is outside 30..45 Cel for MDC_TEMP_BODY");
    check_rejected(payload("body_weight", R"({"code":188736,"value":0.4,"unit":"kg"})"), RejectReason::out_of_range,
                   "values[0].value: 0.4 kg is outside 0.5..400 kg for MDC_MASS_BODY_ACTUAL");
    check_rejected(payload("body_height", R"({"code":188740,"value":260,"unit":"cm"})"), RejectReason::out_of_range,
                   "values[0].value: 260 cm is outside 30..250 cm for MDC_LEN_BODY_ACTUAL");
    check_rejected(payload("heart_rate", R"({"code":149546,"value":19,"unit":"/min"})"), RejectReason::out_of_range,
                   "values[0].value: 19 /min is outside 20..300 /min for MDC_PULS_RATE_NON_INV");
    check_rejected(payload("blood_glucose", R"({"code":160184,"value":0.5,"unit":"mmol/L"})"),
                   RejectReason::out_of_range,
                   "values[0].value: 9.008 mg/dL (from 0.5 mmol/L) is outside 10..1000 mg/dL for "
                   "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD");
    check_rejected(payload("steps", R"({"code":8454247,"value":100001,"unit":"{steps}"})"), RejectReason::out_of_range,
                   "values[0].value: 100001 {steps} is outside 0..100000 {steps} for MDC_HF_STEPS");
    check_rejected(payload("steps", "", R"("clock_offset_s":3000000000)"), RejectReason::out_of_range,
                   "clock_offset_s: 3000000000 is outside -2147483647..2147483647 s");
}

TEST_CASE("reject: measurement_failed (null, non-finite, SFLOAT and FLOAT specials)", "[devices][reading][reject]") {
    check_rejected(payload("body_temperature", R"({"code":150364,"value":null,"unit":"Cel"})"),
                   RejectReason::measurement_failed, "values[0].value: null (the device reported no value)");
    check_rejected(payload("body_temperature", R"({"code":150364,"value":1e999,"unit":"Cel"})"),
                   RejectReason::measurement_failed, "values[0].value: not a finite number");
    const struct {
        const char* raw;
        const char* name;
    } sfloats[] = {{"2047", "NaN"},
                   {"2048", "NRes (not at this resolution)"},
                   {"2046", "+INF"},
                   {"2050", "-INF"},
                   {"2049", "reserved"}};
    for (const auto& special : sfloats)
        check_rejected(payload("body_temperature", std::string(R"({"code":150364,"value":{"sfloat":)") + special.raw +
                                                       R"(},"unit":"Cel"})"),
                       RejectReason::measurement_failed,
                       std::string("values[0].value.sfloat: ") + special.raw + " is the special value " + special.name +
                           " (the device reported no valid measurement)");
    const struct {
        const char* raw;
        const char* name;
    } floats[] = {{"8388607", "NaN"},
                  {"8388608", "NRes (not at this resolution)"},
                  {"8388606", "+INF"},
                  {"8388610", "-INF"},
                  {"8388609", "reserved"}};
    for (const auto& special : floats)
        check_rejected(payload("body_temperature",
                               std::string(R"({"code":150364,"value":{"float":)") + special.raw + R"(},"unit":"Cel"})"),
                       RejectReason::measurement_failed,
                       std::string("values[0].value.float: ") + special.raw + " is the special value " + special.name +
                           " (the device reported no valid measurement)");
    // 0x7F000001: 1 x 10^127 is finite but absurd: a range error, not a failure.
    const auto huge = Reading::parse(
        device(), payload("body_temperature", R"({"code":150364,"value":{"float":2130706433},"unit":"Cel"})"), now);
    REQUIRE_FALSE(huge);
    CHECK(huge.error().reason == RejectReason::out_of_range);
}

TEST_CASE("reject: timestamp_in_future, timestamp_too_old, bad_timestamp", "[devices][reading][reject]") {
    const auto at = [](std::string_view time) {
        return std::string(R"({"device_id":"cuff-0042","seq":1,"type":"steps","time":")") + std::string(time) +
               R"(","values":[{"code":8454247,"value":1,"unit":"{steps}"}]})";
    };
    check_rejected(at("2026-11-22T11:05:01+01:00"), RejectReason::timestamp_in_future,
                   "time: \"2026-11-22T11:05:01+01:00\" is 301 s after the gateway's clock (at most 300 s allowed)");
    check_rejected(
        at("2026-10-23T09:59:59Z"), RejectReason::timestamp_too_old,
        "time: \"2026-10-23T09:59:59Z\" is 2592001 s before the gateway's clock (at most 2592000 s allowed)");
    check_rejected(at("2026-11-22T10:00:00"), RejectReason::bad_timestamp,
                   "time: \"2026-11-22T10:00:00\": expected 'Z' or an offset (+hh:mm, -hh:mm) at 19");
    check_rejected(at("2026-02-30T10:00:00Z"), RejectReason::bad_timestamp,
                   "time: \"2026-02-30T10:00:00Z\": day 30 does not exist in 2026-02");
    const auto strict = cb::devices::ReadingLimits{.max_future_skew = seconds(0), .max_age = hours(1)};
    const auto early = Reading::parse(device(), at("2026-11-22T10:00:01Z"), now, strict);
    REQUIRE_FALSE(early);
    CHECK(early.error().reason == RejectReason::timestamp_in_future);
}

TEST_CASE("reject: bad_user_index", "[devices][reading][reject]") {
    check_rejected(payload("steps", "", R"("user_index":256)"), RejectReason::bad_user_index,
                   "user_index: 256 is outside 0..255 (255 = unknown user)");
    check_rejected(payload("steps", "", R"("user_index":-1)"), RejectReason::bad_user_index,
                   "user_index: -1 is outside 0..255 (255 = unknown user)");
    check_rejected(payload("steps", "", R"("user_index":"1")"), RejectReason::bad_user_index,
                   "user_index: expected an integer 0..255, got a string");
}

TEST_CASE("reject: unknown_flag (unknown name, or not for this type)", "[devices][reading][reject]") {
    check_rejected(payload("blood_pressure", bp_values, R"("flags":["cuff_loose"])"), RejectReason::unknown_flag,
                   "flags[0]: \"cuff_loose\" is not a status flag");
    check_rejected(payload("body_weight", R"({"code":188736,"value":72,"unit":"kg"})", R"("flags":["body_movement"])"),
                   RejectReason::unknown_flag, "flags[0]: \"body_movement\" does not apply to body_weight");
    check_rejected(payload("spo2", R"({"code":150456,"value":97,"unit":"%"})", R"("flags":["strip_insertion_error"])"),
                   RejectReason::unknown_flag, "flags[0]: \"strip_insertion_error\" does not apply to spo2");
}

TEST_CASE("every reason and flag has a distinct name", "[devices][reading]") {
    for (std::size_t i = 0; i < cb::devices::reject_reason_count; ++i)
        for (std::size_t j = i + 1; j < cb::devices::reject_reason_count; ++j)
            CHECK(std::string(cb::devices::to_string(static_cast<RejectReason>(i))) !=
                  cb::devices::to_string(static_cast<RejectReason>(j)));
    CHECK(std::string(cb::devices::to_string(RejectReason::unknown_flag)) == "unknown_flag");
    for (std::size_t i = 0; i < cb::devices::status_flag_count; ++i) {
        const auto flag = static_cast<StatusFlag>(i);
        CHECK(cb::devices::status_flag_from_string(cb::devices::to_string(flag)) == flag);
    }
    CHECK(cb::devices::measurement_type_from_string("spo2") == MeasurementType::spo2);
    CHECK(std::string(cb::devices::to_string(MeasurementType::blood_glucose)) == "blood_glucose");
    CHECK(cb::devices::mdc_reference_id(150022) == "MDC_PRESS_BLD_NONINV_DIA");
    CHECK(cb::devices::mdc_reference_id(1).empty());
}

TEST_CASE("firmware is optional, kept when given, bounded", "[devices][reading]") {
    CHECK_FALSE(Reading::parse(device(), payload("blood_pressure", bp_values), now)->firmware().has_value());
    const auto with = Reading::parse(device(), payload("blood_pressure", bp_values, R"("firmware":"1.1.0")"), now);
    REQUIRE(with);
    CHECK(with->firmware() == "1.1.0");
    const auto bad = Reading::parse(device(), payload("blood_pressure", bp_values, R"("firmware":"")"), now);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().reason == RejectReason::wrong_type);
    CHECK(bad.error().message ==
          "firmware: expected a version string of 1..32 printable ASCII characters, got a string");
}

TEST_CASE("meal: a glucose reading's meal context is kept and stored, elsewhere or unknown it is bad_meal",
          "[devices][reading]") {
    const std::string glucose = R"({"code":160184,"value":104,"unit":"mg/dL"})";
    CHECK_FALSE(accept(payload("blood_glucose", glucose)).meal().has_value());
    for (const auto* name : {"preprandial", "postprandial", "fasting", "casual", "bedtime"}) {
        const Reading reading = accept(payload("blood_glucose", glucose, std::string(R"("meal":")") + name + "\""));
        REQUIRE(reading.meal().has_value());
        CHECK(std::string(cb::devices::to_string(*reading.meal())) == name);
        CHECK_THAT(cb::devices::to_storage_json(reading), Catch::EndsWith(std::string(R"("meal":")") + name + "\"}"));
    }
    check_rejected(payload("blood_glucose", glucose, R"("meal":"lunch")"), RejectReason::bad_meal,
                   "meal: \"lunch\" is not a meal context (preprandial, postprandial, fasting, casual, bedtime)");
    check_rejected(payload("blood_glucose", glucose, R"("meal":3)"), RejectReason::bad_meal,
                   "meal: expected a meal context name (preprandial, postprandial, fasting, casual, bedtime)");
    check_rejected(payload("blood_pressure", bp_values, R"("meal":"fasting")"), RejectReason::bad_meal,
                   "meal: only a blood_glucose reading has a meal context");
}

TEST_CASE("peek_sequence reads the seq of a rejected payload only when it is trustworthy", "[devices][reading]") {
    using cb::devices::peek_sequence;
    // Rejected for its value, but the seq is readable: the ack may move past it.
    const std::string out_of_range = payload(
        "blood_pressure", R"({"code":150021,"value":900,"unit":"mm[Hg]"},{"code":150022,"value":82,"unit":"mm[Hg]"})");
    REQUIRE_FALSE(Reading::parse(device(), out_of_range, now));
    CHECK(peek_sequence(device(), out_of_range) == 7U);
    CHECK(peek_sequence(device(), payload("nonsense", "")) == 7U);
    // Not trustworthy: no ack for these.
    CHECK_FALSE(peek_sequence(device(), "{not json").has_value());
    CHECK_FALSE(peek_sequence(device(), R"({"device_id":"other","seq":7})").has_value());
    CHECK_FALSE(peek_sequence(device(), R"({"device_id":"cuff-0042","seq":0})").has_value());
    CHECK_FALSE(peek_sequence(device(), R"({"device_id":"cuff-0042","seq":"7"})").has_value());
    CHECK_FALSE(peek_sequence(device(), R"({"device_id":"cuff-0042"})").has_value());
    CHECK_FALSE(peek_sequence(device(), std::string(5000, ' ') + R"({"device_id":"cuff-0042","seq":7})").has_value());
}

TEST_CASE("to_storage_json is canonical: normalised units, fixed member order", "[devices][reading]") {
    const auto reading =
        Reading::parse(device(),
                       payload("blood_pressure",
                               R"({"code":150021,"value":16,"unit":"kPa"},{"code":150022,"value":82,"unit":"mm[Hg]"})",
                               R"("flags":["irregular_pulse"],"clock_offset_s":-3,"firmware":"1.1.0","user_index":2)"),
                       now);
    REQUIRE(reading);
    const std::string json = cb::devices::to_storage_json(*reading);
    // 16 kPa = 120.0098521353050 mm[Hg]: the shortest text that reads back as the same double.
    CHECK_THAT(json, Catch::StartsWith(R"({"type":"blood_pressure","time_us":1795341300000000,"offset_min":60,)"
                                       R"("values":[{"code":150021,"value":120.00985213530501,"unit":"mm[Hg]"},)"
                                       R"({"code":150022,"value":82,"unit":"mm[Hg]"}],)"));
    CHECK_THAT(json, Catch::EndsWith(R"("unit":"mm[Hg]"}],"user_index":2,"flags":["irregular_pulse"],)"
                                     R"("clock_offset_s":-3,"firmware":"1.1.0"})"));
}
