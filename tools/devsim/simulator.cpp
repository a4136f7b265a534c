#include "tools/devsim/simulator.hpp"

#include <fcntl.h>
#include <mosquitto.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "protocol/devices/reading.hpp"

namespace cb::devsim {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t max_unconfirmed_publishes = 100;  // our in-flight window
constexpr std::size_t flood_batch = 50;                 // readings per step when not rate-limited
constexpr auto reconnect_min = 250ms;
constexpr auto reconnect_max = 8s;
constexpr auto closing_grace = 10s;  // after a timeout or signal, how long "offline" + DISCONNECT may take

devices::Microseconds wall_now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

void log_line(const std::string& line) {
    // One write per line so that threads do not interleave within a line.
    const std::string text = "devsim: " + line + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
}

std::string read_whole_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

// Writes `content` to `path` durably: temporary file, fsync, rename, fsync of the directory.
Result<void> write_durably(const std::filesystem::path& path, const std::string& content) {
    const auto temporary = path.parent_path() / ("." + path.filename().string() + ".tmp");
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(ErrorKind::io, temporary.string() + ": " + system_error_text(errno));
    std::size_t written = 0;
    while (written < content.size()) {
        const auto n = ::write(fd, content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int error = errno;
            ::close(fd);
            return fail(ErrorKind::io, temporary.string() + ": write: " + system_error_text(error));
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        const int error = errno;
        ::close(fd);
        return fail(ErrorKind::io, temporary.string() + ": fsync: " + system_error_text(error));
    }
    ::close(fd);
    if (::rename(temporary.c_str(), path.c_str()) != 0)
        return fail(ErrorKind::io, path.string() + ": rename: " + system_error_text(errno));
    const int directory = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory >= 0) {
        ::fsync(directory);
        ::close(directory);
    }
    return {};
}

struct MosquittoDeleter {
    void operator()(mosquitto* client) const { mosquitto_destroy(client); }
};

enum class Phase { idle, connecting, connected, closing, closed };

class VirtualDevice {
public:
    VirtualDevice(const Options& options, DeviceState state, devices::DeviceId other, std::uint64_t seed,
                  TimeOffset offset, std::optional<std::filesystem::path> state_file)
        : m_options(options),
          m_state(std::move(state)),
          m_other(std::move(other)),
          m_random(seed),
          m_offset(offset),
          m_state_file(std::move(state_file)),
          m_meas_topic(devices::measurement_topic(m_state.device())),
          m_ack_topic(devices::ack_topic(m_state.device())),
          m_status_topic(devices::device_status_topic(m_state.device())) {
        m_report.device_id = m_state.device().str();
        m_report.model = to_string(m_state.model());
    }
    VirtualDevice(const VirtualDevice&) = delete;
    VirtualDevice& operator=(const VirtualDevice&) = delete;

    Result<void> configure() {
        const auto& id = m_state.device().str();
        const auto certificate = m_options.pki_dir / "devices" / (id + ".crt");
        const auto key = m_options.pki_dir / "devices" / (id + ".key");
        for (const auto& file : {m_options.cafile, certificate, key})
            if (::access(file.c_str(), R_OK) != 0)
                return fail(ErrorKind::io, "device " + id + ": " + file.string() + ": " + system_error_text(errno));
        m_client.reset(mosquitto_new(id.c_str(), false, this));
        if (!m_client)
            return fail(ErrorKind::internal, "device " + id + ": mosquitto_new failed");
        auto* client = m_client.get();
        int rc =
            mosquitto_tls_set(client, m_options.cafile.c_str(), nullptr, certificate.c_str(), key.c_str(), nullptr);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_will_set(client, m_status_topic.c_str(), static_cast<int>(devices::status_offline.size()),
                                    devices::status_offline.data(), 1, true);
        if (rc != MOSQ_ERR_SUCCESS)
            return fail(ErrorKind::io, "device " + id + ": TLS or will setup: " + mosquitto_strerror(rc));
        mosquitto_connect_callback_set(
            client, [](mosquitto*, void* self, int result) { static_cast<VirtualDevice*>(self)->on_connect(result); });
        mosquitto_disconnect_callback_set(client, [](mosquitto*, void* self, int result) {
            static_cast<VirtualDevice*>(self)->on_disconnect(result);
        });
        mosquitto_publish_callback_set(
            client, [](mosquitto*, void* self, int mid) { static_cast<VirtualDevice*>(self)->on_publish(mid); });
        mosquitto_message_callback_set(client, [](mosquitto*, void* self, const mosquitto_message* message) {
            static_cast<VirtualDevice*>(self)->on_message(*message);
        });
        return {};
    }

