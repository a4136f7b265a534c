#include "protocol/devices/reading.hpp"

#include <algorithm>
#include <array>
#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <charconv>
#include <cmath>
#include <span>
#include <string>
#include <system_error>

namespace cb::devices {

namespace {

// ---- Tables (the header's tables, as data) ---------------------------------

struct UnitSpec {
    std::string_view unit;
    double factor;  // canonical = value * factor + offset
    double offset;
};

struct Quantity {
    std::string_view name;
    std::span<const UnitSpec> units;  // units[0] is the canonical unit
};

constexpr UnitSpec pressure_units[] = {{"mm[Hg]", 1.0, 0.0}, {"kPa", 1000.0 / 133.322387415, 0.0}};
constexpr UnitSpec rate_units[] = {
    {"/min", 1.0, 0.0}, {"1/min", 1.0, 0.0}, {"{beat}/min", 1.0, 0.0}, {"bpm", 1.0, 0.0}};
constexpr UnitSpec mass_units[] = {
    {"kg", 1.0, 0.0}, {"g", 0.001, 0.0}, {"[lb_av]", 0.45359237, 0.0}, {"lb", 0.45359237, 0.0}};
constexpr UnitSpec length_units[] = {
    {"cm", 1.0, 0.0}, {"m", 100.0, 0.0}, {"mm", 0.1, 0.0}, {"[in_i]", 2.54, 0.0}, {"in", 2.54, 0.0}};
constexpr UnitSpec temperature_units[] = {{"Cel", 1.0, 0.0}, {"[degF]", 5.0 / 9.0, -32.0 * 5.0 / 9.0}};
constexpr UnitSpec glucose_units[] = {{"mg/dL", 1.0, 0.0}, {"mmol/L", 18.016, 0.0}};
constexpr UnitSpec saturation_units[] = {{"%", 1.0, 0.0}};
constexpr UnitSpec bmi_units[] = {{"kg/m2", 1.0, 0.0}};
constexpr UnitSpec count_units[] = {{"{steps}", 1.0, 0.0}, {"1", 1.0, 0.0}};

constexpr Quantity pressure{"blood pressure", pressure_units};
constexpr Quantity rate{"a rate", rate_units};
constexpr Quantity mass{"body mass", mass_units};
constexpr Quantity length{"body height", length_units};
constexpr Quantity temperature{"body temperature", temperature_units};
constexpr Quantity glucose{"blood glucose", glucose_units};
constexpr Quantity saturation{"SpO2", saturation_units};
constexpr Quantity bmi{"BMI", bmi_units};
constexpr Quantity count{"a step count", count_units};

enum class Need : std::uint8_t { required, optional, one_of };

struct ComponentSpec {
    std::uint32_t code;
    std::string_view mdc;
    const Quantity* quantity;
    double min;
    double max;
    Need need;
    bool whole = false;
};

constexpr std::uint32_t code_systolic = 150021;
constexpr std::uint32_t code_diastolic = 150022;
constexpr std::uint32_t code_mean = 150023;

constexpr ComponentSpec blood_pressure_components[] = {
    {code_systolic, "MDC_PRESS_BLD_NONINV_SYS", &pressure, 40, 300, Need::required},
    {code_diastolic, "MDC_PRESS_BLD_NONINV_DIA", &pressure, 20, 200, Need::required},
    {code_mean, "MDC_PRESS_BLD_NONINV_MEAN", &pressure, 20, 250, Need::optional},
    {149546, "MDC_PULS_RATE_NON_INV", &rate, 20, 300, Need::optional},
};
constexpr ComponentSpec body_weight_components[] = {
    {188736, "MDC_MASS_BODY_ACTUAL", &mass, 0.5, 400, Need::required},
    {188752, "MDC_RATIO_MASS_BODY_LEN_SQ", &bmi, 5, 150, Need::optional},
};
constexpr ComponentSpec body_height_components[] = {
    {188740, "MDC_LEN_BODY_ACTUAL", &length, 30, 250, Need::required},
};
constexpr ComponentSpec heart_rate_components[] = {
    {149546, "MDC_PULS_RATE_NON_INV", &rate, 20, 300, Need::one_of},
    {149530, "MDC_PULS_OXIM_PULS_RATE", &rate, 20, 300, Need::one_of},
    {147842, "MDC_ECG_HEART_RATE", &rate, 20, 300, Need::one_of},
};
constexpr ComponentSpec spo2_components[] = {
    {150456, "MDC_PULS_OXIM_SAT_O2", &saturation, 50, 100, Need::required},
    {149530, "MDC_PULS_OXIM_PULS_RATE", &rate, 20, 300, Need::optional},
};
constexpr ComponentSpec body_temperature_components[] = {
    {150364, "MDC_TEMP_BODY", &temperature, 30, 45, Need::required},
};
constexpr ComponentSpec blood_glucose_components[] = {
    {160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", &glucose, 10, 1000, Need::one_of},
    {160188, "MDC_CONC_GLU_CAPILLARY_PLASMA", &glucose, 10, 1000, Need::one_of},
};
constexpr ComponentSpec steps_components[] = {
    {8454247, "MDC_HF_STEPS", &count, 0, 100000, Need::required, true},
};

using F = StatusFlag;
constexpr StatusFlag bps_flags[] = {F::body_movement, F::cuff_fit_too_loose, F::irregular_pulse,
                                    F::pulse_rate_out_of_range, F::improper_measurement_position};
constexpr StatusFlag heart_rate_flags[] = {F::body_movement,
                                           F::cuff_fit_too_loose,
                                           F::irregular_pulse,
                                           F::pulse_rate_out_of_range,
                                           F::improper_measurement_position,
                                           F::low_perfusion,
                                           F::poor_signal,
                                           F::erratic_signal,
                                           F::sensor_displaced,
                                           F::sensor_malfunction};
constexpr StatusFlag plx_flags[] = {F::low_perfusion, F::poor_signal, F::erratic_signal, F::sensor_displaced,
                                    F::sensor_malfunction};
constexpr StatusFlag gls_flags[] = {
    F::sensor_malfunction,        F::sample_size_insufficient, F::strip_insertion_error, F::result_above_device_range,
    F::result_below_device_range, F::temperature_out_of_range, F::device_fault};

struct TypeSpec {
    MeasurementType type;
    std::string_view name;
    std::span<const ComponentSpec> components;
    std::span<const StatusFlag> flags;
};

constexpr TypeSpec type_specs[] = {
    {MeasurementType::blood_pressure, "blood_pressure", blood_pressure_components, bps_flags},
    {MeasurementType::body_weight, "body_weight", body_weight_components, {}},
    {MeasurementType::body_height, "body_height", body_height_components, {}},
    {MeasurementType::heart_rate, "heart_rate", heart_rate_components, heart_rate_flags},
    {MeasurementType::spo2, "spo2", spo2_components, plx_flags},
    {MeasurementType::body_temperature, "body_temperature", body_temperature_components, {}},
    {MeasurementType::blood_glucose, "blood_glucose", blood_glucose_components, gls_flags},
    {MeasurementType::steps, "steps", steps_components, {}},
};

constexpr std::string_view flag_names[status_flag_count] = {
    "body_movement",
    "cuff_fit_too_loose",
    "irregular_pulse",
    "pulse_rate_out_of_range",
    "improper_measurement_position",
    "low_perfusion",
    "poor_signal",
    "erratic_signal",
    "sensor_displaced",
    "sensor_malfunction",
    "sample_size_insufficient",
    "strip_insertion_error",
    "result_above_device_range",
    "result_below_device_range",
    "temperature_out_of_range",
    "device_fault",
};

constexpr const char* reason_names[reject_reason_count] = {
    "malformed_json",     "payload_too_large",   "missing_field",      "unknown_field",
    "wrong_type",         "unknown_type",        "device_id_mismatch", "bad_sequence",
    "unknown_code",       "duplicate_code",      "unknown_unit",       "out_of_range",
    "measurement_failed", "timestamp_in_future", "timestamp_too_old",  "bad_timestamp",
    "bad_user_index",     "unknown_flag",        "bad_meal",
};

constexpr std::string_view top_level_members[] = {"device_id",  "seq",    "type",  "time",     "clock_offset_s",
                                                  "user_index", "values", "flags", "firmware", "meal"};

constexpr std::array<std::string_view, 5> meal_names = {"preprandial", "postprandial", "fasting", "casual", "bedtime"};
constexpr std::size_t max_firmware_length = 32;
constexpr std::string_view component_members[] = {"code", "value", "unit"};

// ---- Message helpers ---------------------------------------------------------

Rejection reject(RejectReason reason, std::string message) {
    return Rejection{reason, std::move(message)};
}

// Input text shown in a message: at most 64 bytes, quoted, control bytes escaped.
std::string quote(std::string_view text) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out = "\"";
    for (const char c : text.substr(0, 64)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F || c == '"' || c == '\\') {
            out += "\\x";
            out += digits[byte >> 4];
            out += digits[byte & 0x0F];
        } else {
            out += c;
        }
    }
    if (text.size() > 64)
        out += "...";
    return out + "\"";
}

// A number for a message: whole numbers in full, others to 7 significant
// digits (enough to tell 300.0001 from 300, short enough to read).
std::string number(double value) {
    std::array<char, 32> buffer{};
    const bool whole = value == std::floor(value) && std::fabs(value) < 1e15;
    const auto [end, error] =
        whole ? std::to_chars(buffer.data(), buffer.data() + buffer.size(), static_cast<long long>(value))
              : std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, std::chars_format::general, 7);
    if (error != std::errc())
        return "?";
    return std::string(buffer.data(), end);
}

