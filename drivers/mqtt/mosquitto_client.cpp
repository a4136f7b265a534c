#include "drivers/mqtt/mosquitto_client.hpp"

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <mutex>

namespace cb::mqtt {

namespace {

constexpr std::string_view birth_payload = "online";
constexpr std::string_view will_payload = "offline";

void initialise_library() {
    static std::once_flag once;
    std::call_once(once, [] { mosquitto_lib_init(); });
}

MosquittoClient* self(void* user_data) {
    return static_cast<MosquittoClient*>(user_data);
}

void on_connect_trampoline(mosquitto*, void* user_data, int result_code, int flags) {
    self(user_data)->handle_connect(result_code, flags);
}

void on_message_trampoline(mosquitto*, void* user_data, const mosquitto_message* message) {
    Message copy;
    copy.topic = message->topic;
    if (message->payload != nullptr && message->payloadlen > 0)
        copy.payload.assign(static_cast<const char*>(message->payload), static_cast<std::size_t>(message->payloadlen));
    self(user_data)->handle_message(copy);
}

}  // namespace

void MosquittoClient::Deleter::operator()(mosquitto* client) const {
    mosquitto_destroy(client);
}

MosquittoClient::MosquittoClient(boost::asio::io_context& io, ClientSettings settings, MessageHandler on_message,
                                 EventHandler on_event)
    : m_io(io),
      m_settings(std::move(settings)),
      m_on_message(std::move(on_message)),
      m_on_event(std::move(on_event)),
      m_socket(io),
      m_misc_timer(io),
      m_reconnect_timer(io),
      m_backoff(m_settings.reconnect_min),
      m_jitter(std::random_device{}()) {
    initialise_library();
}

MosquittoClient::~MosquittoClient() {
    if (m_connector.joinable())
        m_connector.join();
    release_socket();
}

std::string MosquittoClient::describe(int code) const {
    if (code == MOSQ_ERR_ERRNO)
        return system_error_text(errno);
    return mosquitto_strerror(code);
}

Result<void> MosquittoClient::start() {
    const std::string where = "mqtt " + m_settings.host + ":" + std::to_string(m_settings.port);
    m_client.reset(mosquitto_new(m_settings.client_id.c_str(), /*clean_session=*/false, this));
    if (!m_client)
        return fail(ErrorKind::internal, where + ": cannot create client: " + system_error_text(errno));
    mosquitto* client = m_client.get();
    mosquitto_int_option(client, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    // Acks are small and latency-bound: without TCP_NODELAY, Nagle's algorithm
    // holds each one ~30 ms waiting for the peer's delayed ACK (bench/ingest).
    mosquitto_int_option(client, MOSQ_OPT_TCP_NODELAY, 1);
    int rc = mosquitto_tls_set(client, m_settings.ca_file.c_str(), nullptr, m_settings.cert_file.c_str(),
                               m_settings.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS)
        return fail(ErrorKind::io, where + ": TLS files (mqtt.ca_file " + m_settings.ca_file + ", mqtt.cert_file " +
                                       m_settings.cert_file + ", mqtt.key_file " + m_settings.key_file +
                                       "): " + describe(rc));
    rc = mosquitto_tls_opts_set(client, SSL_VERIFY_PEER, "tlsv1.2", nullptr);
    if (rc != MOSQ_ERR_SUCCESS)
        return fail(ErrorKind::internal, where + ": TLS options: " + describe(rc));
    if (!m_settings.status_topic.empty()) {
        rc = mosquitto_will_set(client, m_settings.status_topic.c_str(), static_cast<int>(will_payload.size()),
                                will_payload.data(), 1, true);
        if (rc != MOSQ_ERR_SUCCESS)
            return fail(ErrorKind::invalid_input,
                        where + ": last will on " + m_settings.status_topic + ": " + describe(rc));
    }
    mosquitto_connect_with_flags_callback_set(client, on_connect_trampoline);
    mosquitto_message_callback_set(client, on_message_trampoline);
    connect_in_background(true);
    return {};
}

void MosquittoClient::connect_in_background(bool first_attempt) {
    if (m_connector.joinable())
        m_connector.join();
    m_state = State::connecting;
    // The loop does not touch m_client until the thread posts its result.
    m_connector = std::thread([this, first_attempt] {
        ::pthread_setname_np(::pthread_self(), "cb-mqtt-connect");
        mosquitto* client = m_client.get();
        const int keepalive = static_cast<int>(m_settings.keepalive.count());
        int rc = first_attempt ? mosquitto_connect(client, m_settings.host.c_str(), m_settings.port, keepalive)
                               : mosquitto_reconnect(client);
        if (rc == MOSQ_ERR_ERRNO)
            rc = -errno;  // carry errno across threads
        boost::asio::post(m_io, [this, rc] { on_socket_connected(rc); });
    });
}

void MosquittoClient::on_socket_connected(int result_code) {
    if (m_connector.joinable())
        m_connector.join();
    if (m_state == State::stopped)
        return;
    if (result_code != MOSQ_ERR_SUCCESS) {
        const std::string reason = result_code < 0 ? system_error_text(-result_code) : describe(result_code);
        m_state = State::idle;
        m_on_event(LinkEvent::disconnected,
                   "cannot connect to " + m_settings.host + ":" + std::to_string(m_settings.port) + ": " + reason);
        schedule_reconnect();
        return;
    }
    m_state = State::awaiting_connack;
    // Read-ahead: one read() takes every TLS record the socket holds, instead
    // of two reads (record header, body) per MQTT packet (bench/ingest).
    if (auto* ssl = static_cast<SSL*>(mosquitto_ssl_get(m_client.get())))
        SSL_set_read_ahead(ssl, 1);
    // One TLS record for all a turn writes (tls_write_coalescer.hpp).
    m_coalescer.attach(static_cast<SSL*>(mosquitto_ssl_get(m_client.get())));
    watch_socket();
}

bool MosquittoClient::write_buffered() const {
    return m_coalescer.pending();
}

bool MosquittoClient::flush_writes() {
    const auto result = m_coalescer.flush();
    if (result == TlsWriteCoalescer::Flush::failed)
        m_write_error = m_coalescer.error();
    return result != TlsWriteCoalescer::Flush::failed;
}

void MosquittoClient::after_writes() {
    if (!m_coalescer.attached()) {
        wait_writable_if_needed();
        return;
    }
    if (m_flush_posted)
        return;
    // Once per loop turn: whatever this turn writes (a burst's PUBACKs, acks)
    // leaves together.
    m_flush_posted = true;
    boost::asio::post(m_io, [this, connection = m_connection] {
        if (connection != m_connection)
            return;  // that connection is gone, and its buffer with it
        m_flush_posted = false;
        send_buffered();
    });
}

void MosquittoClient::send_buffered() {
    if (!flush_writes()) {
        connection_lost("cannot send to the broker: " + m_write_error);
        return;
    }
    wait_writable_if_needed();
}

void MosquittoClient::watch_socket() {
    const int fd = mosquitto_socket(m_client.get());
    boost::system::error_code error;
    m_socket.assign(fd, error);
    if (error) {
        connection_lost("cannot watch the socket: " + error.message());
        return;
    }
    wait_readable();
    wait_writable_if_needed();
    run_misc();
}

void MosquittoClient::wait_readable() {
    m_socket.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& e) {
        if (e)
            return;  // released or cancelled
        read_available();
    });
}