    // Everything that is not socket I/O: connect, produce, resend, finish.
    void step(Clock::time_point now, bool stopping) {
        m_now = now;
        if (m_phase == Phase::closed)
            return;
        if (stopping && m_phase != Phase::closing) {
            begin_closing();
            return;
        }
        if (m_phase == Phase::closing) {
            if (m_offline_confirmed)
                mosquitto_disconnect(m_client.get());
            if (m_offline_confirmed || now >= m_closing_deadline)
                close();
            return;
        }
        if (m_phase == Phase::idle) {
            if (now >= m_reconnect_at)
                connect();
            return;
        }
        if (m_phase != Phase::connected)
            return;
        if (!m_state.unacked().empty() && now - m_last_progress >= std::chrono::seconds(m_options.resend_after_s)) {
            log_line("device " + m_state.device().str() + ": no ack for " + std::to_string(m_options.resend_after_s) +
                     " s, resending " + std::to_string(m_state.unacked().size()) + " reading(s)");
            resend_all();
        }
        produce();
        if (work_done())
            begin_closing();
    }

    int socket() const {
        return m_phase == Phase::connecting || m_phase == Phase::connected || m_phase == Phase::closing
                   ? mosquitto_socket(m_client.get())
                   : -1;
    }
    bool wants_write() const { return mosquitto_want_write(m_client.get()); }
    bool tls_pending() const {
        auto* ssl = static_cast<SSL*>(mosquitto_ssl_get(m_client.get()));
        return socket() >= 0 && ssl != nullptr && SSL_pending(ssl) > 0;
    }

    void read() {
        int rc = mosquitto_loop_read(m_client.get(), 1);
        while (rc == MOSQ_ERR_SUCCESS && tls_pending())
            rc = mosquitto_loop_read(m_client.get(), 1);
        if (rc != MOSQ_ERR_SUCCESS)
            connection_lost(rc);
    }
    void write() {
        const int rc = mosquitto_loop_write(m_client.get(), 1);
        if (rc != MOSQ_ERR_SUCCESS)
            connection_lost(rc);
    }
    void misc() {
        if (socket() >= 0 && mosquitto_loop_misc(m_client.get()) != MOSQ_ERR_SUCCESS)
            connection_lost(MOSQ_ERR_CONN_LOST);
    }

    // When step() next has something to do, at the latest.
    Clock::time_point next_wake() const {
        switch (m_phase) {
            case Phase::idle: return m_reconnect_at;
            case Phase::connected:
                if (m_produced < m_options.readings && !rate_limited())
                    return m_now;
                if (m_produced < m_options.readings)
                    return std::min(m_next_due, m_last_progress + std::chrono::seconds(m_options.resend_after_s));
                return m_last_progress + std::chrono::seconds(m_options.resend_after_s);
            default: return m_now + 1s;
        }
    }

    bool closed() const { return m_phase == Phase::closed; }

    DeviceReport report() const {
        DeviceReport report = m_report;
        report.produced = m_produced;
        report.acked_through = m_state.acked_through();
        report.last_sequence = m_state.next_sequence() - 1;
        report.unacked = m_state.unacked().size();
        report.finished = m_finished_work;
        return report;
    }

private:
    bool rate_limited() const { return m_options.rate > 0 && m_options.misbehave != Misbehaviour::flood; }

    bool work_done() const {
        return m_produced >= m_options.readings && m_unconfirmed.empty() && !m_state_failed &&
               (!m_options.until_acked || m_state.unacked().empty());
    }

