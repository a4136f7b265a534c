// One vital-sign reading as a device publishes it on cb/v1/dev/{deviceId}/meas
// (docs/device-protocol.md is the full specification, with an example per type).
//
// Payload: one JSON object (RFC 8259, UTF-8), at most 4096 bytes, nesting at
// most 8 levels. CBOR is not supported yet. Members (any other is rejected:
// the v1 schema is closed, new members come with a new topic version):
//
//   | member         | JSON type         | required | meaning                                              |
//   |----------------|-------------------|----------|------------------------------------------------------|
//   | device_id      | string            | yes      | must equal the {deviceId} of the topic               |
//   | seq            | integer           | yes      | per-device, strictly increasing, 1..2^53-1           |
//   | type           | string            | yes      | a MeasurementType name (table below)                 |
//   | time           | string            | yes      | device's timestamp, RFC 3339 with offset (timestamp.hpp) |
//   | clock_offset_s | integer           | no       | device clock minus reference time, seconds, when the |
//   |                |                   |          | device or its hub knows it (recorded, never applied) |
//   | user_index     | integer           | no       | device-local user 0..254; 255 (the default) = unknown |
//   |                |                   |          | (as the Bluetooth User Data Service's "unknown user") |
//   | values         | array of 1..8     | yes      | components: {"code": MDC, "value": V, "unit": UCUM}  |
//   | flags          | array of 0..16    | no       | measurement-status flag names (StatusFlag table)     |
//   | meal           | string            | no       | blood_glucose only: the meal context (Meal below),   |
//   |                |                   |          | from the Glucose Measurement Context's Meal field    |
//
// seq stops at 2^53-1 so that every JSON implementation (doubles included)
// and SQLite's signed 64-bit INTEGER hold it exactly.
//
// A component's "value" is one of:
//
//   | form              | meaning                                                             |
//   |-------------------|---------------------------------------------------------------------|
//   | number            | the value, in "unit"                                                |
//   | null              | the device failed to measure: measurement_failed                   |
//   | {"sfloat": N}     | N = the raw 16-bit IEEE 11073-20601 SFLOAT (0..65535) as sent over  |
//   |                   | Bluetooth: 4-bit signed exponent, 12-bit signed mantissa, value =   |
//   |                   | mantissa x 10^exponent. The special values 0x07FF NaN, 0x0800 NRes, |
//   |                   | 0x07FE +INF, 0x0802 -INF and 0x0801 (reserved) are exact 16-bit     |
//   |                   | values (exponent 0), and are measurement_failed                     |
//   | {"float": N}      | N = the raw 32-bit FLOAT (0..4294967295): 8-bit signed exponent,    |
//   |                   | 24-bit signed mantissa; specials 0x007FFFFF NaN, 0x00800000 NRes,   |
//   |                   | 0x007FFFFE +INF, 0x00800002 -INF, 0x00800001 (reserved) likewise    |
//
// Measurement types, their components (IEEE 11073-10101 MDC codes as the HL7
// PHD IG uses them) and plausibility ranges, in the canonical UCUM unit the
// value is converted to:
//
//   | type             | code    | MDC reference id                  | req | canonical | range        |
//   |------------------|---------|-----------------------------------|-----|-----------|--------------|
//   | blood_pressure   | 150021  | MDC_PRESS_BLD_NONINV_SYS          | yes | mm[Hg]    | 40..300      |
//   |                  | 150022  | MDC_PRESS_BLD_NONINV_DIA          | yes | mm[Hg]    | 20..200, <sys|
//   |                  | 150023  | MDC_PRESS_BLD_NONINV_MEAN         | no  | mm[Hg]    | 20..250, dia..sys |
//   |                  | 149546  | MDC_PULS_RATE_NON_INV             | no  | /min      | 20..300      |
//   | body_weight      | 188736  | MDC_MASS_BODY_ACTUAL              | yes | kg        | 0.5..400     |
//   |                  | 188752  | MDC_RATIO_MASS_BODY_LEN_SQ (BMI)  | no  | kg/m2     | 5..150       |
//   | body_height      | 188740  | MDC_LEN_BODY_ACTUAL               | yes | cm        | 30..250      |
//   | heart_rate       | 149546  | MDC_PULS_RATE_NON_INV             | one | /min      | 20..300      |
//   |                  | 149530  | MDC_PULS_OXIM_PULS_RATE           | of  | /min      | 20..300      |
//   |                  | 147842  | MDC_ECG_HEART_RATE                | them| /min      | 20..300      |
//   | spo2             | 150456  | MDC_PULS_OXIM_SAT_O2              | yes | %         | 50..100      |
//   |                  | 149530  | MDC_PULS_OXIM_PULS_RATE           | no  | /min      | 20..300      |
//   | body_temperature | 150364  | MDC_TEMP_BODY                     | yes | Cel       | 30..45       |
//   | blood_glucose    | 160184  | MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD | one | mg/dL     | 10..1000     |
//   |                  | 160188  | MDC_CONC_GLU_CAPILLARY_PLASMA     | of  | mg/dL     | 10..1000     |
//   | steps            | 8454247 | MDC_HF_STEPS (code to verify)     | yes | {steps}   | 0..100000, whole |
//
// "one of them": at least one, any of the listed codes (values is never empty).
// A code not listed for the type is unknown_code; a code given twice is duplicate_code.
//
// Units: UCUM codes (case-sensitive), converted to the canonical one; plus a
// closed list of non-UCUM aliases seen in device SDKs. Anything else (including
// "mmHg", "kg " and "KG") is unknown_unit.
//
//   | quantity      | canonical | also accepted (conversion to canonical)                      |
//   |---------------|-----------|--------------------------------------------------------------|
//   | pressure      | mm[Hg]    | kPa (x 7.50061683: 1 mm[Hg] = 133.322387415 Pa)              |
//   | rate          | /min      | 1/min, {beat}/min (x 1); alias bpm (x 1)                     |
//   | mass          | kg        | g (x 0.001), [lb_av] (x 0.45359237); alias lb (as [lb_av])  |
//   | length        | cm        | m (x 100), mm (x 0.1), [in_i] (x 2.54); alias in (as [in_i]) |
//   | temperature   | Cel       | [degF] ((F - 32) x 5/9)                                      |
//   | glucose       | mg/dL     | mmol/L (x 18.016: glucose 180.16 g/mol)                     |
//   | saturation    | %         | -                                                            |
//   | BMI           | kg/m2     | -                                                            |
//   | step count    | {steps}   | 1 (x 1)                                                      |
//
// Status flags (StatusFlag; JSON names), from the Bluetooth GATT profiles, and
// the types they may be sent with (any other combination is unknown_flag):
//
//   | name                          | source bit                                          | types               |
//   |-------------------------------|-----------------------------------------------------|---------------------|
//   | body_movement                 | BPS Measurement Status bit 0                        | blood_pressure,     |
//   | cuff_fit_too_loose            | BPS bit 1                                           | heart_rate (BPS and |
//   | irregular_pulse               | BPS bit 2                                           | PLXS flags)         |
//   | pulse_rate_out_of_range       | BPS bits 3-4 (above upper or below lower limit)     |                     |
//   | improper_measurement_position | BPS bit 5                                           |                     |
//   | low_perfusion                 | PLXS Device and Sensor Status "Low perfusion"       | spo2, heart_rate    |
//   | poor_signal                   | PLXS "Poor signal detected"                         |                     |
//   | erratic_signal                | PLXS "Erratic signal detected"                      |                     |
//   | sensor_displaced              | PLXS "Sensor displaced"                             |                     |
//   | sensor_malfunction            | PLXS "Sensor malfunctioning"; GLS Sensor Status     | spo2, heart_rate,   |
//   |                               | Annunciation "Sensor malfunction"                   | blood_glucose       |
//   | sample_size_insufficient      | GLS "Sample size for blood or control solution      | blood_glucose       |
//   |                               | insufficient"                                       |                     |
//   | strip_insertion_error         | GLS "Strip insertion error"                         |                     |
//   | result_above_device_range     | GLS "Sample result value was higher than the device |                     |
//   |                               | can process"                                        |                     |
//   | result_below_device_range     | GLS "... lower than the device can process"         |                     |
//   | temperature_out_of_range      | GLS "Sensor temperature too high" or "too low"      |                     |
//   | device_fault                  | GLS "General device fault has occurred"             |                     |
//
// HTS (thermometer) and WSS (scale) have no status flags: their failures are a
// NaN/NRes value, which is measurement_failed.
//
// Order of checks: size, JSON syntax and depth, root object, unknown members,
// then device_id, seq, type, time (syntax, future, age), clock_offset_s,
// user_index, values (each in order: code, unit, value, range; then required
// codes and cross-checks), flags. The first failure is reported.
#pragma once