const char* json_kind(const boost::json::value& value) {
    switch (value.kind()) {
        case boost::json::kind::null: return "null";
        case boost::json::kind::bool_: return "a boolean";
        case boost::json::kind::int64:
        case boost::json::kind::uint64: return "an integer";
        case boost::json::kind::double_: return "a number with a fraction or exponent";
        case boost::json::kind::string: return "a string";
        case boost::json::kind::array: return "an array";
        case boost::json::kind::object: return "an object";
    }
    return "?";
}

Rejection wrong_type(std::string_view field, std::string_view expected, const boost::json::value& got) {
    return reject(RejectReason::wrong_type,
                  std::string(field) + ": expected " + std::string(expected) + ", got " + json_kind(got));
}

// The value as a whole number, or nullopt if it is not an integer JSON number.
// (1.0 and 1e3 are doubles in Boost.JSON and are not whole numbers here: a
// device that sends a sequence as a float has a bug we want to see.)
struct WholeNumber {
    bool negative;
    std::uint64_t magnitude;
};
std::optional<WholeNumber> whole_number(const boost::json::value& value) {
    if (const auto* as_int = value.if_int64()) {
        if (*as_int < 0)
            return WholeNumber{true, static_cast<std::uint64_t>(-(*as_int + 1)) + 1};
        return WholeNumber{false, static_cast<std::uint64_t>(*as_int)};
    }
    if (const auto* as_uint = value.if_uint64())
        return WholeNumber{false, *as_uint};
    return std::nullopt;
}

