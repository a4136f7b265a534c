#include "daemon/forwarder.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>

#include "daemon/pairing.hpp"
#include "protocol/upstream/fhir_bundle.hpp"
#include "protocol/upstream/jws.hpp"

namespace cb {

namespace {

constexpr std::string_view component = "upstream";
constexpr std::size_t max_answer_parse = std::size_t{256} * 1024;

// How much nicer than the rest of the daemon the signing threads run.
constexpr int signer_nice_increment = 10;

// Raises the calling thread's nice value by `increment` (at most 19). Linux
// applies nice per thread, and lowering one's own priority needs no privilege;
// a failure leaves the thread as it was, which only costs throughput.
void lower_this_thread_priority(int increment) {
    const auto thread = static_cast<id_t>(::gettid());
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, thread);
    if (errno == 0)
        static_cast<void>(::setpriority(PRIO_PROCESS, thread, std::min(19, current + increment)));
}

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

devices::Microseconds now_time() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::optional<boost::json::value> parse_answer(std::string_view text) {
    if (text.empty() || text.size() > max_answer_parse)
        return std::nullopt;
    boost::json::parse_options options;
    options.max_depth = 32;
    boost::system::error_code error;
    auto value = boost::json::parse(text, error, {}, options);
    if (error)
        return std::nullopt;
    return value;
}

const boost::json::value* member(const boost::json::value& value, std::string_view key) {
    if (!value.is_object())
        return nullptr;
    return value.as_object().if_contains(key);
}

std::string printable(std::string_view text, std::size_t max) {
    std::string out;
    for (char c : text.substr(0, max))
        out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    return out;
}

}  // namespace

std::string observation_id_of(std::string_view transaction_response) {
    const auto value = parse_answer(transaction_response);
    if (!value)
        return {};
    const auto* entries = member(*value, "entry");
    if (entries == nullptr || !entries->is_array())
        return {};
    for (const auto& entry : entries->as_array()) {
        const auto* response = member(entry, "response");
        const auto* location = response != nullptr ? member(*response, "location") : nullptr;
        if (location == nullptr || !location->is_string())
            continue;
        std::string_view text = location->as_string();
        constexpr std::string_view prefix = "Observation/";
        if (const auto at = text.find(prefix); at != std::string_view::npos) {
            text.remove_prefix(at + prefix.size());
            return printable(text.substr(0, text.find('/')), 64);
        }
    }
    return {};
}

std::string diagnostics_of(std::string_view operation_outcome) {
    const auto value = parse_answer(operation_outcome);
    if (!value)
        return printable(operation_outcome, 120);
    const auto* issues = member(*value, "issue");
    if (issues == nullptr || !issues->is_array() || issues->as_array().empty())
        return {};
    const auto& issue = issues->as_array().front();
    if (const auto* diagnostics = member(issue, "diagnostics"); diagnostics != nullptr && diagnostics->is_string())
        return printable(diagnostics->as_string(), 300);
    if (const auto* details = member(issue, "details"); details != nullptr) {
        if (const auto* text = member(*details, "text"); text != nullptr && text->is_string())
            return printable(text->as_string(), 300);
    }
    return {};
}

Forwarder::Forwarder(boost::asio::io_context& io, Logger& log, storage::Outbox outbox, signing::Signer& signer,
                     upstream::HttpsClient& client, Devices devices, ForwarderSettings settings)
    : m_io(io),
      m_log(log),
      m_signer(signer),
      m_client(client),
      m_settings(std::move(settings)),
      m_outbox(std::move(outbox)),
      m_devices(std::move(devices)),
      m_pause_timer(io),
      m_poll_timer(io),
      m_record_timer(io) {}

Forwarder::~Forwarder() {
    stop();
}

Result<void> Forwarder::start() {
    m_bundle_signer = CB_TRY(upstream::BundleSigner::prepare(
        signing::signature_request(m_signer, now_time(), m_settings.facility_system, m_settings.facility_value),
        signing::sign_function(m_signer)));
    const auto resumed = CB_TRY(m_outbox.resume_in_flight(now_us()));
    if (resumed > 0)
        m_log.notice(component, std::to_string(resumed) + " reading(s) in flight at the last stop are sent again");
    m_worker = std::thread([this] { run_worker(); });
    // Building and signing bundles is the forwarder's main cost: one thread
    // per core (bench/forward).
    const unsigned signers = std::clamp(std::thread::hardware_concurrency(), 1U, 4U);
    for (unsigned i = 0; i < signers; ++i)
        m_signers.emplace_back([this] { run_signer(); });
    fetch();
    return {};
}

