#include "tests/unit/drivers/pcsc_fake.hpp"

namespace cb::test {

namespace code = pcsc::code;
namespace state = pcsc::state;

void FakePcscApi::changed() {
    m_blocked = false;
    m_world_changed.notify_all();
}

void FakePcscApi::add_reader(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_readers.emplace(name, Reader{});
    changed();
}

void FakePcscApi::remove_reader(const std::string& name) {
    std::lock_guard lock(m_mutex);
    m_readers.erase(name);
    changed();
}

void FakePcscApi::insert_card(const std::string& reader, Bytes atr) {
    std::lock_guard lock(m_mutex);
    auto& slot = m_readers[reader];
    slot.present = true;
    slot.atr = std::move(atr);
    ++slot.counter;
    changed();
}

void FakePcscApi::remove_card(const std::string& reader) {
    std::lock_guard lock(m_mutex);
    auto& slot = m_readers[reader];
    slot.present = false;
    slot.atr.clear();
    ++slot.counter;
    changed();
}

void FakePcscApi::swap_card(const std::string& reader, Bytes atr) {
    std::lock_guard lock(m_mutex);
    auto& slot = m_readers[reader];
    slot.present = true;
    slot.atr = std::move(atr);
    slot.counter += 2;
    changed();
}

void FakePcscApi::stop_service() {
    std::lock_guard lock(m_mutex);
    m_service_up = false;
    m_contexts.clear();
    changed();
}

void FakePcscApi::start_service() {
    std::lock_guard lock(m_mutex);
    m_service_up = true;
    changed();
}

bool FakePcscApi::wait_until_blocked() {
    std::unique_lock lock(m_mutex);
    return m_world_changed.wait_for(lock, fake_wait_limit, [&] { return m_blocked; });
}

std::size_t FakePcscApi::status_change_calls() {
    std::lock_guard lock(m_mutex);
    return m_status_change_calls;
}

std::size_t FakePcscApi::establish_calls() {
    std::lock_guard lock(m_mutex);
    return m_establish_calls;
}

std::uint32_t FakePcscApi::state_of(const std::string& reader) const {
    if (reader == pcsc::pnp_notification_reader)
        return static_cast<std::uint32_t>(m_readers.size()) << 16;
    const auto found = m_readers.find(reader);
    if (found == m_readers.end())
        return state::unknown;
    return (found->second.counter << 16) | (found->second.present ? state::present : state::empty);
}

PcscCode FakePcscApi::establish_context(pcsc::ContextHandle& context) {
    std::lock_guard lock(m_mutex);
    ++m_establish_calls;
    if (!m_service_up)
        return code::no_service;
    context = m_next_context++;
    m_contexts.insert(context);
    return code::success;
}

PcscCode FakePcscApi::release_context(pcsc::ContextHandle context) {
    std::lock_guard lock(m_mutex);
    m_cancelled.erase(context);
    return m_contexts.erase(context) == 1 ? code::success : code::invalid_handle;
}

PcscCode FakePcscApi::list_readers(pcsc::ContextHandle context, std::vector<std::string>& readers) {
    std::lock_guard lock(m_mutex);
    if (!m_contexts.contains(context))
        return m_service_up ? code::invalid_handle : code::no_service;
    readers.clear();
    for (const auto& [name, reader] : m_readers)
        readers.push_back(name);
    return readers.empty() ? code::no_readers_available : code::success;
}

PcscCode FakePcscApi::get_status_change(pcsc::ContextHandle context, std::chrono::milliseconds,
                                        std::span<pcsc::ReaderState> states) {
    std::unique_lock lock(m_mutex);
    ++m_status_change_calls;
    for (;;) {
        if (!m_contexts.contains(context))
            return m_service_up ? code::invalid_handle : code::no_service;
        if (m_cancelled.erase(context) == 1)
            return code::cancelled;
        bool any = false;
        for (auto& entry : states) {
            const std::uint32_t now = state_of(entry.reader);
            entry.event_state = now;
            entry.atr.clear();
            if (now != entry.current_state) {
                entry.event_state |= state::changed;
                any = true;
            }
            const auto found = m_readers.find(entry.reader);
            if (found != m_readers.end() && found->second.present)
                entry.atr = found->second.atr;
        }
        if (any)
            return code::success;
        m_blocked = true;
        m_world_changed.notify_all();
        m_world_changed.wait(lock);
    }
}

PcscCode FakePcscApi::cancel(pcsc::ContextHandle context) {
    std::lock_guard lock(m_mutex);
    m_cancelled.insert(context);
    changed();
    return code::success;
}

PcscCode FakePcscApi::connect(pcsc::ContextHandle context, const std::string& reader, pcsc::ShareMode,
                              pcsc::CardHandle& card, pcsc::Protocol& active) {
    std::lock_guard lock(m_mutex);
    if (!m_contexts.contains(context))
        return code::invalid_handle;
    const auto found = m_readers.find(reader);
    if (found == m_readers.end())
        return code::unknown_reader;
    if (!found->second.present)
        return code::no_smartcard;
    card = 100;
    active = m_protocol;
    return code::success;
}

PcscCode FakePcscApi::reconnect(pcsc::CardHandle, pcsc::ShareMode, pcsc::Disposition, pcsc::Protocol& active) {
    ++reconnects;
    active = m_protocol;
    return code::success;
}

PcscCode FakePcscApi::disconnect(pcsc::CardHandle, pcsc::Disposition) {
    ++disconnects;
    return code::success;
}

PcscCode FakePcscApi::begin_transaction(pcsc::CardHandle) {
    if (!begin_codes.empty()) {
        const PcscCode result = begin_codes.front();
        begin_codes.pop_front();
        if (result != code::success)
            return result;
    }
    ++transactions_begun;
    m_in_transaction = true;
    return code::success;
}

PcscCode FakePcscApi::end_transaction(pcsc::CardHandle, pcsc::Disposition) {
    if (!m_in_transaction)
        return code::not_transacted;
    m_in_transaction = false;
    ++transactions_ended;
    if (!end_codes.empty()) {
        const PcscCode result = end_codes.front();
        end_codes.pop_front();
        return result;
    }
    return code::success;
}

PcscCode FakePcscApi::status(pcsc::CardHandle, bool& present) {
    present = status_present;
    return status_present ? code::success : code::removed_card;
}

PcscCode FakePcscApi::transmit(pcsc::CardHandle, pcsc::Protocol, std::span<const std::uint8_t> command,
                               Bytes& response) {
    commands.emplace_back(command.begin(), command.end());
    response.clear();
    if (!transmit_codes.empty()) {
        const PcscCode result = transmit_codes.front();
        transmit_codes.pop_front();
        if (result != code::success)
            return result;
    }
    if (!m_responder)
        return code::no_smartcard;
    auto reply = m_responder(command);
    response = std::move(reply.response);
    return reply.code;
}

PcscCode FakePcscApi::control(pcsc::CardHandle, std::uint32_t control_code, std::span<const std::uint8_t> input,
                              Bytes& response) {
    response.clear();
    if (!m_control)
        return code::unsupported_feature;
    auto reply = m_control(control_code, input);
    response = std::move(reply.response);
    return reply.code;
}

bool FakeBackoffTimer::wait(std::chrono::milliseconds delay) {
    std::unique_lock lock(m_mutex);
    m_delays.push_back(delay);
    const std::size_t mine = m_delays.size();
    m_changed.notify_all();
    m_changed.wait(lock, [&] { return m_interrupted || m_released >= mine; });
    return !m_interrupted;
}

void FakeBackoffTimer::interrupt() {
    std::lock_guard lock(m_mutex);
    m_interrupted = true;
    m_changed.notify_all();
}

bool FakeBackoffTimer::wait_for_waits(std::size_t count) {
    std::unique_lock lock(m_mutex);
    return m_changed.wait_for(lock, fake_wait_limit, [&] { return m_delays.size() >= count; });
}

void FakeBackoffTimer::release() {
    std::lock_guard lock(m_mutex);
    ++m_released;
    m_changed.notify_all();
}

std::vector<std::chrono::milliseconds> FakeBackoffTimer::delays() {
    std::lock_guard lock(m_mutex);
    return m_delays;
}

}  // namespace cb::test
