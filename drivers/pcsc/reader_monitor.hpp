// ReaderMonitor: one thread that watches every PC/SC reader and reports
// readers and cards coming and going.
//
// The thread owns its own PC/SC context (one context per thread) and blocks
// in SCardGetStatusChange with no timeout, over every known reader plus the
// "\\?PnP?\Notification" pseudo-reader, which changes when a reader is
// plugged or unplugged: no polling, no busy loop. Each returned state is fed
// back as the next current state, so the call only returns on a change.
//
// Events, in the order the thread sees them:
//
//   | event            | when                                                         |
//   |------------------|--------------------------------------------------------------|
//   | reader_added     | a reader appears (at start, on PnP, after a recovery)        |
//   | card_inserted    | a card is present (with its ATR; empty if the card is mute), |
//   |                  | including one already there when its reader is first seen   |
//   | card_removed     | the card left; also before reader_removed and on service loss |
//   | reader_removed   | the reader left; also for every reader on service loss        |
//   | service_lost     | pcscd is unreachable (at start) or went away (detail: the     |
//   |                  | PC/SC code); reported once per outage                         |
//   | service_restored | a context was established again after service_lost            |
//
// A card swapped between two wake-ups (present both times, but pcscd's event
// counter moved) is reported as card_removed then card_inserted.
//
// Recovery: when a call fails with a code of is_service_lost() (pcscd killed,
// restarted, or any other error that leaves the context unusable), the
// thread releases the context, reports the loss (card_removed and
// reader_removed for everything it knew, then service_lost), and
// establishes a new context after Backoff delays (exponential, bounded,
// jittered) waited on the BackoffTimer; once it has one, it reports
// service_restored and then what it finds as new readers and cards.
//
// The callback runs on the monitor thread and must not block for long nor
// throw; the daemon posts each event onto its io_context. stop() (and the
// destructor) interrupt the backoff wait, cancel the blocked call with
// SCardCancel, and join the thread; no event is delivered after stop()
// returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drivers/pcsc/backoff.hpp"
#include "drivers/pcsc/pcsc_api.hpp"

namespace cb::pcsc {

enum class ReaderEventKind {
    reader_added,
    reader_removed,
    card_inserted,
    card_removed,
    service_lost,
    service_restored,
};

const char* to_string(ReaderEventKind kind) noexcept;

struct ReaderEvent {
    ReaderEventKind kind = ReaderEventKind::reader_added;
    std::string reader;  // empty for service_lost / service_restored
    Bytes atr;           // card_inserted only
    std::string detail;  // service_lost: the PC/SC code that ended the context

    friend bool operator==(const ReaderEvent&, const ReaderEvent&) = default;
};

struct MonitorOptions {
    BackoffPolicy backoff{};
    std::uint64_t seed = 0;  // of the backoff jitter
};

class ReaderMonitor {
public:
    using Callback = std::function<void(const ReaderEvent&)>;

    // `api` and `timer` must outlive the monitor.
    ReaderMonitor(PcscApi& api, BackoffTimer& timer, Callback callback, MonitorOptions options = {});
    ~ReaderMonitor();
    ReaderMonitor(const ReaderMonitor&) = delete;
    ReaderMonitor& operator=(const ReaderMonitor&) = delete;

    // Starts the thread. Calling it twice is a programming error (asserts).
    void start();
    // Stops and joins the thread; idempotent.
    void stop();

private:
    struct KnownReader {
        std::uint32_t current_state = state::unaware;
        bool card_present = false;
        std::uint32_t event_counter = 0;
    };

    void run();
    // Watches over `context` until stop() or a failure; returns the code that ended it.
    PcscCode watch(ContextHandle context);
    PcscCode refresh_readers(ContextHandle context);
    void apply(const ReaderState& observed);
    void forget_all();
    void emit(const ReaderEvent& event);
    bool stopping();

    PcscApi& m_api;
    BackoffTimer& m_timer;
    Callback m_callback;
    MonitorOptions m_options;

    std::map<std::string, KnownReader> m_known;  // the monitor thread's only
    std::uint32_t m_pnp_state = state::unaware;  // idem

    std::mutex m_mutex;
    std::condition_variable m_finished_changed;
    bool m_stopping = false;
    bool m_finished = false;
    bool m_has_context = false;
    ContextHandle m_context = 0;
    std::thread m_thread;
};

}  // namespace cb::pcsc
