#include "tools/devsim/payload.hpp"

#include <array>
#include <cassert>
#include <chrono>
#include <cstdio>

namespace cb::devsim {

namespace {

using devices::MeasurementType;

struct ModelName {
    DeviceModel model;
    const char* name;
    const char* firmware;  // a version config/devices.toml references for the model
};
constexpr std::array<ModelName, device_model_count> model_names{{
    {DeviceModel::blood_pressure_cuff, "sim-bp-1", "1.1.0"},
    {DeviceModel::scale, "sim-scale-1", "2.3.1"},
    {DeviceModel::oximeter, "sim-oxi-1", "1.0.0"},
    {DeviceModel::glucometer, "sim-gluco-1", "3.0.2"},
    {DeviceModel::thermometer, "sim-thermo-1", "1.0.0"},
    {DeviceModel::activity_band, "sim-band-1", "5.1.0"},
}};

constexpr std::array<const char*, misbehaviour_count> misbehaviour_names{
    "none",         "bad-json", "wrong-unit", "out-of-range", "replay",
    "out-of-order", "other-id", "oversized",  "flood",        "unknown-field"};

// A whole number in lo..hi (inclusive), the same on every platform for a seed.
std::int64_t uniform(Random& random, std::int64_t lo, std::int64_t hi) {
    assert(lo <= hi);
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(random() % span);
}

// True with probability numerator/denominator.
bool chance(Random& random, std::uint64_t numerator, std::uint64_t denominator) {
    return random() % denominator < numerator;
}

// `tenths` / 10 as a JSON number: 724 -> "72.4", 700 -> "70.0".
std::string decimal_tenths(std::int64_t tenths) {
    std::string sign = tenths < 0 ? "-" : "";
    const auto magnitude = tenths < 0 ? -tenths : tenths;
    return sign + std::to_string(magnitude / 10) + "." + std::to_string(magnitude % 10);
}

std::string integer(std::int64_t value) {
    return std::to_string(value);
}

void add(ReadingDraft& draft, std::uint32_t code, std::string value, std::string unit) {
    draft.values.push_back({code, std::move(value), std::move(unit)});
}

void draft_blood_pressure(ReadingDraft& draft, Random& random) {
    const auto systolic = uniform(random, 100, 160);
    const auto diastolic = uniform(random, 60, 95);
    add(draft, 150021, integer(systolic), "mm[Hg]");
    // SFLOAT with exponent 0: the mantissa is the value (docs/device-protocol.md §4).
    if (chance(random, 1, 4))
        add(draft, 150022, "{\"sfloat\":" + integer(diastolic) + "}", "mm[Hg]");
    else
        add(draft, 150022, integer(diastolic), "mm[Hg]");
    add(draft, 150023, integer(diastolic + (systolic - diastolic) / 3), "mm[Hg]");
    add(draft, 149546, integer(uniform(random, 50, 100)), "/min");
    if (chance(random, 1, 10))
        draft.flags.emplace_back("irregular_pulse");
}

void draft_heart_rate(ReadingDraft& draft, DeviceModel model, Random& random) {
    const auto rate = integer(uniform(random, 50, 110));
    switch (model) {
        case DeviceModel::oximeter: add(draft, 149530, rate, "/min"); break;
        case DeviceModel::activity_band: add(draft, 147842, rate, "/min"); break;
        default: add(draft, 149546, rate, chance(random, 1, 2) ? "/min" : "bpm"); break;
    }
}

void draft_model_reading(ReadingDraft& draft, DeviceModel model, Random& random) {
    switch (draft.type) {
        case MeasurementType::blood_pressure: draft_blood_pressure(draft, random); break;
        case MeasurementType::heart_rate: draft_heart_rate(draft, model, random); break;
        case MeasurementType::body_weight:
            if (chance(random, 1, 4))
                add(draft, 188736, decimal_tenths(uniform(random, 1100, 2400)), "[lb_av]");
            else
                add(draft, 188736, decimal_tenths(uniform(random, 500, 1100)), "kg");
            add(draft, 188752, decimal_tenths(uniform(random, 185, 350)), "kg/m2");
            break;
        case MeasurementType::body_height: add(draft, 188740, integer(uniform(random, 150, 195)), "cm"); break;
        case MeasurementType::spo2:
            add(draft, 150456, integer(uniform(random, 92, 100)), "%");
            add(draft, 149530, integer(uniform(random, 55, 100)), "/min");
            if (chance(random, 1, 10))
                draft.flags.emplace_back("low_perfusion");
            break;
        case MeasurementType::body_temperature: {
            const auto tenths = uniform(random, 360, 385);
            // HTS FLOAT: exponent -1 in bits 31..24 (0xFF), mantissa = tenths.
            if (chance(random, 1, 2))
                add(draft, 150364, "{\"float\":" + integer(0xFF000000LL + tenths) + "}", "Cel");
            else
                add(draft, 150364, decimal_tenths(tenths), "Cel");
            break;
        }
        case MeasurementType::blood_glucose:
            if (chance(random, 1, 2))
                add(draft, 160184, integer(uniform(random, 70, 180)), "mg/dL");
            else
                add(draft, 160188, decimal_tenths(uniform(random, 39, 100)), "mmol/L");
            draft.meal = devices::to_string(static_cast<devices::Meal>(uniform(random, 0, 4)));
            break;
        case MeasurementType::steps: add(draft, 8454247, integer(uniform(random, 0, 20000)), "{steps}"); break;
    }
}

// A unit the parser refuses for the quantity of `unit`.
std::string wrong_unit_for(const std::string& unit) {
    if (unit == "mm[Hg]")
        return "mmHg";
    if (unit == "kg" || unit == "[lb_av]")
        return "KG";
    if (unit == "Cel")
        return "C";
    if (unit == "mg/dL" || unit == "mmol/L")
        return "mg/dl";
    if (unit == "/min" || unit == "bpm")
        return "beats";
    return "furlongs";
}

// A value outside the canonical range of `code`'s quantity (reading.hpp).
std::string out_of_range_value(std::uint32_t code) {
    switch (code) {
        case 150021: return "400";      // systolic 40..300
        case 188736: return "900";      // weight 0.5..400 kg
        case 188740: return "400";      // height 30..250 cm
        case 150456: return "120";      // SpO2 50..100 %
        case 150364: return "50.0";     // temperature 30..45 Cel
        case 160184: return "2000";     // glucose 10..1000 mg/dL
        case 160188: return "99.9";     // 1800 mg/dL
        case 8454247: return "250000";  // steps 0..100000
        default: return "9999";         // rates 20..300 /min
    }
}

}  // namespace

const char* to_string(DeviceModel model) noexcept {
    return model_names[static_cast<std::size_t>(model)].name;
}

std::optional<DeviceModel> device_model_from_string(std::string_view name) noexcept {
    for (const auto& entry : model_names)
        if (name == entry.name)
            return entry.model;
    return std::nullopt;
}

std::vector<MeasurementType> model_types(DeviceModel model) {
    switch (model) {
        case DeviceModel::blood_pressure_cuff: return {MeasurementType::blood_pressure, MeasurementType::heart_rate};
        case DeviceModel::scale: return {MeasurementType::body_weight, MeasurementType::body_height};
        case DeviceModel::oximeter: return {MeasurementType::spo2, MeasurementType::heart_rate};
        case DeviceModel::glucometer: return {MeasurementType::blood_glucose};
        case DeviceModel::thermometer: return {MeasurementType::body_temperature};
        case DeviceModel::activity_band: return {MeasurementType::steps, MeasurementType::heart_rate};
    }
    return {};
}

const char* to_string(Misbehaviour misbehaviour) noexcept {
    return misbehaviour_names[static_cast<std::size_t>(misbehaviour)];
}

std::optional<Misbehaviour> misbehaviour_from_string(std::string_view name) noexcept {
    for (std::size_t i = 0; i < misbehaviour_names.size(); ++i)
        if (name == misbehaviour_names[i])
            return static_cast<Misbehaviour>(i);
    return std::nullopt;
}

std::string format_rfc3339(devices::Microseconds instant, TimeOffset offset) {
    using namespace std::chrono;
    const minutes shift = offset == TimeOffset::paris_winter ? hours(1) : hours(0);
    const auto local = floor<seconds>(instant) + shift;
    const auto day = floor<days>(local);
    const year_month_day date{day};
    const hh_mm_ss<seconds> time{local - day};
    std::array<char, 40> text{};
    std::snprintf(text.data(), text.size(), "%04d-%02u-%02uT%02d:%02d:%02d%s", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                  static_cast<int>(time.seconds().count()), offset == TimeOffset::paris_winter ? "+01:00" : "Z");
    return text.data();
}

ReadingDraft draft_reading(DeviceModel model, const devices::DeviceId& device, std::uint64_t sequence,
                           devices::Microseconds now, TimeOffset offset, Random& random) {
    assert(sequence >= 1 && sequence <= devices::max_sequence);
    ReadingDraft draft;
    draft.device_id = device.str();
    draft.sequence = sequence;
    for (const ModelName& entry : model_names)
        if (entry.model == model)
            draft.firmware = entry.firmware;
    const auto types = model_types(model);
    draft.type = types.size() > 1 && chance(random, 1, 4)
                     ? types[static_cast<std::size_t>(uniform(random, 1, static_cast<std::int64_t>(types.size()) - 1))]
                     : types.front();
    draft.time = format_rfc3339(now, offset);
    if (model == DeviceModel::scale)
        draft.user_index = static_cast<std::uint8_t>(uniform(random, 1, 2));
    if (chance(random, 1, 5))
        draft.clock_offset_s = static_cast<std::int32_t>(uniform(random, -30, 30));
    draft_model_reading(draft, model, random);
    return draft;
}

void apply_misbehaviour(Misbehaviour misbehaviour, ReadingDraft& draft, const devices::DeviceId& other_device) {
    assert(!draft.values.empty());
    switch (misbehaviour) {
        case Misbehaviour::wrong_unit: draft.values.front().unit = wrong_unit_for(draft.values.front().unit); break;
        case Misbehaviour::out_of_range:
            draft.values.front().value = out_of_range_value(draft.values.front().code);
            break;
        case Misbehaviour::other_id: draft.device_id = other_device.str(); break;
        case Misbehaviour::oversized: draft.pad_to_at_least = devices::max_payload_size + 512; break;
        case Misbehaviour::unknown_field: draft.extra_member = R"("note":"taken after exercise")"; break;
        case Misbehaviour::none:
        case Misbehaviour::bad_json:
        case Misbehaviour::replay:
        case Misbehaviour::out_of_order:
        case Misbehaviour::flood: break;
    }
}

std::string render_payload(const ReadingDraft& draft, Misbehaviour misbehaviour) {
    // Ids and units come from fixed character sets without '"' or '\\'.
    std::string out = R"({"device_id":")" + draft.device_id + R"(","seq":)" + std::to_string(draft.sequence) +
                      R"(,"type":")" + devices::to_string(draft.type) + R"(","time":")" + draft.time + "\"";
    if (draft.clock_offset_s)
        out += ",\"clock_offset_s\":" + std::to_string(*draft.clock_offset_s);
    if (draft.user_index)
        out += ",\"user_index\":" + std::to_string(*draft.user_index);
    out += ",\"values\":[";
    for (std::size_t i = 0; i < draft.values.size(); ++i) {
        const auto& component = draft.values[i];
        out += (i == 0 ? "" : ",");
        out += "{\"code\":" + std::to_string(component.code) + ",\"value\":" + component.value + ",\"unit\":\"" +
               component.unit + "\"}";
    }
    out += "]";
    if (!draft.flags.empty()) {
        out += ",\"flags\":[";
        for (std::size_t i = 0; i < draft.flags.size(); ++i)
            out += (i == 0 ? "\"" : ",\"") + draft.flags[i] + "\"";
        out += "]";
    }
    if (!draft.meal.empty())
        out += ",\"meal\":\"" + draft.meal + "\"";
    if (!draft.firmware.empty())
        out += ",\"firmware\":\"" + draft.firmware + "\"";
    if (!draft.extra_member.empty())
        out += "," + draft.extra_member;
    if (out.size() + 1 < draft.pad_to_at_least)
        out.append(draft.pad_to_at_least - out.size() - 1, ' ');
    if (misbehaviour == Misbehaviour::bad_json)
        return out + "#";
    return out + "}";
}

}  // namespace cb::devsim
