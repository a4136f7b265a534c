// Fuzz target: what the gateway reads in the national platform's answers
// (docs/upstream.md §8), on arbitrary bytes: the Observation id of a
// transaction-response, the diagnostics of an OperationOutcome, the tokens of
// a pairing or token answer, a Retry-After value; and, on the same bytes as a
// device payload, peek_sequence. Each result stays within its documented
// bounds (printable, capped), never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "daemon/forwarder.hpp"
#include "daemon/pairing.hpp"
#include "drivers/upstream/https_client.hpp"
#include "protocol/devices/reading.hpp"

namespace {

bool printable_within(const std::string& text, std::size_t max) {
    if (text.size() > max)
        return false;
    for (const char c : text)
        if (c < 0x20 || c >= 0x7f)
            return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (!printable_within(cb::observation_id_of(text), 64))
        std::abort();
    if (!printable_within(cb::diagnostics_of(text), 300))
        std::abort();

    const cb::TokenAnswer tokens = cb::parse_token_answer(text);
    if (!printable_within(tokens.id_pe, 128) || !printable_within(tokens.access_token, 4096) ||
        !printable_within(tokens.refresh_token, 4096) || tokens.expires_in <= 0)
        std::abort();

    if (const auto delay = cb::upstream::parse_retry_after(text);
        delay && (delay->count() < 0 || delay->count() > 86'400))
        std::abort();

    static const auto device = cb::devices::DeviceId::parse("cuff-1");
    if (!device)
        std::abort();
    (void)cb::devices::peek_sequence(*device, text);
    return 0;
}