std::string show(const WholeNumber& number) {
    return (number.negative ? "-" : "") + std::to_string(number.magnitude);
}

// ---- IEEE 11073-20601 SFLOAT / FLOAT ----------------------------------------

enum class Special : std::uint8_t { none, nan, nres, plus_infinity, minus_infinity, reserved };

const char* to_string(Special special) {
    switch (special) {
        case Special::nan: return "NaN";
        case Special::nres: return "NRes (not at this resolution)";
        case Special::plus_infinity: return "+INF";
        case Special::minus_infinity: return "-INF";
        case Special::reserved: return "reserved";
        case Special::none: break;
    }
    return "none";
}

struct Decoded {
    Special special;
    double value;
};

Decoded decode_sfloat(std::uint16_t raw) {
    switch (raw) {
        case 0x07FF: return {Special::nan, 0};
        case 0x0800: return {Special::nres, 0};
        case 0x07FE: return {Special::plus_infinity, 0};
        case 0x0802: return {Special::minus_infinity, 0};
        case 0x0801: return {Special::reserved, 0};
        default: break;
    }
    int exponent = raw >> 12;
    if (exponent >= 8)
        exponent -= 16;
    int mantissa = raw & 0x0FFF;
    if (mantissa >= 0x0800)
        mantissa -= 0x1000;
    return {Special::none, static_cast<double>(mantissa) * std::pow(10.0, exponent)};
}

Decoded decode_float(std::uint32_t raw) {
    switch (raw) {
        case 0x007FFFFF: return {Special::nan, 0};
        case 0x00800000: return {Special::nres, 0};
        case 0x007FFFFE: return {Special::plus_infinity, 0};
        case 0x00800002: return {Special::minus_infinity, 0};
        case 0x00800001: return {Special::reserved, 0};
        default: break;
    }
    int exponent = static_cast<int>(raw >> 24);
    if (exponent >= 128)
        exponent -= 256;
    std::int32_t mantissa = static_cast<std::int32_t>(raw & 0x00FFFFFF);
    if (mantissa >= 0x00800000)
        mantissa -= 0x01000000;
    return {Special::none, static_cast<double>(mantissa) * std::pow(10.0, exponent)};
}

