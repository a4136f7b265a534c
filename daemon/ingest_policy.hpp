// What happens to a reading once it is parsed: pure decisions over plain data
// (the catalog, the reading, who is present at a station), tested without I/O.
//
//   | disposition | meaning                                              | forwarded | acknowledged |
//   |-------------|------------------------------------------------------|-----------|--------------|
//   | accepted    | a referenced device, a known patient                  | yes (later: rights permitting) | yes |
//   | quarantined | unknown device, type or firmware not referenced       | no; the operator sees it | yes |
//   | held        | the patient is not known (yet): unknown user, nobody at the station | no, until resolved | yes |
//   | rejected    | the payload failed validation (reason = RejectReason) | no        | yes (if its seq could be read)
//   |
//
// Acknowledging quarantined, held and rejected readings is deliberate: they
// are durably recorded with their reason, and a device must not be stuck
// resending them forever. Nothing is acknowledged before it is on disk.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/catalog.hpp"
#include "protocol/devices/reading.hpp"

namespace cb {

enum class Disposition { accepted, quarantined, held, rejected };
std::string_view to_string(Disposition disposition) noexcept;

struct Placement {
    Disposition disposition = Disposition::accepted;
    std::string reason;   // empty when accepted
    std::string patient;  // the patient reference, when known

    bool operator==(const Placement&) const = default;
};

// Who is at each care station, as the card sessions know it.
class PatientPresence {
public:
    virtual ~PatientPresence() = default;
    // The patient reference of the card in `station`'s reader, if any.
    virtual std::optional<std::string> patient_at(std::string_view station) const = 0;
};

// Nobody at any station: what the daemon uses until the card path runs.
class NoPatientPresent final : public PatientPresence {
public:
    std::optional<std::string> patient_at(std::string_view) const override { return std::nullopt; }
};

// Decides the placement of a valid reading from a device (nullptr: unknown).
// Reasons: "unknown-device", "type-not-referenced", "firmware-unknown",
// "firmware-not-referenced", "unknown-user", "no-patient-at-station".
Placement place_reading(const DeviceCatalog& catalog, const EnrolledDevice* device, const devices::Reading& reading,
                        const PatientPresence& presence);

}  // namespace cb