    void connect() {
        const auto& id = m_state.device().str();
        const auto attempt = [this] {
            return m_connects_tried == 0 ? mosquitto_connect(m_client.get(), m_options.host.c_str(), m_options.port,
                                                             static_cast<int>(m_options.keepalive_s))
                                         : mosquitto_reconnect(m_client.get());
        };
        // libmosquitto 2.0 makes a process-wide OpenSSL UI method on its first
        // TLS connect, without a lock: connects wait for one to have succeeded.
        static std::mutex first_connect_mutex;
        static std::atomic<bool> tls_initialised{false};
        int rc = 0;
        if (tls_initialised.load()) {
            rc = attempt();
        } else {
            const std::lock_guard lock(first_connect_mutex);
            rc = attempt();
            if (rc == MOSQ_ERR_SUCCESS)
                tls_initialised = true;
        }
        ++m_connects_tried;
        if (rc != MOSQ_ERR_SUCCESS) {
            if (!m_connect_failure_logged)
                log_line("device " + id + ": cannot connect to " + m_options.host + ":" +
                         std::to_string(m_options.port) + ": " + mosquitto_strerror(rc) + " (retrying)");
            m_connect_failure_logged = true;
            schedule_reconnect();
            return;
        }
        m_phase = Phase::connecting;
    }

    void schedule_reconnect() {
        m_phase = Phase::idle;
        m_reconnect_at = m_now + m_backoff;
        m_backoff = std::min<Clock::duration>(m_backoff * 2, reconnect_max);
    }

    void connection_lost(int rc) {
        if (m_phase == Phase::closing) {
            close();
            return;
        }
        if (m_phase == Phase::closed || m_phase == Phase::idle)
            return;
        log_line("device " + m_state.device().str() + ": connection lost: " + mosquitto_strerror(rc) +
                 " (reconnecting)");
        m_unconfirmed.clear();  // resent from the store on reconnect
        schedule_reconnect();
    }

    void on_connect(int result) {
        if (result != 0) {
            log_line("device " + m_state.device().str() +
                     ": broker refused the connection: " + mosquitto_connack_string(result));
            return;  // the broker closes; connection_lost follows
        }
        m_phase = Phase::connected;
        m_backoff = reconnect_min;
        ++m_report.connects;
        m_last_progress = m_now;
        if (m_report.connects == 1)
            m_next_due = m_now;
        m_next_due = std::max(m_next_due, m_now - 1s);
        mosquitto_subscribe(m_client.get(), nullptr, m_ack_topic.c_str(), 1);
        publish(m_status_topic, std::string(devices::status_online), true);
        resend_all();
    }

    void on_disconnect(int result) {
        if (m_phase == Phase::closing || result == 0)
            close();
        else
            connection_lost(result);
    }

    void on_publish(int mid) {
        m_unconfirmed.erase(mid);
        // Disconnecting is left to step(): inside a callback libmosquitto
        // would only queue the DISCONNECT, and a closed device is not polled.
        if (m_phase == Phase::closing && mid == m_offline_mid)
            m_offline_confirmed = true;
    }

    void on_message(const mosquitto_message& message) {
        if (message.topic == nullptr || m_ack_topic != message.topic)
            return;
        const std::string_view payload(static_cast<const char*>(message.payload),
                                       static_cast<std::size_t>(std::max(message.payloadlen, 0)));
        const auto sequence = devices::parse_ack_payload(payload);
        if (!sequence) {
            if (m_report.bad_acks++ == 0)
                log_line("device " + m_state.device().str() + ": ignoring an ack: " + sequence.error().message());
            return;
        }
        auto outcome = m_state.acknowledge(*sequence);
        if (!outcome.advanced)
            return;
        m_last_progress = m_now;
        m_dirty = true;
        if (outcome.last)
            m_replay_candidate = std::move(outcome.last);
        save_state();
    }