void MosquittoClient::read_available() {
    if (!m_receiving) {
        m_read_paused = true;  // set_receiving(true) comes back here
        return;
    }
    mosquitto* client = m_client.get();
    int rc = mosquitto_loop_read(client, 1);
    // TLS may hold whole MQTT packets already read (read-ahead) or decrypted:
    // the socket will not become readable for them, so read them now.
    const auto* ssl = static_cast<const SSL*>(mosquitto_ssl_get(client));
    while (rc == MOSQ_ERR_SUCCESS && ssl != nullptr && SSL_has_pending(ssl) != 0 && m_receiving &&
           m_state != State::stopped)
        rc = mosquitto_loop_read(client, 1);
    if (m_state == State::stopped)
        return;
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_lost(describe(rc));
        return;
    }
    if (m_receiving)
        wait_readable();
    else
        m_read_paused = true;
    after_writes();
}

void MosquittoClient::set_receiving(bool on) {
    m_receiving = on;
    if (!on || !m_read_paused)
        return;
    m_read_paused = false;
    boost::asio::post(m_io, [this, connection = m_connection] {
        if (connection != m_connection)
            return;  // that connection is gone; the next one reads by itself
        if (m_receiving && m_socket.is_open() && m_state != State::stopped)
            read_available();
        else if (!m_receiving)
            m_read_paused = true;
    });
}

void MosquittoClient::wait_writable_if_needed() {
    if (m_write_pending || !m_socket.is_open() || !(mosquitto_want_write(m_client.get()) || write_buffered()))
        return;
    m_write_pending = true;
    m_socket.async_wait(boost::asio::posix::stream_descriptor::wait_write, [this](const boost::system::error_code& e) {
        m_write_pending = false;
        if (e)
            return;
        if (!flush_writes()) {
            connection_lost("cannot send to the broker: " + m_write_error);
            return;
        }
        const int rc = mosquitto_loop_write(m_client.get(), 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            connection_lost(describe(rc));
            return;
        }
        send_buffered();
    });
}

