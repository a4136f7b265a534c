#include "drivers/pcsc/card_operations.hpp"

#include <optional>
#include <vector>

namespace cb::pcsc {

namespace {

std::string where(const CardChannel& channel) {
    return "card in \"" + channel.reader() + "\"";
}

CardError status_error(const CardChannel& channel, CardFailure failure, const std::string& what,
                       cards::StatusWord status) {
    return {failure, where(channel) + ": " + what + " returned " + status.describe(), std::nullopt};
}

cards::CommandApdu select_certificate_file() {
    return {.cla = 0x00,
            .ins = 0xA4,
            .p1 = 0x02,
            .p2 = 0x0C,
            .data = {static_cast<std::uint8_t>(certificate_file_id >> 8),
                     static_cast<std::uint8_t>(certificate_file_id & 0xFF)},
            .expected = std::nullopt};
}

cards::CommandApdu read_binary(std::size_t offset) {
    return {.cla = 0x00,
            .ins = 0xB0,
            .p1 = static_cast<std::uint8_t>(offset >> 8),
            .p2 = static_cast<std::uint8_t>(offset & 0xFF),
            .data = {},
            .expected = cards::read_binary_chunk};
}

// Runs `attempt` and, if the card was reset before anything irreversible
// happened (`may_repeat` still true), once more.
template <typename T, typename Attempt>
CardResult<T> with_one_restart_on_reset(Attempt attempt) {
    bool may_repeat = true;
    auto result = attempt(may_repeat);
    if (!result && result.error().failure == CardFailure::card_reset && may_repeat)
        result = attempt(may_repeat);
    return result;
}

CardResult<cards::PatientIdentity> patient_sequence(CardChannel& channel, const PatientRequest& request) {
    const std::string card = where(channel);
    auto transaction = CB_TRY(channel.begin_transaction());

    const auto select_application = cards::select_patient_application();
    const auto application = CB_TRY(channel.transmit(select_application, "SELECT patient application"));
    CB_TRY(lift(cards::check_patient_select(select_application, application.status), CardFailure::card_error, card));
    const auto select_identity = cards::select_patient_identity_file();
    const auto identity_file = CB_TRY(channel.transmit(select_identity, "SELECT EF 2001"));
    CB_TRY(lift(cards::check_patient_select(select_identity, identity_file.status), CardFailure::card_error, card));

    cards::IdentityFileReader reader;
    std::optional<cards::CommandApdu> next = cards::IdentityFileReader::first_command();
    while (next) {  // bounded by the reader's 4096-byte cap
        const auto chunk = CB_TRY(channel.transmit(*next, "READ BINARY EF 2001"));
        next = CB_TRY(lift(reader.on_response(chunk), CardFailure::invalid_card, card));
    }
    auto identity = CB_TRY(lift(cards::parse_patient_identity(reader.content()), CardFailure::invalid_card, card));

    const auto certificate = CB_TRY(read_certificate_file(channel));
    const auto verified =
        CB_TRY(lift(cards::verify_chain(certificate, {}, request.insurer_ca_der, request.verification_time),
                    CardFailure::invalid_card, card + ": card certificate"));
    const auto authenticate =
        CB_TRY(lift(cards::internal_authenticate_command(request.challenge), CardFailure::invalid_request, card));
    const auto signature = CB_TRY(channel.transmit(authenticate, "INTERNAL AUTHENTICATE"));
    if (!signature.status.is_success())
        return status_error(channel, CardFailure::card_error, "INTERNAL AUTHENTICATE", signature.status);
    CB_TRY(lift(cards::verify_card_signature(verified, request.challenge, signature.data), CardFailure::invalid_card,
                card));
    CB_TRY(transaction.end());
    return identity;
}

// The PIN state (step 4), then the VERIFY (step 5). `pin_sent` turns true
// before the PIN leaves.
CardResult<bool> verify_pin(CardChannel& channel, const PractitionerRequest& request, bool& pin_sent) {
    const auto query = CB_TRY(channel.transmit(cards::query_pin_command(), "VERIFY (query)"));
    const auto state = cards::interpret_pin_query(query.status);
    if (state.state == cards::PinState::blocked)
        return CardError{CardFailure::pin_blocked, where(channel) + ": PIN blocked (" + query.status.describe() + ")",
                         0U};
    if (state.state == cards::PinState::error)
        return status_error(channel, CardFailure::card_error, "VERIFY (query)", query.status);
    if (state.tries_left && *state.tries_left == 1 && request.last_try == LastTry::refuse)
        return CardError{CardFailure::pin_last_try,
                         where(channel) + ": one PIN try left; not sending the PIN without confirmation", 1U};

    std::optional<std::uint32_t> pinpad;
    if (request.entry == PinEntry::pinpad_if_offered)
        pinpad = CB_TRY(query_reader_features(channel)).verify_pin_direct;

    cards::StatusWord status{0x6F00};
    if (pinpad) {
        pin_sent = true;
        status = CB_TRY(verify_pin_on_pinpad(channel, *pinpad, request.pinpad));
        if (status.value() == 0x6400 || status.value() == 0x6401 || status.value() == 0x6403)
            return CardError{CardFailure::pin_entry_cancelled,
                             where(channel) + ": PIN pad: " +
                                 (status.value() == 0x6400   ? std::string("no PIN entered in time")
                                  : status.value() == 0x6401 ? std::string("cancelled by the user")
                                                             : std::string("PIN length out of range")),
                             std::nullopt};
        if (status.value() == 0x6B80)
            return status_error(channel, CardFailure::reader_error, "PIN pad VERIFY", status);
    } else {
        if (request.pin == nullptr)
            return CardError{CardFailure::invalid_request,
                             where(channel) + ": the reader has no PIN pad and no PIN was given", std::nullopt};
        const cards::SecureBytes command = cards::verify_pin_command(*request.pin);  // wiped on scope exit
        pin_sent = true;
        status = CB_TRY(channel.transmit_secret(command.bytes(), "VERIFY")).status;
    }
    const auto verified = cards::interpret_verify(status);
    switch (verified.state) {
        case cards::PinState::verified: return pinpad.has_value();
        case cards::PinState::wrong_pin:
            return CardError{CardFailure::wrong_pin,
                             where(channel) + ": wrong PIN, " + std::to_string(verified.tries_left.value_or(0)) +
                                 (verified.tries_left.value_or(0) == 1 ? " try" : " tries") + " left",
                             verified.tries_left};
        case cards::PinState::blocked:
            return CardError{CardFailure::pin_blocked, where(channel) + ": PIN blocked (" + status.describe() + ")",
                             0U};
        case cards::PinState::not_verified:
        case cards::PinState::error: break;
    }
    return status_error(channel, CardFailure::card_error, "VERIFY", status);
}

CardResult<PractitionerAuthentication> practitioner_sequence(CardChannel& channel, const PractitionerRequest& request,
                                                             bool& may_repeat) {
    const std::string card = where(channel);
    auto transaction = CB_TRY(channel.begin_transaction());

    const auto select_application =
        CB_TRY(channel.transmit(cards::select_practitioner_application(), "SELECT practitioner application"));
    if (!select_application.status.is_success() && !select_application.status.bytes_available())
        return status_error(channel, CardFailure::unsupported_card, "SELECT practitioner application",
                            select_application.status);

    const auto certificate = CB_TRY(read_certificate_file(channel));
    const auto verified =
        CB_TRY(lift(cards::verify_chain(certificate, {}, request.igc_sante_ca_der, request.verification_time),
                    CardFailure::invalid_card, card + ": card certificate"));
    auto identity =
        CB_TRY(lift(cards::practitioner_identity_from_certificate(verified), CardFailure::invalid_card, card));
    const auto authenticate =
        CB_TRY(lift(cards::internal_authenticate_command(request.challenge), CardFailure::invalid_request, card));

    bool pin_sent = false;
    auto pinpad_used = verify_pin(channel, request, pin_sent);
    if (pin_sent)
        may_repeat = false;  // never send a PIN twice on our own
    if (!pinpad_used)
        return std::move(pinpad_used).error();

    const auto signature = CB_TRY(channel.transmit(authenticate, "INTERNAL AUTHENTICATE"));
    if (!signature.status.is_success())
        return status_error(channel, CardFailure::card_error, "INTERNAL AUTHENTICATE", signature.status);
    CB_TRY(lift(cards::verify_card_signature(verified, request.challenge, signature.data), CardFailure::invalid_card,
                card));
    CB_TRY(transaction.end());
    return PractitionerAuthentication{std::move(identity), *pinpad_used, 0};
}

CardResult<Done> select_practitioner(CardChannel& channel) {
    const auto select_application =
        CB_TRY(channel.transmit(cards::select_practitioner_application(), "SELECT practitioner application"));
    if (!select_application.status.is_success() && !select_application.status.bytes_available())
        return status_error(channel, CardFailure::unsupported_card, "SELECT practitioner application",
                            select_application.status);
    return Done{};
}

CardResult<cards::PinStatus> query_pin(CardChannel& channel) {
    const auto query = CB_TRY(channel.transmit(cards::query_pin_command(), "VERIFY (query)"));
    const auto state = cards::interpret_pin_query(query.status);
    if (state.state == cards::PinState::error || state.state == cards::PinState::wrong_pin)
        return status_error(channel, CardFailure::card_error, "VERIFY (query)", query.status);
    return state;
}

CardResult<PractitionerCard> practitioner_probe_sequence(CardChannel& channel, const PractitionerProbe& probe) {
    const std::string card = where(channel);
    auto transaction = CB_TRY(channel.begin_transaction());
    CB_TRY(select_practitioner(channel));
    const auto certificate = CB_TRY(read_certificate_file(channel));
    const auto verified =
        CB_TRY(lift(cards::verify_chain(certificate, {}, probe.igc_sante_ca_der, probe.verification_time),
                    CardFailure::invalid_card, card + ": card certificate"));
    auto identity =
        CB_TRY(lift(cards::practitioner_identity_from_certificate(verified), CardFailure::invalid_card, card));
    const auto pin = CB_TRY(query_pin(channel));
    bool pinpad = false;
    if (probe.entry == PinEntry::pinpad_if_offered)
        pinpad = CB_TRY(query_reader_features(channel)).verify_pin_direct.has_value();
    CB_TRY(transaction.end());
    return PractitionerCard{std::move(identity), pin, pinpad, 0};
}

}  // namespace

CardResult<PractitionerCard> identify_practitioner(CardChannel& channel, const PractitionerProbe& probe) {
    const std::size_t before = channel.apdus_sent();
    auto result =
        with_one_restart_on_reset<PractitionerCard>([&](bool&) { return practitioner_probe_sequence(channel, probe); });
    if (result)
        result->apdus = channel.apdus_sent() - before;
    return result;
}

CardResult<cards::PinStatus> query_practitioner_pin(CardChannel& channel) {
    auto transaction = CB_TRY(channel.begin_transaction());
    CB_TRY(select_practitioner(channel));
    const auto pin = CB_TRY(query_pin(channel));
    CB_TRY(transaction.end());
    return pin;
}

CardResult<cards::Bytes> read_certificate_file(CardChannel& channel) {
    const auto selected = CB_TRY(channel.transmit(select_certificate_file(), "SELECT EF C000"));
    if (!selected.status.is_success())
        return status_error(channel, CardFailure::invalid_card, "SELECT EF C000", selected.status);
    cards::Bytes content;
    for (;;) {
        const std::size_t offset = content.size();
        if (offset >= cards::max_certificate_size)
            return CardError{CardFailure::invalid_card,
                             where(channel) + ": EF C000 exceeds the " + std::to_string(cards::max_certificate_size) +
                                 "-byte certificate cap",
                             std::nullopt};
        const auto chunk = CB_TRY(channel.transmit(read_binary(offset), "READ BINARY EF C000"));
        if (chunk.data.size() > cards::read_binary_chunk)
            return CardError{CardFailure::invalid_card,
                             where(channel) + ": READ BINARY EF C000 at offset " + std::to_string(offset) +
                                 " returned " + std::to_string(chunk.data.size()) + " bytes, asked 256",
                             std::nullopt};
        if (chunk.status.value() == 0x6B00 && offset > 0)
            return content;
        if (!chunk.status.is_success() && chunk.status.value() != 0x6282)
            return status_error(channel, CardFailure::invalid_card,
                                "READ BINARY EF C000 at offset " + std::to_string(offset), chunk.status);
        content.insert(content.end(), chunk.data.begin(), chunk.data.end());
        if (chunk.data.size() < cards::read_binary_chunk || chunk.status.value() == 0x6282)
            return content;
    }
}

CardResult<PatientReading> read_patient(CardChannel& channel, const PatientRequest& request) {
    const std::size_t before = channel.apdus_sent();
    auto identity =
        with_one_restart_on_reset<cards::PatientIdentity>([&](bool&) { return patient_sequence(channel, request); });
    if (!identity)
        return std::move(identity).error();
    return PatientReading{std::move(identity).value(), channel.apdus_sent() - before};
}

CardResult<PractitionerAuthentication> authenticate_practitioner(CardChannel& channel,
                                                                 const PractitionerRequest& request) {
    const std::size_t before = channel.apdus_sent();
    auto result = with_one_restart_on_reset<PractitionerAuthentication>(
        [&](bool& may_repeat) { return practitioner_sequence(channel, request, may_repeat); });
    if (result)
        result->apdus = channel.apdus_sent() - before;
    return result;
}

}  // namespace cb::pcsc
