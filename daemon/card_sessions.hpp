// Card sessions: who is at each PC/SC reader, as one state machine per
// reader, fed by the reader monitor's events and by the caller's PIN.
//
// States and transitions (one Session per reader; "gen" is the reader's
// generation, bumped at every insertion and removal so that the result of
// card I/O started for an older card is recognised and dropped):
//
//   | from                      | input                               | to                        | published |
//   |---------------------------|-------------------------------------|---------------------------|----------------------------------------|
//   | (none)                    | reader_added                        | empty                     | | | empty |
//   card_inserted                       | identifying               | (identify job on the reader's worker)  | |
//   identifying               | patient read and verified           | patient_present           | PatientPresent | |
//   identifying               | practitioner certificate verified,  | practitioner_awaiting_pin |
//   PractitionerAwaitingPin{tries_left}    | |                           | PIN not blocked                     | | | |
//   identifying               | neither profile's SELECT accepted   | unknown_card              | CardError
//   (unsupported_card)           | | identifying               | any other failure, or PIN blocked   | error |
//   CardError                              | | practitioner_awaiting_pin | submit_pin                          |
//   practitioner_verifying    | (authenticate job)                     | | practitioner_verifying    | PIN, challenge
//   and chain verified   | practitioner_authenticated| PractitionerAuthenticated; idle timer  | |
//   practitioner_verifying    | wrong PIN                           | practitioner_awaiting_pin | PinRejected,
//   PractitionerAwaitingPin   | | practitioner_verifying    | one try left and not confirmed, PIN |
//   practitioner_awaiting_pin | PinRejected (nothing was sent)         | |                           | pad cancelled,
//   no PIN and no pad    |                           |                                        | |
//   practitioner_verifying    | PIN blocked                         | error                     | PinRejected,
//   CardError                 | | practitioner_verifying    | any other failure                   | error | CardError |
//   | practitioner_authenticated| idle timer expired                  | identifying               |
//   PractitionerEnded{idle_timeout}; the   | |                           |                                     | | card
//   is reset (its PIN state dropped)  | |                           |                                     | | and
//   identified again                   | | practitioner_authenticated| practitioner_activity, card answers |
//   identifying               | PractitionerEnded{card_reset}          | |                           | "PIN not
//   verified" (it was reset)   |                           |                                        | | any but empty
//   | card_removed, reader_removed        | empty (removed)           | PatientLeft from patient_present;      | | | |
//   | PractitionerEnded{card_removed} from   | |                           |                                     | |
//   the practitioner states                |
//
// The gateway never sends a PIN on its own: a PIN is sent once per
// submit_pin, a wrong one is reported with the tries left and the session
// waits for the next submit_pin; with one try left it is sent only if the
// caller confirmed (LastTry::allow). A PIN is held in a cards::Pin (wiped on
// destruction) until the worker has sent it, and is never logged nor in a
// message.
//
// Threads: everything here runs on the io_context's thread, except card I/O,
// which blocks and runs on one worker thread per reader (its own PC/SC
// context); each result is posted back. Reader events come from the monitor
// thread through monitor_callback(), which posts them.
//
// Logging: the daemon logs describe_for_log(event): a patient is named only
// by a masked NIR (first 5 characters and "…"), never by name (docs/cards.md).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "daemon/ingest_policy.hpp"
#include "drivers/pcsc/card_operations.hpp"
#include "drivers/pcsc/reader_monitor.hpp"
#include "protocol/cards/certificate.hpp"
#include "protocol/cards/patient_card.hpp"
#include "protocol/result.hpp"