// ---- Pieces of the payload ---------------------------------------------------

Validated<std::uint64_t> parse_sequence(const boost::json::value& json) {
    const auto whole = whole_number(json);
    if (!whole) {
        if (json.is_double())
            return reject(RejectReason::bad_sequence, "seq: " + number(json.get_double()) +
                                                          " is not a whole number (expected 1..9007199254740991)");
        return wrong_type("seq", "an integer 1..9007199254740991", json);
    }
    if (whole->negative || whole->magnitude < 1 || whole->magnitude > max_sequence)
        return reject(RejectReason::bad_sequence,
                      "seq: " + show(*whole) + " is outside 1..9007199254740991 (sequences start at 1)");
    return whole->magnitude;
}

Validated<DeviceTime> parse_time(const boost::json::value& json, Microseconds now, const ReadingLimits& limits) {
    using namespace std::chrono;
    const auto* text = json.if_string();
    if (text == nullptr)
        return wrong_type("time", "an RFC 3339 string", json);
    auto parsed = parse_rfc3339(std::string_view(*text));
    if (!parsed)
        return reject(RejectReason::bad_timestamp, "time: " + parsed.error().message());
    const DeviceTime time = *parsed;
    if (time.utc > now + limits.max_future_skew) {
        const auto ahead = duration_cast<seconds>(time.utc - now).count();
        return reject(RejectReason::timestamp_in_future, "time: " + quote(*text) + " is " + std::to_string(ahead) +
                                                             " s after the gateway's clock (at most " +
                                                             std::to_string(limits.max_future_skew.count()) +
                                                             " s allowed)");
    }
    if (time.utc < now - limits.max_age) {
        const auto behind = duration_cast<seconds>(now - time.utc).count();
        return reject(RejectReason::timestamp_too_old, "time: " + quote(*text) + " is " + std::to_string(behind) +
                                                           " s before the gateway's clock (at most " +
                                                           std::to_string(limits.max_age.count()) + " s allowed)");
    }
    return time;
}

Validated<std::chrono::seconds> parse_clock_offset(const boost::json::value& json) {
    const auto whole = whole_number(json);
    if (!whole)
        return wrong_type("clock_offset_s", "an integer number of seconds", json);
    constexpr std::uint64_t limit = 2147483647;
    if (whole->magnitude > limit)
        return reject(RejectReason::out_of_range,
                      "clock_offset_s: " + show(*whole) + " is outside -2147483647..2147483647 s");
    const auto magnitude = static_cast<std::int64_t>(whole->magnitude);
    return std::chrono::seconds(whole->negative ? -magnitude : magnitude);
}

Validated<std::uint8_t> parse_user_index(const boost::json::value& json) {
    const auto whole = whole_number(json);
    if (!whole)
        return reject(RejectReason::bad_user_index,
                      std::string("user_index: expected an integer 0..255, got ") + json_kind(json));
    if (whole->negative || whole->magnitude > 255)
        return reject(RejectReason::bad_user_index,
                      "user_index: " + show(*whole) + " is outside 0..255 (255 = unknown user)");
    return static_cast<std::uint8_t>(whole->magnitude);
}

// The payload as JSON, within the size and nesting caps; the rejection names the cap or the syntax error.
Validated<boost::json::value> parse_payload_json(std::string_view payload) {
    if (payload.size() > max_payload_size)
        return reject(RejectReason::payload_too_large, "payload: " + std::to_string(payload.size()) +
                                                           " bytes (at most " + std::to_string(max_payload_size) + ")");
    boost::json::parse_options options;
    options.max_depth = max_nesting_depth;
    boost::system::error_code code;
    boost::json::value json = boost::json::parse(payload, code, {}, options);
    if (code == boost::json::error::too_deep)
        return reject(RejectReason::payload_too_large,
                      "payload: nested deeper than " + std::to_string(max_nesting_depth) + " levels");
    if (code)
        return reject(RejectReason::malformed_json, "payload: not JSON (" + code.message() + ")");
    return json;
}

// A firmware version as the device reports it: 1..32 printable ASCII characters.
Validated<std::string> parse_firmware(const boost::json::value& json) {
    const auto* text = json.if_string();
    if (text == nullptr || text->empty() || text->size() > max_firmware_length ||
        std::any_of(text->begin(), text->end(), [](char c) { return c < 0x20 || c > 0x7e; }))
        return wrong_type("firmware", "a version string of 1..32 printable ASCII characters", json);
    return std::string(*text);
}