void Forwarder::poke() {
    m_poked = true;
    fetch();
}

void Forwarder::set_devices(Devices devices) {
    std::lock_guard lock(m_devices_mutex);
    m_devices = std::move(devices);
}

void Forwarder::stop() {
    if (m_stopped)
        return;
    m_stopped = true;
    m_pause_timer.cancel();
    m_poll_timer.cancel();
    m_record_timer.cancel();  // the worker flushes what is pending as it ends
    {
        std::lock_guard lock(m_worker_mutex);
        m_worker_stopping = true;
        m_worker_wake.notify_one();
    }
    if (m_worker.joinable())
        m_worker.join();
    {
        std::lock_guard lock(m_sign_mutex);
        m_signers_stopping = true;
        m_sign_wake.notify_all();
    }
    for (auto& signer : m_signers)
        signer.join();
    m_signers.clear();
}

// --- worker thread ------------------------------------------------------------

void Forwarder::post_to_worker(std::function<void()> job) {
    std::lock_guard lock(m_worker_mutex);
    m_jobs.push_back(std::move(job));
    m_worker_wake.notify_one();
}

void Forwarder::run_worker() {
    ::pthread_setname_np(::pthread_self(), "cb-outbox");  // top -H, bench/forward
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(m_worker_mutex);
            m_worker_wake.wait(lock, [this] { return m_worker_stopping || !m_jobs.empty(); });
            if (m_worker_stopping) {
                lock.unlock();
                flush_transitions();  // what was answered is recorded; the rest resumes at start
                return;
            }
            job = std::move(m_jobs.front());
            m_jobs.pop_front();
        }
        job();
    }
}

std::vector<storage::OutboxTransition> Forwarder::take_transitions() {
    std::vector<storage::OutboxTransition> batch;
    std::lock_guard lock(m_worker_mutex);
    batch.swap(m_transitions);
    m_flush_posted = false;
    return batch;
}

void Forwarder::report_unrecorded(const Error& error) {
    // Not recorded: the rows stay in_flight and are sent again at the next
    // start (a duplicate the platform recognises), so nothing is lost.
    boost::asio::post(m_io, [this, message = error.message()] {
        m_log.error(component, "cannot record delivery outcomes (they will be re-sent at restart): " + message);
    });
}

void Forwarder::flush_transitions() {
    const auto batch = take_transitions();
    if (batch.empty())
        return;
    if (auto done = m_outbox.record(batch, now_us()); !done)
        report_unrecorded(done.error());
    // The last outcomes may be the ones "caught up" waits for (not when
    // stopping: the io side is gone).
    if (recorded(batch.size()))
        boost::asio::post(m_io, [this] { report_caught_up(); });
}

bool Forwarder::recorded(std::size_t count) {
    std::lock_guard lock(m_worker_mutex);
    m_unrecorded -= count;
    return !m_worker_stopping;
}

std::optional<std::string> Forwarder::build_signed_bundle(const storage::OutboxItem& item, const std::string& id_pe,
                                                          std::string& problem) const {
    auto device = devices::DeviceId::parse(item.device_id);
    auto reading = upstream::StoredReading::parse(item.body);
    if (!device || !reading) {
        problem = "unreadable-row: " + (!device ? device.error().message() : reading.error().message());
        return std::nullopt;
    }
    // The IG's moment of measurement, from the device's meal context.
    const auto moment = reading->meal ? std::optional(upstream::glucose_moment_of(*reading->meal)) : std::nullopt;
    DeviceDescription description;
    {
        std::lock_guard lock(m_devices_mutex);
        if (const auto it = m_devices.find(item.device_id); it != m_devices.end())
            description = it->second;
    }
    const upstream::BundleInput input{.device = *device,
                                      .eui64 = std::nullopt,
                                      .manufacturer = description.manufacturer,
                                      .model = description.model,
                                      .sequence = static_cast<std::uint64_t>(item.sequence),
                                      .reading = std::move(*reading),
                                      .patient_idpe = id_pe,
                                      .practitioner_idnps = std::nullopt,
                                      .glucose_moment = moment};
    // The bundle written directly as canonical JSON (no JSON tree), and the
    // text sent: the signature spliced in front of it (docs/upstream.md §5).
    auto bundle = upstream::bundle_text(input);
    if (!bundle) {
        problem = std::string(upstream::to_string(bundle.error().problem));
        return std::nullopt;
    }
    auto text = m_bundle_signer->signed_canonical_text(*bundle, now_time());
    if (!text) {
        problem = "signing-failed: " + text.error().message();
        return std::nullopt;
    }
    return std::move(*text);
}

