#include "drivers/pcsc/backoff.hpp"

#include <algorithm>

namespace cb::pcsc {

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : m_policy(policy), m_random(seed) {
    m_policy.jitter = std::clamp(m_policy.jitter, 0.0, 1.0);
    if (m_policy.initial <= std::chrono::milliseconds::zero())
        m_policy.initial = std::chrono::milliseconds{1};
    m_policy.maximum = std::max(m_policy.maximum, m_policy.initial);
}

std::chrono::milliseconds Backoff::next() {
    // Doubling stops at the maximum, so the shift never overflows.
    auto base = m_policy.initial;
    for (unsigned step = 0; step < m_attempt && base < m_policy.maximum; ++step)
        base *= 2;
    base = std::min(base, m_policy.maximum);
    if (base < m_policy.maximum)
        ++m_attempt;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double factor = 1.0 - m_policy.jitter * uniform(m_random);
    const auto delay = static_cast<std::chrono::milliseconds::rep>(static_cast<double>(base.count()) * factor);
    return std::max(std::chrono::milliseconds{1}, std::chrono::milliseconds{delay});
}

bool SteadyBackoffTimer::wait(std::chrono::milliseconds delay) {
    std::unique_lock lock(m_mutex);
    return !m_wakeup.wait_for(lock, delay, [&] { return m_interrupted; });
}

void SteadyBackoffTimer::interrupt() {
    {
        std::lock_guard lock(m_mutex);
        m_interrupted = true;
    }
    m_wakeup.notify_all();
}

}  // namespace cb::pcsc
