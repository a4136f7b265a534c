// Readings of the simulator's device models (config/devices.toml), as the
// device side of docs/device-protocol.md writes them, and the deliberate
// faults of --misbehave. Pure: the clock and the random source are passed in.
//
// Models and what each one measures (a model's first type is its main one:
// three readings in four are of it, the rest of the others):
//
//   | model        | types                      | components (MDC code, unit)                         |
//   |--------------|----------------------------|-----------------------------------------------------|
//   | sim-bp-1     | blood_pressure, heart_rate | 150021/150022 mm[Hg] (diastolic sometimes a raw     |
//   |              |                            | SFLOAT), 150023 mm[Hg], 149546 /min; heart_rate:    |
//   |              |                            | 149546 /min or bpm; flag irregular_pulse sometimes  |
//   | sim-scale-1  | body_weight, body_height   | 188736 kg or [lb_av], 188752 kg/m2; 188740 cm;      |
//   |              |                            | user_index 1 or 2                                   |
//   | sim-oxi-1    | spo2, heart_rate           | 150456 %, 149530 /min; flag low_perfusion sometimes |
//   | sim-gluco-1  | blood_glucose              | 160184 mg/dL or 160188 mmol/L; a meal context       |
//   |              |                            | (preprandial, postprandial, fasting, casual,        |
//   |              |                            | bedtime) always                                     |
//   | sim-thermo-1 | body_temperature           | 150364 Cel, or a raw HTS FLOAT (exponent -1)        |
//   | sim-band-1   | steps, heart_rate          | 8454247 {steps}; 147842 /min                        |
//
// Every value is drawn inside the protocol's plausibility range (systolic >
// mean > diastolic), so an unaltered payload always passes Reading::parse.
//
// Misbehaviours (--misbehave MODE), and what the reading they hit looks like:
//
//   | mode          | payload or publication                                                     |
//   |---------------|----------------------------------------------------------------------------|
//   | bad-json      | the JSON text cut before its closing brace, plus a stray '#'              |
//   | wrong-unit    | the first component's unit replaced by a non-UCUM one ("mmHg", "KG", ...) |
//   | out-of-range  | the first component's value outside the plausibility range                |
//   | replay        | (simulator) re-publishes the last acknowledged reading, unchanged          |
//   | out-of-order  | (simulator) publishes seq s+1 before seq s                                 |
//   | other-id      | "device_id" names another device (own topic), and (simulator) a valid copy |
//   |               | is also published on the other device's topic, which the broker drops     |
//   | oversized     | valid JSON padded with spaces past 4096 bytes (payload_too_large)          |
//   | flood         | (simulator) ignores --rate; payloads are valid                             |
//   | unknown-field | an extra top-level member "note"                                           |
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/devices/reading.hpp"
#include "protocol/devices/timestamp.hpp"
#include "protocol/devices/topics.hpp"

namespace cb::devsim {

enum class DeviceModel : std::uint8_t { blood_pressure_cuff, scale, oximeter, glucometer, thermometer, activity_band };
inline constexpr std::size_t device_model_count = 6;

// The catalog's model id ("sim-bp-1").
const char* to_string(DeviceModel model) noexcept;
// The model with catalog id `name`, or nullopt.
std::optional<DeviceModel> device_model_from_string(std::string_view name) noexcept;
// The types the model measures, main type first.
std::vector<devices::MeasurementType> model_types(DeviceModel model);

enum class Misbehaviour : std::uint8_t {
    none,
    bad_json,
    wrong_unit,
    out_of_range,
    replay,
    out_of_order,
    other_id,
    oversized,
    flood,
    unknown_field,
};
inline constexpr std::size_t misbehaviour_count = 10;

// The option spelling ("bad-json"; "none" for none).
const char* to_string(Misbehaviour misbehaviour) noexcept;
// The mode spelled `name`, or nullopt.
std::optional<Misbehaviour> misbehaviour_from_string(std::string_view name) noexcept;

// How a device writes the offset of its timestamps.
enum class TimeOffset : std::uint8_t { utc, paris_winter };  // "Z", "+01:00"

// `instant` as RFC 3339 to the second: "2026-11-22T10:55:00+01:00" or "...Z".
std::string format_rfc3339(devices::Microseconds instant, TimeOffset offset);

// The random source: a seeded std::mt19937_64, so a --seed gives the same run.
using Random = std::mt19937_64;

// One component: "value" is already JSON text (a number or {"sfloat":N}).
struct DraftComponent {
    std::uint32_t code = 0;
    std::string value;
    std::string unit;
};

// A reading before it is rendered; misbehaviours edit it.
struct ReadingDraft {
    std::string device_id;
    std::uint64_t sequence = 0;
    devices::MeasurementType type = devices::MeasurementType::blood_pressure;
    std::string time;
    std::optional<std::int32_t> clock_offset_s;
    std::optional<std::uint8_t> user_index;
    std::vector<DraftComponent> values;
    std::vector<std::string> flags;
    std::string meal;                 // blood_glucose: a Meal name, or empty
    std::string firmware;             // the model's firmware version (config/devices.toml references it)
    std::string extra_member;         // raw `"name":value` added at the top level, or empty
    std::size_t pad_to_at_least = 0;  // spaces added before the closing brace up to this size
};

// A valid reading of `model` (table above) with sequence `sequence`, taken at `now`.
ReadingDraft draft_reading(DeviceModel model, const devices::DeviceId& device, std::uint64_t sequence,
                           devices::Microseconds now, TimeOffset offset, Random& random);

// Applies a payload-level misbehaviour (bad_json excepted: see render_payload).
// `other_device` is the id used by other_id. Modes that act on publication
// (replay, out_of_order, flood) and none leave the draft unchanged.
void apply_misbehaviour(Misbehaviour misbehaviour, ReadingDraft& draft, const devices::DeviceId& other_device);

// The JSON text of `draft` (compact, members in the table order of reading.hpp);
// with `misbehaviour` bad_json, the broken text described above.
std::string render_payload(const ReadingDraft& draft, Misbehaviour misbehaviour = Misbehaviour::none);

}  // namespace cb::devsim