// The meal context: a Meal name, on a blood_glucose reading only.
Validated<Meal> parse_meal(MeasurementType type, const boost::json::value& json) {
    if (type != MeasurementType::blood_glucose)
        return reject(RejectReason::bad_meal, "meal: only a blood_glucose reading has a meal context");
    constexpr std::string_view names = "(preprandial, postprandial, fasting, casual, bedtime)";
    const auto* text = json.if_string();
    if (text == nullptr)
        return reject(RejectReason::bad_meal, "meal: expected a meal context name " + std::string(names));
    const auto meal = meal_from_string(*text);
    if (!meal)
        return reject(RejectReason::bad_meal, "meal: " + quote(*text) + " is not a meal context " + std::string(names));
    return *meal;
}

const ComponentSpec* find_component_spec(const TypeSpec& type, std::uint32_t code) {
    for (const ComponentSpec& spec : type.components)
        if (spec.code == code)
            return &spec;
    return nullptr;
}

std::string listed_codes(const TypeSpec& type) {
    std::string out;
    for (const ComponentSpec& spec : type.components) {
        if (!out.empty())
            out += ", ";
        out += std::to_string(spec.code) + " (" + std::string(spec.mdc) + ")";
    }
    return out;
}

std::string listed_units(const Quantity& quantity) {
    std::string out;
    for (std::size_t i = 0; i < quantity.units.size(); ++i) {
        if (i > 0)
            out += i + 1 == quantity.units.size() ? " or " : ", ";
        out += "\"" + std::string(quantity.units[i].unit) + "\"";
    }
    return out;
}

// The value member as a finite number in the sent unit.
Validated<double> parse_value(const std::string& field, const boost::json::value& json) {
    if (json.is_null())
        return reject(RejectReason::measurement_failed, field + ": null (the device reported no value)");
    if (json.is_number()) {
        boost::system::error_code code;
        const double value = json.to_number<double>(code);
        if (code || !std::isfinite(value))
            return reject(RejectReason::measurement_failed, field + ": not a finite number");
        return value;
    }
    const auto* object = json.if_object();
    if (object == nullptr || object->size() != 1 || (!object->contains("sfloat") && !object->contains("float")))
        return wrong_type(field, "a number, null, {\"sfloat\": N} or {\"float\": N}", json);
    const bool is_short = object->contains("sfloat");
    const std::string inner = field + (is_short ? ".sfloat" : ".float");
    const std::uint64_t limit = is_short ? 0xFFFF : 0xFFFFFFFF;
    const auto whole = whole_number(object->begin()->value());
    if (!whole || whole->negative || whole->magnitude > limit)
        return reject(RejectReason::wrong_type, inner + ": expected the raw " + (is_short ? "16" : "32") +
                                                    "-bit value as an integer 0.." + std::to_string(limit));
    const Decoded decoded = is_short ? decode_sfloat(static_cast<std::uint16_t>(whole->magnitude))
                                     : decode_float(static_cast<std::uint32_t>(whole->magnitude));
    if (decoded.special != Special::none)
        return reject(RejectReason::measurement_failed, inner + ": " + std::to_string(whole->magnitude) +
                                                            " is the special value " + to_string(decoded.special) +
                                                            " (the device reported no valid measurement)");
    if (!std::isfinite(decoded.value))
        return reject(RejectReason::measurement_failed, inner + ": not a finite number");
    return decoded.value;
}