Forwarder::Window Forwarder::read_window(std::size_t limit, std::vector<SignJob>& to_sign) {
    Window window;
    auto items = m_outbox.next(0, limit);
    if (!items) {
        window.error = items.error().message();
        flush_transitions();
        return window;
    }
    if (items->empty())
        m_pairings.clear();  // idle: a patient paired again meanwhile is read afresh
    // The outcomes answered so far, then this window's marks, in one
    // transaction: most touch the same pages. Reading the window first is
    // safe: no outcome makes a row queued again.
    std::vector<storage::OutboxTransition> transitions = take_transitions();
    const std::size_t outcomes = transitions.size();
    transitions.reserve(outcomes + items->size());
    for (auto& item : *items) {
        // Pairings, read once per patient (only found ones are kept: a pairing
        // made by `carebridged --pair` is seen at the next window).
        auto it = m_pairings.find(item.patient);
        if (it == m_pairings.end()) {
            if (auto found = m_outbox.pairing(item.patient); found && *found)
                it = m_pairings.emplace(item.patient, std::move(**found)).first;
        }
        storage::OutboxTransition transition;
        transition.reading_id = item.reading_id;
        if (it == m_pairings.end()) {
            transition.state = storage::OutboxState::held;
            transition.reason = "not-paired";
            ++window.finals;
        } else {
            transition.state = storage::OutboxState::in_flight;
            window.tokens[item.patient] = it->second.access_token;
            window.announced.emplace_back(item.patient, item.reading_id);
            to_sign.push_back({std::move(item), it->second.id_pe});
        }
        transitions.push_back(std::move(transition));
    }
    if (auto done = m_outbox.record(transitions, now_us()); !done) {
        if (outcomes > 0)
            report_unrecorded(done.error());
        window.announced.clear();
        window.finals = 0;
        window.error = done.error().message();
        to_sign.clear();
    }
    (void)recorded(outcomes);  // before on_window, which may report "caught up"
    return window;
}

// --- signing threads ---------------------------------------------------------

void Forwarder::run_signer() {
    ::pthread_setname_np(::pthread_self(), "cb-sign");
    // Signing is work done ahead of the connections: the io thread (requests,
    // answers, device acks) and the broker must not wait behind it for a core.
    // Linux applies nice per thread; raising one's own nice needs no privilege.
    // On 2 cores this keeps the connections busy (bench/README.md).
    lower_this_thread_priority(signer_nice_increment);
    for (;;) {
        std::vector<SignJob> chunk;
        {
            std::unique_lock lock(m_sign_mutex);
            m_sign_wake.wait(lock, [this] { return m_signers_stopping || !m_sign_jobs.empty(); });
            if (m_signers_stopping)
                return;  // what is not signed stays in_flight: sent again at the next start
            chunk = std::move(m_sign_jobs.front());
            m_sign_jobs.pop_front();
        }
        std::vector<Signed> batch;
        batch.reserve(chunk.size());
        for (auto& job : chunk) {
            Signed result;
            result.reading_id = job.row.reading_id;
            result.patient = std::move(job.row.patient);
            result.body = build_signed_bundle(job.row, job.id_pe, result.problem);
            batch.push_back(std::move(result));
        }
        boost::asio::post(m_io, [this, batch = std::move(batch)]() mutable { on_signed(std::move(batch)); });
    }
}

// --- io_context thread ----------------------------------------------------------

