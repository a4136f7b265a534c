#include "daemon/card_sessions.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>

#include <boost/asio/post.hpp>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>

#include "daemon/log.hpp"

namespace cb {

namespace {

constexpr std::size_t challenge_size = 32;
constexpr std::size_t max_ca_file_size = std::size_t{64} * 1024;

std::string in_quotes(std::string_view reader) {
    return "\"" + std::string(reader) + "\"";
}

std::string tries_text(std::optional<unsigned> tries) {
    if (!tries)
        return "tries unknown";
    return std::to_string(*tries) + (*tries == 1 ? " try left" : " tries left");
}

cards::Bytes random_challenge() {
    cards::Bytes challenge(challenge_size);
    if (RAND_bytes(challenge.data(), static_cast<int>(challenge.size())) != 1)
        std::abort();  // no randomness: nothing this gateway does with cards is sound
    return challenge;
}

std::int64_t system_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

pcsc::CardError request_error(const std::string& reader, std::string message) {
    return {pcsc::CardFailure::invalid_request, "card in " + in_quotes(reader) + ": " + std::move(message),
            std::nullopt};
}

}  // namespace

// --- events -------------------------------------------------------------

const char* to_string(SessionEnd reason) noexcept {
    switch (reason) {
        case SessionEnd::card_removed: return "card removed";
        case SessionEnd::card_reset: return "card reset";
        case SessionEnd::idle_timeout: return "idle timeout";
        case SessionEnd::shutdown: return "shutdown";
    }
    return "?";
}

const char* to_string(SessionState state) noexcept {
    switch (state) {
        case SessionState::empty: return "empty";
        case SessionState::identifying: return "identifying";
        case SessionState::patient_present: return "patient present";
        case SessionState::practitioner_awaiting_pin: return "practitioner awaiting PIN";
        case SessionState::practitioner_verifying: return "practitioner verifying PIN";
        case SessionState::practitioner_authenticated: return "practitioner authenticated";
        case SessionState::unknown_card: return "unknown card";
        case SessionState::error: return "error";
    }
    return "?";
}

std::string patient_reference(const cards::PatientIdentity& identity) {
    const int key = identity.nir_key();
    return identity.nir() + (key < 10 ? "0" : "") + std::to_string(key);
}

std::string describe_for_log(const CardEvent& event) {
    struct Describe {
        std::string operator()(const PatientPresent& e) const {
            return "patient card in " + in_quotes(e.reader) + ": present, NIR " + mask_nir(e.identity.nir()) +
                   ", card verified (" + std::to_string(e.apdus) + " APDUs)";
        }
        std::string operator()(const PatientLeft& e) const {
            return "patient card in " + in_quotes(e.reader) + ": left";
        }
        std::string operator()(const PractitionerAwaitingPin& e) const {
            return "practitioner card in " + in_quotes(e.reader) + ": awaiting PIN (" + tries_text(e.tries_left) +
                   (e.pinpad ? ", PIN pad" : "") + ")";
        }
        std::string operator()(const PractitionerAuthenticated& e) const {
            return "practitioner card in " + in_quotes(e.reader) + ": authenticated, IDNPS " + e.identity.idnps() +
                   ", profession " + e.identity.profession_code();
        }
        std::string operator()(const PractitionerEnded& e) const {
            return "practitioner session in " + in_quotes(e.reader) + " ended: " + to_string(e.reason);
        }
        std::string operator()(const PinRejected& e) const {
            return "practitioner card in " + in_quotes(e.reader) + ": PIN not accepted (" + pcsc::to_string(e.failure) +
                   ", " + tries_text(e.tries_left) + ")";
        }
        std::string operator()(const CardError& e) const { return e.message; }
    };
    return std::visit(Describe{}, event);
}

void CardEventBus::publish(const CardEvent& event) const {
    for (const auto& observer : m_observers)
        observer(event);
}

// --- timers and trust ---------------------------------------------------

void AsioSessionTimers::arm(const std::string& reader, std::chrono::seconds delay, std::function<void()> expired) {
    auto& timer = m_timers[reader];
    if (!timer)
        timer = std::make_unique<boost::asio::steady_timer>(m_io);
    timer->expires_after(delay);  // cancels a pending wait
    timer->async_wait([expired = std::move(expired)](const boost::system::error_code& error) {
        if (!error)
            expired();
    });
}

void AsioSessionTimers::cancel(const std::string& reader) {
    if (const auto found = m_timers.find(reader); found != m_timers.end())
        found->second->cancel();
}

Result<cards::Bytes> load_ca_certificate(const std::filesystem::path& path, std::string_view key) {
    const std::string what = std::string(key) + " " + path.string();
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(ErrorKind::io, what + ": cannot read: " + system_error_text(errno));
    cards::Bytes content;
    char byte = 0;
    while (content.size() <= max_ca_file_size && in.get(byte))
        content.push_back(static_cast<std::uint8_t>(byte));
    if (content.size() > max_ca_file_size)
        return fail(ErrorKind::invalid_input, what + ": larger than 64 KiB, not a certificate");

    std::unique_ptr<X509, decltype(&X509_free)> certificate(nullptr, &X509_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())),
                                                  &BIO_free);
    if (bio)
        certificate.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!certificate) {
        const unsigned char* cursor = content.data();
        certificate.reset(d2i_X509(nullptr, &cursor, static_cast<long>(content.size())));
    }
    if (!certificate)
        return fail(ErrorKind::invalid_input, what + ": not a PEM or DER certificate");
    const int size = i2d_X509(certificate.get(), nullptr);
    if (size <= 0)
        return fail(ErrorKind::invalid_input, what + ": not a PEM or DER certificate");
    cards::Bytes der(static_cast<std::size_t>(size));
    unsigned char* out = der.data();
    i2d_X509(certificate.get(), &out);
    return der;
}