Validated<Component> parse_component(const TypeSpec& type, std::size_t index, const boost::json::value& json,
                                     const std::vector<Component>& seen) {
    const std::string field = "values[" + std::to_string(index) + "]";
    const auto* object = json.if_object();
    if (object == nullptr)
        return wrong_type(field, "an object {\"code\", \"value\", \"unit\"}", json);
    for (const auto& member : *object) {
        bool known = false;
        for (const std::string_view name : component_members)
            known = known || member.key() == name;
        if (!known)
            return reject(RejectReason::unknown_field, field + "." + std::string(quote(member.key())) +
                                                           ": not a member of a value (code, value, unit)");
    }
    for (const std::string_view name : component_members)
        if (!object->contains(name))
            return reject(RejectReason::missing_field, field + "." + std::string(name) + ": missing");

    const auto code_number = whole_number(object->at("code"));
    if (!code_number)
        return wrong_type(field + ".code", "an integer MDC code", object->at("code"));
    const ComponentSpec* spec = nullptr;
    if (!code_number->negative && code_number->magnitude <= 0xFFFFFFFF)
        spec = find_component_spec(type, static_cast<std::uint32_t>(code_number->magnitude));
    if (spec == nullptr)
        return reject(RejectReason::unknown_code, field + ".code: " + show(*code_number) + " is not a component of " +
                                                      std::string(type.name) + " (expected " + listed_codes(type) +
                                                      ")");
    for (const Component& earlier : seen)
        if (earlier.code == spec->code)
            return reject(RejectReason::duplicate_code, field + ".code: " + std::to_string(spec->code) + " (" +
                                                            std::string(spec->mdc) + ") is given twice");

    const auto* unit_text = object->at("unit").if_string();
    if (unit_text == nullptr)
        return wrong_type(field + ".unit", "a UCUM unit string", object->at("unit"));
    const Quantity& quantity = *spec->quantity;
    const UnitSpec* unit = nullptr;
    for (const UnitSpec& candidate : quantity.units)
        if (candidate.unit == std::string_view(*unit_text))
            unit = &candidate;
    if (unit == nullptr)
        return reject(RejectReason::unknown_unit, field + ".unit: " + quote(*unit_text) +
                                                      " is not a UCUM unit accepted for " + std::string(quantity.name) +
                                                      "; expected " + listed_units(quantity));

    const double sent = CB_TRY(parse_value(field + ".value", object->at("value")));
    const double value = sent * unit->factor + unit->offset;
    const std::string_view canonical = quantity.units[0].unit;
    if (spec->whole && value != std::floor(value))
        return reject(RejectReason::wrong_type,
                      field + ".value: " + number(sent) + " is not a whole number of " + std::string(canonical));
    if (!(value >= spec->min && value <= spec->max)) {
        std::string shown = number(value) + " " + std::string(canonical);
        if (unit != &quantity.units[0])
            shown += " (from " + number(sent) + " " + std::string(unit->unit) + ")";
        return reject(RejectReason::out_of_range, field + ".value: " + shown + " is outside " + number(spec->min) +
                                                      ".." + number(spec->max) + " " + std::string(canonical) +
                                                      " for " + std::string(spec->mdc));
    }
    return Component{spec->code, value, canonical};
}

const Component* find_component(const std::vector<Component>& components, std::uint32_t code) {
    for (const Component& component : components)
        if (component.code == code)
            return &component;
    return nullptr;
}

Validated<std::vector<Component>> parse_components(const TypeSpec& type, const boost::json::value& json) {
    const auto* array = json.if_array();
    if (array == nullptr)
        return wrong_type("values", "an array of values", json);
    if (array->empty())
        return reject(RejectReason::missing_field, "values: empty (expected 1.." + std::to_string(max_components) +
                                                       " values of " + std::string(type.name) + ")");
    if (array->size() > max_components)
        return reject(RejectReason::payload_too_large, "values: " + std::to_string(array->size()) +
                                                           " values (at most " + std::to_string(max_components) + ")");
    std::vector<Component> components;
    components.reserve(array->size());
    for (std::size_t i = 0; i < array->size(); ++i)
        components.push_back(CB_TRY(parse_component(type, i, (*array)[i], components)));

    for (const ComponentSpec& spec : type.components)
        if (spec.need == Need::required && find_component(components, spec.code) == nullptr)
            return reject(RejectReason::missing_field, "values: " + std::string(type.name) + " requires " +
                                                           std::to_string(spec.code) + " (" + std::string(spec.mdc) +
                                                           ")");

    if (type.type == MeasurementType::blood_pressure) {
        const double systolic = find_component(components, code_systolic)->value;
        const double diastolic = find_component(components, code_diastolic)->value;
        if (diastolic >= systolic)
            return reject(RejectReason::out_of_range, "values: diastolic " + number(diastolic) +
                                                          " mm[Hg] is not below systolic " + number(systolic) +
                                                          " mm[Hg]");
        if (const Component* mean = find_component(components, code_mean);
            mean != nullptr && (mean->value < diastolic || mean->value > systolic))
            return reject(RejectReason::out_of_range, "values: mean " + number(mean->value) +
                                                          " mm[Hg] is not between diastolic " + number(diastolic) +
                                                          " and systolic " + number(systolic) + " mm[Hg]");
    }
    return components;
}

