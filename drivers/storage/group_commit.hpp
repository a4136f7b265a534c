// Group commit: many readings, one fsync.
//
// Producers (the ingest service on the io_context thread) submit readings;
// one storage thread takes everything queued, commits it in one transaction,
// and reports each reading's outcome through its callback, on the storage
// thread (the caller posts back to its own loop). While one transaction is
// being fsynced, new submissions pile up and go into the next one, so the
// batch size adapts to the load: one reading per commit when idle, hundreds
// under a flood, and throughput does not pay one fsync per reading.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "drivers/storage/reading_store.hpp"

namespace cb::storage {

class GroupCommitter {
public:
    // Called on the storage thread once the reading is durable (or failed to
    // be: then nothing of its batch was stored and the device must not be
    // acknowledged; it will resend).
    using Done = std::function<void(const Result<CommitOutcome>&)>;

    struct Stats {
        std::uint64_t transactions = 0;
        std::uint64_t readings = 0;
        std::uint64_t failed_transactions = 0;
    };

    // The store is used only from the storage thread from now on.
    explicit GroupCommitter(ReadingStore& store, std::size_t max_batch = 2048);
    ~GroupCommitter();  // stop()
    GroupCommitter(const GroupCommitter&) = delete;
    GroupCommitter& operator=(const GroupCommitter&) = delete;

    void submit(NewReading reading, Done done);

    // Commits what is already queued, then ends the thread. Submissions after
    // stop() are refused through their callback.
    void stop();

    Stats stats() const;

private:
    struct Pending {
        NewReading reading;
        Done done;
    };
    void run();

    ReadingStore& m_store;
    const std::size_t m_max_batch;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<Pending> m_queue;
    bool m_stopping = false;
    Stats m_stats;
    std::thread m_thread;
};

}  // namespace cb::storage