// --- the worker ---------------------------------------------------------

// One thread per reader for blocking card I/O, with its own PC/SC context
// (established when first needed, again after pcscd went away). Jobs run in
// order; stop() drops those not started and joins.
class CardSessions::Worker {
public:
    using Job = std::function<void(Worker&)>;

    Worker(pcsc::PcscApi& api, std::string reader) : m_api(api), m_reader(std::move(reader)) {
        m_thread = std::thread([this] { run(); });
    }
    ~Worker() { stop(); }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void post(Job job) {
        std::lock_guard lock(m_mutex);
        if (m_stopping)
            return;
        m_jobs.push_back(std::move(job));
        m_changed.notify_one();
    }

    void stop() {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
            m_jobs.clear();
            m_changed.notify_one();
        }
        if (m_thread.joinable())
            m_thread.join();
    }

    // On the worker thread: a channel to the card. A context that pcscd no
    // longer knows is replaced once.
    pcsc::CardResult<pcsc::CardChannel> connect() {
        for (int attempt = 0;; ++attempt) {
            if (!m_context) {
                auto established = pcsc::PcscContext::establish(m_api);
                if (!established)
                    return std::move(established).error();
                m_context.emplace(std::move(established).value());
            }
            auto channel = pcsc::CardChannel::connect(*m_context, m_reader);
            if (channel || channel.error().failure != pcsc::CardFailure::service_unavailable || attempt > 0)
                return channel;
            m_context.reset();
        }
    }

    // On the worker thread: resets the card (SCardDisconnect with
    // SCARD_RESET_CARD), so that a verified PIN is forgotten. Best effort: a
    // card that is gone has nothing left to forget.
    void reset_card() {
        auto channel = connect();
        if (!channel || !m_context)
            return;
        // The channel stays open (shared mode) while a second handle resets the card.
        pcsc::CardHandle card = 0;
        pcsc::Protocol protocol = pcsc::Protocol::t1;
        if (m_api.connect(m_context->handle(), m_reader, pcsc::ShareMode::shared, card, protocol) ==
            pcsc::code::success)
            m_api.disconnect(card, pcsc::Disposition::reset);
    }

private:
    void run() {
        ::pthread_setname_np(::pthread_self(), "cb-card");
        for (;;) {
            Job job;
            {
                std::unique_lock lock(m_mutex);
                m_changed.wait(lock, [&] { return m_stopping || !m_jobs.empty(); });
                if (m_stopping)
                    break;
                job = std::move(m_jobs.front());
                m_jobs.pop_front();
            }
            job(*this);
        }
        m_context.reset();
    }

    pcsc::PcscApi& m_api;
    std::string m_reader;
    std::optional<pcsc::PcscContext> m_context;  // the worker thread's only

    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Job> m_jobs;
    bool m_stopping = false;
    std::thread m_thread;
};

// --- sessions -----------------------------------------------------------

CardSessions::CardSessions(boost::asio::io_context& io, pcsc::PcscApi& api, CardEventBus& bus, SessionTimers& timers,
                           CardTrust trust, CardSessionsOptions options)
    : m_io(io), m_api(api), m_bus(bus), m_timers(timers), m_trust(std::move(trust)), m_options(std::move(options)) {
    if (!m_options.challenge)
        m_options.challenge = random_challenge;
    if (!m_options.now)
        m_options.now = system_now;
}

