// Forwarder: stored readings to the national space (docs/upstream.md §Flow).
//
//   outbox (queued) --worker thread--> bundle built, signed (Signer), outbox
//   row marked in_flight --io_context--> POST /fhir over mutual TLS
//   (HttpsClient) --> answer classified --worker thread--> outbox row final.
//
//   | answer                     | outbox                   | then                              |
//   |----------------------------|--------------------------|-----------------------------------|
//   | 2xx                        | delivered (server id)    | next reading of the patient       |
//   | 401                        | -                        | token refreshed once, resent;     |
//   |                            |                          | refresh refused: held not-paired  |
//   | 403                        | held "consent-refused"   | next reading                      |
//   | 409, 422, other 4xx        | refused (server message) | next reading                      |
//   | 429, 5xx, timeout, reset   | in_flight (unchanged)    | every send paused: exponential    |
//   |                            |                          | backoff with jitter, at least     |
//   |                            |                          | Retry-After; the same reading     |
//   |                            |                          | goes first when sending resumes   |
//   | no pairing for the patient | held "not-paired"        | queued again when paired          |
//   | bundle cannot be built     | held "<problem>"         | (e.g. glucose without moment)     |
//
// Order: at most one request in flight per patient, in reading order, so a
// patient's readings arrive in order; different patients go in parallel, up
// to the client's connections. Restart: rows left in_flight are queued again
// at start; the platform's conditional create on Observation.identifier makes
// a resend a no-op, so delivery is exactly-once as the platform sees it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/log.hpp"
#include "drivers/signing/signer.hpp"
#include "drivers/storage/outbox.hpp"
#include "drivers/upstream/https_client.hpp"
#include "protocol/upstream/jws.hpp"

namespace cb {

struct ForwarderSettings {
    std::size_t prefetch = 512;                  // readings taken ahead of the connections (being signed or ready)
    std::chrono::milliseconds poll{1000};        // looks for new rows this often when idle (poke() is faster)
    std::chrono::milliseconds record_delay{20};  // outcomes wait at most this long to be committed together
    std::chrono::milliseconds backoff_initial{500};
    std::chrono::milliseconds backoff_max{60'000};
    std::string facility_system = "urn:oid:1.2.250.1.71.4.2.2";  // FINESS
    std::string facility_value;
    std::string fhir_target = "/fhir";
    std::string token_target = "/token";
};

struct ForwarderCounters {
    std::uint64_t delivered = 0;
    std::uint64_t refused = 0;
    std::uint64_t held = 0;
    std::uint64_t retried = 0;  // answers that paused sending (429, 5xx, transport)
    std::uint64_t requests = 0;
    std::uint64_t token_refreshes = 0;
};

// What the bundle says about a device, from the catalog.
struct DeviceDescription {
    std::string manufacturer;
    std::string model;
};

class Forwarder {
public:
    using Devices = std::map<std::string, DeviceDescription, std::less<>>;

    Forwarder(boost::asio::io_context& io, Logger& log, storage::Outbox outbox, signing::Signer& signer,
              upstream::HttpsClient& client, Devices devices, ForwarderSettings settings);
    ~Forwarder();  // stop()
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // Queues what was in flight at the last stop again, and starts sending.
    Result<void> start();
    // New readings were stored: look for work now rather than at the next poll.
    void poke();
    // After a catalog reload.
    void set_devices(Devices devices);
    // Records what is answered, ends the worker thread. In-flight requests are
    // abandoned: their rows stay in_flight and are resent at the next start.
    void stop();

    const ForwarderCounters& counters() const noexcept { return m_counters; }
    // Readings taken from the outbox and not yet final (being signed, ready or in flight).
    std::size_t pending() const noexcept { return m_pending; }

private:
    struct Item {
        std::int64_t reading_id = 0;
        std::string patient;
        std::string body;  // the signed bundle; empty while it is being signed (a bundle never is)
        bool refreshed = false;
    };
    // Rows taken from the outbox and marked in_flight (worker -> io), before signing.
    struct Window {
        std::vector<std::pair<std::string, std::int64_t>> announced;  // patient, reading id, in reading order
        std::map<std::string, std::string> tokens;                    // patient -> access token, as stored
        std::size_t finals = 0;                                       // rows made final without a request (held)
        std::string error;                                            // the outbox could not be read
    };
    struct SignJob {
        storage::OutboxItem row;
        std::string id_pe;
    };
    struct Signed {
        std::int64_t reading_id = 0;
        std::string patient;
        std::optional<std::string> body;  // nullopt: no bundle, `problem` says why
        std::string problem;
    };