void Forwarder::fetch() {
    // A new window as soon as a chunk's worth is free, so that signing runs
    // continuously ahead of the connections rather than in bursts.
    constexpr std::size_t chunk = 16;  // bundles per signing job
    const std::size_t step = std::max<std::size_t>(chunk, m_settings.prefetch / 8);
    if (m_stopped || m_fetching || m_pending + step > m_settings.prefetch)
        return;
    m_fetching = true;
    m_poked = false;
    const std::size_t limit = m_settings.prefetch - m_pending;
    post_to_worker([this, limit] {
        std::vector<SignJob> to_sign;  // the window also records the outcomes answered so far
        auto window = read_window(limit, to_sign);
        // The window reaches the io thread before any of its signed bundles:
        // both are posted in this order to the same io_context.
        boost::asio::post(m_io, [this, window = std::move(window)] { on_window(window); });
        if (to_sign.empty())
            return;
        std::lock_guard lock(m_sign_mutex);
        for (std::size_t at = 0; at < to_sign.size(); at += chunk) {
            const auto from = to_sign.begin() + static_cast<std::ptrdiff_t>(at);
            const auto to = to_sign.begin() + static_cast<std::ptrdiff_t>(std::min(to_sign.size(), at + chunk));
            m_sign_jobs.emplace_back(std::make_move_iterator(from), std::make_move_iterator(to));
        }
        m_sign_wake.notify_all();
    });
}

void Forwarder::on_window(const Window& window) {
    m_fetching = false;
    if (m_stopped)
        return;
    if (!window.error.empty() && m_logged.insert("outbox: " + window.error).second)
        m_log.error(component, "cannot read the outbox: " + window.error);
    count_held(window.finals);
    for (auto& [patient, token] : window.tokens)
        m_tokens.try_emplace(patient, token);  // a token refreshed meanwhile wins
    const bool got_work = !window.announced.empty() || window.finals > 0;
    for (auto& [patient, reading_id] : window.announced) {
        ++m_pending;
        Item item;
        item.reading_id = reading_id;
        item.patient = patient;
        m_queues[patient].push_back(std::move(item));
    }
    m_idle = !got_work;
    report_caught_up();
    if (got_work || m_poked)
        fetch();
    if (!m_fetching)
        schedule_poll();
}

void Forwarder::report_caught_up() {
    if (m_stopped || !m_idle || m_pending != 0 || m_counters.requests + m_counters.held == m_caught_up_at)
        return;
    {
        // An outcome answered but not yet committed is not final for a reader
        // of the store: the flush or window that commits it calls back here.
        std::lock_guard lock(m_worker_mutex);
        if (m_unrecorded != 0)
            return;
    }
    // Everything taken from the outbox is final and recorded: tests and operators wait for this line.
    m_caught_up_at = m_counters.requests + m_counters.held;
    m_log.info(component, "caught up: " + std::to_string(m_counters.delivered) + " delivered, " +
                              std::to_string(m_counters.held) + " held, " + std::to_string(m_counters.refused) +
                              " refused since start");
}

void Forwarder::on_signed(std::vector<Signed> batch) {
    if (m_stopped)
        return;
    for (auto& result : batch) {
        const auto queue = m_queues.find(result.patient);
        if (queue == m_queues.end())
            continue;  // cannot happen: announced by its window
        auto item = std::find_if(queue->second.begin(), queue->second.end(),
                                 [&](const Item& candidate) { return candidate.reading_id == result.reading_id; });
        if (item == queue->second.end())
            continue;
        if (result.body) {
            item->body = std::move(*result.body);
            if (item == queue->second.begin())
                mark_ready(result.patient);
            continue;
        }
        // No bundle (e.g. glucose without its moment): held, with the reason.
        storage::OutboxTransition transition;
        transition.reading_id = result.reading_id;
        transition.state = storage::OutboxState::held;
        transition.reason = result.problem;
        count_held(1);
        queue->second.erase(item);
        if (queue->second.empty())
            m_queues.erase(queue);
        else
            mark_ready(result.patient);  // its new first reading may be signed
        --m_pending;
        record(std::move(transition));
    }
    // The window read that fetch() asks for reports "caught up" when nothing is left.
    dispatch();
    fetch();
}

void Forwarder::count_held(std::size_t count) {
    m_counters.held += count;
    if (count > 0 && m_logged.insert("held").second)
        m_log.warning(component, std::to_string(count) +
                                     " reading(s) held (not paired, or no valid bundle; see carebridged --outbox)");
}