Validated<StatusFlags> parse_flags(const TypeSpec& type, const boost::json::value& json) {
    const auto* array = json.if_array();
    if (array == nullptr)
        return wrong_type("flags", "an array of flag names", json);
    if (array->size() > max_flags)
        return reject(RejectReason::payload_too_large,
                      "flags: " + std::to_string(array->size()) + " flags (at most " + std::to_string(max_flags) + ")");
    StatusFlags flags;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const std::string field = "flags[" + std::to_string(i) + "]";
        const auto* name = (*array)[i].if_string();
        if (name == nullptr)
            return wrong_type(field, "a flag name", (*array)[i]);
        const auto flag = status_flag_from_string(std::string_view(*name));
        if (!flag)
            return reject(RejectReason::unknown_flag, field + ": " + quote(*name) + " is not a status flag");
        bool applies = false;
        for (const StatusFlag allowed : type.flags)
            applies = applies || allowed == *flag;
        if (!applies)
            return reject(RejectReason::unknown_flag,
                          field + ": " + quote(*name) + " does not apply to " + std::string(type.name));
        flags.insert(*flag);
    }
    return flags;
}

}  // namespace

const char* to_string(MeasurementType type) noexcept {
    for (const TypeSpec& spec : type_specs)
        if (spec.type == type)
            return spec.name.data();
    return "?";
}

std::optional<MeasurementType> measurement_type_from_string(std::string_view name) noexcept {
    for (const TypeSpec& spec : type_specs)
        if (spec.name == name)
            return spec.type;
    return std::nullopt;
}

const char* to_string(Meal meal) noexcept {
    const auto index = static_cast<std::size_t>(meal);
    return index < meal_names.size() ? meal_names[index].data() : "?";
}

std::optional<Meal> meal_from_string(std::string_view name) noexcept {
    for (std::size_t i = 0; i < meal_names.size(); ++i)
        if (meal_names[i] == name)
            return static_cast<Meal>(i);
    return std::nullopt;
}

const char* to_string(StatusFlag flag) noexcept {
    const auto index = static_cast<std::size_t>(flag);
    return index < status_flag_count ? flag_names[index].data() : "?";
}

std::optional<StatusFlag> status_flag_from_string(std::string_view name) noexcept {
    for (std::size_t i = 0; i < status_flag_count; ++i)
        if (flag_names[i] == name)
            return static_cast<StatusFlag>(i);
    return std::nullopt;
}

const char* to_string(RejectReason reason) noexcept {
    const auto index = static_cast<std::size_t>(reason);
    return index < reject_reason_count ? reason_names[index] : "?";
}

Error Rejection::to_error() const {
    ErrorKind kind = ErrorKind::invalid_input;
    switch (reason) {
        case RejectReason::payload_too_large: kind = ErrorKind::limit_exceeded; break;
        case RejectReason::unknown_type:
        case RejectReason::unknown_code:
        case RejectReason::unknown_unit:
        case RejectReason::unknown_flag: kind = ErrorKind::unsupported; break;
        default: break;
    }
    return Error(kind, std::string(to_string(reason)) + ": " + message);
}

std::string_view mdc_reference_id(std::uint32_t code) noexcept {
    for (const TypeSpec& type : type_specs)
        if (const ComponentSpec* spec = find_component_spec(type, code))
            return spec->mdc;
    return {};
}

const Component* Reading::component(std::uint32_t code) const noexcept {
    return find_component(m_components, code);
}