CardSessions::~CardSessions() {
    stop();
}

pcsc::ReaderMonitor::Callback CardSessions::monitor_callback() {
    return
        [this](const pcsc::ReaderEvent& event) { boost::asio::post(m_io, [this, event] { on_reader_event(event); }); };
}

CardSessions::Session* CardSessions::find(std::string_view reader) {
    const auto found = m_sessions.find(reader);
    return found == m_sessions.end() ? nullptr : &found->second;
}

SessionState CardSessions::state(std::string_view reader) const {
    const auto found = m_sessions.find(reader);
    return found == m_sessions.end() ? SessionState::empty : found->second.state;
}

std::optional<std::string> CardSessions::patient_at(std::string_view station) const {
    const auto found = m_sessions.find(station);
    if (found == m_sessions.end() || found->second.state != SessionState::patient_present || !found->second.patient)
        return std::nullopt;
    return patient_reference(*found->second.patient);
}

CardSessions::Worker& CardSessions::worker(const std::string& reader) {
    auto& slot = m_workers[reader];
    if (!slot)
        slot = std::make_unique<Worker>(m_api, reader);
    return *slot;
}

void CardSessions::publish(const CardEvent& event) {
    if (!m_stopped)
        m_bus.publish(event);
}

void CardSessions::on_reader_event(const pcsc::ReaderEvent& event) {
    if (m_stopped)
        return;
    switch (event.kind) {
        case pcsc::ReaderEventKind::reader_added: m_sessions.try_emplace(event.reader); break;
        case pcsc::ReaderEventKind::card_inserted: card_inserted(event.reader); break;
        case pcsc::ReaderEventKind::card_removed: card_gone(event.reader); break;
        case pcsc::ReaderEventKind::reader_removed:
            card_gone(event.reader);
            m_sessions.erase(event.reader);
            break;
        // The monitor reports card_removed and reader_removed for everything
        // it knew before service_lost; a worker finds a new context itself.
        case pcsc::ReaderEventKind::service_lost:
        case pcsc::ReaderEventKind::service_restored: break;
    }
}

void CardSessions::card_inserted(const std::string& reader) {
    Session& session = m_sessions[reader];
    if (session.state != SessionState::empty)
        card_gone(reader);  // a missed removal: end what was there first
    identify(reader, session, false);
}

void CardSessions::identify(const std::string& reader, Session& session, bool reset_first) {
    session.state = SessionState::identifying;
    session.generation = m_next_generation++;
    session.patient.reset();
    session.tries_left.reset();
    session.pinpad = false;
    const std::uint64_t generation = session.generation;
    worker(reader).post([this, reader, generation, reset_first](Worker& io) {
        if (reset_first)
            io.reset_card();
        const cards::Bytes challenge = m_options.challenge();
        const std::int64_t now = m_options.now();
        Identified result = [&]() -> Identified {
            auto channel = io.connect();
            if (!channel)
                return std::move(channel).error();
            auto patient = pcsc::read_patient(
                *channel, {.challenge = challenge, .insurer_ca_der = m_trust.insurer_ca_der, .verification_time = now});
            if (patient)
                return std::move(patient).value();
            if (patient.error().failure != pcsc::CardFailure::unsupported_card)
                return std::move(patient).error();
            auto practitioner = pcsc::identify_practitioner(
                *channel,
                {.igc_sante_ca_der = m_trust.igc_sante_ca_der, .verification_time = now, .entry = m_options.pin_entry});
            if (practitioner)
                return std::move(practitioner).value();
            if (practitioner.error().failure != pcsc::CardFailure::unsupported_card)
                return std::move(practitioner).error();
            return UnknownCard{};
        }();
        boost::asio::post(m_io, [this, reader, generation, result = std::move(result)]() mutable {
            on_identified(reader, generation, std::move(result));
        });
    });
}

