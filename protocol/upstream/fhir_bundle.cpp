#include "protocol/upstream/fhir_bundle.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <utility>
#include <variant>

#include "protocol/upstream/canonical_json.hpp"

namespace cb::upstream {
namespace {

using devices::MeasurementType;
namespace json = boost::json;

constexpr std::string_view loinc_system = "http://loinc.org";
// The ANS mirror of LOINC that JDV_J154 (glucose type) and JDV_J157 (moment) use.
constexpr std::string_view ans_loinc_system = "https://mos.esante.gouv.fr/NOS/TRE_A04-Loinc/FHIR/TRE-A04-Loinc";
constexpr std::string_view cisp2_system = "https://mos.esante.gouv.fr/NOS/TRE_R313-CISP2/FHIR/TRE-R313-CISP2";
constexpr std::string_view mdc_system = "urn:iso:std:iso:11073:10101";
constexpr std::string_view ucum_system = "http://unitsofmeasure.org";
constexpr std::string_view category_system = "http://terminology.hl7.org/CodeSystem/observation-category";
constexpr std::string_view continua_identifiers = "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers";
constexpr std::string_view phd_device_profile = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice";
constexpr std::string_view bmi_loinc = "39156-5";
// Our namespace for UUIDv5 resource ids (a random UUID, fixed forever).
constexpr std::array<std::uint8_t, 16> uuid_namespace = {0x66, 0x91, 0x6f, 0x0c, 0xf0, 0x0f, 0x4e, 0x30,
                                                         0xa7, 0x2c, 0x5f, 0xdd, 0x5c, 0x36, 0xdf, 0x1c};

std::string profile_url(std::string_view id) {
    return std::string(ig_canonical) + "/StructureDefinition/" + std::string(id);
}

struct TypeSpec {
    MeasurementType type;
    std::string_view profile_id;
    std::string_view loinc;
    std::uint32_t mdc;                     // 0: the reading's component code
    std::string_view ucum;                 // the value's unit; empty for the blood-pressure panel
    std::string_view stored;               // the stored (canonical) unit of reading.hpp
    std::array<std::uint32_t, 3> sources;  // stored codes, first present wins
};

constexpr std::array<TypeSpec, 8> type_specs = {{
    {MeasurementType::body_weight, "mesures-fr-observation-body-weight", "29463-7", 188736, "kg", "kg", {188736, 0, 0}},
    {MeasurementType::body_height, "mesures-fr-observation-bodyheight", "8302-2", 188740, "cm", "cm", {188740, 0, 0}},
    {MeasurementType::heart_rate,
     "mesures-fr-observation-heartrate",
     "8867-4",
     0,
     "/min",
     "/min",
     {149546, 149530, 147842}},
    {MeasurementType::blood_pressure, "mesures-fr-observation-bp", "85354-9", 150020, "", "mm[Hg]", {0, 0, 0}},
    {MeasurementType::body_temperature,
     "mesures-fr-observation-body-temperature",
     "8310-5",
     150364,
     "Cel",
     "Cel",
     {150364, 0, 0}},
    {MeasurementType::spo2, "mesures-fr-observation-oxygen-sat", "2708-6", 150456, "%", "%", {150456, 0, 0}},
    {MeasurementType::blood_glucose, "mesures-observation-glucose", "2345-7", 0, "mg/dL", "mg/dL", {160184, 160188, 0}},
    {MeasurementType::steps,
     "mesures-observation-steps-by-day",
     "41950-7",
     8454247,
     "1/(24.h)",
     "{steps}",
     {8454247, 0, 0}},
}};

const TypeSpec& spec_of(MeasurementType type) {
    for (const auto& spec : type_specs)
        if (spec.type == type)
            return spec;
    std::abort();  // every MeasurementType has a row
}

struct BpComponent {
    std::string_view loinc;
    std::uint32_t mdc;
    std::string_view name;
};
constexpr std::array<BpComponent, 2> bp_components = {
    {{"8480-6", 150021, "systolic"}, {"8462-4", 150022, "diastolic"}}};

struct MomentSpec {
    GlucoseMoment moment;
    std::string_view name;
    std::string_view system;
    std::string_view code;
};
constexpr std::array<MomentSpec, 6> moment_specs = {{
    {GlucoseMoment::fasting, "fasting", ans_loinc_system, "53049-3"},
    {GlucoseMoment::before_meal, "before_meal", ans_loinc_system, "88365-2"},
    {GlucoseMoment::after_meal, "after_meal", ans_loinc_system, "16915-1"},
    {GlucoseMoment::after_exercise, "after_exercise", ans_loinc_system, "LA11865-5"},
    {GlucoseMoment::other, "other", ans_loinc_system, "LA46-8"},
    {GlucoseMoment::during_malaise, "during_malaise", cisp2_system, "A05"},
}};

std::string moment_extension_url() {
    return std::string(ig_canonical) + "/StructureDefinition/mesures-moment-of-measurement";
}

BundleRefusal refuse(BundleProblem problem, std::string message) {
    return BundleRefusal{problem, std::move(message)};
}

// At most 64 bytes of untrusted text in a message, control bytes escaped.
std::string quote(std::string_view text) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < 64; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F || c == '"' || c == '\\') {
            char buffer[8];
            std::snprintf(buffer, sizeof buffer, "\\x%02X", c);
            out += buffer;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > 64)
        out += "...";
    return out + "\"";
}

