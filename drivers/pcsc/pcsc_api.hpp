// PcscApi: the PC/SC calls carebridge uses, as one interface, so that the
// reader monitor and the card channel run against libpcsclite in production
// (LibPcscApi) and against a fake in unit tests.
//
// It is deliberately thin: one method per SCard* function, the same
// arguments in C++ types, and the PC/SC return code as it is (PcscCode), since
// callers branch on it (a removed card, a reset card, a dead pcscd each mean
// something different). Buffers are owned by the implementation and bounded:
//
//   | call              | bound on what the other side returns                         |
//   |-------------------|--------------------------------------------------------------|
//   | list_readers      | 64 KiB of multi-string                                        |
//   | transmit          | cards::max_response_size (65538) bytes                        |
//   | control           | max_control_response (4096) bytes                             |
//   | get_status_change | ATR: max_atr_size (33) bytes, as PC/SC itself caps it         |
//
// A longer answer is SCARD_E_INSUFFICIENT_BUFFER, never a larger buffer.
//
// Threads: pcsc-lite wants one context per thread; cancel() is the one call
// made from another thread (to wake a get_status_change on that context).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/cards/apdu.hpp"

namespace cb::pcsc {

using cards::Bytes;

// A PC/SC return code (LONG in winscard.h), as an unsigned 32-bit value.
using PcscCode = std::uint32_t;

// The codes this driver names (pcsclite.h; libpcsclite_api.cpp checks that
// they match the header).
namespace code {
inline constexpr PcscCode success = 0x00000000;
inline constexpr PcscCode internal_error = 0x80100001;        // SCARD_F_INTERNAL_ERROR
inline constexpr PcscCode cancelled = 0x80100002;             // SCARD_E_CANCELLED
inline constexpr PcscCode invalid_handle = 0x80100003;        // SCARD_E_INVALID_HANDLE
inline constexpr PcscCode invalid_parameter = 0x80100004;     // SCARD_E_INVALID_PARAMETER
inline constexpr PcscCode insufficient_buffer = 0x80100008;   // SCARD_E_INSUFFICIENT_BUFFER
inline constexpr PcscCode unknown_reader = 0x80100009;        // SCARD_E_UNKNOWN_READER
inline constexpr PcscCode timeout = 0x8010000A;               // SCARD_E_TIMEOUT
inline constexpr PcscCode sharing_violation = 0x8010000B;     // SCARD_E_SHARING_VIOLATION
inline constexpr PcscCode no_smartcard = 0x8010000C;          // SCARD_E_NO_SMARTCARD
inline constexpr PcscCode proto_mismatch = 0x8010000F;        // SCARD_E_PROTO_MISMATCH
inline constexpr PcscCode not_transacted = 0x80100016;        // SCARD_E_NOT_TRANSACTED
inline constexpr PcscCode comm_error = 0x80100013;            // SCARD_F_COMM_ERROR
inline constexpr PcscCode reader_unavailable = 0x80100017;    // SCARD_E_READER_UNAVAILABLE
inline constexpr PcscCode no_service = 0x8010001D;            // SCARD_E_NO_SERVICE
inline constexpr PcscCode service_stopped = 0x8010001E;       // SCARD_E_SERVICE_STOPPED
inline constexpr PcscCode unsupported_feature = 0x8010001F;   // SCARD_E_UNSUPPORTED_FEATURE
inline constexpr PcscCode no_readers_available = 0x8010002E;  // SCARD_E_NO_READERS_AVAILABLE
inline constexpr PcscCode unresponsive_card = 0x80100066;     // SCARD_W_UNRESPONSIVE_CARD
inline constexpr PcscCode unpowered_card = 0x80100067;        // SCARD_W_UNPOWERED_CARD
inline constexpr PcscCode reset_card = 0x80100068;            // SCARD_W_RESET_CARD
inline constexpr PcscCode removed_card = 0x80100069;          // SCARD_W_REMOVED_CARD
}  // namespace code

// "SCARD_W_REMOVED_CARD (the card was removed)", "0x8010FFFF (unknown PC/SC code)".
std::string describe_code(PcscCode value);

// True for the codes that mean pcscd is gone or restarted and the context is
// useless: NO_SERVICE, SERVICE_STOPPED, INVALID_HANDLE, F_COMM_ERROR,
// F_INTERNAL_ERROR. The cure is a new context.
bool is_service_lost(PcscCode value) noexcept;

// Reader state bits (SCARD_STATE_*); the high 16 bits of an event state are
// pcscd's event counter for a reader, and the number of readers for the PnP
// pseudo-reader.
namespace state {
inline constexpr std::uint32_t unaware = 0x0000;
inline constexpr std::uint32_t ignore = 0x0001;
inline constexpr std::uint32_t changed = 0x0002;
inline constexpr std::uint32_t unknown = 0x0004;
inline constexpr std::uint32_t unavailable = 0x0008;
inline constexpr std::uint32_t empty = 0x0010;
inline constexpr std::uint32_t present = 0x0020;
inline constexpr std::uint32_t exclusive = 0x0080;
inline constexpr std::uint32_t inuse = 0x0100;
inline constexpr std::uint32_t mute = 0x0200;
inline constexpr std::uint32_t unpowered = 0x0400;
}  // namespace state

// The PC/SC pseudo-reader whose state changes when a reader comes or goes.
inline constexpr const char* pnp_notification_reader = "\\\\?PnP?\\Notification";

inline constexpr std::size_t max_atr_size = 33;
inline constexpr std::size_t max_control_response = 4096;

using ContextHandle = std::uint64_t;  // SCARDCONTEXT
using CardHandle = std::uint64_t;     // SCARDHANDLE

enum class ShareMode { exclusive, shared };
enum class Protocol { t0, t1 };
// What happens to the card when a handle or transaction lets go of it.
enum class Disposition { leave, reset, unpower };

// One entry of SCardGetStatusChange's array: `reader` and `current_state` in,
// `event_state` and `atr` out.
struct ReaderState {
    std::string reader;
    std::uint32_t current_state = state::unaware;
    std::uint32_t event_state = state::unaware;
    Bytes atr;
};

// "Wait forever" for get_status_change.
inline constexpr std::chrono::milliseconds infinite_wait{-1};

class PcscApi {
public:
    virtual ~PcscApi() = default;