#include <cassert>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/devices/timestamp.hpp"
#include "protocol/devices/topics.hpp"
#include "protocol/result.hpp"

namespace cb::devices {

inline constexpr std::size_t max_payload_size = 4096;
inline constexpr std::size_t max_nesting_depth = 8;
inline constexpr std::size_t max_components = 8;
inline constexpr std::size_t max_flags = 16;
inline constexpr std::uint64_t max_sequence = (std::uint64_t{1} << 53) - 1;
inline constexpr std::uint8_t unknown_user = 255;

enum class MeasurementType : std::uint8_t {
    blood_pressure,
    body_weight,
    body_height,
    heart_rate,
    spo2,
    body_temperature,
    blood_glucose,
    steps,
};

// The JSON name ("blood_pressure").
const char* to_string(MeasurementType type) noexcept;
// The type named `name`, or nullopt.
std::optional<MeasurementType> measurement_type_from_string(std::string_view name) noexcept;

enum class StatusFlag : std::uint8_t {
    body_movement,
    cuff_fit_too_loose,
    irregular_pulse,
    pulse_rate_out_of_range,
    improper_measurement_position,
    low_perfusion,
    poor_signal,
    erratic_signal,
    sensor_displaced,
    sensor_malfunction,
    sample_size_insufficient,
    strip_insertion_error,
    result_above_device_range,
    result_below_device_range,
    temperature_out_of_range,
    device_fault,
};
inline constexpr std::size_t status_flag_count = 16;

// The JSON name ("irregular_pulse").
const char* to_string(StatusFlag flag) noexcept;
// The flag named `name`, or nullopt.
std::optional<StatusFlag> status_flag_from_string(std::string_view name) noexcept;

// A set of StatusFlag.
class StatusFlags {
public:
    bool contains(StatusFlag flag) const noexcept { return (m_bits & bit(flag)) != 0; }
    void insert(StatusFlag flag) noexcept { m_bits |= bit(flag); }
    bool empty() const noexcept { return m_bits == 0; }
    // Bit n set = StatusFlag with value n present.
    std::uint32_t bits() const noexcept { return m_bits; }
    friend bool operator==(const StatusFlags&, const StatusFlags&) = default;

private:
    static std::uint32_t bit(StatusFlag flag) noexcept { return std::uint32_t{1} << static_cast<unsigned>(flag); }
    std::uint32_t m_bits = 0;
};

// Why a payload was rejected. The daemon records the rejection and, when the
// seq could be read, moves the device's ack past it so that one bad reading
// cannot block the device's queue (docs/device-protocol.md §3).
enum class RejectReason : std::uint8_t {
    malformed_json,       // not JSON, or not UTF-8
    payload_too_large,    // over 4096 bytes, 8 levels, 8 values or 16 flags
    missing_field,        // a required member or a required component is absent
    unknown_field,        // a member the v1 schema does not define
    wrong_type,           // a member of the wrong JSON type (or a fraction where a whole number is due)
    unknown_type,         // "type" is not a MeasurementType name
    device_id_mismatch,   // "device_id" is not the topic's device (or not a device id at all)
    bad_sequence,         // seq outside 1..2^53-1
    unknown_code,         // an MDC code the type does not define
    duplicate_code,       // the same MDC code twice
    unknown_unit,         // a unit the quantity does not accept
    out_of_range,         // outside the plausibility range, or inconsistent (diastolic >= systolic)
    measurement_failed,   // null, a non-finite value, or an SFLOAT/FLOAT special (NaN, NRes, +-INF)
    timestamp_in_future,  // more than ReadingLimits::max_future_skew after now
    timestamp_too_old,    // more than ReadingLimits::max_age before now
    bad_timestamp,        // not RFC 3339 with an offset
    bad_user_index,       // not an integer 0..255
    unknown_flag,         // not a StatusFlag name, or not one for this type
    bad_meal,             // "meal" not a Meal name, or on a reading that is not blood_glucose
};
inline constexpr std::size_t reject_reason_count = 19;

// The meal context of a glucose reading: the "Meal" field of the Bluetooth
// Glucose Measurement Context characteristic (GLS 1.0, §3.107: 1 Preprandial,
// 2 Postprandial, 3 Fasting, 4 Casual (snacks, drinks, etc.), 5 Bedtime).
// The national space requires it (the IG's moment of measurement:
// docs/upstream.md §2).
enum class Meal : std::uint8_t { preprandial, postprandial, fasting, casual, bedtime };

const char* to_string(Meal meal) noexcept;  // "preprandial"
std::optional<Meal> meal_from_string(std::string_view name) noexcept;

// The enumerator's name ("device_id_mismatch").
const char* to_string(RejectReason reason) noexcept;

// A rejected payload: the reason, and a message naming the member and what
// was expected: `values[1].unit: "mmHg" is not a UCUM unit accepted for blood
// pressure; expected "mm[Hg]" or "kPa"`. Messages never quote more than 64
// bytes of input.
struct Rejection {
    RejectReason reason;
    std::string message;