    // Returns the message id, or 0 when libmosquitto refused it.
    int publish(const std::string& topic, const std::string& payload, bool retain) {
        int mid = 0;
        const int rc = mosquitto_publish(m_client.get(), &mid, topic.c_str(), static_cast<int>(payload.size()),
                                         payload.data(), 1, retain);
        if (rc != MOSQ_ERR_SUCCESS) {
            log_line("device " + m_state.device().str() + ": publish on " + topic + ": " + mosquitto_strerror(rc));
            return 0;
        }
        m_unconfirmed.insert(mid);
        return mid;
    }

    void resend_all() {
        for (const auto& reading : m_state.unacked())
            if (publish(m_meas_topic, reading.payload, false) != 0)
                ++m_report.resent;
        m_last_progress = m_now;
    }

    bool hits(std::uint64_t sequence) const {
        return m_options.misbehave != Misbehaviour::none && sequence % m_options.misbehave_every == 0;
    }

    // Makes the reading `sequence`, applying the run's misbehaviour when it hits it.
    std::string make_payload(std::uint64_t sequence) {
        auto draft = draft_reading(m_state.model(), m_state.device(), sequence, wall_now(), m_offset, m_random);
        const auto mode = m_options.misbehave;
        const bool payload_mode = mode == Misbehaviour::bad_json || mode == Misbehaviour::wrong_unit ||
                                  mode == Misbehaviour::out_of_range || mode == Misbehaviour::other_id ||
                                  mode == Misbehaviour::oversized || mode == Misbehaviour::unknown_field;
        if (!payload_mode || !hits(sequence))
            return render_payload(draft);
        if (mode == Misbehaviour::other_id) {
            // A valid copy on the other device's topic: the broker's ACL drops it.
            publish(devices::measurement_topic(m_other), render_payload(draft), false);
        }
        ++m_report.misbehaviour[static_cast<std::size_t>(mode)];
        apply_misbehaviour(mode, draft, m_other);
        return render_payload(draft, mode);
    }

    void produce() {
        std::size_t allowed = 0;
        if (rate_limited()) {
            const auto interval =
                std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / m_options.rate));
            while (m_next_due <= m_now && allowed < flood_batch) {
                ++allowed;
                m_next_due += interval;
            }
        } else {
            allowed = flood_batch;
        }
        const auto room =
            max_unconfirmed_publishes > m_unconfirmed.size() ? max_unconfirmed_publishes - m_unconfirmed.size() : 0;
        allowed = std::min<std::uint64_t>({allowed, room, m_options.readings - m_produced});
        if (allowed == 0 || m_state_failed)
            return;

