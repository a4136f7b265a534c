#include "drivers/storage/group_commit.hpp"

#include <pthread.h>

#include <vector>

namespace cb::storage {

GroupCommitter::GroupCommitter(ReadingStore& store, std::size_t max_batch)
    : m_store(store), m_max_batch(max_batch), m_thread([this] { run(); }) {}

GroupCommitter::~GroupCommitter() {
    stop();
}

void GroupCommitter::submit(NewReading reading, Done done) {
    {
        std::lock_guard lock(m_mutex);
        if (!m_stopping) {
            m_queue.push_back({std::move(reading), std::move(done)});
            m_wake.notify_one();
            return;
        }
    }
    done(fail(ErrorKind::unavailable, "storage is stopping: reading not stored"));
}

void GroupCommitter::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
        m_wake.notify_one();
    }
    if (m_thread.joinable())
        m_thread.join();
}

GroupCommitter::Stats GroupCommitter::stats() const {
    std::lock_guard lock(m_mutex);
    return m_stats;
}

void GroupCommitter::run() {
    ::pthread_setname_np(::pthread_self(), "cb-commit");  // top -H, bench/ingest
    std::vector<Pending> batch;
    std::vector<NewReading> readings;
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [this] { return m_stopping || !m_queue.empty(); });
            if (m_queue.empty())
                return;  // stopping, and everything queued is committed
            while (!m_queue.empty() && batch.size() < m_max_batch) {
                batch.push_back(std::move(m_queue.front()));
                m_queue.pop_front();
            }
        }
        readings.clear();
        for (auto& pending : batch)
            readings.push_back(std::move(pending.reading));
        auto outcomes = m_store.commit(readings);
        {
            std::lock_guard lock(m_mutex);
            ++m_stats.transactions;
            if (outcomes)
                m_stats.readings += batch.size();
            else
                ++m_stats.failed_transactions;
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (outcomes)
                batch[i].done(outcomes.value()[i]);
            else
                batch[i].done(outcomes.error());
        }
        batch.clear();
    }
}

}  // namespace cb::storage