namespace cb {

// --- events -------------------------------------------------------------

struct PatientPresent {
    std::string reader;
    cards::PatientIdentity identity;  // read and its card's key verified
    std::size_t apdus = 0;            // APDUs the identification used
};

struct PatientLeft {
    std::string reader;
};

struct PractitionerAwaitingPin {
    std::string reader;
    std::optional<unsigned> tries_left;
    bool pinpad = false;  // the reader collects the PIN itself (submit_pin without a PIN)
};

struct PractitionerAuthenticated {
    std::string reader;
    cards::PractitionerIdentity identity;
};

enum class SessionEnd { card_removed, card_reset, idle_timeout, shutdown };
const char* to_string(SessionEnd reason) noexcept;

struct PractitionerEnded {
    std::string reader;
    SessionEnd reason = SessionEnd::card_removed;
};

// A PIN that did not authenticate: wrong_pin, pin_last_try (not sent),
// pin_blocked or pin_entry_cancelled.
struct PinRejected {
    std::string reader;
    pcsc::CardFailure failure = pcsc::CardFailure::wrong_pin;
    std::optional<unsigned> tries_left;
};

struct CardError {
    std::string reader;
    pcsc::CardFailure failure = pcsc::CardFailure::reader_error;
    std::string message;  // names the reader and the command; no PIN, no patient identifier
};

using CardEvent = std::variant<PatientPresent, PatientLeft, PractitionerAwaitingPin, PractitionerAuthenticated,
                               PractitionerEnded, PinRejected, CardError>;

// The patient reference a patient card gives to ingest (place_reading's
// station binding): the NIR with its key, 15 characters.
std::string patient_reference(const cards::PatientIdentity& identity);

// One line for the log, without names nor a full NIR (see above).
std::string describe_for_log(const CardEvent& event);

// The in-process event bus: observers are called on the io_context's
// thread, in subscription order, for every event. An observer must not
// throw; it may call back into CardSessions.
class CardEventBus {
public:
    using Observer = std::function<void(const CardEvent&)>;
    void subscribe(Observer observer) { m_observers.push_back(std::move(observer)); }
    void publish(const CardEvent& event) const;

private:
    std::vector<Observer> m_observers;
};

// --- collaborators ------------------------------------------------------

// The idle timers of practitioner sessions, one per reader (a role, so unit
// tests fire them instead of waiting).
class SessionTimers {
public:
    virtual ~SessionTimers() = default;
    // Calls `expired` on the io_context's thread after `delay`, unless
    // cancel(reader) or another arm(reader) comes first (it replaces it).
    virtual void arm(const std::string& reader, std::chrono::seconds delay, std::function<void()> expired) = 0;
    virtual void cancel(const std::string& reader) = 0;
};

// SessionTimers on the io_context's steady timers.
class AsioSessionTimers final : public SessionTimers {
public:
    explicit AsioSessionTimers(boost::asio::io_context& io) : m_io(io) {}
    void arm(const std::string& reader, std::chrono::seconds delay, std::function<void()> expired) override;
    void cancel(const std::string& reader) override;

private:
    boost::asio::io_context& m_io;
    std::map<std::string, std::unique_ptr<boost::asio::steady_timer>> m_timers;
};

// The trust anchors, as DER.
struct CardTrust {
    cards::Bytes insurer_ca_der;
    cards::Bytes igc_sante_ca_der;
};

// Reads a CA certificate file, PEM or DER, as DER (at most 64 KiB). Fails
// with ErrorKind::io or invalid_input naming `key` and the path:
//     "cards.insurer_ca_file /etc/x.crt: cannot read: No such file or directory"
//     "cards.insurer_ca_file /etc/x.crt: not a PEM or DER certificate"
Result<cards::Bytes> load_ca_certificate(const std::filesystem::path& path, std::string_view key);

struct CardSessionsOptions {
    std::chrono::seconds practitioner_idle_timeout{900};
    pcsc::PinEntry pin_entry = pcsc::PinEntry::pinpad_if_offered;
    pcsc::PinpadOptions pinpad{};
    // A fresh challenge per card authentication (default: 32 bytes from RAND_bytes).
    std::function<cards::Bytes()> challenge;
    // Seconds since 1970 UTC, for certificate validity (default: the system clock).
    std::function<std::int64_t()> now;
};

enum class SessionState {
    empty,
    identifying,
    patient_present,
    practitioner_awaiting_pin,
    practitioner_verifying,
    practitioner_authenticated,
    unknown_card,
    error,
};
const char* to_string(SessionState state) noexcept;

class CardSessions final : public PatientPresence {
public:
    // Called with the outcome of submit_pin, on the io_context's thread.
    using PinCompletion = std::function<void(const pcsc::CardResult<pcsc::Done>&)>;