void CardSessions::on_identified(const std::string& reader, std::uint64_t generation, Identified result) {
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->generation != generation ||
        session->state != SessionState::identifying)
        return;  // the card left (or another took its place) meanwhile
    if (auto* patient = std::get_if<pcsc::PatientReading>(&result)) {
        session->state = SessionState::patient_present;
        session->patient = patient->identity;
        publish(PatientPresent{reader, patient->identity, patient->apdus});
        return;
    }
    if (auto* practitioner = std::get_if<pcsc::PractitionerCard>(&result)) {
        if (practitioner->pin.state == cards::PinState::blocked) {
            fail_session(reader, *session,
                         {pcsc::CardFailure::pin_blocked,
                          "card in " + in_quotes(reader) + ": practitioner PIN blocked (" +
                              practitioner->pin.status.describe() + ")",
                          0U});
            return;
        }
        session->state = SessionState::practitioner_awaiting_pin;
        // A PIN verified before we came (another application) is not ours: ask for it all the same.
        session->tries_left = practitioner->pin.tries_left;
        session->pinpad = practitioner->pinpad;
        publish(PractitionerAwaitingPin{reader, session->tries_left, session->pinpad});
        return;
    }
    if (std::holds_alternative<UnknownCard>(result)) {
        session->state = SessionState::unknown_card;
        publish(CardError{reader, pcsc::CardFailure::unsupported_card,
                          "card in " + in_quotes(reader) + ": neither a patient nor a practitioner card"});
        return;
    }
    fail_session(reader, *session, std::get<pcsc::CardError>(result));
}

void CardSessions::fail_session(const std::string& reader, Session& session, const pcsc::CardError& error) {
    session.state = SessionState::error;
    m_timers.cancel(reader);
    publish(CardError{reader, error.failure, error.message});
}

void CardSessions::card_gone(const std::string& reader) {
    Session* session = find(reader);
    if (session == nullptr)
        return;
    const SessionState was = session->state;
    session->state = SessionState::empty;
    session->generation = m_next_generation++;
    session->patient.reset();
    session->tries_left.reset();
    m_timers.cancel(reader);
    switch (was) {
        case SessionState::patient_present: publish(PatientLeft{reader}); break;
        case SessionState::practitioner_awaiting_pin:
        case SessionState::practitioner_verifying:
        case SessionState::practitioner_authenticated:
            publish(PractitionerEnded{reader, SessionEnd::card_removed});
            break;
        case SessionState::empty:
        case SessionState::identifying:
        case SessionState::unknown_card:
        case SessionState::error: break;
    }
}

void CardSessions::submit_pin(const std::string& reader, std::optional<cards::Pin> pin, pcsc::LastTry last_try,
                              PinCompletion done) {
    // Called only on the early returns, before `done` is moved into the job.
    const auto complete = [this, &done](pcsc::CardResult<pcsc::Done> result) {
        if (done)
            boost::asio::post(m_io, [done, result = std::move(result)] { done(result); });
    };
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->state != SessionState::practitioner_awaiting_pin) {
        complete(request_error(reader, "no practitioner card awaiting a PIN"));
        return;  // `pin` is wiped here
    }
    if (!pin && (!session->pinpad || m_options.pin_entry == pcsc::PinEntry::caller_only)) {
        complete(request_error(reader, "the reader has no PIN pad and no PIN was given"));
        return;
    }
    session->state = SessionState::practitioner_verifying;
    const std::uint64_t generation = session->generation;
    // std::function needs a copyable job: the PIN is shared by the job's
    // copies and wiped when the last one goes, right after the VERIFY.
    auto shared_pin = pin ? std::make_shared<cards::Pin>(std::move(*pin)) : std::shared_ptr<cards::Pin>();
    pin.reset();
    worker(reader).post([this, reader, generation, shared_pin = std::move(shared_pin), last_try,
                         done = std::move(done)](Worker& io) mutable {
        const cards::Bytes challenge = m_options.challenge();
        auto result = [&]() -> pcsc::CardResult<pcsc::PractitionerAuthentication> {
            auto channel = io.connect();
            if (!channel)
                return std::move(channel).error();
            return pcsc::authenticate_practitioner(*channel, {.pin = shared_pin.get(),
                                                              .entry = m_options.pin_entry,
                                                              .last_try = last_try,
                                                              .pinpad = m_options.pinpad,
                                                              .challenge = challenge,
                                                              .igc_sante_ca_der = m_trust.igc_sante_ca_der,
                                                              .verification_time = m_options.now()});
        }();
        shared_pin.reset();
        boost::asio::post(m_io, [this, reader, generation, result = std::move(result), done]() mutable {
            on_pin_result(reader, generation, std::move(result), done);
        });
    });
}

