#include "daemon/ack_tracker.hpp"

#include <algorithm>

namespace cb {

AckBudget::AckBudget(std::uint32_t rate_per_s)
    : m_rate(rate_per_s == 0 ? 1.0 : static_cast<double>(rate_per_s)), m_tokens(m_rate) {}

double AckBudget::tokens_at(Clock::time_point now) const {
    // Nothing refills before the first call, nor while the clock goes back.
    if (m_refilled == Clock::time_point{} || now <= m_refilled)
        return m_tokens;
    return std::min(m_rate, m_tokens + std::chrono::duration<double>(now - m_refilled).count() * m_rate);
}

std::size_t AckBudget::take(Clock::time_point now, std::size_t wanted) {
    m_tokens = tokens_at(now);
    m_refilled = now;
    const auto granted = std::min(wanted, static_cast<std::size_t>(m_tokens));
    m_tokens -= static_cast<double>(granted);
    return granted;
}

AckBudget::Clock::duration AckBudget::until_next(Clock::time_point now) const {
    const double tokens = tokens_at(now);
    if (tokens >= 1.0)
        return Clock::duration::zero();
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((1.0 - tokens) / m_rate)) +
           Clock::duration(1);
}

std::optional<std::uint64_t> AckTracker::handled(std::string_view device, std::uint64_t sequence, std::uint64_t first) {
    auto it = m_devices.find(device);
    if (it == m_devices.end()) {
        const std::uint64_t start = first == 0 ? 1 : first;
        it = m_devices.emplace(std::string(device), Progress{start, start - 1, {}}).first;
    }
    Progress& progress = it->second;
    if (sequence <= progress.through || !progress.beyond.insert(sequence).second)
        return std::nullopt;
    const std::uint64_t before = progress.through;
    while (!progress.beyond.empty() && *progress.beyond.begin() == progress.through + 1) {
        progress.through = *progress.beyond.begin();
        progress.beyond.erase(progress.beyond.begin());
    }
    if (progress.through == before)
        return std::nullopt;
    return progress.through;
}

std::optional<std::uint64_t> AckTracker::acknowledged(std::string_view device) const {
    const auto it = m_devices.find(device);
    if (it == m_devices.end() || it->second.through < it->second.first)
        return std::nullopt;
    return it->second.through;
}

std::size_t AckTracker::waiting(std::string_view device) const {
    const auto it = m_devices.find(device);
    return it == m_devices.end() ? 0 : it->second.beyond.size();
}

}  // namespace cb
