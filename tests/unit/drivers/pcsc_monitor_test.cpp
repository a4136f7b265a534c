// The reader monitor over the fake pcscd: event sequences, blocking (no
// polling), service loss and recovery with backoff, stop().
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>

#include "drivers/pcsc/reader_monitor.hpp"
#include "tests/unit/drivers/pcsc_fake.hpp"

using cb::pcsc::ReaderEvent;
using cb::pcsc::ReaderEventKind;
using cb::test::FakeBackoffTimer;
using cb::test::FakePcscApi;

namespace {

const cb::pcsc::Bytes atr_a{0x3B, 0x8A, 0x80, 0x01};
const cb::pcsc::Bytes atr_b{0x3B, 0x00};

class EventLog {
public:
    void push(const ReaderEvent& event) {
        std::lock_guard lock(m_mutex);
        m_events.push_back(event);
        m_changed.notify_all();
    }
    // Bounded wait on a condition variable: true once `count` events arrived.
    bool wait_for(std::size_t count) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, cb::test::fake_wait_limit, [&] { return m_events.size() >= count; });
    }
    std::vector<ReaderEvent> events() {
        std::lock_guard lock(m_mutex);
        return m_events;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<ReaderEvent> m_events;
};

ReaderEvent event(ReaderEventKind kind, std::string reader = {}, cb::pcsc::Bytes atr = {}) {
    return {.kind = kind, .reader = std::move(reader), .atr = std::move(atr), .detail = {}};
}

cb::pcsc::MonitorOptions no_jitter() {
    return {.backoff = {.initial = std::chrono::milliseconds{100},
                        .maximum = std::chrono::milliseconds{400},
                        .jitter = 0.0},
            .seed = 1};
}

}  // namespace

TEST_CASE("pcsc monitor: reports readers and cards at start, then each insertion and removal") {
    FakePcscApi api;
    FakeBackoffTimer timer;
    EventLog log;
    api.add_reader("Reader A");
    api.add_reader("Reader B");
    api.insert_card("Reader A", atr_a);
    cb::pcsc::ReaderMonitor monitor(api, timer, [&](const ReaderEvent& e) { log.push(e); });
    monitor.start();
    REQUIRE(log.wait_for(3));

    api.insert_card("Reader B", atr_b);
    REQUIRE(log.wait_for(4));
    api.remove_card("Reader A");
    REQUIRE(log.wait_for(5));
    api.add_reader("Reader C");  // seen through the PnP pseudo-reader
    REQUIRE(log.wait_for(6));
    api.remove_reader("Reader B");  // with its card
    REQUIRE(log.wait_for(8));
    REQUIRE(api.wait_until_blocked());
    monitor.stop();

    const std::vector<ReaderEvent> expected{
        event(ReaderEventKind::reader_added, "Reader A"),
        event(ReaderEventKind::reader_added, "Reader B"),
        event(ReaderEventKind::card_inserted, "Reader A", atr_a),
        event(ReaderEventKind::card_inserted, "Reader B", atr_b),
        event(ReaderEventKind::card_removed, "Reader A"),
        event(ReaderEventKind::reader_added, "Reader C"),
        event(ReaderEventKind::card_removed, "Reader B"),
        event(ReaderEventKind::reader_removed, "Reader B"),
    };
    CHECK(log.events() == expected);
}

TEST_CASE("pcsc monitor: blocks in SCardGetStatusChange until something changes (no polling)") {
    FakePcscApi api;
    FakeBackoffTimer timer;
    EventLog log;
    api.add_reader("Reader A");
    cb::pcsc::ReaderMonitor monitor(api, timer, [&](const ReaderEvent& e) { log.push(e); });
    monitor.start();
    REQUIRE(api.wait_until_blocked());
    // The first call returns the initial state (UNAWARE in), the second blocks.
    CHECK(api.status_change_calls() == 2);
    api.insert_card("Reader A", atr_a);
    REQUIRE(log.wait_for(2));
    REQUIRE(api.wait_until_blocked());
    CHECK(api.status_change_calls() == 3);
    monitor.stop();
    CHECK(log.events().back() == event(ReaderEventKind::card_inserted, "Reader A", atr_a));
}