    // Worker thread (the store).
    void run_worker();
    void post_to_worker(std::function<void()> job);
    // The next queued rows (at most `limit`); records in one transaction the
    // outcomes waiting and the window's marks (in_flight, or held not-paired).
    Window read_window(std::size_t limit, std::vector<SignJob>& to_sign);
    std::vector<storage::OutboxTransition> take_transitions();
    void report_unrecorded(const Error& error);
    void flush_transitions();
    // `count` outcomes committed (or reported as not); false once stopping.
    bool recorded(std::size_t count);

    // Signing threads.
    void run_signer();
    std::optional<std::string> build_signed_bundle(const storage::OutboxItem& item, const std::string& id_pe,
                                                   std::string& problem) const;

    // io_context thread.
    void fetch();
    void on_window(const Window& window);
    void on_signed(std::vector<Signed> batch);
    void count_held(std::size_t count);               // held without a request: counted, logged once
    bool sendable(const std::string& patient) const;  // first reading signed, no request out
    void mark_ready(const std::string& patient);      // into m_ready if sendable
    void report_caught_up();                          // logs "caught up" once everything taken is final and recorded
    void dispatch();
    void send(const std::string& patient);
    void on_answer(const std::string& patient, Result<upstream::HttpResponse> answer);
    void finish(const std::string& patient, storage::OutboxTransition transition);
    void retry_later(const std::string& why, std::optional<std::chrono::seconds> retry_after);
    void refresh_token(const std::string& patient);
    void send_refresh(const std::string& patient, const std::string& refresh);
    void on_refreshed(const std::string& patient, Result<upstream::HttpResponse> answer);
    void record(storage::OutboxTransition transition);
    void schedule_poll();

    boost::asio::io_context& m_io;
    Logger& m_log;
    signing::Signer& m_signer;
    upstream::HttpsClient& m_client;
    ForwarderSettings m_settings;

    // Worker side (m_outbox and the device descriptions only there).
    storage::Outbox m_outbox;
    std::optional<upstream::BundleSigner> m_bundle_signer;            // made at start()
    std::map<std::string, storage::Pairing, std::less<>> m_pairings;  // found pairings; cleared when idle
    mutable std::mutex m_devices_mutex;
    Devices m_devices;
    std::mutex m_worker_mutex;
    std::condition_variable m_worker_wake;
    std::deque<std::function<void()>> m_jobs;
    std::vector<storage::OutboxTransition> m_transitions;  // guarded by m_worker_mutex
    std::size_t m_unrecorded = 0;  // outcomes answered and not yet committed; guarded by m_worker_mutex
    bool m_flush_posted = false;   // a flush is planned; guarded by m_worker_mutex
    bool m_worker_stopping = false;
    std::thread m_worker;

    // Signing side: bundles are built and signed in chunks by a few threads,
    // apart from the store, so that signing never waits for a commit and
    // the connections never wait for a whole batch.
    std::mutex m_sign_mutex;
    std::condition_variable m_sign_wake;
    std::deque<std::vector<SignJob>> m_sign_jobs;  // guarded by m_sign_mutex
    bool m_signers_stopping = false;               // guarded by m_sign_mutex
    std::vector<std::thread> m_signers;

    // io side.
    std::map<std::string, std::deque<Item>, std::less<>>
        m_queues;                               // per patient, reading order; the front goes once signed
    std::set<std::string, std::less<>> m_busy;  // patients with a request in flight
    // Patients whose first reading is signed and who have no request out, in
    // the order they became so: what dispatch() sends next, without walking
    // every queue. Checked again when taken (an entry may be stale or twice).
    std::deque<std::string> m_ready;
    std::map<std::string, std::string, std::less<>> m_tokens;  // patient -> current access token
    std::size_t m_pending = 0;
    bool m_fetching = false;
    bool m_idle = false;  // the last window found nothing queued
    bool m_poked = false;
    bool m_paused = false;
    bool m_stopped = false;
    std::chrono::milliseconds m_backoff{0};
    boost::asio::steady_timer m_pause_timer;
    boost::asio::steady_timer m_poll_timer;
    boost::asio::steady_timer m_record_timer;  // commits outcomes when no window read does
    bool m_poll_armed = false;
    std::minstd_rand m_jitter{std::random_device{}()};
    ForwarderCounters m_counters;
    std::set<std::string> m_logged;    // reasons already logged at warning level
    std::uint64_t m_caught_up_at = 0;  // requests + held when "caught up" was last logged
};

// The server id of the Observation in a transaction-response ("Observation/ID/..."
// in an entry's response.location); empty if none. Bounded, never throws.
std::string observation_id_of(std::string_view transaction_response);
// OperationOutcome.issue[0].diagnostics (or details.text), at most 300 bytes; empty if none.
std::string diagnostics_of(std::string_view operation_outcome);

}  // namespace cb
