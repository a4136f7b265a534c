// Device ingest: one reading from MQTT to disk, then the device's ack.
//
//   message on cb/v1/dev/{id}/meas
//     -> topic names the device (else: counted, dropped)
//     -> Reading::parse at the gateway's time; if rejected, peek_sequence
//        (no readable seq: counted, logged once per device and reason, no ack)
//     -> quota reached? stop here: not stored, not acknowledged; the device
//        keeps it and resends (nothing stored is ever evicted)
//     -> placement (ingest_policy.hpp): accepted / quarantined / held / rejected
//     -> GroupCommitter (storage thread): durable, de-duplicated by (device, seq);
//        at max_in_flight readings waiting for it, the link stops receiving
//        (the broker keeps the rest) until half of them are committed
//     -> back on the loop, a whole batch of outcomes at once: AckTracker; if
//        the gap-free prefix advanced, the retained ack {"seq":N} is published
//        once for the batch (one per device, not per reading), within the ack
//        budget (ingest.max_acks_per_s): acks over it wait, in order, and a
//        device's waiting acks merge; a duplicate re-publishes the current ack
//
// Everything here runs on the io_context thread except the commit itself.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/ack_tracker.hpp"
#include "daemon/catalog.hpp"
#include "daemon/ingest_policy.hpp"
#include "daemon/log.hpp"
#include "drivers/mqtt/message_link.hpp"
#include "drivers/storage/group_commit.hpp"

namespace cb {

struct IngestCounters {
    std::uint64_t received = 0;
    std::uint64_t stored = 0;      // new rows, any disposition
    std::uint64_t duplicates = 0;  // (device, seq) already stored
    std::uint64_t unreadable = 0;  // rejected without a readable seq: not stored, not acknowledged
    std::uint64_t over_quota = 0;  // not stored because the disk quota is reached
    std::uint64_t commit_failures = 0;
    std::uint64_t acks_published = 0;
    std::map<std::string, std::uint64_t, std::less<>> by_disposition;  // "accepted", "quarantined", ...
    std::map<std::string, std::uint64_t, std::less<>> by_reason;       // "unknown-device", "out_of_range", ...
};

struct IngestSettings {
    std::uint64_t quota_bytes = 0;  // 0: no quota
    devices::ReadingLimits limits{};
    std::uint32_t max_acks_per_s = 2000;  // AckBudget rate
    // Flow control: at this many readings waiting for their commit, the link
    // stops receiving; it resumes once half of them are committed.
    std::size_t max_in_flight = 8192;
    // Called on the loop after a batch stored new readings (the forwarder looks for work).
    std::function<void()> on_stored;
};

class IngestService {
public:
    using Clock = std::function<devices::Microseconds()>;
    using DiskUsage = std::function<std::uint64_t()>;

    IngestService(boost::asio::io_context& io, Logger& log, const DeviceCatalog& catalog,
                  storage::GroupCommitter& committer, mqtt::MessageLink& link, const PatientPresence& presence,
                  Clock clock, DiskUsage disk_usage, IngestSettings settings = {});

    // Rebuilds the acknowledgement state from what is stored, and re-publishes
    // every device's ack (retained messages may have been lost with a broker).
    Result<void> restore(storage::ReadingStore& store);

    void on_message(const mqtt::Message& message);

    const IngestCounters& counters() const noexcept { return m_counters; }
    const AckTracker& acks() const noexcept { return m_acks; }
    // Readings submitted and not yet committed, or acks not yet published.
    std::size_t in_flight() const noexcept { return m_in_flight + m_ack_queue.size(); }

private:
    struct Completion {
        std::string device;
        std::uint64_t sequence = 0;
        Result<storage::CommitOutcome> outcome;
    };
    void submit(storage::NewReading reading);
    void on_completions();
    void on_committed(const std::string& device, std::uint64_t sequence, const Result<storage::CommitOutcome>& outcome);
    void publish_ack(const std::string& device, std::uint64_t sequence);
    void schedule_ack(const std::string& device);
    void flush_acks();
    std::uint64_t first_sequence(std::string_view device) const;
    bool over_quota();
    void log_once(const std::string& device, const std::string& reason, const std::string& message);

    boost::asio::io_context& m_io;
    Logger& m_log;
    const DeviceCatalog& m_catalog;
    storage::GroupCommitter& m_committer;
    mqtt::MessageLink& m_link;
    const PatientPresence& m_presence;
    Clock m_clock;
    DiskUsage m_disk_usage;
    IngestSettings m_settings;

    AckTracker m_acks;
    IngestCounters m_counters;
    std::size_t m_in_flight = 0;
    std::set<std::pair<std::string, std::string>> m_logged;  // (device, reason) already logged
    bool m_quota_reached = false;
    // Devices whose ack is due, oldest first (m_ack_due: the same, for lookup).
    std::deque<std::string> m_ack_queue;
    StringSet m_ack_due;
    AckBudget m_ack_budget;
    boost::asio::steady_timer m_ack_timer;
    bool m_ack_timer_armed = false;
    // Outcomes from the storage thread, handed to the loop in batches.
    std::mutex m_completed_mutex;
    std::vector<Completion> m_completed;
    bool m_completions_posted = false;
    bool m_storage_failing = false;
    bool m_receiving = true;  // what we last asked of m_link.set_receiving()
    devices::Microseconds m_quota_checked_at{};
};

}  // namespace cb
