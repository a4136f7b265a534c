// LibPcscApi: PcscApi over the system's libpcsclite (pcsc-lite 1.9).
//
// PCSCLITE_CSOCK_NAME in the environment (read by libpcsclite) chooses the
// pcscd socket; the integration tests use it to reach their own pcscd.
#pragma once

#include "drivers/pcsc/pcsc_api.hpp"

namespace cb::pcsc {

class LibPcscApi final : public PcscApi {
public:
    PcscCode establish_context(ContextHandle& context) override;
    PcscCode release_context(ContextHandle context) override;
    PcscCode list_readers(ContextHandle context, std::vector<std::string>& readers) override;
    PcscCode get_status_change(ContextHandle context, std::chrono::milliseconds timeout,
                               std::span<ReaderState> states) override;
    PcscCode cancel(ContextHandle context) override;
    PcscCode connect(ContextHandle context, const std::string& reader, ShareMode mode, CardHandle& card,
                     Protocol& active) override;
    PcscCode reconnect(CardHandle card, ShareMode mode, Disposition initialization, Protocol& active) override;
    PcscCode disconnect(CardHandle card, Disposition disposition) override;
    PcscCode begin_transaction(CardHandle card) override;
    PcscCode end_transaction(CardHandle card, Disposition disposition) override;
    PcscCode status(CardHandle card, bool& present) override;
    PcscCode transmit(CardHandle card, Protocol protocol, std::span<const std::uint8_t> command,
                      Bytes& response) override;
    PcscCode control(CardHandle card, std::uint32_t control_code, std::span<const std::uint8_t> input,
                     Bytes& response) override;
};

}  // namespace cb::pcsc