    // SCardEstablishContext(SCARD_SCOPE_SYSTEM).
    virtual PcscCode establish_context(ContextHandle& context) = 0;
    virtual PcscCode release_context(ContextHandle context) = 0;
    // SCardListReaders; NO_READERS_AVAILABLE is returned as is (callers treat it as an empty list).
    virtual PcscCode list_readers(ContextHandle context, std::vector<std::string>& readers) = 0;
    // SCardGetStatusChange over `states`; `timeout` infinite_wait or >= 0.
    virtual PcscCode get_status_change(ContextHandle context, std::chrono::milliseconds timeout,
                                       std::span<ReaderState> states) = 0;
    // SCardCancel: wakes a get_status_change blocked on `context` (CANCELLED).
    virtual PcscCode cancel(ContextHandle context) = 0;

    // SCardConnect with T=0 | T=1 allowed.
    virtual PcscCode connect(ContextHandle context, const std::string& reader, ShareMode mode, CardHandle& card,
                             Protocol& active) = 0;
    virtual PcscCode reconnect(CardHandle card, ShareMode mode, Disposition initialization, Protocol& active) = 0;
    virtual PcscCode disconnect(CardHandle card, Disposition disposition) = 0;
    virtual PcscCode begin_transaction(CardHandle card) = 0;
    virtual PcscCode end_transaction(CardHandle card, Disposition disposition) = 0;
    // SCardStatus, for one question: is the card still there (SCARD_PRESENT)?
    virtual PcscCode status(CardHandle card, bool& present) = 0;
    // SCardTransmit with the protocol's PCI; `response` is replaced.
    virtual PcscCode transmit(CardHandle card, Protocol protocol, std::span<const std::uint8_t> command,
                              Bytes& response) = 0;
    // SCardControl; `response` is replaced.
    virtual PcscCode control(CardHandle card, std::uint32_t control_code, std::span<const std::uint8_t> input,
                             Bytes& response) = 0;
};

}  // namespace cb::pcsc