    // As a cb::Error: payload_too_large is limit_exceeded; unknown_type,
    // unknown_code, unknown_unit and unknown_flag are unsupported; the rest
    // invalid_input. The message is "<reason>: <message>".
    Error to_error() const;
};

// Either a T or a Rejection; CB_TRY propagates the Rejection.
template <typename T>
using Validated = Result<T, Rejection>;

// One component of a reading, in its canonical UCUM unit (table above).
struct Component {
    std::uint32_t code = 0;  // MDC code (150021)
    double value = 0;        // converted to `unit`
    std::string_view unit;   // canonical UCUM code; points to static storage

    friend bool operator==(const Component&, const Component&) = default;
};

// The MDC reference id of `code` ("MDC_PRESS_BLD_NONINV_SYS"), or "" if we do not know it.
std::string_view mdc_reference_id(std::uint32_t code) noexcept;

// How far a device's clock may be from the gateway's.
struct ReadingLimits {
    std::chrono::seconds max_future_skew = std::chrono::minutes(5);
    std::chrono::seconds max_age = std::chrono::hours(24 * 30);
};

// A reading that passed every check above: valid by construction.
class Reading {
public:
    // Parses `payload`, received on the measurement topic of `topic_device`, at
    // gateway time `now`. Returns the first failing check's Rejection (see
    // "Order of checks"); never throws on any input (memory exhaustion aside).
    static Validated<Reading> parse(const DeviceId& topic_device, std::string_view payload, Microseconds now,
                                    const ReadingLimits& limits = {});

