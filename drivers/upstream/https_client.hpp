// HTTPS client for the national space (docs/upstream.md): Boost.Beast over
// OpenSSL, HTTP/1.1 keep-alive, mutual TLS, a deadline on every operation.
//
//   | what            | how                                                         |
//   |-----------------|-------------------------------------------------------------|
//   | TLS             | 1.2 minimum (1.3 preferred by OpenSSL), server certificate  |
//   |                 | verified against `ca_file` and the host name (SNI set), and |
//   |                 | against the CRLs of `crl_file` when set; a refused          |
//   |                 | certificate's reason is in the error ("certificate revoked")|
//   | CRL replaced    | `crl_file` is read again before a new connection once it    |
//   |                 | changed; a request finds out at most `trust_check_interval` |
//   |                 | after the change, and then the connections opened under the |
//   |                 | old file close: what they carried goes on new connections,  |
//   |                 | whose handshakes check the server against the new CRL       |
//   | client identity | the facility certificate (`cert_file`) and key: `key_file`, |
//   |                 | read by signing::read_private_file (refused if its mode is  |
//   |                 | wider than 0600, wiped once loaded), or `key`, a key whose  |
//   |                 | private half stays on a PKCS#11 token (pkcs11_tls_key.hpp)  |
//   | connections     | up to `max_connections`, each kept alive between requests   |
//   |                 | and carrying up to `pipeline_depth` of them (HTTP/1.1       |
//   |                 | pipelining: written back to back, answers read in order);   |
//   |                 | requests beyond wait in order                               |
//   | deadline        | `timeout` per step (connect, handshake, write, read): the   |
//   |                 | request fails with ErrorKind::timeout                       |
//   | unanswered      | the server closed after an answer: the requests behind it   |
//   |                 | go again on a new connection, first in line; the connection |
//   |                 | failed: each request with no byte of answer goes once more  |
//   |                 | (our POSTs are conditional creates: idempotent), then fails |
//   | request         | written in one buffer (one TLS record for head and body);   |
//   |                 | a bearer token, content type or host holding a control      |
//   |                 | character is refused (invalid_input) before anything is sent|
//   | answer          | status, body (at most `max_body` bytes), Retry-After; no    |
//   |                 | other header is kept                                         |
//
// Everything runs on the caller's io_context; callbacks are invoked there.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drivers/signing/pkcs11_tls_key.hpp"
#include "protocol/result.hpp"

namespace cb::upstream {

struct HttpsSettings {
    std::string host;  // name or address; also the name the certificate must carry
    std::uint16_t port = 443;
    std::string ca_file;
    std::string crl_file;  // PEM CRLs of the server's CA; empty: revocation is not checked
    std::string cert_file;
    std::string key_file;  // or
    signing::TlsKey key;   // when set, instead of key_file
    std::chrono::milliseconds timeout{10'000};
    std::size_t max_connections = 4;
    std::size_t pipeline_depth = 1;  // requests in flight per connection (1: no pipelining)
    std::size_t max_body = 1024 * 1024;
    // How often, at most, a request looks whether crl_file changed.
    std::chrono::milliseconds trust_check_interval{1'000};
};

struct HttpRequest {
    std::string method = "POST";  // POST or GET
    std::string target;           // "/fhir"
    std::string content_type;     // "application/fhir+json"
    std::string body;
    std::string bearer;  // access token; empty: no Authorization header
};

struct HttpResponse {
    unsigned status = 0;
    std::string body;
    std::optional<std::chrono::seconds> retry_after;  // delta-seconds form only
};

class HttpsClient {
public:
    using Done = std::function<void(Result<HttpResponse>)>;

    // Loads the TLS material. Fails naming the file (never its content).
    static Result<std::unique_ptr<HttpsClient>> create(boost::asio::io_context& io, HttpsSettings settings);
    ~HttpsClient();
    HttpsClient(const HttpsClient&) = delete;
    HttpsClient& operator=(const HttpsClient&) = delete;

    // Sends when a connection is free; `done` gets the answer or the error
    // (ErrorKind::timeout, unavailable for connection failures, io otherwise).
    void send(const HttpRequest& request, Done done);

    // Closes every connection; queued requests fail with unavailable.
    void stop();

    std::size_t in_flight() const noexcept { return m_busy; }
    std::size_t queued() const noexcept { return m_queue.size(); }

    struct Connection;

private:
    struct Impl;
    struct Exchange {
        std::string wire;  // the whole request, head and body
        Done done;
        bool resent = false;  // sent again once already after its connection failed
    };
    HttpsClient(boost::asio::io_context& io, HttpsSettings settings, std::unique_ptr<Impl> impl);
    void pump();
    void retire_if_trust_changed();
    void requeue(std::deque<Exchange> exchanges);
    void released(std::size_t count);

    boost::asio::io_context& m_io;
    HttpsSettings m_settings;
    std::unique_ptr<Impl> m_impl;
    std::vector<std::shared_ptr<Connection>> m_connections;
    std::deque<Exchange> m_queue;  // composed, waiting for room on a connection
    std::size_t m_busy = 0;        // requests taken by the connections
    std::chrono::steady_clock::time_point m_next_trust_check{};
    bool m_stopped = false;
};

// Parses a Retry-After value in its delta-seconds form ("120"); the HTTP-date
// form and anything else give nullopt. Capped at one day.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

}  // namespace cb::upstream
