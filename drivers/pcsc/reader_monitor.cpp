#include "drivers/pcsc/reader_monitor.hpp"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <chrono>

namespace cb::pcsc {

namespace {

// How often stop() repeats SCardCancel: pcsc-lite drops a cancel that
// arrives just before the thread enters SCardGetStatusChange, so stop()
// cancels again until the thread has left (a shutdown-only loop).
constexpr std::chrono::milliseconds cancel_repeat{100};

}  // namespace

const char* to_string(ReaderEventKind kind) noexcept {
    switch (kind) {
        case ReaderEventKind::reader_added: return "reader added";
        case ReaderEventKind::reader_removed: return "reader removed";
        case ReaderEventKind::card_inserted: return "card inserted";
        case ReaderEventKind::card_removed: return "card removed";
        case ReaderEventKind::service_lost: return "service lost";
        case ReaderEventKind::service_restored: return "service restored";
    }
    return "?";
}

ReaderMonitor::ReaderMonitor(PcscApi& api, BackoffTimer& timer, Callback callback, MonitorOptions options)
    : m_api(api), m_timer(timer), m_callback(std::move(callback)), m_options(options) {}

ReaderMonitor::~ReaderMonitor() {
    stop();
}

void ReaderMonitor::start() {
    std::lock_guard lock(m_mutex);
    assert(!m_thread.joinable() && !m_stopping);
    m_thread = std::thread([this] { run(); });
}

void ReaderMonitor::stop() {
    std::unique_lock lock(m_mutex);
    if (!m_thread.joinable())
        return;
    m_stopping = true;
    m_timer.interrupt();
    while (!m_finished) {
        if (m_has_context)
            m_api.cancel(m_context);
        m_finished_changed.wait_for(lock, cancel_repeat, [&] { return m_finished; });
    }
    lock.unlock();
    m_thread.join();
}

bool ReaderMonitor::stopping() {
    std::lock_guard lock(m_mutex);
    return m_stopping;
}

void ReaderMonitor::emit(const ReaderEvent& event) {
    if (m_callback)
        m_callback(event);
}

void ReaderMonitor::run() {
    ::pthread_setname_np(::pthread_self(), "cb-readers");
    Backoff backoff(m_options.backoff, m_options.seed);
    bool outage_reported = false;
    while (!stopping()) {
        ContextHandle context = 0;
        const PcscCode established = m_api.establish_context(context);
        if (established != code::success) {
            if (!outage_reported)
                emit({.kind = ReaderEventKind::service_lost,
                      .reader = {},
                      .atr = {},
                      .detail = describe_code(established)});
            outage_reported = true;
            if (!m_timer.wait(backoff.next()))
                break;
            continue;
        }
        {
            std::lock_guard lock(m_mutex);
            m_context = context;
            m_has_context = !m_stopping;
        }
        if (stopping()) {
            m_api.release_context(context);
            break;
        }
        backoff.reset();
        if (outage_reported)
            emit({.kind = ReaderEventKind::service_restored, .reader = {}, .atr = {}, .detail = {}});
        // No `outage_reported = false` here: every way out of watch() below either
        // leaves the loop or reports a new outage (and sets the flag) first.

        const PcscCode ended = watch(context);
        {
            std::lock_guard lock(m_mutex);
            m_has_context = false;
        }
        m_api.release_context(context);
        if (stopping())
            break;
        // The context is gone, and with it every card handle: what was known
        // is no longer true, and what a new context finds will be reported.
        forget_all();
        emit({.kind = ReaderEventKind::service_lost, .reader = {}, .atr = {}, .detail = describe_code(ended)});
        outage_reported = true;
        if (!m_timer.wait(backoff.next()))
            break;
    }
    std::lock_guard lock(m_mutex);
    m_finished = true;
    m_finished_changed.notify_all();
}

PcscCode ReaderMonitor::watch(ContextHandle context) {
    m_pnp_state = state::unaware;
    std::vector<ReaderState> states;
    for (;;) {
        const PcscCode listed = refresh_readers(context);
        if (listed != code::success)
            return listed;
        states.clear();
        for (const auto& [name, known] : m_known)
            states.push_back({.reader = name, .current_state = known.current_state, .event_state = 0, .atr = {}});
        states.push_back(
            {.reader = pnp_notification_reader, .current_state = m_pnp_state, .event_state = 0, .atr = {}});

        const PcscCode result = m_api.get_status_change(context, infinite_wait, states);
        if (stopping())
            return code::cancelled;
        // A reader that left between the listing and the call: list again.
        if (result == code::cancelled || result == code::timeout || result == code::unknown_reader)
            continue;
        if (result != code::success)
            return result;
        for (std::size_t index = 0; index + 1 < states.size(); ++index)
            apply(states[index]);
        m_pnp_state = states.back().event_state & ~state::changed;
    }
}

PcscCode ReaderMonitor::refresh_readers(ContextHandle context) {
    std::vector<std::string> readers;
    const PcscCode listed = m_api.list_readers(context, readers);
    if (listed == code::no_readers_available)
        readers.clear();
    else if (listed != code::success)
        return listed;
    std::erase(readers, std::string(pnp_notification_reader));
    std::sort(readers.begin(), readers.end());
    readers.erase(std::unique(readers.begin(), readers.end()), readers.end());

    for (auto known = m_known.begin(); known != m_known.end();) {
        if (std::binary_search(readers.begin(), readers.end(), known->first)) {
            ++known;
            continue;
        }
        if (known->second.card_present)
            emit({.kind = ReaderEventKind::card_removed, .reader = known->first, .atr = {}, .detail = {}});
        emit({.kind = ReaderEventKind::reader_removed, .reader = known->first, .atr = {}, .detail = {}});
        known = m_known.erase(known);
    }
    for (const auto& name : readers) {
        if (m_known.contains(name))
            continue;
        m_known.emplace(name, KnownReader{});
        emit({.kind = ReaderEventKind::reader_added, .reader = name, .atr = {}, .detail = {}});
    }
    return code::success;
}

void ReaderMonitor::apply(const ReaderState& observed) {
    const auto found = m_known.find(observed.reader);
    if (found == m_known.end())
        return;
    KnownReader& known = found->second;
    const std::uint32_t event = observed.event_state;
    known.current_state = event & ~state::changed;
    // Gone or ignored: the next listing reports it.
    if ((event & (state::unknown | state::ignore)) != 0)
        return;
    const bool present = (event & state::present) != 0 && (event & state::unavailable) == 0;
    const std::uint32_t counter = event >> 16;
    const bool swapped = known.card_present && present && counter != known.event_counter;
    if (known.card_present && (!present || swapped))
        emit({.kind = ReaderEventKind::card_removed, .reader = observed.reader, .atr = {}, .detail = {}});
    if (present && (!known.card_present || swapped))
        emit({.kind = ReaderEventKind::card_inserted, .reader = observed.reader, .atr = observed.atr, .detail = {}});
    known.card_present = present;
    known.event_counter = counter;
}

void ReaderMonitor::forget_all() {
    for (const auto& [name, known] : m_known) {
        if (known.card_present)
            emit({.kind = ReaderEventKind::card_removed, .reader = name, .atr = {}, .detail = {}});
        emit({.kind = ReaderEventKind::reader_removed, .reader = name, .atr = {}, .detail = {}});
    }
    m_known.clear();
}

}  // namespace cb::pcsc