TEST_CASE("pcsc monitor: a card swapped between two wake-ups is removed then inserted") {
    FakePcscApi api;
    FakeBackoffTimer timer;
    EventLog log;
    api.add_reader("Reader A");
    api.insert_card("Reader A", atr_a);
    cb::pcsc::ReaderMonitor monitor(api, timer, [&](const ReaderEvent& e) { log.push(e); });
    monitor.start();
    REQUIRE(log.wait_for(2));
    api.swap_card("Reader A", atr_b);
    REQUIRE(log.wait_for(4));
    monitor.stop();
    const auto events = log.events();
    CHECK(events[2] == event(ReaderEventKind::card_removed, "Reader A"));
    CHECK(events[3] == event(ReaderEventKind::card_inserted, "Reader A", atr_b));
}

TEST_CASE("pcsc monitor: pcscd lost, re-established with backoff, readers and cards reported again") {
    FakePcscApi api;
    FakeBackoffTimer timer;
    EventLog log;
    api.add_reader("Reader A");
    api.insert_card("Reader A", atr_a);
    cb::pcsc::ReaderMonitor monitor(
        api, timer, [&](const ReaderEvent& e) { log.push(e); }, no_jitter());
    monitor.start();
    REQUIRE(log.wait_for(2));

    api.stop_service();
    REQUIRE(log.wait_for(5));
    auto events = log.events();
    CHECK(events[2] == event(ReaderEventKind::card_removed, "Reader A"));
    CHECK(events[3] == event(ReaderEventKind::reader_removed, "Reader A"));
    CHECK(events[4].kind == ReaderEventKind::service_lost);
    CHECK_THAT(events[4].detail, Catch::Contains("SCARD_E_NO_SERVICE"));

    // Still down: the delays double up to the maximum; the outage is reported once.
    for (std::size_t wait = 1; wait <= 4; ++wait) {
        REQUIRE(timer.wait_for_waits(wait));
        timer.release();
    }
    REQUIRE(timer.wait_for_waits(5));
    const auto delays = timer.delays();
    CHECK(delays == std::vector<std::chrono::milliseconds>{
                        std::chrono::milliseconds{100}, std::chrono::milliseconds{200}, std::chrono::milliseconds{400},
                        std::chrono::milliseconds{400}, std::chrono::milliseconds{400}});
    CHECK(log.events().size() == 5);
    CHECK(api.establish_calls() == 5);  // the first context, then one attempt per wait

    api.start_service();
    timer.release();
    REQUIRE(log.wait_for(8));
    events = log.events();
    CHECK(events[5] == event(ReaderEventKind::service_restored));
    CHECK(events[6] == event(ReaderEventKind::reader_added, "Reader A"));
    CHECK(events[7] == event(ReaderEventKind::card_inserted, "Reader A", atr_a));

    // And it watches again: the next insertion is seen.
    api.remove_card("Reader A");
    api.insert_card("Reader B", atr_b);
    REQUIRE(log.wait_for(11));
    monitor.stop();
    CHECK(log.events().back() == event(ReaderEventKind::card_inserted, "Reader B", atr_b));
}

TEST_CASE("pcsc monitor: pcscd absent at start is reported, and stop() ends the backoff wait") {
    FakePcscApi api;
    FakeBackoffTimer timer;
    EventLog log;
    api.stop_service();
    cb::pcsc::ReaderMonitor monitor(api, timer, [&](const ReaderEvent& e) { log.push(e); });
    monitor.start();
    REQUIRE(log.wait_for(1));
    REQUIRE(timer.wait_for_waits(1));
    monitor.stop();
    CHECK(log.events().size() == 1);
    CHECK(log.events()[0].kind == ReaderEventKind::service_lost);
    CHECK(api.establish_calls() == 1);
}

TEST_CASE("pcsc backoff: doubles up to the maximum, jitter stays within bounds, reset starts over") {
    cb::pcsc::Backoff exact(
        {.initial = std::chrono::milliseconds{50}, .maximum = std::chrono::milliseconds{300}, .jitter = 0.0}, 7);
    std::vector<long> delays;
    for (int attempt = 0; attempt < 6; ++attempt)
        delays.push_back(static_cast<long>(exact.next().count()));
    CHECK(delays == std::vector<long>{50, 100, 200, 300, 300, 300});
    exact.reset();
    CHECK(exact.next().count() == 50);

    cb::pcsc::Backoff jittered(
        {.initial = std::chrono::milliseconds{1000}, .maximum = std::chrono::milliseconds{8000}, .jitter = 0.5}, 42);
    long base = 1000;
    for (int attempt = 0; attempt < 10; ++attempt) {
        const auto delay = jittered.next().count();
        INFO("attempt " << attempt);
        CHECK(delay <= base);
        CHECK(delay >= base / 2);
        base = std::min(base * 2, 8000L);
    }
}