void CardSessions::on_pin_result(const std::string& reader, std::uint64_t generation,
                                 pcsc::CardResult<pcsc::PractitionerAuthentication> result, const PinCompletion& done) {
    const auto complete = [&](const pcsc::CardResult<pcsc::Done>& outcome) {
        if (done)
            done(outcome);
    };
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->generation != generation ||
        session->state != SessionState::practitioner_verifying) {
        complete(pcsc::CardError{pcsc::CardFailure::card_removed,
                                 "card in " + in_quotes(reader) + ": removed before the PIN check finished",
                                 std::nullopt});
        return;
    }
    if (result) {
        session->state = SessionState::practitioner_authenticated;
        session->tries_left.reset();
        arm_idle_timer(reader, *session);
        publish(PractitionerAuthenticated{reader, result->identity});
        complete(pcsc::Done{});
        return;
    }
    const pcsc::CardError& error = result.error();
    switch (error.failure) {
        case pcsc::CardFailure::wrong_pin:
            session->state = SessionState::practitioner_awaiting_pin;
            session->tries_left = error.tries_left;
            publish(PinRejected{reader, error.failure, error.tries_left});
            publish(PractitionerAwaitingPin{reader, session->tries_left, session->pinpad});
            break;
        case pcsc::CardFailure::pin_last_try:
        case pcsc::CardFailure::pin_entry_cancelled:
            session->state = SessionState::practitioner_awaiting_pin;
            if (error.tries_left)
                session->tries_left = error.tries_left;
            publish(PinRejected{reader, error.failure, session->tries_left});
            break;
        case pcsc::CardFailure::invalid_request: session->state = SessionState::practitioner_awaiting_pin; break;
        case pcsc::CardFailure::pin_blocked:
            publish(PinRejected{reader, error.failure, 0U});
            fail_session(reader, *session, error);
            break;
        default: fail_session(reader, *session, error); break;
    }
    complete(error);
}

void CardSessions::arm_idle_timer(const std::string& reader, const Session& session) {
    const std::uint64_t generation = session.generation;
    m_timers.arm(reader, m_options.practitioner_idle_timeout,
                 [this, reader, generation] { on_idle(reader, generation); });
}

void CardSessions::on_idle(const std::string& reader, std::uint64_t generation) {
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->generation != generation ||
        session->state != SessionState::practitioner_authenticated)
        return;  // a timer that fired as its session ended
    publish(PractitionerEnded{reader, SessionEnd::idle_timeout});
    // The card still holds the verified PIN: reset it, then it waits for a PIN again.
    identify(reader, *session, true);
}

void CardSessions::practitioner_activity(const std::string& reader) {
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->state != SessionState::practitioner_authenticated)
        return;
    arm_idle_timer(reader, *session);
    const std::uint64_t generation = session->generation;
    worker(reader).post([this, reader, generation](Worker& io) {
        auto result = [&]() -> pcsc::CardResult<cards::PinStatus> {
            auto channel = io.connect();
            if (!channel)
                return std::move(channel).error();
            return pcsc::query_practitioner_pin(*channel);
        }();
        boost::asio::post(m_io, [this, reader, generation, result = std::move(result)]() mutable {
            on_activity_result(reader, generation, std::move(result));
        });
    });
}

void CardSessions::on_activity_result(const std::string& reader, std::uint64_t generation,
                                      pcsc::CardResult<cards::PinStatus> result) {
    Session* session = find(reader);
    if (m_stopped || session == nullptr || session->generation != generation ||
        session->state != SessionState::practitioner_authenticated)
        return;
    if (result && result->state == cards::PinState::verified)
        return;
    const bool reset = (result && result->state == cards::PinState::not_verified) ||
                       (!result && result.error().failure == pcsc::CardFailure::card_reset);
    if (reset) {
        m_timers.cancel(reader);
        publish(PractitionerEnded{reader, SessionEnd::card_reset});
        identify(reader, *session, false);
        return;
    }
    if (!result && result.error().failure == pcsc::CardFailure::card_removed)
        return;  // the monitor's card_removed ends the session
    publish(PractitionerEnded{reader, SessionEnd::card_reset});
    fail_session(reader, *session,
                 result ? pcsc::CardError{pcsc::CardFailure::card_error,
                                          "card in " + in_quotes(reader) + ": VERIFY (query) returned " +
                                              result->status.describe(),
                                          std::nullopt}
                        : result.error());
}

void CardSessions::stop() {
    if (m_stopped)
        return;
    for (auto& [reader, session] : m_sessions) {
        m_timers.cancel(reader);
        if (session.state == SessionState::practitioner_authenticated)
            m_bus.publish(PractitionerEnded{reader, SessionEnd::shutdown});
    }
    m_stopped = true;
    for (auto& [reader, worker] : m_workers)
        worker->stop();
    m_workers.clear();
}

}  // namespace cb
