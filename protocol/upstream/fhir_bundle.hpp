// One reading as the FHIR R4 transaction Bundle of the ANS "Mesures de santé"
// implementation guide (IG 3.1.0, canonical https://interop.esante.gouv.fr/ig/fhir/mesures,
// package ans.fhir.fr.mesures; page "Le flux d'alimentation des mesures"), and
// the parser the reference receiver uses to enforce what the IG enforces.
// docs/upstream.md is the full specification, with an example.
//
// A bundle holds exactly two entries, in this order:
//
//   | entry | resource                | request                                                      |
//   |-------|-------------------------|--------------------------------------------------------------|
//   | 0     | Device (PhdDevice)      | POST Device,      ifNoneExist "identifier=<system>|<value>"  |
//   | 1     | Observation (IG profile)| POST Observation, ifNoneExist "identifier=<system>|<value>"  |
//
// Observation per measurement type (LOINC in http://loinc.org, except the glucose
// code which the IG binds to JDV_J154 over the ANS LOINC mirror TRE_A04; MDC in
// urn:iso:std:iso:11073:10101; units in http://unitsofmeasure.org):
//
//   | type             | profile (…/StructureDefinition/)      | LOINC   | MDC          | UCUM      |
//   |------------------|---------------------------------------|---------|--------------|-----------|
//   | body_weight      | mesures-fr-observation-body-weight    | 29463-7 | 188736       | kg        |
//   | body_height      | mesures-fr-observation-bodyheight     | 8302-2  | 188740       | cm        |
//   | heart_rate       | mesures-fr-observation-heartrate      | 8867-4  | the reading's| /min      |
//   |                  |                                       |         | (149546, 149530, 147842) |
//   | blood_pressure   | mesures-fr-observation-bp             | 85354-9 | 150020       | (panel)   |
//   |   systolic       |   component                           | 8480-6  | 150021       | mm[Hg]    |
//   |   diastolic      |   component                           | 8462-4  | 150022       | mm[Hg]    |
//   | body_temperature | mesures-fr-observation-body-temperature | 8310-5 | 150364      | Cel       |
//   | spo2             | mesures-fr-observation-oxygen-sat     | 2708-6  | 150456       | %         |
//   | blood_glucose    | mesures-observation-glucose           | 2345-7  | the reading's| mg/dL     |
//   |                  | + extension mesures-moment-of-measurement (JDV_J157), required   |           |
//   | steps            | mesures-observation-steps-by-day      | 41950-7 | 8454247      | 1/(24.h)  |
//
// Values are rounded to 3 decimals (fhir_bundle.cpp says why).
//
// Never sent: BMI (the IG: "Bmi observation cannot be created", MES computes it),
// so a BMI component of a weight reading is dropped; the pulse rate of a blood
// pressure or SpO2 reading (the profiles have no slot for it). parse_bundle
// refuses a BMI Observation.
#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/devices/reading.hpp"
#include "protocol/devices/timestamp.hpp"
#include "protocol/devices/topics.hpp"
#include "protocol/result.hpp"

