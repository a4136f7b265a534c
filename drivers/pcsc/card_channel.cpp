#include "drivers/pcsc/card_channel.hpp"

#include <utility>

namespace cb::pcsc {

const char* to_string(CardFailure failure) noexcept {
    switch (failure) {
        case CardFailure::card_removed: return "card removed";
        case CardFailure::card_reset: return "card reset";
        case CardFailure::service_unavailable: return "PC/SC service unavailable";
        case CardFailure::reader_error: return "reader error";
        case CardFailure::unsupported_card: return "unsupported card";
        case CardFailure::invalid_card: return "invalid card";
        case CardFailure::card_error: return "card error";
        case CardFailure::wrong_pin: return "wrong PIN";
        case CardFailure::pin_blocked: return "PIN blocked";
        case CardFailure::pin_last_try: return "last PIN try";
        case CardFailure::pin_entry_cancelled: return "PIN entry cancelled";
        case CardFailure::invalid_request: return "invalid request";
    }
    return "?";
}

CardResult<Done> lift(const Result<void>& result, CardFailure otherwise, const std::string& context) {
    if (result)
        return Done{};
    const auto& error = result.error();
    return CardError{error.kind() == ErrorKind::unsupported ? CardFailure::unsupported_card : otherwise,
                     context + ": " + error.message(), std::nullopt};
}

// --- PcscContext ---------------------------------------------------------

CardResult<PcscContext> PcscContext::establish(PcscApi& api) {
    ContextHandle handle = 0;
    const PcscCode result = api.establish_context(handle);
    if (result != code::success)
        return CardError{is_service_lost(result) ? CardFailure::service_unavailable : CardFailure::reader_error,
                         "pcscd: " + describe_code(result), std::nullopt};
    return PcscContext(api, handle);
}

PcscContext::~PcscContext() {
    if (m_owned)
        m_api->release_context(m_handle);
}

PcscContext::PcscContext(PcscContext&& other) noexcept : m_api(other.m_api), m_handle(other.m_handle) {
    other.m_owned = false;
}

// --- Transaction ---------------------------------------------------------

Transaction::~Transaction() {
    if (m_active)
        m_api->end_transaction(m_card, Disposition::leave);  // nothing more to do if it fails
}

Transaction::Transaction(Transaction&& other) noexcept
    : m_api(other.m_api), m_card(other.m_card), m_active(std::exchange(other.m_active, false)) {}

CardResult<Done> Transaction::end() {
    if (!m_active)
        return Done{};
    m_active = false;
    const PcscCode result = m_api->end_transaction(m_card, Disposition::leave);
    if (result == code::success)
        return Done{};
    const CardFailure failure = result == code::removed_card || result == code::no_smartcard ? CardFailure::card_removed
                                : is_service_lost(result) ? CardFailure::service_unavailable
                                                          : CardFailure::reader_error;
    return CardError{failure, "end of transaction: " + describe_code(result), std::nullopt};
}

// --- CardChannel ---------------------------------------------------------

CardResult<CardChannel> CardChannel::connect(const PcscContext& context, std::string reader) {
    CardHandle card = 0;
    Protocol protocol = Protocol::t1;
    const PcscCode result = context.api().connect(context.handle(), reader, ShareMode::shared, card, protocol);
    if (result != code::success) {
        const std::string where = "card in \"" + reader + "\"";
        if (result == code::no_smartcard || result == code::removed_card)
            return CardError{CardFailure::card_removed, where + ": no card to connect to", std::nullopt};
        return CardError{is_service_lost(result) ? CardFailure::service_unavailable : CardFailure::reader_error,
                         where + ": connect failed: " + describe_code(result), std::nullopt};
    }
    return CardChannel(context.api(), std::move(reader), card, protocol);
}

CardChannel::~CardChannel() {
    if (m_connected)
        m_api->disconnect(m_card, Disposition::leave);
}

CardChannel::CardChannel(CardChannel&& other) noexcept
    : m_api(other.m_api),
      m_reader(std::move(other.m_reader)),
      m_card(other.m_card),
      m_protocol(other.m_protocol),
      m_connected(std::exchange(other.m_connected, false)),
      m_apdus_sent(other.m_apdus_sent),
      m_resets(other.m_resets) {}

std::string CardChannel::prefix() const {
    return "card in \"" + m_reader + "\"";
}

CardError CardChannel::failure(PcscCode result, std::string_view what) {
    if (result == code::removed_card || result == code::no_smartcard)
        return {CardFailure::card_removed, prefix() + " removed during " + std::string(what), std::nullopt};
    if (result == code::reset_card) {
        // The handle must be reconnected before anything else can use it.
        Protocol protocol = m_protocol;
        const PcscCode reconnected = m_api->reconnect(m_card, ShareMode::shared, Disposition::leave, protocol);
        ++m_resets;
        if (reconnected == code::success) {
            m_protocol = protocol;
            return {CardFailure::card_reset, prefix() + " was reset during " + std::string(what), std::nullopt};
        }
        return failure(reconnected == code::reset_card ? code::reader_unavailable : reconnected,
                       std::string(what) + " (reconnecting after a reset)");
    }
    if (is_service_lost(result))
        return {CardFailure::service_unavailable, prefix() + ": " + std::string(what) + ": " + describe_code(result),
                std::nullopt};
    return {CardFailure::reader_error, prefix() + ": " + std::string(what) + " failed: " + describe_code(result),
            std::nullopt};
}

CardResult<Transaction> CardChannel::begin_transaction() {
    PcscCode result = m_api->begin_transaction(m_card);
    if (result == code::reset_card) {
        // Reset before we began: nothing was assumed yet, so reconnect and retry once.
        CardError reset = failure(result, "begin transaction");
        if (reset.failure != CardFailure::card_reset)
            return reset;
        result = m_api->begin_transaction(m_card);
    }
    if (result != code::success)
        return failure(result, "begin transaction");
    return Transaction(*m_api, m_card);
}

CardResult<Bytes> CardChannel::exchange(std::span<const std::uint8_t> command, std::string_view what) {
    Bytes response;
    ++m_apdus_sent;
    const PcscCode result = m_api->transmit(m_card, m_protocol, command, response);
    if (result != code::success)
        return failure(result, what);
    if (response.size() < 2) {
        // vpcd passes on an empty answer when the card vanished mid-command.
        bool present = true;
        const PcscCode status = m_api->status(m_card, present);
        if (status == code::removed_card || status == code::no_smartcard || (status == code::success && !present))
            return failure(code::removed_card, what);
        return CardError{CardFailure::invalid_card,
                         prefix() + ": " + std::string(what) + ": answer of " + std::to_string(response.size()) +
                             (response.size() == 1 ? " byte" : " bytes") + ", too short for a status word",
                         std::nullopt};
    }
    return response;
}

CardResult<cards::ResponseApdu> CardChannel::complete(cards::ResponsePlanner& planner, cards::ResponseApdu response,
                                                      std::string_view what) {
    // Bounded by the planner: at most 32 GET RESPONSE rounds and one Le correction.
    for (;;) {
        auto step =
            CB_TRY(lift(planner.next(response), CardFailure::invalid_card, prefix() + ": " + std::string(what)));
        if (auto* done = std::get_if<cards::ExchangeComplete>(&step))
            return std::move(done->response);
        const auto& next = std::get<cards::SendCommand>(step).command;
        const auto encoded =
            CB_TRY(lift(cards::encode_command(next), CardFailure::reader_error, prefix() + ": " + std::string(what)));
        const auto raw = CB_TRY(exchange(encoded, what));
        response =
            CB_TRY(lift(cards::parse_response(raw), CardFailure::invalid_card, prefix() + ": " + std::string(what)));
    }
}

CardResult<cards::ResponseApdu> CardChannel::transmit(const cards::CommandApdu& command, std::string_view what) {
    if (m_protocol == Protocol::t0 && cards::needs_extended_length(command))
        return CardError{CardFailure::reader_error,
                         prefix() + ": " + std::string(what) + ": extended APDU over T=0 is not supported",
                         std::nullopt};
    const auto encoded =
        CB_TRY(lift(cards::encode_command(command), CardFailure::reader_error, prefix() + ": " + std::string(what)));
    const auto raw = CB_TRY(exchange(encoded, what));
    auto response =
        CB_TRY(lift(cards::parse_response(raw), CardFailure::invalid_card, prefix() + ": " + std::string(what)));
    cards::ResponsePlanner planner(command);
    return complete(planner, std::move(response), what);
}

CardResult<cards::ResponseApdu> CardChannel::transmit_secret(std::span<const std::uint8_t> command,
                                                             std::string_view what) {
    if (command.size() < 4)
        return CardError{CardFailure::invalid_request, prefix() + ": " + std::string(what) + ": command too short",
                         std::nullopt};
    const auto raw = CB_TRY(exchange(command, what));
    auto response =
        CB_TRY(lift(cards::parse_response(raw), CardFailure::invalid_card, prefix() + ": " + std::string(what)));
    if (response.status.exact_length())
        return CardError{CardFailure::invalid_card,
                         prefix() + ": " + std::string(what) + " returned " + response.status.describe() +
                             ", but it expects no data",
                         std::nullopt};
    // Only the header goes to the planner: it names the command in its
    // messages, and it never resends it (6Cxx was refused above).
    cards::ResponsePlanner planner(cards::CommandApdu{.cla = command[0],
                                                      .ins = command[1],
                                                      .p1 = command[2],
                                                      .p2 = command[3],
                                                      .data = {},
                                                      .expected = std::nullopt});
    return complete(planner, std::move(response), what);
}

CardResult<Bytes> CardChannel::control(std::uint32_t control_code, std::span<const std::uint8_t> input,
                                       ControlKind kind, std::string_view what) {
    Bytes response;
    if (kind == ControlKind::card_command)
        ++m_apdus_sent;
    const PcscCode result = m_api->control(m_card, control_code, input, response);
    if (result != code::success)
        return failure(result, what);
    return response;
}

}  // namespace cb::pcsc
