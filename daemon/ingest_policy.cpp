#include "daemon/ingest_policy.hpp"

namespace cb {

std::string_view to_string(Disposition disposition) noexcept {
    switch (disposition) {
        case Disposition::accepted: return "accepted";
        case Disposition::quarantined: return "quarantined";
        case Disposition::held: return "held";
        case Disposition::rejected: return "rejected";
    }
    return "?";
}

Placement place_reading(const DeviceCatalog& catalog, const EnrolledDevice* device, const devices::Reading& reading,
                        const PatientPresence& presence) {
    if (device == nullptr)
        return {Disposition::quarantined, "unknown-device", {}};
    const DeviceModel* model = catalog.model(device->model_id);
    if (model == nullptr || !model->allows(reading.type()))
        return {Disposition::quarantined, "type-not-referenced", {}};
    if (!reading.firmware())
        return {Disposition::quarantined, "firmware-unknown", {}};
    if (!model->allows_firmware(*reading.firmware()))
        return {Disposition::quarantined, "firmware-not-referenced", {}};

    if (device->binding == BindingKind::station) {
        if (auto patient = presence.patient_at(device->station))
            return {Disposition::accepted, {}, std::move(*patient)};
        return {Disposition::held, "no-patient-at-station", {}};
    }
    if (!device->users.empty()) {
        // A multi-user device: the device's user index names the patient; an
        // unknown user is held, never guessed.
        const auto user = device->users.find(reading.user_index());
        if (user == device->users.end())
            return {Disposition::held, "unknown-user", {}};
        return {Disposition::accepted, {}, user->second};
    }
    return {Disposition::accepted, {}, device->patient};
}

}  // namespace cb