namespace cb::upstream {

// --- identifiers and OIDs (docs/upstream.md §3) ------------------------------

// The IG's: the base of every profile canonical URL.
inline constexpr std::string_view ig_canonical = "https://interop.esante.gouv.fr/ig/fhir/mesures";
// The IG's (its example bundle "example-mes-fr-bundle-body-weight"): the system of
// Observation.subject.identifier, whose value is the patient's MES account id (idPe).
inline constexpr std::string_view mes_patient_system = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2560";
// IEEE 11073 / Continua (the IG's PhdDevice example): the system of a device's EUI-64 system id.
inline constexpr std::string_view eui64_system = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680";
// ANS: identifiant national des professionnels de santé (IDNPS).
inline constexpr std::string_view idnps_system = "urn:oid:1.2.250.1.71.4.2.1";
// OURS, not registered anywhere: carebridge's editor OID, in the 2.25 arc
// (ITU-T X.667: an OID made from the UUID fc72974a-a743-4902-bf01-c289dd4a0549,
// unique without registration). A deployment that has an editor OID from the
// ANS replaces these three constants.
inline constexpr std::string_view carebridge_editor_oid = "2.25.335560445338171287232695893826237760841";
// OURS: <editor>.1, the system of our device ids (devices without an EUI-64).
inline constexpr std::string_view carebridge_device_system = "urn:oid:2.25.335560445338171287232695893826237760841.1";
// OURS: <editor>.2, the system of Observation.identifier = "<device id>:<seq>".
inline constexpr std::string_view carebridge_observation_system =
    "urn:oid:2.25.335560445338171287232695893826237760841.2";

// Caps of parse_bundle (a bundle we build is about 2 KiB).
inline constexpr std::size_t max_bundle_size = 64 * 1024;
inline constexpr std::size_t max_bundle_depth = 16;
inline constexpr std::size_t max_idpe_length = 128;

// --- the moment of a glucose measurement (JDV_J157-MomentGlucose) ------------

//   | enumerator     | system   | code      | IG display            |
//   |----------------|----------|-----------|-----------------------|
//   | fasting        | TRE_A04  | 53049-3   | Glucose à jeun        |
//   | before_meal    | TRE_A04  | 88365-2   | Avant repas           |
//   | after_meal     | TRE_A04  | 16915-1   | Glucose post prandial |
//   | after_exercise | TRE_A04  | LA11865-5 | Après exercice        |
//   | other          | TRE_A04  | LA46-8    | Autre                 |
//   | during_malaise | TRE_R313 | A05       | Lors d'un malaise     |
enum class GlucoseMoment : std::uint8_t { fasting, before_meal, after_meal, after_exercise, other, during_malaise };

const char* to_string(GlucoseMoment moment) noexcept;  // "after_meal"
std::optional<GlucoseMoment> glucose_moment_from_string(std::string_view name) noexcept;

// The moment of a device's meal context (reading.hpp Meal):
//
//   | Meal (GLS)   | GlucoseMoment |
//   |--------------|---------------|
//   | preprandial  | before_meal   |
//   | postprandial | after_meal    |
//   | fasting      | fasting       |
//   | casual       | other         |
//   | bedtime      | other         |
GlucoseMoment glucose_moment_of(devices::Meal meal) noexcept;

// --- input -------------------------------------------------------------------

struct StoredComponent {
    std::uint32_t code = 0;  // MDC
    double value = 0;        // in `unit`, the canonical unit of reading.hpp
    std::string unit;
};

// The part of a stored reading the bundle needs: the body that
// devices::to_storage_json wrote (members type, time_us, offset_min, values;
// the others are ignored).
struct StoredReading {
    devices::MeasurementType type = devices::MeasurementType::body_weight;
    devices::DeviceTime time;
    std::vector<StoredComponent> components;
    std::optional<devices::Meal> meal;  // blood_glucose, when the device gave it

    // Fails with ErrorKind::invalid_input naming the member ("values[0].code:
    // expected an integer 1..4294967295"); never throws.
    static Result<StoredReading> parse(std::string_view storage_json);
    static StoredReading from(const devices::Reading& reading);
};

struct BundleInput {
    devices::DeviceId device;                          // our id, in the catalog
    std::optional<std::array<std::uint8_t, 8>> eui64;  // the device's IEEE EUI-64, when known
    std::string manufacturer;                          // may be empty
    std::string model;                                 // may be empty
    std::uint64_t sequence = 0;                        // the device's seq: with `device`, the business key
    StoredReading reading;
    std::string patient_idpe;                       // MES account id, from pairing
    std::optional<std::string> practitioner_idnps;  // the practitioner who validated the reading
    std::optional<GlucoseMoment> glucose_moment;    // required for blood_glucose
};

// --- refusals, shared by the builder and the parser ---------------------------

enum class BundleProblem : std::uint8_t {
    malformed,               // not JSON, wrong JSON types, not a 2-entry transaction Bundle
    too_large,               // over max_bundle_size or max_bundle_depth
    missing_profile,         // meta.profile absent or not a profile of the table above / PhdDevice
    unknown_code,            // Observation.code without the profile's LOINC
    wrong_unit,              // a quantity not in the profile's UCUM unit
    bad_value,               // a value absent, not a number, not finite
    bmi_refused,             // a BMI Observation (IG: NOTSUPPORTED)
    glucose_without_moment,  // blood glucose without a JDV_J157 moment (IG: INCOMPLETE)
    bad_subject,             // subject not MES OID + idPe
    bad_device_link,         // Observation.device.reference is not "Device/" + the Device's id
    bad_identifier,          // an identifier or ifNoneExist absent, malformed or not matching
    bad_time,                // effectiveDateTime not RFC 3339 with an offset
    bad_performer,           // performer not an IDNPS
};
inline constexpr std::size_t bundle_problem_count = 13;

const char* to_string(BundleProblem problem) noexcept;  // "glucose_without_moment"

struct BundleRefusal {
    BundleProblem problem;
    std::string message;  // names the element: "entry[1].resource.valueQuantity.code: ..."

