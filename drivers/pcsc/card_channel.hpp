// CardChannel: one card in one reader, over PcscApi. It sends command APDUs
// and completes each exchange as protocol/cards/apdu.hpp's ResponsePlanner
// decides (GET RESPONSE on 61xx, at most 32 rounds and 65536 bytes; one Le
// correction on 6Cxx), wraps sequences in PC/SC transactions that are always
// ended, and turns every PC/SC failure into a CardError that says what
// happened to which card during which command:
//
//   | PC/SC code during a call           | CardFailure          | message                              |
//   |------------------------------------|----------------------|--------------------------------------|
//   | SCARD_W_REMOVED_CARD, E_NO_SMARTCARD| card_removed        | card in "R" removed during <what>    |
//   | SCARD_W_RESET_CARD                 | card_reset (after one| card in "R" was reset during <what>  |
//   |                                    | SCardReconnect)      |                                      |
//   | is_service_lost()                  | service_unavailable  | card in "R": <what>: pcscd ...       |
//   | any other                          | reader_error         | card in "R": <what> failed: <code>   |
//
// A response of fewer than 2 bytes is what vpcd passes on when the card went
// away mid-command: the channel asks SCardStatus whether the card is still
// there (card_removed) or not (invalid_card, the length named).
//
// Reset: SCardBeginTransaction answering SCARD_W_RESET_CARD (someone reset
// the card since we last used it) is answered by one SCardReconnect and one
// retry, since nothing was assumed yet. During a sequence, a reset loses the
// card's selection and security state, so the channel reconnects (the handle
// stays usable) and reports card_reset; the operation runner decides whether
// to run the whole sequence again (card_operations.hpp).
//
// Lengths: every length the card gives is checked by the planner and
// parse_response; the channel never indexes a response itself.
//
// A CardChannel is used from one thread (the one that owns its context).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "drivers/pcsc/pcsc_api.hpp"
#include "protocol/cards/apdu.hpp"
#include "protocol/result.hpp"

namespace cb::pcsc {

enum class CardFailure {
    card_removed,         // the card left during the operation
    card_reset,           // the card was reset during the operation
    service_unavailable,  // pcscd is gone
    reader_error,         // another PC/SC failure (sharing violation, mute card, ...)
    unsupported_card,     // not a card of the expected profile (its SELECT was refused)
    invalid_card,         // malformed or over-long data, a certificate or signature that does not verify
    card_error,           // an unexpected status word
    wrong_pin,            // tries_left says how many remain
    pin_blocked,
    pin_last_try,         // refused: one try left and the caller did not allow it
    pin_entry_cancelled,  // the PIN pad timed out or the user cancelled
    invalid_request,      // the caller's input (no PIN, bad challenge)
};

const char* to_string(CardFailure failure) noexcept;

// A failed card operation. The message names the reader and the command and
// never contains a PIN or a patient identifier.
struct CardError {
    CardFailure failure = CardFailure::reader_error;
    std::string message;
    std::optional<unsigned> tries_left;  // wrong_pin, pin_last_try
};

template <typename T>
using CardResult = Result<T, CardError>;

// The value of a CardResult that has nothing else to say.
struct Done {};

// A PC/SC context, released on destruction. One per thread.
class PcscContext {
public:
    // Fails with service_unavailable ("pcscd: SCARD_E_NO_SERVICE (...)") or reader_error.
    static CardResult<PcscContext> establish(PcscApi& api);
    ~PcscContext();
    PcscContext(PcscContext&& other) noexcept;
    PcscContext& operator=(PcscContext&&) = delete;
    PcscContext(const PcscContext&) = delete;
    PcscContext& operator=(const PcscContext&) = delete;

