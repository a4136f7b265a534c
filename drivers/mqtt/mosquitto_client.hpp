// An MQTT client on libmosquitto, driven by the daemon's io_context.
//
//   connect     a short-lived thread runs the blocking mosquitto_connect /
//               mosquitto_reconnect (TCP + TLS handshake + CONNECT), so DNS or
//               an unreachable broker never blocks the loop; the loop does not
//               touch the client until the thread has posted its result.
//   traffic     the loop waits for the socket to be readable (always) and
//               writable (when libmosquitto has bytes queued), then calls
//               mosquitto_loop_read / _write. After a read it drains records
//               that TLS already decrypted (SSL_pending), which no socket
//               readiness would announce. A 1 s timer runs mosquitto_loop_misc
//               (keepalive PINGREQ, retries). No busy polling.
//   writes      what libmosquitto writes joins a buffer (TlsWriteCoalescer)
//               that the loop sends once per turn: the PUBACKs of a burst of
//               readings leave in one TLS record and one write() instead of
//               one each, and the broker reads them in one loop turn.
//   session     fixed client id, clean session off: the broker keeps our QoS 1
//               subscription and queues readings while we are away.
//   on connect  subscribes (QoS 1) to every configured filter, publishes the
//               retained birth "online" on the status topic; the last will says
//               "offline".
//   on loss     reconnects with exponential backoff (with jitter) between
//               reconnect_min and reconnect_max, resubscribing each time.
//
// All callbacks run on the io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "drivers/mqtt/message_link.hpp"
#include "drivers/mqtt/tls_write_coalescer.hpp"
#include "protocol/result.hpp"

struct mosquitto;

namespace cb::mqtt {

struct ClientSettings {
    std::string host = "localhost";
    std::uint16_t port = 8883;
    std::string client_id = "carebridged";
    std::chrono::seconds keepalive{30};
    std::string ca_file;    // CA that signed the broker's certificate
    std::string cert_file;  // our client certificate (its CN is our MQTT username)
    std::string key_file;
    std::vector<std::string> subscriptions;  // topic filters, subscribed at QoS 1
    std::string status_topic;                // retained "online" / will "offline"
    std::chrono::milliseconds reconnect_min{250};
    std::chrono::milliseconds reconnect_max{30'000};
};

enum class LinkEvent {
    connected,     // CONNACK accepted; detail says whether the broker kept our session
    disconnected,  // connection lost or refused; detail says why; a reconnect is scheduled
    error,         // a message could not be queued; detail says why
};

class MosquittoClient final : public MessageLink {
public:
    using MessageHandler = std::function<void(const Message&)>;
    using EventHandler = std::function<void(LinkEvent, const std::string& detail)>;

    MosquittoClient(boost::asio::io_context& io, ClientSettings settings, MessageHandler on_message,
                    EventHandler on_event);
    ~MosquittoClient() override;
    MosquittoClient(const MosquittoClient&) = delete;
    MosquittoClient& operator=(const MosquittoClient&) = delete;

    // Configures TLS and the will, then starts connecting in the background.
    // Returns the configuration error (e.g. an unreadable certificate).
    Result<void> start();

    // Publishes "offline" on the status topic, disconnects cleanly, and stops
    // reconnecting. Waits for a connect attempt in progress.
    void stop();

    void publish(std::string_view topic, std::string_view payload, Qos qos, Retain retain) override;
    void set_receiving(bool on) override;

    bool connected() const noexcept { return m_state == State::connected; }

    // libmosquitto callbacks (C trampolines call these on the loop thread).
    void handle_connect(int result_code, int flags);
    void handle_message(const Message& message);

private:
    enum class State { idle, connecting, awaiting_connack, connected, stopped };

    void connect_in_background(bool first_attempt);
    void on_socket_connected(int result_code);
    void watch_socket();
    void wait_readable();
    void read_available();
    void wait_writable_if_needed();
    bool write_buffered() const;
    bool flush_writes();
    void after_writes();
    void send_buffered();
    void run_misc();
    void connection_lost(const std::string& reason);
    void schedule_reconnect();
    void flush_pending();
    void release_socket();
    std::string describe(int mosquitto_code) const;

    boost::asio::io_context& m_io;
    ClientSettings m_settings;
    MessageHandler m_on_message;
    EventHandler m_on_event;

    struct Deleter {
        void operator()(mosquitto* client) const;
    };
    // Before m_client: freeing the client's SSL object tells the coalescer.
    TlsWriteCoalescer m_coalescer;
    std::unique_ptr<mosquitto, Deleter> m_client;
    State m_state = State::idle;
    std::thread m_connector;
    boost::asio::posix::stream_descriptor m_socket;
    bool m_write_pending = false;
    std::string m_write_error;  // why the last flush failed
    bool m_flush_posted = false;
    bool m_receiving = true;         // set_receiving()
    bool m_read_paused = false;      // a read was skipped while not receiving
    std::uint64_t m_connection = 0;  // incremented by release_socket(): stale handlers check it
    boost::asio::steady_timer m_misc_timer;
    boost::asio::steady_timer m_reconnect_timer;
    std::chrono::milliseconds m_backoff;
    std::minstd_rand m_jitter;

    struct Pending {
        std::string payload;
        Qos qos;
        Retain retain;
    };
    std::map<std::string, Pending, std::less<>> m_pending;  // latest per topic, while not connected
};

}  // namespace cb::mqtt