    // `api`, `bus` and `timers` must outlive the sessions.
    CardSessions(boost::asio::io_context& io, pcsc::PcscApi& api, CardEventBus& bus, SessionTimers& timers,
                 CardTrust trust, CardSessionsOptions options);
    ~CardSessions() override;
    CardSessions(const CardSessions&) = delete;
    CardSessions& operator=(const CardSessions&) = delete;

    // A ReaderMonitor callback that posts each event onto the io_context.
    pcsc::ReaderMonitor::Callback monitor_callback();
    // One reader event, on the io_context's thread.
    void on_reader_event(const pcsc::ReaderEvent& event);

    // Verifies the practitioner's PIN on the card in `reader` (the session
    // must be awaiting a PIN). `pin` nullopt: the reader's PIN pad collects
    // it (PractitionerAwaitingPin::pinpad). `done` (optional) gets the
    // outcome: invalid_request without card I/O when no practitioner card
    // awaits a PIN there; otherwise as the table above.
    void submit_pin(const std::string& reader, std::optional<cards::Pin> pin, pcsc::LastTry last_try,
                    PinCompletion done = {});

    // The practitioner at `reader` did something: the idle timer starts
    // again, and the card is asked whether its PIN is still verified (a card
    // reset ends the session). No effect unless authenticated.
    void practitioner_activity(const std::string& reader);

    // Ends every session (PractitionerEnded{shutdown} for authenticated
    // ones), drops queued card I/O and joins the workers: a card command in
    // flight finishes first (bounded by the reader driver's timeouts).
    // Idempotent; nothing is published afterwards.
    void stop();

    // PatientPresence: the patient_reference() of the verified patient card
    // in the reader named `station`.
    std::optional<std::string> patient_at(std::string_view station) const override;

    SessionState state(std::string_view reader) const;

private:
    class Worker;
    struct Session {
        SessionState state = SessionState::empty;
        std::uint64_t generation = 0;
        std::optional<cards::PatientIdentity> patient;
        std::optional<unsigned> tries_left;
        bool pinpad = false;
    };
    struct UnknownCard {};
    using Identified = std::variant<pcsc::PatientReading, pcsc::PractitionerCard, UnknownCard, pcsc::CardError>;

    Session* find(std::string_view reader);
    Worker& worker(const std::string& reader);
    void publish(const CardEvent& event);
    void card_inserted(const std::string& reader);
    void card_gone(const std::string& reader);
    void identify(const std::string& reader, Session& session, bool reset_first);
    void on_identified(const std::string& reader, std::uint64_t generation, Identified result);
    void on_pin_result(const std::string& reader, std::uint64_t generation,
                       pcsc::CardResult<pcsc::PractitionerAuthentication> result, const PinCompletion& done);
    void on_activity_result(const std::string& reader, std::uint64_t generation,
                            pcsc::CardResult<cards::PinStatus> result);
    void on_idle(const std::string& reader, std::uint64_t generation);
    void fail_session(const std::string& reader, Session& session, const pcsc::CardError& error);
    void arm_idle_timer(const std::string& reader, const Session& session);

    boost::asio::io_context& m_io;
    pcsc::PcscApi& m_api;
    CardEventBus& m_bus;
    SessionTimers& m_timers;
    CardTrust m_trust;
    CardSessionsOptions m_options;
    std::map<std::string, Session, std::less<>> m_sessions;
    std::map<std::string, std::unique_ptr<Worker>, std::less<>> m_workers;  // kept until stop()
    std::uint64_t m_next_generation = 1;
    bool m_stopped = false;
};

}  // namespace cb