    PcscApi& api() const noexcept { return *m_api; }
    ContextHandle handle() const noexcept { return m_handle; }

private:
    PcscContext(PcscApi& api, ContextHandle handle) : m_api(&api), m_handle(handle) {}
    PcscApi* m_api;
    ContextHandle m_handle;
    bool m_owned = true;
};

// A PC/SC transaction on a card: ended (SCARD_LEAVE_CARD) by end() or, on
// any other path (an error returned early, an exception), by the destructor.
class Transaction {
public:
    ~Transaction();
    Transaction(Transaction&& other) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // Ends it now. Fails (the transaction is over all the same) with the
    // channel's mapping of the PC/SC code, e.g. card_removed.
    CardResult<Done> end();

private:
    friend class CardChannel;
    Transaction(PcscApi& api, CardHandle card) : m_api(&api), m_card(card) {}
    PcscApi* m_api;
    CardHandle m_card;
    bool m_active = true;
};

// What a control call is, for the APDU count.
enum class ControlKind {
    reader_query,  // asks the reader (features): no APDU reaches the card
    card_command,  // the reader sends an APDU to the card (PIN pad VERIFY)
};

class CardChannel {
public:
    // SCardConnect(shared, T=0 | T=1) to the card in `reader`. Fails with
    // card_removed (no card), service_unavailable, or reader_error.
    static CardResult<CardChannel> connect(const PcscContext& context, std::string reader);
    // SCardDisconnect(SCARD_LEAVE_CARD).
    ~CardChannel();
    CardChannel(CardChannel&& other) noexcept;
    CardChannel& operator=(CardChannel&&) = delete;
    CardChannel(const CardChannel&) = delete;
    CardChannel& operator=(const CardChannel&) = delete;

    const std::string& reader() const noexcept { return m_reader; }
    Protocol protocol() const noexcept { return m_protocol; }
    // Every SCardTransmit so far (GET RESPONSE and Le corrections included),
    // plus every card_command control call.
    std::size_t apdus_sent() const noexcept { return m_apdus_sent; }
    // SCardReconnects done after SCARD_W_RESET_CARD.
    std::size_t resets() const noexcept { return m_resets; }

    // SCardBeginTransaction (with one reconnect and retry on a reset card).
    CardResult<Transaction> begin_transaction();

    // One complete exchange of `command` (table above); `what` names it in
    // messages ("READ BINARY EF 2001"). Returns the gathered data and the
    // final status word, whatever it is: the caller judges it. Fails with the
    // table's failures, and invalid_card for an answer the planner refuses
    // (33rd GET RESPONSE, second 6Cxx, over 65536 bytes), reader_error for an
    // extended APDU over T=0 or an unencodable command.
    CardResult<cards::ResponseApdu> transmit(const cards::CommandApdu& command, std::string_view what);

    // A command whose bytes are a secret (VERIFY with a PIN block), sent
    // from the caller's buffer and never copied. A 61xx answer is completed
    // with GET RESPONSE; 6Cxx is invalid_card (a secret is not resent).
    CardResult<cards::ResponseApdu> transmit_secret(std::span<const std::uint8_t> command, std::string_view what);

    // SCardControl. Fails as in the table.
    CardResult<Bytes> control(std::uint32_t control_code, std::span<const std::uint8_t> input, ControlKind kind,
                              std::string_view what);

private:
    CardChannel(PcscApi& api, std::string reader, CardHandle card, Protocol protocol)
        : m_api(&api), m_reader(std::move(reader)), m_card(card), m_protocol(protocol) {}

    // One SCardTransmit; a response of 2 bytes or more.
    CardResult<Bytes> exchange(std::span<const std::uint8_t> command, std::string_view what);
    CardResult<cards::ResponseApdu> complete(cards::ResponsePlanner& planner, cards::ResponseApdu response,
                                             std::string_view what);
    CardError failure(PcscCode result, std::string_view what);
    std::string prefix() const;

    PcscApi* m_api;
    std::string m_reader;
    CardHandle m_card;
    Protocol m_protocol;
    bool m_connected = true;
    std::size_t m_apdus_sent = 0;
    std::size_t m_resets = 0;
};

// Lifts a protocol/ Result into a CardResult: ErrorKind::unsupported becomes
// unsupported_card, anything else `otherwise`; `context` prefixes the message.
template <typename T>
CardResult<T> lift(Result<T> result, CardFailure otherwise, const std::string& context) {
    if (result)
        return std::move(result).value();
    const auto& error = result.error();
    return CardError{error.kind() == ErrorKind::unsupported ? CardFailure::unsupported_card : otherwise,
                     context + ": " + error.message(), std::nullopt};
}

CardResult<Done> lift(const Result<void>& result, CardFailure otherwise, const std::string& context);

}  // namespace cb::pcsc
