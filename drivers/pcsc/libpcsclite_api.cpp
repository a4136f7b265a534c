#include "drivers/pcsc/libpcsclite_api.hpp"

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include <algorithm>
#include <vector>

namespace cb::pcsc {

namespace {

// The names in pcsc_api.hpp are the header's values.
constexpr bool same(LONG header, PcscCode ours) {
    return static_cast<PcscCode>(static_cast<unsigned long>(header) & 0xFFFFFFFFUL) == ours;
}
static_assert(same(SCARD_S_SUCCESS, code::success));
static_assert(same(SCARD_F_INTERNAL_ERROR, code::internal_error));
static_assert(same(SCARD_E_CANCELLED, code::cancelled));
static_assert(same(SCARD_E_INVALID_HANDLE, code::invalid_handle));
static_assert(same(SCARD_E_INVALID_PARAMETER, code::invalid_parameter));
static_assert(same(SCARD_E_INSUFFICIENT_BUFFER, code::insufficient_buffer));
static_assert(same(SCARD_E_UNKNOWN_READER, code::unknown_reader));
static_assert(same(SCARD_E_TIMEOUT, code::timeout));
static_assert(same(SCARD_E_SHARING_VIOLATION, code::sharing_violation));
static_assert(same(SCARD_E_NO_SMARTCARD, code::no_smartcard));
static_assert(same(SCARD_E_PROTO_MISMATCH, code::proto_mismatch));
static_assert(same(SCARD_E_NOT_TRANSACTED, code::not_transacted));
static_assert(same(SCARD_F_COMM_ERROR, code::comm_error));
static_assert(same(SCARD_E_READER_UNAVAILABLE, code::reader_unavailable));
static_assert(same(SCARD_E_NO_SERVICE, code::no_service));
static_assert(same(SCARD_E_SERVICE_STOPPED, code::service_stopped));
static_assert(same(SCARD_E_UNSUPPORTED_FEATURE, code::unsupported_feature));
static_assert(same(SCARD_E_NO_READERS_AVAILABLE, code::no_readers_available));
static_assert(same(SCARD_W_UNRESPONSIVE_CARD, code::unresponsive_card));
static_assert(same(SCARD_W_UNPOWERED_CARD, code::unpowered_card));
static_assert(same(SCARD_W_RESET_CARD, code::reset_card));
static_assert(same(SCARD_W_REMOVED_CARD, code::removed_card));
static_assert(SCARD_STATE_PRESENT == state::present && SCARD_STATE_CHANGED == state::changed &&
              SCARD_STATE_UNKNOWN == state::unknown && SCARD_STATE_EMPTY == state::empty &&
              SCARD_STATE_MUTE == state::mute && SCARD_STATE_UNAVAILABLE == state::unavailable &&
              SCARD_STATE_IGNORE == state::ignore);
static_assert(MAX_ATR_SIZE == max_atr_size);

constexpr std::size_t max_reader_list = std::size_t{64} * 1024;

PcscCode to_code(LONG value) {
    return static_cast<PcscCode>(static_cast<unsigned long>(value) & 0xFFFFFFFFUL);
}

SCARDCONTEXT to_context(ContextHandle handle) {
    return static_cast<SCARDCONTEXT>(handle);
}

SCARDHANDLE to_card(CardHandle handle) {
    return static_cast<SCARDHANDLE>(handle);
}

DWORD to_share(ShareMode mode) {
    return mode == ShareMode::shared ? SCARD_SHARE_SHARED : SCARD_SHARE_EXCLUSIVE;
}

DWORD to_disposition(Disposition disposition) {
    switch (disposition) {
        case Disposition::leave: return SCARD_LEAVE_CARD;
        case Disposition::reset: return SCARD_RESET_CARD;
        case Disposition::unpower: return SCARD_UNPOWER_CARD;
    }
    return SCARD_LEAVE_CARD;
}

// T=0 or T=1 from what SCardConnect chose; anything else is a mismatch.
PcscCode from_active(DWORD active, Protocol& protocol) {
    if (active == SCARD_PROTOCOL_T0) {
        protocol = Protocol::t0;
        return code::success;
    }
    if (active == SCARD_PROTOCOL_T1) {
        protocol = Protocol::t1;
        return code::success;
    }
    return code::proto_mismatch;
}

}  // namespace

PcscCode LibPcscApi::establish_context(ContextHandle& context) {
    SCARDCONTEXT handle = 0;
    const LONG result = SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &handle);
    if (result == SCARD_S_SUCCESS)
        context = static_cast<ContextHandle>(handle);
    return to_code(result);
}

PcscCode LibPcscApi::release_context(ContextHandle context) {
    return to_code(SCardReleaseContext(to_context(context)));
}