Validated<Reading> Reading::parse(const DeviceId& topic_device, std::string_view payload, Microseconds now,
                                  const ReadingLimits& limits) {
    const boost::json::value json = CB_TRY(parse_payload_json(payload));
    const auto* root = json.if_object();
    if (root == nullptr)
        return wrong_type("payload", "a JSON object", json);

    for (const auto& member : *root) {
        bool known = false;
        for (const std::string_view name : top_level_members)
            known = known || member.key() == name;
        if (!known)
            return reject(RejectReason::unknown_field,
                          quote(member.key()) +
                              ": not a member of a reading (device_id, seq, type, time, "
                              "clock_offset_s, user_index, values, flags, firmware, meal)");
    }
    for (const std::string_view name : {"device_id", "seq", "type", "time", "values"})
        if (!root->contains(name))
            return reject(RejectReason::missing_field, std::string(name) + ": missing");

    const auto* device_text = root->at("device_id").if_string();
    if (device_text == nullptr)
        return wrong_type("device_id", "a string", root->at("device_id"));
    if (std::string_view(*device_text) != topic_device.str())
        return reject(RejectReason::device_id_mismatch, "device_id: " + quote(*device_text) +
                                                            " is not the device of the topic (" +
                                                            quote(topic_device.str()) + ")");

    Reading reading(topic_device);
    reading.m_sequence = CB_TRY(parse_sequence(root->at("seq")));

    const auto* type_text = root->at("type").if_string();
    if (type_text == nullptr)
        return wrong_type("type", "a measurement type name", root->at("type"));
    const TypeSpec* type = nullptr;
    for (const TypeSpec& spec : type_specs)
        if (spec.name == std::string_view(*type_text))
            type = &spec;
    if (type == nullptr)
        return reject(RejectReason::unknown_type,
                      "type: " + quote(*type_text) +
                          " is not a measurement type (blood_pressure, body_weight, body_height, heart_rate, spo2, "
                          "body_temperature, blood_glucose, steps)");
    reading.m_type = type->type;

    reading.m_time = CB_TRY(parse_time(root->at("time"), now, limits));
    if (const auto* offset = root->if_contains("clock_offset_s"))
        reading.m_clock_offset = CB_TRY(parse_clock_offset(*offset));
    if (const auto* user = root->if_contains("user_index"))
        reading.m_user_index = CB_TRY(parse_user_index(*user));
    reading.m_components = CB_TRY(parse_components(*type, root->at("values")));
    if (const auto* flags = root->if_contains("flags"))
        reading.m_flags = CB_TRY(parse_flags(*type, *flags));
    if (const auto* firmware = root->if_contains("firmware"))
        reading.m_firmware = CB_TRY(parse_firmware(*firmware));
    if (const auto* meal = root->if_contains("meal"))
        reading.m_meal = CB_TRY(parse_meal(type->type, *meal));
    return reading;
}

std::optional<std::uint64_t> peek_sequence(const DeviceId& topic_device, std::string_view payload) {
    const auto json = parse_payload_json(payload);
    const auto* root = json ? json.value().if_object() : nullptr;
    if (root == nullptr)
        return std::nullopt;
    const auto* device = root->if_contains("device_id");
    const auto* sequence = root->if_contains("seq");
    if (device == nullptr || !device->is_string() || std::string_view(device->get_string()) != topic_device.str() ||
        sequence == nullptr)
        return std::nullopt;
    const auto parsed = parse_sequence(*sequence);
    if (!parsed)
        return std::nullopt;
    return parsed.value();
}

std::string to_storage_json(const Reading& reading) {
    // Written by hand rather than through boost::json::serialize, which
    // prints every double in exponent form (82 -> 8.2E1); std::to_chars gives
    // the shortest text that reads back as the same double. Appended in place:
    // this runs once per reading on the ingest loop.
    std::string out;
    out.reserve(256);
    const auto text = [&out](std::string_view value) {
        const bool plain = std::none_of(value.begin(), value.end(), [](char c) {
            return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
        });
        if (plain) {  // our own names and units, and every firmware version seen so far
            out += '"';
            out += value;
            out += '"';
        } else {
            out += boost::json::serialize(boost::json::string(value));
        }
    };
    const auto number = [&out](auto value) {
        std::array<char, 32> buffer{};
        const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
        out.append(buffer.data(), result.ptr);
    };
    out += "{\"type\":";
    text(to_string(reading.type()));
    out += ",\"time_us\":";
    number(reading.device_time().utc.time_since_epoch().count());
    out += ",\"offset_min\":";
    number(reading.device_time().offset.count());
    out += ",\"values\":[";
    for (std::size_t i = 0; i < reading.components().size(); ++i) {
        const Component& component = reading.components()[i];
        out += i == 0 ? "{\"code\":" : ",{\"code\":";
        number(component.code);
        out += ",\"value\":";
        number(component.value);
        out += ",\"unit\":";
        text(component.unit);
        out += '}';
    }
    out += "],\"user_index\":";
    number(reading.user_index());
    if (!reading.flags().empty()) {
        out += ",\"flags\":[";
        bool first = true;
        for (std::size_t i = 0; i < status_flag_count; ++i) {
            if (!reading.flags().contains(static_cast<StatusFlag>(i)))
                continue;
            if (!first)
                out += ',';
            text(to_string(static_cast<StatusFlag>(i)));
            first = false;
        }
        out += ']';
    }
    if (reading.clock_offset()) {
        out += ",\"clock_offset_s\":";
        number(reading.clock_offset()->count());
    }
    if (reading.firmware()) {
        out += ",\"firmware\":";
        text(*reading.firmware());
    }
    if (reading.meal()) {
        out += ",\"meal\":";
        text(to_string(*reading.meal()));
    }
    out += '}';
    return out;
}

}  // namespace cb::devices