void MosquittoClient::run_misc() {
    m_misc_timer.expires_after(std::chrono::seconds(1));
    m_misc_timer.async_wait([this](const boost::system::error_code& e) {
        if (e || !m_socket.is_open())
            return;
        const int rc = mosquitto_loop_misc(m_client.get());
        if (rc != MOSQ_ERR_SUCCESS) {
            connection_lost(describe(rc));
            return;
        }
        after_writes();
        run_misc();
    });
}

void MosquittoClient::handle_connect(int result_code, int flags) {
    if (result_code != 0) {
        // Refused by the broker (bad credentials, not authorised...).
        connection_lost(std::string("broker refused the connection: ") + mosquitto_connack_string(result_code));
        return;
    }
    m_state = State::connected;
    m_backoff = m_settings.reconnect_min;
    mosquitto* client = m_client.get();
    for (const auto& filter : m_settings.subscriptions) {
        const int rc = mosquitto_subscribe(client, nullptr, filter.c_str(), 1);
        if (rc != MOSQ_ERR_SUCCESS)
            m_on_event(LinkEvent::error, "subscribe " + filter + ": " + describe(rc));
    }
    if (!m_settings.status_topic.empty())
        publish(m_settings.status_topic, birth_payload, Qos::at_least_once, Retain::yes);
    flush_pending();
    after_writes();
    const bool session_present = (flags & 1) != 0;
    m_on_event(LinkEvent::connected, session_present ? "session resumed" : "new session");
}

void MosquittoClient::handle_message(const Message& message) {
    if (m_on_message)
        m_on_message(message);
}

void MosquittoClient::connection_lost(const std::string& reason) {
    if (m_state == State::stopped)
        return;
    release_socket();
    m_misc_timer.cancel();
    m_state = State::idle;
    m_on_event(LinkEvent::disconnected, reason);
    schedule_reconnect();
}

void MosquittoClient::schedule_reconnect() {
    // Exponential backoff with full jitter in [backoff/2, backoff].
    const auto base = m_backoff.count();
    std::uniform_int_distribution<long long> spread(base / 2, base);
    m_reconnect_timer.expires_after(std::chrono::milliseconds(spread(m_jitter)));
    m_backoff = std::min(m_backoff * 2, m_settings.reconnect_max);
    m_reconnect_timer.async_wait([this](const boost::system::error_code& e) {
        if (!e && m_state == State::idle)
            connect_in_background(false);
    });
}

void MosquittoClient::publish(std::string_view topic, std::string_view payload, Qos qos, Retain retain) {
    if (m_state != State::connected) {
        m_pending.insert_or_assign(std::string(topic), Pending{std::string(payload), qos, retain});
        return;
    }
    const std::string topic_text(topic);
    const int rc = mosquitto_publish(m_client.get(), nullptr, topic_text.c_str(), static_cast<int>(payload.size()),
                                     payload.data(), static_cast<int>(qos), retain == Retain::yes);
    if (rc != MOSQ_ERR_SUCCESS) {
        m_on_event(LinkEvent::error, "publish " + topic_text + ": " + describe(rc));
        return;
    }
    after_writes();
}

void MosquittoClient::flush_pending() {
    auto pending = std::move(m_pending);
    m_pending.clear();
    for (auto& [topic, message] : pending)
        publish(topic, message.payload, message.qos, message.retain);
}

void MosquittoClient::release_socket() {
    if (m_socket.is_open())
        m_socket.release();  // libmosquitto owns and closes the file descriptor
    m_write_pending = false;
    m_coalescer.detach();  // what it still held belonged to this connection
    m_flush_posted = false;
    m_read_paused = false;  // the next connection starts with a fresh wait_readable()
    ++m_connection;
}

void MosquittoClient::stop() {
    if (m_connector.joinable())
        m_connector.join();
    m_reconnect_timer.cancel();
    m_misc_timer.cancel();
    if (m_state == State::connected) {
        mosquitto* client = m_client.get();
        // Direct writes from here: libmosquitto closes the socket right after
        // writing the DISCONNECT, before any flush of ours. If the socket is
        // full, what is left is lost with the connection (the broker then
        // publishes our will, "offline", for us).
        if (m_coalescer.flush() == TlsWriteCoalescer::Flush::done)
            m_coalescer.detach();
        if (!m_settings.status_topic.empty())
            mosquitto_publish(client, nullptr, m_settings.status_topic.c_str(), static_cast<int>(will_payload.size()),
                              will_payload.data(), 1, true);
        mosquitto_disconnect(client);
        // Flush what is queued (the status and the DISCONNECT) without waiting
        // for the broker: a bounded number of non-blocking writes.
        for (int i = 0; i < 16 && mosquitto_want_write(client); ++i)
            if (mosquitto_loop_write(client, 1) != MOSQ_ERR_SUCCESS)
                break;
    }
    m_state = State::stopped;
    release_socket();
}

}  // namespace cb::mqtt
