// Per device, the sequence numbers durably handled, and the acknowledgement
// they allow: the highest N such that every sequence from the device's first
// sequence (1 by protocol; the catalog's first_sequence for a device enrolled
// mid-life) up to N is handled (docs/device-protocol.md §3: never acknowledge
// across a gap, or a reading lost between the broker's PUBACK and our commit
// would be dropped by the device).
//
//   handled 1 2 3 5 6   -> ack 3 (4 missing: 5 and 6 wait)
//   handled 4           -> ack 6
//   handled 2 3         -> no ack yet: 1 is missing (it may be the reading a crash lost)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "daemon/string_map.hpp"

namespace cb {

class AckTracker {
public:
    // Records a durably handled sequence. Returns the new acknowledgement when
    // it advanced, nullopt otherwise (a duplicate, or beyond a gap).
    // `first` is the device's first sequence, used when the device is new here.
    std::optional<std::uint64_t> handled(std::string_view device, std::uint64_t sequence, std::uint64_t first = 1);

    // The current acknowledgement for the device, nullopt if none yet.
    std::optional<std::uint64_t> acknowledged(std::string_view device) const;

    // Sequences handled beyond the gap (waiting for it to be filled).
    std::size_t waiting(std::string_view device) const;

    std::size_t device_count() const noexcept { return m_devices.size(); }

    // Calls visit(device, acknowledgement) for every device that has one, in no particular order.
    template <typename Visit>
    void for_each(Visit visit) const {
        for (const auto& [device, progress] : m_devices)
            if (progress.through >= progress.first)
                visit(device, progress.through);
    }

private:
    struct Progress {
        std::uint64_t first = 1;         // the device's first sequence
        std::uint64_t through = 0;       // every sequence from `first` up to here is handled (first - 1: none)
        std::set<std::uint64_t> beyond;  // handled, above a gap
    };
    StringMap<Progress> m_devices;
};

// How many acks may be published, as a token bucket (ingest.max_acks_per_s):
// `rate` per second, up to `rate` saved up. Below the rate every ack leaves at
// once; above it (a backlog draining from 1000 devices) the acks that wait are
// coalesced, since a device's ack is a state ("everything through N"): the
// broker and the gateway then spend their time on readings, not on acks
// nobody needs. Pure: the caller passes the time.
class AckBudget {
public:
    using Clock = std::chrono::steady_clock;

    explicit AckBudget(std::uint32_t rate_per_s);

    // Takes up to `wanted` acks at `now`; returns how many may be published.
    std::size_t take(Clock::time_point now, std::size_t wanted);

    // From `now`, how long until one more ack may be published.
    Clock::duration until_next(Clock::time_point now) const;

private:
    double tokens_at(Clock::time_point now) const;

    double m_rate;    // tokens per second
    double m_tokens;  // available now (at m_refilled)
    Clock::time_point m_refilled{};
};

}  // namespace cb