void Forwarder::schedule_poll() {
    if (m_poll_armed || m_stopped)
        return;
    m_poll_armed = true;
    m_poll_timer.expires_after(m_settings.poll);
    m_poll_timer.async_wait([this](const boost::system::error_code& error) {
        if (error)
            return;
        m_poll_armed = false;
        fetch();
        if (!m_fetching)
            schedule_poll();
    });
}

bool Forwarder::sendable(const std::string& patient) const {
    const auto queue = m_queues.find(patient);
    return queue != m_queues.end() && !queue->second.empty() && !queue->second.front().body.empty() &&
           !m_busy.contains(patient);
}

void Forwarder::mark_ready(const std::string& patient) {
    if (sendable(patient))
        m_ready.push_back(patient);
}

void Forwarder::dispatch() {
    if (m_paused || m_stopped)
        return;
    while (!m_ready.empty()) {
        if (m_client.queued() >= std::max<std::size_t>(1, m_client.in_flight()))
            return;  // as many requests wait in the client as are on the wire: enough
        const std::string patient = std::move(m_ready.front());
        m_ready.pop_front();
        if (sendable(patient))
            send(patient);
    }
}

void Forwarder::send(const std::string& patient) {
    auto& queue = m_queues[patient];
    const Item& item = queue.front();
    m_busy.insert(patient);
    ++m_counters.requests;
    upstream::HttpRequest request;
    request.target = m_settings.fhir_target;
    request.content_type = "application/fhir+json";
    request.body = item.body;
    request.bearer = m_tokens[patient];
    m_client.send(request, [this, patient](Result<upstream::HttpResponse> answer) {
        if (!m_stopped)
            on_answer(patient, std::move(answer));
    });
}

void Forwarder::on_answer(const std::string& patient, Result<upstream::HttpResponse> answer) {
    m_busy.erase(patient);
    auto& queue = m_queues[patient];
    if (queue.empty())
        return;  // cannot happen: the item stays queued while its request is out
    Item& item = queue.front();
    storage::OutboxTransition transition;
    transition.reading_id = item.reading_id;
    transition.attempted = true;
    if (!answer) {
        retry_later(answer.error().message(), std::nullopt);
        mark_ready(patient);  // sent again first once the pause ends
        return;
    }
    const unsigned status = answer->status;
    if (status >= 200 && status < 300) {
        transition.state = storage::OutboxState::delivered;
        transition.server_id = observation_id_of(answer->body);
        ++m_counters.delivered;
        if (m_backoff.count() > 0)
            m_log.notice(component, "the national space answers again: delivering");
        m_backoff = std::chrono::milliseconds(0);
        finish(patient, std::move(transition));
        return;
    }
    if (status == 401 && !item.refreshed) {
        item.refreshed = true;
        refresh_token(patient);
        return;
    }
    if (status == 429 || status >= 500) {
        retry_later("HTTP " + std::to_string(status), answer->retry_after);
        mark_ready(patient);
        return;
    }
    const std::string diagnostics = diagnostics_of(answer->body);
    if (status == 401 || status == 403) {
        transition.state = storage::OutboxState::held;
        transition.reason = (status == 401 ? "not-paired: token refused" : "consent-refused") +
                            (diagnostics.empty() ? std::string() : ": " + diagnostics);
        ++m_counters.held;
    } else {
        transition.state = storage::OutboxState::refused;
        transition.reason = "HTTP " + std::to_string(status) + (diagnostics.empty() ? "" : ": " + diagnostics);
        ++m_counters.refused;
    }
    if (m_logged.insert(transition.reason.substr(0, 60)).second)
        m_log.warning(component, "reading " + std::to_string(item.reading_id) + " " +
                                     storage::to_string(transition.state) + ": " + transition.reason);
    finish(patient, std::move(transition));
}

void Forwarder::finish(const std::string& patient, storage::OutboxTransition transition) {
    auto& queue = m_queues[patient];
    queue.pop_front();
    if (queue.empty())
        m_queues.erase(patient);
    else
        mark_ready(patient);
    --m_pending;
    record(std::move(transition));
    dispatch();
    fetch();
}