// --- UUIDv5 (RFC 4122 §4.3) --------------------------------------------------

std::string uuid_v5(std::string_view name) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    // Fetched once: EVP_sha1() makes OpenSSL 3 look the digest up at every
    // init, which cost more than hashing these few bytes (bench/forward).
    static EVP_MD* const sha1 = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    const bool ok = context != nullptr && sha1 != nullptr && EVP_DigestInit_ex(context, sha1, nullptr) == 1 &&
                    EVP_DigestUpdate(context, uuid_namespace.data(), uuid_namespace.size()) == 1 &&
                    EVP_DigestUpdate(context, name.data(), name.size()) == 1 &&
                    EVP_DigestFinal_ex(context, digest.data(), &length) == 1;
    EVP_MD_CTX_free(context);
    if (!ok)
        std::abort();  // SHA-1 of a few bytes cannot fail short of memory exhaustion
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0F) | 0x50);
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3F) | 0x80);
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out += '-';
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0F];
    }
    return out;
}

// --- text rules --------------------------------------------------------------

bool is_alnum(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// The value part of the IG's ifNoneExist pattern: an alphanumeric, then
// alphanumerics or '-' (at least two characters).
bool is_device_value(std::string_view text) {
    if (text.size() < 2 || text.size() > 64 || !is_alnum(text.front()))
        return false;
    return std::all_of(text.begin(), text.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

bool is_idpe(std::string_view text) {
    return !text.empty() && text.size() <= max_idpe_length &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x21 && c <= 0x7E && c != '|'; });
}

bool is_idnps(std::string_view text) {
    return !text.empty() && text.size() <= 32 && std::all_of(text.begin(), text.end(), is_alnum);
}

// "urn:oid:" followed by arcs of digits separated by dots.
bool is_oid_urn(std::string_view text) {
    constexpr std::string_view prefix = "urn:oid:";
    if (text.substr(0, prefix.size()) != prefix || text.size() > 200)
        return false;
    const std::string_view oid = text.substr(prefix.size());
    if (oid.empty() || oid.front() == '.' || oid.back() == '.' || oid.find("..") != std::string_view::npos)
        return false;
    return std::all_of(oid.begin(), oid.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::string format_eui64(const std::array<std::uint8_t, 8>& eui) {
    static constexpr std::string_view hex = "0123456789ABCDEF";
    std::string out;
    for (std::size_t i = 0; i < eui.size(); ++i) {
        if (i > 0)
            out += '-';
        out += hex[eui[i] >> 4];
        out += hex[eui[i] & 0x0F];
    }
    return out;
}

// RFC 3339 local time with its offset: "2026-11-22T10:15:00+01:00", with
// ".ffffff" only when the microseconds are not zero.
std::string format_effective(const devices::DeviceTime& time) {
    using namespace std::chrono;
    const auto local = time.utc + time.offset;
    const auto day = floor<days>(local);
    const year_month_day date{day};
    const hh_mm_ss<microseconds> clock{local - day};
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
    std::string out = buffer;
    if (clock.subseconds().count() != 0) {
        std::snprintf(buffer, sizeof buffer, ".%06lld", static_cast<long long>(clock.subseconds().count()));
        out += buffer;
    }
    const long long offset = time.offset.count();
    const long long magnitude = offset < 0 ? -offset : offset;
    std::snprintf(buffer, sizeof buffer, "%c%02lld:%02lld", offset < 0 ? '-' : '+', magnitude / 60, magnitude % 60);
    return out + buffer;
}

// Values are rounded to 3 decimals (a milligram, a millimetre, a thousandth of
// a degree: finer than any device we reference). Besides hiding conversion
// noise (5.5 mmol/L is 99.08800000000001 mg/dL), it keeps every number at 15
// significant digits or fewer, which any JSON parser reads back exactly -
// Boost.JSON 1.81 does not round 17-digit numbers correctly, and a verifier that
// reads a number differently recomputes a different canonical payload.
double rounded(double value) {
    return std::round(value * 1000.0) / 1000.0;
}

std::string unit_display(std::string_view ucum) {
    return ucum == "1/(24.h)" ? "steps/day" : std::string(ucum);
}

const StoredComponent* find_component(const StoredReading& reading, std::uint32_t code) {
    for (const auto& component : reading.components)
        if (component.code == code)
            return &component;
    return nullptr;
}

BundleResult<const StoredComponent*> checked_component(const StoredReading& reading, std::uint32_t code,
                                                       std::string_view unit, std::string_view what) {
    const StoredComponent* component = find_component(reading, code);
    if (component == nullptr)
        return refuse(BundleProblem::bad_value,
                      "reading: no component " + std::to_string(code) + " (" + std::string(what) + ")");
    if (component->unit != unit)
        return refuse(BundleProblem::wrong_unit, "reading: component " + std::to_string(code) + " in " +
                                                     quote(component->unit) + ", expected " + quote(unit));
    if (!std::isfinite(component->value))
        return refuse(BundleProblem::bad_value, "reading: component " + std::to_string(code) + " is not finite");
    return component;
}

}  // namespace

// --- names -------------------------------------------------------------------

const char* to_string(GlucoseMoment moment) noexcept {
    for (const auto& spec : moment_specs)
        if (spec.moment == moment)
            return spec.name.data();
    return "?";
}

GlucoseMoment glucose_moment_of(devices::Meal meal) noexcept {
    switch (meal) {
        case devices::Meal::preprandial: return GlucoseMoment::before_meal;
        case devices::Meal::postprandial: return GlucoseMoment::after_meal;
        case devices::Meal::fasting: return GlucoseMoment::fasting;
        case devices::Meal::casual:
        case devices::Meal::bedtime: return GlucoseMoment::other;
    }
    return GlucoseMoment::other;
}

std::optional<GlucoseMoment> glucose_moment_from_string(std::string_view name) noexcept {
    for (const auto& spec : moment_specs)
        if (spec.name == name)
            return spec.moment;
    return std::nullopt;
}

const char* to_string(BundleProblem problem) noexcept {
    switch (problem) {
        case BundleProblem::malformed: return "malformed";
        case BundleProblem::too_large: return "too_large";
        case BundleProblem::missing_profile: return "missing_profile";
        case BundleProblem::unknown_code: return "unknown_code";
        case BundleProblem::wrong_unit: return "wrong_unit";
        case BundleProblem::bad_value: return "bad_value";
        case BundleProblem::bmi_refused: return "bmi_refused";
        case BundleProblem::glucose_without_moment: return "glucose_without_moment";
        case BundleProblem::bad_subject: return "bad_subject";
        case BundleProblem::bad_device_link: return "bad_device_link";
        case BundleProblem::bad_identifier: return "bad_identifier";
        case BundleProblem::bad_time: return "bad_time";
        case BundleProblem::bad_performer: return "bad_performer";
    }
    return "?";
}

Error BundleRefusal::to_error() const {
    const ErrorKind kind = problem == BundleProblem::too_large ? ErrorKind::limit_exceeded : ErrorKind::invalid_input;
    return Error(kind, std::string(to_string(problem)) + ": " + message);
}

// --- StoredReading -----------------------------------------------------------

Result<StoredReading> StoredReading::parse(std::string_view storage_json) {
    const auto bad = [](const std::string& message) {
        return fail(ErrorKind::invalid_input, "stored reading: " + message);
    };
    if (storage_json.size() > 2 * devices::max_payload_size)
        return fail(ErrorKind::limit_exceeded,
                    "stored reading: over " + std::to_string(2 * devices::max_payload_size) + " bytes");
    json::parse_options options;
    options.max_depth = devices::max_nesting_depth;
    boost::system::error_code code;
    const json::value root = json::parse(storage_json, code, {}, options);
    if (code)
        return bad("not JSON (" + code.message() + ")");
    const json::object* object = root.if_object();
    if (object == nullptr)
        return bad("not a JSON object");

    StoredReading reading;
    const json::string* type = object->contains("type") ? object->at("type").if_string() : nullptr;
    if (type == nullptr)
        return bad("type: expected a string");
    const auto measurement = devices::measurement_type_from_string(*type);
    if (!measurement)
        return bad("type: " + quote(*type) + " is not a measurement type");
    reading.type = *measurement;

    const json::value* time = object->if_contains("time_us");
    if (time == nullptr || !time->is_int64())
        return bad("time_us: expected an integer");
    const json::value* offset = object->if_contains("offset_min");
    if (offset == nullptr || !offset->is_int64() || offset->get_int64() < -1439 || offset->get_int64() > 1439)
        return bad("offset_min: expected an integer -1439..1439");
    // Keep the instant within years 1..9999 so that formatting cannot overflow.
    constexpr std::int64_t max_time_us = 253402300799LL * 1000000LL;
    constexpr std::int64_t min_time_us = -62135596800LL * 1000000LL + 1439LL * 60 * 1000000LL;
    if (time->get_int64() > max_time_us - 1439LL * 60 * 1000000LL || time->get_int64() < min_time_us)
        return bad("time_us: outside years 0001..9999");
    reading.time.utc = devices::Microseconds(std::chrono::microseconds(time->get_int64()));
    reading.time.offset = std::chrono::minutes(offset->get_int64());

    const json::value* values = object->if_contains("values");
    if (values == nullptr || !values->is_array() || values->get_array().empty() ||
        values->get_array().size() > devices::max_components)
        return bad("values: expected an array of 1.." + std::to_string(devices::max_components) + " components");
    std::size_t index = 0;
    for (const json::value& element : values->get_array()) {
        const std::string where = "values[" + std::to_string(index++) + "]";
        const json::object* component = element.if_object();
        if (component == nullptr)
            return bad(where + ": expected an object");
        const json::value* component_code = component->if_contains("code");
        if (component_code == nullptr || !component_code->is_number())
            return bad(where + ".code: expected an integer 1..4294967295");
        boost::system::error_code conversion;
        const auto code_value = component_code->to_number<std::uint32_t>(conversion);
        if (conversion || code_value == 0)
            return bad(where + ".code: expected an integer 1..4294967295");
        const json::value* value = component->if_contains("value");
        if (value == nullptr || !value->is_number())
            return bad(where + ".value: expected a number");
        const double number = value->to_number<double>();
        if (!std::isfinite(number))
            return bad(where + ".value: not finite");
        const json::value* unit = component->if_contains("unit");
        if (unit == nullptr || !unit->is_string() || unit->get_string().size() > 16)
            return bad(where + ".unit: expected a string of at most 16 bytes");
        reading.components.push_back({code_value, number, std::string(unit->get_string())});
    }
    if (const json::value* meal = object->if_contains("meal")) {
        const auto known = meal->is_string() ? devices::meal_from_string(meal->get_string()) : std::nullopt;
        if (!known)
            return bad("meal: expected a meal context name");
        reading.meal = *known;
    }
    return reading;
}

StoredReading StoredReading::from(const devices::Reading& reading) {
    StoredReading stored;
    stored.type = reading.type();
    stored.time = reading.device_time();
    for (const auto& component : reading.components())
        stored.components.push_back({component.code, component.value, std::string(component.unit)});
    stored.meal = reading.meal();
    return stored;
}

std::string observation_key(const devices::DeviceId& device, std::uint64_t sequence) {
    return device.str() + ":" + std::to_string(sequence);
}

// --- building ----------------------------------------------------------------

namespace {

// The members below are written in canonical order (RFC 8785: sorted by name),
// so the text is canonical as written: CanonicalWriter asserts the order.

void write_codings(CanonicalWriter& out, std::initializer_list<std::pair<std::string_view, std::string_view>> codings) {
    out.begin_object().key("coding").begin_array();
    for (const auto& [system, code] : codings)
        out.begin_object().member("code", code).member("system", system).end_object();
    out.end_array().end_object();
}

void write_meta(CanonicalWriter& out, std::string_view profile) {
    out.begin_object().key("profile").begin_array().string(profile).end_array().end_object();
}

void write_quantity(CanonicalWriter& out, double value, std::string_view ucum, std::string_view unit) {
    out.begin_object()
        .member("code", ucum)
        .member("system", ucum_system)
        .member("unit", unit)
        .member("value", rounded(value))
        .end_object();
}

void write_request(CanonicalWriter& out, const std::string& if_none_exist, std::string_view type) {
    out.key("request")
        .begin_object()
        .member("ifNoneExist", if_none_exist)
        .member("method", "POST")
        .member("url", type)
        .end_object();
}

}  // namespace

BundleResult<std::string> bundle_text(const BundleInput& input) {
    const TypeSpec& spec = spec_of(input.reading.type);

    if (input.sequence == 0)
        return refuse(BundleProblem::bad_identifier, "sequence: 0 is not a device sequence number");
    if (!input.eui64 && !is_device_value(input.device.str()))
        return refuse(BundleProblem::bad_identifier,
                      "device " + quote(input.device.str()) +
                          ": without an EUI-64 the device id must match [A-Za-z0-9][A-Za-z0-9-]+ (the IG's "
                          "ifNoneExist pattern)");
    if (!is_idpe(input.patient_idpe))
        return refuse(BundleProblem::bad_subject, "patient idPe: expected 1.." + std::to_string(max_idpe_length) +
                                                      " printable ASCII characters without '|'");
    if (input.practitioner_idnps && !is_idnps(*input.practitioner_idnps))
        return refuse(BundleProblem::bad_performer, "practitioner IDNPS: expected 1..32 letters or digits");
    if (spec.type == MeasurementType::blood_glucose && !input.glucose_moment)
        return refuse(BundleProblem::glucose_without_moment,
                      "blood glucose of device " + quote(input.device.str()) + " seq " +
                          std::to_string(input.sequence) +
                          ": the IG requires the moment of measurement (JDV_J157) and none was given");

    // The values, checked before anything is written.
    std::array<const StoredComponent*, 2> pressures{};
    const StoredComponent* source = nullptr;
    std::string mdc_code;
    if (spec.type == MeasurementType::blood_pressure) {
        for (std::size_t i = 0; i < bp_components.size(); ++i)
            pressures[i] =
                CB_TRY(checked_component(input.reading, bp_components[i].mdc, "mm[Hg]", bp_components[i].name));
        mdc_code = std::to_string(spec.mdc);
    } else {
        for (const std::uint32_t code : spec.sources)
            if (code != 0 && source == nullptr)
                source = find_component(input.reading, code);
        if (source == nullptr)
            return refuse(BundleProblem::bad_value, std::string("reading: no ") + devices::to_string(spec.type) +
                                                        " component (" + std::to_string(spec.sources[0]) + ")");
        source = CB_TRY(checked_component(input.reading, source->code, spec.stored, devices::to_string(spec.type)));
        mdc_code = std::to_string(spec.mdc != 0 ? spec.mdc : source->code);
    }

    const std::string device_system(input.eui64 ? eui64_system : carebridge_device_system);
    const std::string device_value = input.eui64 ? format_eui64(*input.eui64) : input.device.str();
    const std::string device_id = uuid_v5("Device|" + device_system + "|" + device_value);
    const std::string key = observation_key(input.device, input.sequence);
    const std::string observation_id = uuid_v5("Observation|" + std::string(carebridge_observation_system) + "|" + key);

    CanonicalWriter out;
    out.begin_object().key("entry").begin_array();

    // entry[0]: the Device (PhdDevice).
    out.begin_object().member("fullUrl", "urn:uuid:" + device_id);
    write_request(out, "identifier=" + device_system + "|" + device_value, "Device");
    out.key("resource").begin_object().member("id", device_id);
    out.key("identifier").begin_array().begin_object().member("system", device_system);
    if (input.eui64)
        write_codings(out.key("type"), {{continua_identifiers, "SYSID"}});
    out.member("value", device_value).end_object().end_array();
    if (!input.manufacturer.empty())
        out.member("manufacturer", input.manufacturer);
    write_meta(out.key("meta"), phd_device_profile);
    if (!input.model.empty())
        out.member("modelNumber", input.model);
    out.member("resourceType", "Device");
    // The generic 20601 specialization as the IG's example, and MDC_MOC_VMS_MDS_SIMP.
    out.key("specialization").begin_array().begin_object();
    write_codings(out.key("systemType"), {{mdc_system, "528457"}});
    out.end_object().end_array();
    write_codings(out.key("type"), {{mdc_system, "65573"}});
    out.end_object().end_object();

    // entry[1]: the Observation.
    out.begin_object().member("fullUrl", "urn:uuid:" + observation_id);
    write_request(out, "identifier=" + std::string(carebridge_observation_system) + "|" + key, "Observation");
    out.key("resource").begin_object();
    out.key("category").begin_array();
    write_codings(out, {{category_system, "vital-signs"}});
    out.end_array();
    write_codings(out.key("code"),
                  {{spec.type == MeasurementType::blood_glucose ? ans_loinc_system : loinc_system, spec.loinc},
                   {mdc_system, mdc_code}});
    if (spec.type == MeasurementType::blood_pressure) {
        out.key("component").begin_array();
        for (std::size_t i = 0; i < bp_components.size(); ++i) {
            out.begin_object();
            write_codings(out.key("code"),
                          {{loinc_system, bp_components[i].loinc}, {mdc_system, std::to_string(bp_components[i].mdc)}});
            write_quantity(out.key("valueQuantity"), pressures[i]->value, "mm[Hg]", "mm[Hg]");
            out.end_object();
        }
        out.end_array();
    }
    out.key("device").begin_object().member("reference", "Device/" + device_id).end_object();
    out.member("effectiveDateTime", format_effective(input.reading.time));
    if (spec.type == MeasurementType::blood_glucose) {
        const MomentSpec& moment = *std::find_if(moment_specs.begin(), moment_specs.end(), [&](const MomentSpec& m) {
            return m.moment == *input.glucose_moment;
        });
        out.key("extension").begin_array().begin_object().member("url", moment_extension_url());
        write_codings(out.key("valueCodeableConcept"), {{moment.system, moment.code}});
        out.end_object().end_array();
    }
    out.member("id", observation_id);
    out.key("identifier").begin_array().begin_object();
    out.member("system", carebridge_observation_system).member("value", key).end_object().end_array();
    write_meta(out.key("meta"), profile_url(spec.profile_id));
    if (input.practitioner_idnps) {
        out.key("performer").begin_array().begin_object().key("identifier").begin_object();
        out.member("system", idnps_system).member("value", *input.practitioner_idnps).end_object();
        out.member("type", "Practitioner").end_object().end_array();
    }
    out.member("resourceType", "Observation").member("status", "final");
    out.key("subject").begin_object().key("identifier").begin_object();
    out.member("system", mes_patient_system).member("value", input.patient_idpe).end_object().end_object();
    if (source != nullptr)
        write_quantity(out.key("valueQuantity"), source->value, spec.ucum, unit_display(spec.ucum));
    out.end_object().end_object();

    out.end_array();
    write_meta(out.key("meta"), profile_url("mesures-bundle-flux-alimentation"));
    out.member("resourceType", "Bundle").member("type", "transaction").end_object();

    auto text = std::move(out).finish();
    if (!text)  // the manufacturer's or model's name from the catalog, not UTF-8
        return refuse(BundleProblem::malformed, "device " + quote(input.device.str()) + ": " + text.error().message());
    return std::move(text).value();
}

BundleResult<json::object> build_bundle(const BundleInput& input) {
    const std::string text = CB_TRY(bundle_text(input));
    return json::parse(text).as_object();
}

// --- parsing -----------------------------------------------------------------

namespace {

// Typed access to a member, naming its path on failure.
class Node {
public:
    Node(const json::value& value, std::string path) : m_value(&value), m_path(std::move(path)) {}

    const std::string& path() const { return m_path; }
    const json::value& value() const { return *m_value; }

    BundleResult<Node> member(std::string_view name, BundleProblem problem = BundleProblem::malformed) const {
        const json::object* object = m_value->if_object();
        if (object == nullptr)
            return refuse(BundleProblem::malformed, m_path + ": expected an object");
        const json::value* child = object->if_contains(name);
        if (child == nullptr)
            return refuse(problem, m_path + "." + std::string(name) + ": missing");
        return Node(*child, m_path + "." + std::string(name));
    }
    bool has(std::string_view name) const {
        const json::object* object = m_value->if_object();
        return object != nullptr && object->contains(name);
    }
    BundleResult<std::string_view> string(BundleProblem problem = BundleProblem::malformed) const {
        const json::string* text = m_value->if_string();
        if (text == nullptr)
            return refuse(problem, m_path + ": expected a string");
        return std::string_view(*text);
    }
    BundleResult<std::string_view> string_member(std::string_view name,
                                                 BundleProblem problem = BundleProblem::malformed) const {
        const Node child = CB_TRY(member(name, problem));
        return child.string(problem);
    }
    BundleResult<std::vector<Node>> array(std::size_t min, std::size_t max,
                                          BundleProblem problem = BundleProblem::malformed) const {
        const json::array* elements = m_value->if_array();
        if (elements == nullptr || elements->size() < min || elements->size() > max)
            return refuse(problem, m_path + ": expected an array of " + std::to_string(min) + ".." +
                                       std::to_string(max) + " elements");
        std::vector<Node> out;
        for (std::size_t i = 0; i < elements->size(); ++i)
            out.emplace_back((*elements)[i], m_path + "[" + std::to_string(i) + "]");
        return out;
    }
    BundleResult<std::vector<Node>> array_member(std::string_view name, std::size_t min, std::size_t max,
                                                 BundleProblem problem = BundleProblem::malformed) const {
        const Node child = CB_TRY(member(name, problem));
        return child.array(min, max, problem);
    }

private:
    const json::value* m_value;
    std::string m_path;
};

BundleResult<std::monostate> expect_text(const Node& node, std::string_view name, std::string_view expected,
                                         BundleProblem problem = BundleProblem::malformed) {
    const std::string_view text = CB_TRY(node.string_member(name, problem));
    if (text != expected)
        return refuse(problem,
                      node.path() + "." + std::string(name) + ": " + quote(text) + ", expected " + quote(expected));
    return std::monostate{};
}

// The profiles in meta.profile (1..4 strings).
BundleResult<std::vector<std::string_view>> profiles_of(const Node& resource) {
    const Node meta = CB_TRY(resource.member("meta", BundleProblem::missing_profile));
    const auto list = CB_TRY(meta.array_member("profile", 1, 4, BundleProblem::missing_profile));
    std::vector<std::string_view> out;
    out.reserve(list.size());
    for (const Node& element : list)
        out.push_back(CB_TRY(element.string(BundleProblem::missing_profile)));
    return out;
}

// (system, code) pairs of a CodeableConcept's coding (1..8).
BundleResult<std::vector<std::pair<std::string_view, std::string_view>>> codings_of(const Node& concept_node,
                                                                                    BundleProblem problem) {
    const auto list = CB_TRY(concept_node.array_member("coding", 1, 8, problem));
    std::vector<std::pair<std::string_view, std::string_view>> out;
    for (const Node& element : list) {
        const std::string_view system = CB_TRY(element.string_member("system", problem));
        const std::string_view code = CB_TRY(element.string_member("code", problem));
        out.emplace_back(system, code);
    }
    return out;
}

bool contains_coding(const std::vector<std::pair<std::string_view, std::string_view>>& codings, std::string_view system,
                     std::string_view code) {
    return std::any_of(codings.begin(), codings.end(),
                       [&](const auto& pair) { return pair.first == system && pair.second == code; });
}

BundleResult<BundleValue> parse_quantity(const Node& owner, std::string_view loinc, std::string_view ucum) {
    const Node quantity_node = CB_TRY(owner.member("valueQuantity", BundleProblem::bad_value));
    const Node value = CB_TRY(quantity_node.member("value", BundleProblem::bad_value));
    if (!value.value().is_number())
        return refuse(BundleProblem::bad_value, value.path() + ": expected a number");
    const double number = value.value().to_number<double>();
    if (!std::isfinite(number))
        return refuse(BundleProblem::bad_value, value.path() + ": not finite");
    CB_TRY(expect_text(quantity_node, "system", ucum_system, BundleProblem::wrong_unit));
    CB_TRY(expect_text(quantity_node, "code", ucum, BundleProblem::wrong_unit));
    return BundleValue{std::string(loinc), number, std::string(ucum)};
}

// "identifier=<system>|<value>" naming exactly (system, value).
BundleResult<std::monostate> expect_if_none_exist(const Node& request, std::string_view system,
                                                  std::string_view value) {
    const std::string_view condition = CB_TRY(request.string_member("ifNoneExist", BundleProblem::bad_identifier));
    const std::string expected = "identifier=" + std::string(system) + "|" + std::string(value);
    if (condition != expected)
        return refuse(BundleProblem::bad_identifier, request.path() + ".ifNoneExist: " + quote(condition) +
                                                         " does not name the resource's identifier " + quote(expected));
    return std::monostate{};
}

}  // namespace

BundleResult<BundleSummary> parse_bundle(std::string_view text) {
    if (text.size() > max_bundle_size)
        return refuse(BundleProblem::too_large, "bundle: " + std::to_string(text.size()) + " bytes (at most " +
                                                    std::to_string(max_bundle_size) + ")");
    json::parse_options options;
    options.max_depth = max_bundle_depth;
    boost::system::error_code code;
    const json::value root = json::parse(text, code, {}, options);
    if (code == json::error::too_deep)
        return refuse(BundleProblem::too_large,
                      "bundle: nested deeper than " + std::to_string(max_bundle_depth) + " levels");
    if (code)
        return refuse(BundleProblem::malformed, "bundle: not JSON (" + code.message() + ")");
    return parse_bundle_value(root);
}

BundleResult<BundleSummary> parse_bundle_value(const json::value& bundle_value) {
    BundleSummary summary;
    const Node bundle(bundle_value, "Bundle");
    if (!bundle_value.is_object())
        return refuse(BundleProblem::malformed, "Bundle: expected a JSON object");
    CB_TRY(expect_text(bundle, "resourceType", "Bundle"));
    CB_TRY(expect_text(bundle, "type", "transaction"));
    summary.has_signature = bundle.has("signature");
    const auto entries = CB_TRY(bundle.array_member("entry", 2, 2));

    // Entry 0: the Device, conditional create.
    const Node& device_entry = entries[0];
    const Node device_request = CB_TRY(device_entry.member("request"));
    CB_TRY(expect_text(device_request, "method", "POST"));
    CB_TRY(expect_text(device_request, "url", "Device"));
    const Node device = CB_TRY(device_entry.member("resource"));
    CB_TRY(expect_text(device, "resourceType", "Device"));
    const auto device_profiles = CB_TRY(profiles_of(device));
    if (std::find(device_profiles.begin(), device_profiles.end(), phd_device_profile) == device_profiles.end())
        return refuse(BundleProblem::missing_profile,
                      device.path() + ".meta.profile: does not name " + quote(phd_device_profile));
    const std::string_view device_id = CB_TRY(device.string_member("id", BundleProblem::bad_device_link));
    if (device_id.empty() || device_id.size() > 64)
        return refuse(BundleProblem::bad_device_link, device.path() + ".id: expected 1..64 characters");
    const auto device_identifiers = CB_TRY(device.array_member("identifier", 1, 4, BundleProblem::bad_identifier));
    // The identifier the conditional create names must be one of the Device's.
    const std::string_view condition =
        CB_TRY(device_request.string_member("ifNoneExist", BundleProblem::bad_identifier));
    bool matched = false;
    for (const Node& identifier : device_identifiers) {
        const std::string_view system = CB_TRY(identifier.string_member("system", BundleProblem::bad_identifier));
        const std::string_view value = CB_TRY(identifier.string_member("value", BundleProblem::bad_identifier));
        if (condition == "identifier=" + std::string(system) + "|" + std::string(value)) {
            if (!is_oid_urn(system) || !is_device_value(value))
                return refuse(BundleProblem::bad_identifier,
                              identifier.path() + ": " + quote(std::string(system) + "|" + std::string(value)) +
                                  " does not match urn:oid:<OID>|[A-Za-z0-9][A-Za-z0-9-]+ (the IG's ifNoneExist rule)");
            summary.device_system = system;
            summary.device_value = value;
            matched = true;
            break;
        }
    }
    if (!matched)
        return refuse(BundleProblem::bad_identifier, device_request.path() + ".ifNoneExist: " + quote(condition) +
                                                         " names none of the Device's identifiers");
    summary.device_resource_id = device_id;

    // Entry 1: the Observation.
    const Node& observation_entry = entries[1];
    const Node observation_request = CB_TRY(observation_entry.member("request"));
    CB_TRY(expect_text(observation_request, "method", "POST"));
    CB_TRY(expect_text(observation_request, "url", "Observation"));
    const Node observation = CB_TRY(observation_entry.member("resource"));
    CB_TRY(expect_text(observation, "resourceType", "Observation"));

    const auto profiles = CB_TRY(profiles_of(observation));
    const TypeSpec* spec = nullptr;
    for (const std::string_view profile : profiles) {
        if (profile == profile_url("mesures-fr-observation-bmi"))
            return refuse(BundleProblem::bmi_refused,
                          observation.path() + ": BMI observations cannot be created (MES computes them)");
        for (const auto& candidate : type_specs)
            if (profile == profile_url(candidate.profile_id))
                spec = &candidate;
    }
    if (spec == nullptr)
        return refuse(BundleProblem::missing_profile,
                      observation.path() + ".meta.profile: names no Observation profile of the IG that we accept");
    summary.type = spec->type;

    CB_TRY(expect_text(observation, "status", "final"));

    const auto identifiers = CB_TRY(observation.array_member("identifier", 1, 1, BundleProblem::bad_identifier));
    summary.observation_system = CB_TRY(identifiers[0].string_member("system", BundleProblem::bad_identifier));
    summary.observation_value = CB_TRY(identifiers[0].string_member("value", BundleProblem::bad_identifier));
    if (!is_oid_urn(summary.observation_system) || summary.observation_value.empty() ||
        summary.observation_value.size() > 128)
        return refuse(BundleProblem::bad_identifier,
                      identifiers[0].path() + ": expected an urn:oid: system and a value of 1..128 characters");
    CB_TRY(expect_if_none_exist(observation_request, summary.observation_system, summary.observation_value));

    const Node code = CB_TRY(observation.member("code", BundleProblem::unknown_code));
    const auto codes = CB_TRY(codings_of(code, BundleProblem::unknown_code));
    if (contains_coding(codes, loinc_system, bmi_loinc) || contains_coding(codes, ans_loinc_system, bmi_loinc))
        return refuse(BundleProblem::bmi_refused, code.path() + ": BMI (LOINC 39156-5) cannot be created");
    const bool code_ok =
        contains_coding(codes, loinc_system, spec->loinc) ||
        (spec->type == MeasurementType::blood_glucose && contains_coding(codes, ans_loinc_system, spec->loinc));
    if (!code_ok)
        return refuse(BundleProblem::unknown_code, code.path() + ".coding: no LOINC " + std::string(spec->loinc) +
                                                       " for " + spec->profile_id.data());

    const Node subject = CB_TRY(observation.member("subject", BundleProblem::bad_subject));
    const Node subject_identifier = CB_TRY(subject.member("identifier", BundleProblem::bad_subject));
    CB_TRY(expect_text(subject_identifier, "system", mes_patient_system, BundleProblem::bad_subject));
    const std::string_view idpe = CB_TRY(subject_identifier.string_member("value", BundleProblem::bad_subject));
    if (!is_idpe(idpe))
        return refuse(BundleProblem::bad_subject, subject_identifier.path() + ".value: not an idPe");
    summary.patient_idpe = idpe;

    const Node device_link = CB_TRY(observation.member("device", BundleProblem::bad_device_link));
    const std::string_view reference = CB_TRY(device_link.string_member("reference", BundleProblem::bad_device_link));
    if (reference != "Device/" + std::string(device_id))
        return refuse(BundleProblem::bad_device_link, device_link.path() + ".reference: " + quote(reference) +
                                                          " is not the bundle's Device " +
                                                          quote("Device/" + std::string(device_id)));

    const std::string_view effective = CB_TRY(observation.string_member("effectiveDateTime", BundleProblem::bad_time));
    const auto time = devices::parse_rfc3339(effective);
    if (!time)
        return refuse(BundleProblem::bad_time, observation.path() + ".effectiveDateTime: " + time.error().message());
    summary.effective = *time;

    if (observation.has("performer")) {
        const auto performers = CB_TRY(observation.array_member("performer", 1, 1, BundleProblem::bad_performer));
        const Node identifier = CB_TRY(performers[0].member("identifier", BundleProblem::bad_performer));
        CB_TRY(expect_text(identifier, "system", idnps_system, BundleProblem::bad_performer));
        const std::string_view idnps = CB_TRY(identifier.string_member("value", BundleProblem::bad_performer));
        if (!is_idnps(idnps))
            return refuse(BundleProblem::bad_performer, identifier.path() + ".value: not an IDNPS");
        summary.practitioner_idnps = std::string(idnps);
    }

    if (spec->type == MeasurementType::blood_pressure) {
        const auto components = CB_TRY(observation.array_member("component", 2, 8, BundleProblem::bad_value));
        for (const auto& part : bp_components) {
            const Node* found = nullptr;
            for (const Node& component : components) {
                const Node component_code = CB_TRY(component.member("code", BundleProblem::unknown_code));
                const auto component_codes = CB_TRY(codings_of(component_code, BundleProblem::unknown_code));
                if (contains_coding(component_codes, loinc_system, part.loinc))
                    found = &component;
            }
            if (found == nullptr)
                return refuse(BundleProblem::unknown_code, observation.path() + ".component: no " +
                                                               std::string(part.name) + " (LOINC " +
                                                               std::string(part.loinc) + ")");
            summary.values.push_back(CB_TRY(parse_quantity(*found, part.loinc, "mm[Hg]")));
        }
    } else {
        summary.values.push_back(CB_TRY(parse_quantity(observation, spec->loinc, spec->ucum)));
    }

    if (spec->type == MeasurementType::blood_glucose) {
        if (observation.has("extension")) {
            const auto extensions = CB_TRY(observation.array_member("extension", 1, 8));
            for (const Node& extension : extensions) {
                const std::string_view url = CB_TRY(extension.string_member("url"));
                if (url != moment_extension_url())
                    continue;
                const Node concept_node =
                    CB_TRY(extension.member("valueCodeableConcept", BundleProblem::glucose_without_moment));
                const auto moments = CB_TRY(codings_of(concept_node, BundleProblem::glucose_without_moment));
                for (const auto& moment : moment_specs)
                    if (contains_coding(moments, moment.system, moment.code))
                        summary.glucose_moment = moment.moment;
                if (!summary.glucose_moment)
                    return refuse(BundleProblem::glucose_without_moment,
                                  concept_node.path() + ": no code of JDV_J157-MomentGlucose");
            }
        }
        if (!summary.glucose_moment)
            return refuse(BundleProblem::glucose_without_moment,
                          observation.path() + ".extension: blood glucose without the moment of measurement");
    }
    return summary;
}

}  // namespace cb::upstream
