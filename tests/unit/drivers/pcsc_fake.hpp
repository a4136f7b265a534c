// FakePcscApi: a small pcscd for unit tests. It holds a world of readers and
// cards that the test changes (add_reader, insert_card, stop_service...);
// get_status_change blocks, as pcscd does, until that world differs from
// the states it was given, the context is cancelled, or the service stops.
// Cards answer through a responder function the test provides.
//
// FakeBackoffTimer: records each backoff wait and blocks it until the test
// releases it, so a test steps through recovery without sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "drivers/pcsc/backoff.hpp"
#include "drivers/pcsc/pcsc_api.hpp"

namespace cb::test {

using pcsc::Bytes;
using pcsc::PcscCode;

inline constexpr std::chrono::seconds fake_wait_limit{20};

struct FakeReply {
    PcscCode code = pcsc::code::success;
    Bytes response;
};

class FakePcscApi final : public pcsc::PcscApi {
public:
    using Responder = std::function<FakeReply(std::span<const std::uint8_t> command)>;
    using ControlResponder = std::function<FakeReply(std::uint32_t code, std::span<const std::uint8_t> input)>;

    // The world.
    void add_reader(const std::string& name);
    void remove_reader(const std::string& name);
    void insert_card(const std::string& reader, Bytes atr);
    void remove_card(const std::string& reader);
    // Another card in place of the first, between two wake-ups (pcscd's counter moves by 2).
    void swap_card(const std::string& reader, Bytes atr);
    void stop_service();
    void start_service();

    // True once a get_status_change is blocked with nothing to report (bounded wait).
    bool wait_until_blocked();
    std::size_t status_change_calls();
    std::size_t establish_calls();

    // Cards.
    void set_responder(Responder responder) { m_responder = std::move(responder); }
    void set_control_responder(ControlResponder responder) { m_control = std::move(responder); }
    void set_protocol(pcsc::Protocol protocol) { m_protocol = protocol; }
    // Codes returned by the next calls instead of the responder's / success.
    std::deque<PcscCode> transmit_codes;
    std::deque<PcscCode> begin_codes;
    std::deque<PcscCode> end_codes;
    // Every command transmitted, in order.
    std::vector<Bytes> commands;
    std::size_t transactions_begun = 0;
    std::size_t transactions_ended = 0;
    std::size_t reconnects = 0;
    std::size_t disconnects = 0;
    bool status_present = true;

    PcscCode establish_context(pcsc::ContextHandle& context) override;
    PcscCode release_context(pcsc::ContextHandle context) override;
    PcscCode list_readers(pcsc::ContextHandle context, std::vector<std::string>& readers) override;
    PcscCode get_status_change(pcsc::ContextHandle context, std::chrono::milliseconds timeout,
                               std::span<pcsc::ReaderState> states) override;
    PcscCode cancel(pcsc::ContextHandle context) override;
    PcscCode connect(pcsc::ContextHandle context, const std::string& reader, pcsc::ShareMode mode,
                     pcsc::CardHandle& card, pcsc::Protocol& active) override;
    PcscCode reconnect(pcsc::CardHandle card, pcsc::ShareMode mode, pcsc::Disposition initialization,
                       pcsc::Protocol& active) override;
    PcscCode disconnect(pcsc::CardHandle card, pcsc::Disposition disposition) override;
    PcscCode begin_transaction(pcsc::CardHandle card) override;
    PcscCode end_transaction(pcsc::CardHandle card, pcsc::Disposition disposition) override;
    PcscCode status(pcsc::CardHandle card, bool& present) override;
    PcscCode transmit(pcsc::CardHandle card, pcsc::Protocol protocol, std::span<const std::uint8_t> command,
                      Bytes& response) override;
    PcscCode control(pcsc::CardHandle card, std::uint32_t control_code, std::span<const std::uint8_t> input,
                     Bytes& response) override;

private:
    struct Reader {
        bool present = false;
        std::uint32_t counter = 0;
        Bytes atr;
    };
    std::uint32_t state_of(const std::string& reader) const;  // under m_mutex
    void changed();                                           // under m_mutex

    std::mutex m_mutex;
    std::condition_variable m_world_changed;
    std::map<std::string, Reader> m_readers;
    bool m_service_up = true;
    pcsc::ContextHandle m_next_context = 1;
    std::set<pcsc::ContextHandle> m_contexts;
    std::set<pcsc::ContextHandle> m_cancelled;
    std::size_t m_status_change_calls = 0;
    std::size_t m_establish_calls = 0;
    bool m_blocked = false;

    Responder m_responder;
    ControlResponder m_control;
    pcsc::Protocol m_protocol = pcsc::Protocol::t1;
    bool m_in_transaction = false;
};

class FakeBackoffTimer final : public pcsc::BackoffTimer {
public:
    bool wait(std::chrono::milliseconds delay) override;
    void interrupt() override;

    // Bounded waits: true once `count` waits have started.
    bool wait_for_waits(std::size_t count);
    // Lets the oldest blocked wait return.
    void release();
    std::vector<std::chrono::milliseconds> delays();

private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<std::chrono::milliseconds> m_delays;
    std::size_t m_released = 0;
    bool m_interrupted = false;
};

}  // namespace cb::test