void Forwarder::retry_later(const std::string& why, std::optional<std::chrono::seconds> retry_after) {
    // The reading stays first in its patient's queue: it goes first when sending resumes.
    ++m_counters.retried;
    if (m_paused)
        return;
    m_backoff = m_backoff.count() == 0 ? m_settings.backoff_initial : std::min(m_backoff * 2, m_settings.backoff_max);
    std::uniform_int_distribution<std::int64_t> jitter(0, m_backoff.count() / 2);
    auto delay = m_backoff + std::chrono::milliseconds(jitter(m_jitter));
    if (retry_after && *retry_after > delay)
        delay = std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after);
    m_paused = true;
    m_log.warning(component, "national space unavailable (" + why + "): sending paused for " +
                                 std::to_string(delay.count()) + " ms");
    m_pause_timer.expires_after(delay);
    m_pause_timer.async_wait([this](const boost::system::error_code& error) {
        if (error)
            return;
        m_paused = false;
        dispatch();
    });
}

void Forwarder::refresh_token(const std::string& patient) {
    m_busy.insert(patient);
    ++m_counters.token_refreshes;
    // The refresh token is only in the store: read it on the worker.
    post_to_worker([this, patient] {
        auto pairing = m_outbox.pairing(patient);
        std::string refresh = (pairing && *pairing) ? (*pairing)->refresh_token : std::string();
        boost::asio::post(m_io, [this, patient, refresh = std::move(refresh)] { send_refresh(patient, refresh); });
    });
}

void Forwarder::send_refresh(const std::string& patient, const std::string& refresh) {
    if (m_stopped)
        return;
    upstream::HttpRequest request;
    request.target = m_settings.token_target;
    request.content_type = "application/json";
    request.body =
        boost::json::serialize(boost::json::object{{"grant_type", "refresh_token"}, {"refresh_token", refresh}});
    m_client.send(request, [this, patient](Result<upstream::HttpResponse> answer) {
        if (!m_stopped)
            on_refreshed(patient, std::move(answer));
    });
}

void Forwarder::on_refreshed(const std::string& patient, Result<upstream::HttpResponse> answer) {
    m_busy.erase(patient);
    if (!answer) {
        retry_later(answer.error().message(), std::nullopt);
        m_queues[patient].front().refreshed = false;  // the 401 is answered again after the pause
        mark_ready(patient);
        return;
    }
    const TokenAnswer tokens = answer->status == 200 ? parse_token_answer(answer->body) : TokenAnswer{};
    if (tokens.access_token.empty()) {
        // Refused: the pairing is gone; the reading waits for a new one.
        storage::OutboxTransition transition;
        transition.reading_id = m_queues[patient].front().reading_id;
        transition.state = storage::OutboxState::held;
        transition.reason = "not-paired: token refresh refused (HTTP " + std::to_string(answer->status) + ")";
        ++m_counters.held;
        if (m_logged.insert("refresh " + patient).second)
            m_log.warning(component, "patient " + patient_for_log(patient) + ": " + transition.reason +
                                         "; pair again (carebridged --pair)");
        finish(patient, std::move(transition));
        return;
    }
    m_tokens[patient] = tokens.access_token;
    post_to_worker([this, patient, tokens] {
        auto current = m_outbox.pairing(patient);
        if (!current || !*current)
            return;
        storage::Pairing renewed = **current;
        renewed.access_token = tokens.access_token;
        if (!tokens.refresh_token.empty())
            renewed.refresh_token = tokens.refresh_token;
        renewed.access_expires_us = now_us() + tokens.expires_in * 1'000'000;
        (void)m_outbox.save_pairing(renewed);
    });
    send(patient);
}

void Forwarder::record(storage::OutboxTransition transition) {
    // Outcomes are committed in batches: by the next window read (which
    // flushes first), or after record_delay when no window comes.
    {
        std::lock_guard lock(m_worker_mutex);
        m_transitions.push_back(std::move(transition));
        ++m_unrecorded;
        if (m_flush_posted)
            return;  // the flush already planned takes this one too
        m_flush_posted = true;
    }
    m_record_timer.expires_after(m_settings.record_delay);
    m_record_timer.async_wait([this](const boost::system::error_code& error) {
        if (!error)
            post_to_worker([this] { flush_transitions(); });
    });
}

}  // namespace cb
