#include "drivers/pcsc/pcsc_api.hpp"

#include <cstdio>

namespace cb::pcsc {

std::string describe_code(PcscCode value) {
    const char* name = nullptr;
    const char* meaning = nullptr;
    switch (value) {
        case code::success: name = "SCARD_S_SUCCESS", meaning = "success"; break;
        case code::internal_error: name = "SCARD_F_INTERNAL_ERROR", meaning = "internal error"; break;
        case code::cancelled: name = "SCARD_E_CANCELLED", meaning = "cancelled"; break;
        case code::invalid_handle: name = "SCARD_E_INVALID_HANDLE", meaning = "invalid handle"; break;
        case code::invalid_parameter: name = "SCARD_E_INVALID_PARAMETER", meaning = "invalid parameter"; break;
        case code::insufficient_buffer:
            name = "SCARD_E_INSUFFICIENT_BUFFER", meaning = "the answer is larger than the buffer";
            break;
        case code::unknown_reader: name = "SCARD_E_UNKNOWN_READER", meaning = "unknown reader"; break;
        case code::timeout: name = "SCARD_E_TIMEOUT", meaning = "timeout"; break;
        case code::sharing_violation:
            name = "SCARD_E_SHARING_VIOLATION", meaning = "the card is held exclusively by another client";
            break;
        case code::no_smartcard: name = "SCARD_E_NO_SMARTCARD", meaning = "no card in the reader"; break;
        case code::proto_mismatch: name = "SCARD_E_PROTO_MISMATCH", meaning = "no common protocol"; break;
        case code::not_transacted: name = "SCARD_E_NOT_TRANSACTED", meaning = "no transaction to end"; break;
        case code::comm_error: name = "SCARD_F_COMM_ERROR", meaning = "communication error with pcscd"; break;
        case code::reader_unavailable: name = "SCARD_E_READER_UNAVAILABLE", meaning = "reader unavailable"; break;
        case code::no_service: name = "SCARD_E_NO_SERVICE", meaning = "pcscd is not running"; break;
        case code::service_stopped: name = "SCARD_E_SERVICE_STOPPED", meaning = "pcscd has stopped"; break;
        case code::unsupported_feature:
            name = "SCARD_E_UNSUPPORTED_FEATURE", meaning = "not supported by the reader";
            break;
        case code::no_readers_available: name = "SCARD_E_NO_READERS_AVAILABLE", meaning = "no reader"; break;
        case code::unresponsive_card: name = "SCARD_W_UNRESPONSIVE_CARD", meaning = "the card does not answer"; break;
        case code::unpowered_card: name = "SCARD_W_UNPOWERED_CARD", meaning = "the card is not powered"; break;
        case code::reset_card: name = "SCARD_W_RESET_CARD", meaning = "the card was reset"; break;
        case code::removed_card: name = "SCARD_W_REMOVED_CARD", meaning = "the card was removed"; break;
        default: break;
    }
    if (name != nullptr)
        return std::string(name) + " (" + meaning + ")";
    char text[16];
    std::snprintf(text, sizeof text, "0x%08X", static_cast<unsigned>(value));
    return std::string(text) + " (unknown PC/SC code)";
}

bool is_service_lost(PcscCode value) noexcept {
    return value == code::no_service || value == code::service_stopped || value == code::invalid_handle ||
           value == code::comm_error || value == code::internal_error;
}

}  // namespace cb::pcsc