PcscCode LibPcscApi::list_readers(ContextHandle context, std::vector<std::string>& readers) {
    readers.clear();
    DWORD size = 0;
    LONG result = SCardListReaders(to_context(context), nullptr, nullptr, &size);
    if (result != SCARD_S_SUCCESS)
        return to_code(result);
    if (size > max_reader_list)
        return code::insufficient_buffer;
    std::vector<char> buffer(size + 1, '\0');
    result = SCardListReaders(to_context(context), nullptr, buffer.data(), &size);
    if (result != SCARD_S_SUCCESS)
        return to_code(result);
    // A multi-string: names separated by NUL, ended by an empty name.
    std::size_t at = 0;
    const std::size_t end = std::min<std::size_t>(size, buffer.size() - 1);
    while (at < end && buffer[at] != '\0') {
        std::string name(buffer.data() + at);
        at += name.size() + 1;
        readers.push_back(std::move(name));
    }
    return code::success;
}

PcscCode LibPcscApi::get_status_change(ContextHandle context, std::chrono::milliseconds timeout,
                                       std::span<ReaderState> states) {
    std::vector<SCARD_READERSTATE> native(states.size());
    for (std::size_t index = 0; index < states.size(); ++index) {
        native[index] = SCARD_READERSTATE{};
        native[index].szReader = states[index].reader.c_str();
        native[index].dwCurrentState = states[index].current_state;
    }
    const DWORD wait = timeout < std::chrono::milliseconds::zero() ? INFINITE : static_cast<DWORD>(timeout.count());
    const LONG result =
        SCardGetStatusChange(to_context(context), wait, native.data(), static_cast<DWORD>(native.size()));
    for (std::size_t index = 0; index < states.size(); ++index) {
        states[index].event_state = static_cast<std::uint32_t>(native[index].dwEventState & 0xFFFFFFFFUL);
        const std::size_t atr_size = std::min<std::size_t>(native[index].cbAtr, max_atr_size);
        states[index].atr.assign(native[index].rgbAtr, native[index].rgbAtr + atr_size);
    }
    return to_code(result);
}

PcscCode LibPcscApi::cancel(ContextHandle context) {
    return to_code(SCardCancel(to_context(context)));
}

PcscCode LibPcscApi::connect(ContextHandle context, const std::string& reader, ShareMode mode, CardHandle& card,
                             Protocol& active) {
    SCARDHANDLE handle = 0;
    DWORD protocol = 0;
    const LONG result = SCardConnect(to_context(context), reader.c_str(), to_share(mode),
                                     SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &handle, &protocol);
    if (result != SCARD_S_SUCCESS)
        return to_code(result);
    card = static_cast<CardHandle>(handle);
    const PcscCode chosen = from_active(protocol, active);
    if (chosen != code::success)
        SCardDisconnect(handle, SCARD_LEAVE_CARD);
    return chosen;
}

PcscCode LibPcscApi::reconnect(CardHandle card, ShareMode mode, Disposition initialization, Protocol& active) {
    DWORD protocol = 0;
    const LONG result = SCardReconnect(to_card(card), to_share(mode), SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                       to_disposition(initialization), &protocol);
    if (result != SCARD_S_SUCCESS)
        return to_code(result);
    return from_active(protocol, active);
}

PcscCode LibPcscApi::disconnect(CardHandle card, Disposition disposition) {
    return to_code(SCardDisconnect(to_card(card), to_disposition(disposition)));
}

PcscCode LibPcscApi::begin_transaction(CardHandle card) {
    return to_code(SCardBeginTransaction(to_card(card)));
}

PcscCode LibPcscApi::end_transaction(CardHandle card, Disposition disposition) {
    return to_code(SCardEndTransaction(to_card(card), to_disposition(disposition)));
}

PcscCode LibPcscApi::status(CardHandle card, bool& present) {
    DWORD state = 0;
    DWORD protocol = 0;
    BYTE atr[MAX_ATR_SIZE];
    DWORD atr_size = sizeof atr;
    char name[256];
    DWORD name_size = sizeof name;
    const LONG result = SCardStatus(to_card(card), name, &name_size, &state, &protocol, atr, &atr_size);
    present = result == SCARD_S_SUCCESS && (state & SCARD_PRESENT) != 0;
    return to_code(result);
}

PcscCode LibPcscApi::transmit(CardHandle card, Protocol protocol, std::span<const std::uint8_t> command,
                              Bytes& response) {
    response.assign(cards::max_response_size, 0);
    DWORD size = static_cast<DWORD>(response.size());
    const SCARD_IO_REQUEST* pci = protocol == Protocol::t0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    const LONG result = SCardTransmit(to_card(card), pci, command.data(), static_cast<DWORD>(command.size()), nullptr,
                                      response.data(), &size);
    if (result != SCARD_S_SUCCESS) {
        response.clear();
        return to_code(result);
    }
    response.resize(std::min<std::size_t>(size, response.size()));
    return code::success;
}

PcscCode LibPcscApi::control(CardHandle card, std::uint32_t control_code, std::span<const std::uint8_t> input,
                             Bytes& response) {
    response.assign(max_control_response, 0);
    DWORD size = 0;
    const LONG result = SCardControl(to_card(card), control_code, input.data(), static_cast<DWORD>(input.size()),
                                     response.data(), static_cast<DWORD>(response.size()), &size);
    if (result != SCARD_S_SUCCESS) {
        response.clear();
        return to_code(result);
    }
    response.resize(std::min<std::size_t>(size, response.size()));
    return code::success;
}

}  // namespace cb::pcsc