    // too_large is limit_exceeded, the rest invalid_input; message "<problem>: <message>".
    Error to_error() const;
};

template <typename T>
using BundleResult = Result<T, BundleRefusal>;

// --- building ----------------------------------------------------------------

// The Bundle of one reading (tables above), without signature: a pure,
// deterministic function of `input` (resource ids are UUIDv5 of the identifiers,
// so a resend is byte-identical). Fails with
//   glucose_without_moment  blood glucose and no input.glucose_moment,
//   bad_identifier          a device id outside [A-Za-z0-9][A-Za-z0-9-]+ (the IG's
//                           ifNoneExist pattern) and no EUI-64; seq 0; an idPe empty,
//                           over 128 bytes or outside printable ASCII without '|';
//   bad_performer           an IDNPS outside [A-Za-z0-9]{1,32};
//   wrong_unit / bad_value  a component not in its canonical unit, not finite, or a
//                           required component missing.
//   malformed               the manufacturer or model is not UTF-8.
// The text is RFC 8785 canonical JSON (canonical_json.hpp), written directly
// in canonical order: the JWS payload as is (jws.hpp BundleSigner).
BundleResult<std::string> bundle_text(const BundleInput& input);
// The same bundle as a JSON object.
BundleResult<boost::json::object> build_bundle(const BundleInput& input);

// The Observation's business key, "<device id>:<seq>" (under carebridge_observation_system).
std::string observation_key(const devices::DeviceId& device, std::uint64_t sequence);

// --- parsing (the reference receiver) ----------------------------------------

struct BundleValue {
    std::string loinc;  // "8480-6"
    double value = 0;
    std::string unit;  // UCUM code
};

// What a bundle that passed every check says; valid by construction.
struct BundleSummary {
    devices::MeasurementType type = devices::MeasurementType::body_weight;
    std::string observation_system;  // the business key of the conditional create
    std::string observation_value;
    std::string device_system;  // the device's identity (conditional create)
    std::string device_value;
    std::string device_resource_id;  // Device.id, referenced by the Observation
    std::string patient_idpe;
    std::optional<std::string> practitioner_idnps;
    devices::DeviceTime effective;
    std::vector<BundleValue> values;  // one; two (systolic, diastolic) for blood pressure
    std::optional<GlucoseMoment> glucose_moment;
    bool has_signature = false;  // Bundle.signature present (verified elsewhere: jws.hpp)
};

// Checks `text` in this order: size, JSON and depth, Bundle shape (transaction,
// two entries, requests), Device (profile, identifier, ifNoneExist), Observation
// (profile: BMI refused, status, identifier + ifNoneExist, code, subject, device
// link, effectiveDateTime, performer, values and units, glucose moment). The first
// failure is reported. Never throws on any input (memory exhaustion aside).
BundleResult<BundleSummary> parse_bundle(std::string_view text);
// The same checks on a parsed value.
BundleResult<BundleSummary> parse_bundle_value(const boost::json::value& bundle);

}  // namespace cb::upstream