        std::vector<std::size_t> order;  // indices into `made`, in publication order
        std::vector<StoredReading> made;
        while (made.size() < allowed) {
            const auto sequence = m_state.take_sequence();
            if (!sequence) {
                log_line("device " + m_state.device().str() + ": sequence numbers exhausted");
                m_state_failed = true;
                break;
            }
            made.push_back({*sequence, make_payload(*sequence)});
            ++m_produced;
            m_state.add(made.back());
            m_dirty = true;
            const auto index = made.size() - 1;
            // out-of-order: seq s is held back and published after s+1.
            if (m_options.misbehave == Misbehaviour::out_of_order && hits(*sequence) && made.size() < allowed) {
                const auto next = m_state.take_sequence();
                if (next) {
                    made.push_back({*next, make_payload(*next)});
                    ++m_produced;
                    m_state.add(made.back());
                    order.push_back(index + 1);
                    ++m_report.misbehaviour[static_cast<std::size_t>(Misbehaviour::out_of_order)];
                }
            }
            order.push_back(index);
        }
        save_state();  // stored durably before it is sent, as a device's flash
        if (m_state_failed)
            return;
        for (const auto index : order) {
            const auto& reading = made[index];
            if (publish(m_meas_topic, reading.payload, false) != 0) {
                ++m_report.published;
                if (m_options.misbehave == Misbehaviour::flood)
                    ++m_report.misbehaviour[static_cast<std::size_t>(Misbehaviour::flood)];
            }
            if (m_options.misbehave == Misbehaviour::replay && hits(reading.sequence) && m_replay_candidate) {
                if (publish(m_meas_topic, m_replay_candidate->payload, false) != 0)
                    ++m_report.misbehaviour[static_cast<std::size_t>(Misbehaviour::replay)];
            }
        }
    }

    void save_state() {
        if (!m_state_file || !m_dirty)
            return;
        const auto written = write_durably(*m_state_file, serialize_state(m_state));
        if (!written) {
            log_line("device " + m_state.device().str() + ": state file: " + written.error().message() +
                     " (the device stops producing)");
            m_state_failed = true;
            return;
        }
        m_dirty = false;
    }

    void begin_closing() {
        m_finished_work = work_done();
        save_state();
        if (m_phase != Phase::connected) {
            close();
            return;
        }
        m_phase = Phase::closing;
        m_closing_deadline = m_now + closing_grace;
        m_offline_mid = publish(m_status_topic, std::string(devices::status_offline), true);
        if (m_offline_mid == 0) {
            mosquitto_disconnect(m_client.get());
            close();
        }
    }

    void close() {
        if (m_phase == Phase::closed)
            return;
        m_phase = Phase::closed;
        save_state();
    }

    const Options& m_options;
    DeviceState m_state;
    devices::DeviceId m_other;
    Random m_random;
    TimeOffset m_offset;
    std::optional<std::filesystem::path> m_state_file;
    std::string m_meas_topic;
    std::string m_ack_topic;
    std::string m_status_topic;
    std::unique_ptr<mosquitto, MosquittoDeleter> m_client;

    Phase m_phase = Phase::idle;
    Clock::time_point m_now{};
    Clock::time_point m_reconnect_at{};
    Clock::duration m_backoff = reconnect_min;
    Clock::time_point m_next_due{};
    Clock::time_point m_last_progress{};
    Clock::time_point m_closing_deadline{};
    std::uint64_t m_connects_tried = 0;
    bool m_connect_failure_logged = false;
    std::set<int> m_unconfirmed;  // message ids without PUBACK yet
    int m_offline_mid = 0;
    bool m_offline_confirmed = false;
    std::uint64_t m_produced = 0;
    bool m_dirty = false;
    bool m_state_failed = false;
    bool m_finished_work = false;
    std::optional<StoredReading> m_replay_candidate;
    DeviceReport m_report;
};

// One worker: poll over its devices' sockets (see simulator.hpp).
void run_worker(const std::vector<VirtualDevice*>& devices, Clock::time_point deadline,
                const std::atomic<bool>& stop_requested, std::atomic<bool>& timed_out) {
    std::vector<pollfd> fds;
    std::vector<VirtualDevice*> owners;
    auto last_misc = Clock::now();
    while (true) {
        const auto now = Clock::now();
        const bool past_deadline = now >= deadline;
        if (past_deadline)
            timed_out = true;
        const bool stopping = past_deadline || stop_requested.load();
        bool all_closed = true;
        for (auto* device : devices) {
            device->step(now, stopping);
            all_closed = all_closed && device->closed();
        }
        if (all_closed)
            return;

        fds.clear();
        owners.clear();
        auto wake = now + 100ms;
        for (auto* device : devices) {
            wake = std::min(wake, device->next_wake());
            const int fd = device->socket();
            if (fd < 0)
                continue;
            if (device->tls_pending())
                wake = now;
            fds.push_back({fd, static_cast<short>(POLLIN | (device->wants_write() ? POLLOUT : 0)), 0});
            owners.push_back(device);
        }
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::max(wake - now, Clock::duration{}));
        const int ready = ::poll(fds.data(), static_cast<nfds_t>(fds.size()), static_cast<int>(wait.count()));
        if (ready < 0 && errno != EINTR) {
            log_line(std::string("poll: ") + system_error_text(errno));
            return;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            const auto events = ready > 0 ? fds[i].revents : 0;
            if ((events & (POLLIN | POLLERR | POLLHUP)) != 0 || owners[i]->tls_pending())
                owners[i]->read();
            if ((events & POLLOUT) != 0 && owners[i]->socket() >= 0)
                owners[i]->write();
        }
        if (Clock::now() - last_misc >= 1s) {
            last_misc = Clock::now();
            for (auto* device : devices)
                device->misc();
        }
    }
}

