// Exponential backoff with jitter, for re-establishing a PC/SC context while
// pcscd is down, and the timer the reader monitor waits on between attempts.
//
//   attempt n (0-based):  base(n)  = min(initial * 2^n, maximum)
//                         delay(n) = base(n) * (1 - jitter * u),  u uniform in [0, 1)
//
// so every delay lies in (base * (1 - jitter), base], never above `maximum`,
// and two gateways restarted together do not knock on pcscd in step. The
// random source is seeded by the caller (tests pass a fixed seed).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>

namespace cb::pcsc {

struct BackoffPolicy {
    std::chrono::milliseconds initial{100};
    std::chrono::milliseconds maximum{5'000};
    double jitter = 0.5;  // 0 (none) .. 1
};

class Backoff {
public:
    Backoff(BackoffPolicy policy, std::uint64_t seed);

    // The delay before the next attempt; each call doubles the base up to the maximum.
    std::chrono::milliseconds next();
    // After a success: the next delay starts again from `initial`.
    void reset() noexcept { m_attempt = 0; }
    unsigned attempt() const noexcept { return m_attempt; }

private:
    BackoffPolicy m_policy;
    std::mt19937_64 m_random;
    unsigned m_attempt = 0;
};

// What the monitor waits on between attempts (a role, so unit tests see and
// drive each wait instead of sleeping).
class BackoffTimer {
public:
    virtual ~BackoffTimer() = default;
    // Waits for `delay`; returns false if interrupt() was called (before or during).
    virtual bool wait(std::chrono::milliseconds delay) = 0;
    // Ends the current and every later wait at once (used by stop()).
    virtual void interrupt() = 0;
};

// A BackoffTimer on std::condition_variable and the steady clock.
class SteadyBackoffTimer final : public BackoffTimer {
public:
    bool wait(std::chrono::milliseconds delay) override;
    void interrupt() override;

private:
    std::mutex m_mutex;
    std::condition_variable m_wakeup;
    bool m_interrupted = false;
};

}  // namespace cb::pcsc