    const DeviceId& device() const noexcept { return m_device; }
    std::uint64_t sequence() const noexcept { return m_sequence; }
    MeasurementType type() const noexcept { return m_type; }
    // In the order the device sent them.
    const std::vector<Component>& components() const noexcept { return m_components; }
    // The component with `code`, or nullptr.
    const Component* component(std::uint32_t code) const noexcept;
    // As the device wrote it (instant and offset); never corrected by clock_offset.
    const DeviceTime& device_time() const noexcept { return m_time; }
    std::optional<std::chrono::seconds> clock_offset() const noexcept { return m_clock_offset; }
    // 0..254, or unknown_user (255).
    std::uint8_t user_index() const noexcept { return m_user_index; }
    StatusFlags flags() const noexcept { return m_flags; }
    // The firmware version the device reported, if it did (the catalog checks it).
    const std::optional<std::string>& firmware() const noexcept { return m_firmware; }
    // blood_glucose only, when the device knows it.
    std::optional<Meal> meal() const noexcept { return m_meal; }

private:
    explicit Reading(DeviceId device) : m_device(std::move(device)) {}

    DeviceId m_device;
    std::uint64_t m_sequence = 0;
    MeasurementType m_type = MeasurementType::blood_pressure;
    std::vector<Component> m_components;
    DeviceTime m_time;
    std::optional<std::chrono::seconds> m_clock_offset;
    std::uint8_t m_user_index = unknown_user;
    StatusFlags m_flags;
    std::optional<std::string> m_firmware;
    std::optional<Meal> m_meal;
};

// The sequence number of a payload that Reading::parse rejected, when it can
// still be read: the payload is JSON within the size and depth caps, its
// device_id is the topic's device and its seq is valid. Otherwise nullopt.
// Lets the gateway acknowledge past a rejected reading (docs/device-protocol.md §3).
std::optional<std::uint64_t> peek_sequence(const DeviceId& topic_device, std::string_view payload);

// The reading as stored: canonical JSON with normalised units, e.g.
//   {"type":"heart_rate","time_us":1795340100000000,"offset_min":60,
//    "values":[{"code":149546,"value":72,"unit":"/min"}],"user_index":255}
// Members in this order; "flags", "clock_offset_s" and "firmware" only when present.
std::string to_storage_json(const Reading& reading);

}  // namespace cb::devices