Result<DeviceState> load_state(const DeviceSpec& spec, const std::optional<std::filesystem::path>& file) {
    if (!file || !std::filesystem::exists(*file))
        return DeviceState(spec.id, spec.model);
    auto state = parse_state(read_whole_file(*file));
    if (!state)
        return state.error().with_context(file->string());
    if (!(state->device() == spec.id) || state->model() != spec.model)
        return fail(ErrorKind::invalid_input, file->string() + ": holds device " + state->device().str() + " (" +
                                                  to_string(state->model()) + "), not " + spec.id.str() + " (" +
                                                  to_string(spec.model) + ")");
    return state;
}

}  // namespace

Result<RunReport> run_simulation(const Options& options, const std::atomic<bool>& stop_requested) {
    if (options.state_dir) {
        std::error_code error;
        std::filesystem::create_directories(*options.state_dir, error);
        if (error)
            return fail(ErrorKind::io, options.state_dir->string() + ": " + error.message());
    }
    std::vector<std::unique_ptr<VirtualDevice>> devices;
    for (std::size_t i = 0; i < options.devices.size(); ++i) {
        const auto& spec = options.devices[i];
        std::optional<std::filesystem::path> file;
        if (options.state_dir)
            file = *options.state_dir / (spec.id.str() + ".json");
        auto state = CB_TRY(load_state(spec, file));
        // other-id: the next device of the run, or a name no certificate has.
        auto other =
            options.devices.size() > 1
                ? options.devices[(i + 1) % options.devices.size()].id
                : devices::DeviceId::parse(spec.id.str() == "devsim-other" ? "devsim-other-2" : "devsim-other").value();
        const std::uint64_t seed = options.seed + 0x9E3779B97F4A7C15ULL * (i + 1);
        devices.push_back(std::make_unique<VirtualDevice>(options, std::move(state), std::move(other), seed,
                                                          i % 2 == 0 ? TimeOffset::utc : TimeOffset::paris_winter,
                                                          std::move(file)));
        CB_TRY(devices.back()->configure());
    }

    const auto thread_count = std::min<std::size_t>(options.threads, devices.size());
    std::vector<std::vector<VirtualDevice*>> shares(thread_count);
    for (std::size_t i = 0; i < devices.size(); ++i)
        shares[i % thread_count].push_back(devices[i].get());
    const auto deadline = Clock::now() + std::chrono::seconds(options.timeout_s);
    std::atomic<bool> timed_out{false};
    {
        std::vector<std::jthread> workers;
        workers.reserve(shares.size());
        for (const auto& share : shares)
            workers.emplace_back([&share, deadline, &stop_requested, &timed_out] {
                run_worker(share, deadline, stop_requested, timed_out);
            });
    }

    RunReport report;
    report.interrupted = stop_requested.load();
    report.timed_out = timed_out.load();
    report.ok = true;
    for (const auto& device : devices) {
        report.devices.push_back(device->report());
        report.ok = report.ok && report.devices.back().finished;
    }
    report.ok = report.ok && !report.interrupted;
    return report;
}

std::string report_json(const RunReport& report) {
    namespace json = boost::json;
    json::array devices;
    for (const auto& device : report.devices) {
        json::object misbehaviour;
        for (std::size_t i = 1; i < misbehaviour_count; ++i)
            misbehaviour[to_string(static_cast<Misbehaviour>(i))] = device.misbehaviour[i];
        devices.push_back(json::object{
            {"device_id", device.device_id},
            {"model", device.model},
            {"produced", device.produced},
            {"published", device.published},
            {"resent", device.resent},
            {"acked_through", device.acked_through},
            {"last_seq", device.last_sequence},
            {"unacked", device.unacked},
            {"connects", device.connects},
            {"bad_acks", device.bad_acks},
            {"finished", device.finished},
            {"misbehaviour", std::move(misbehaviour)},
        });
    }
    const json::object root{{"ok", report.ok},
                            {"interrupted", report.interrupted},
                            {"timed_out", report.timed_out},
                            {"devices", std::move(devices)}};
    return json::serialize(root) + "\n";
}

}  // namespace cb::devsim
