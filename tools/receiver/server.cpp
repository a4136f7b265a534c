#include "tools/receiver/server.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <optional>

namespace cb::receiver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::seconds handshake_deadline{10};
constexpr std::chrono::seconds read_deadline{60};
constexpr std::chrono::seconds write_deadline{30};

std::string describe(const tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
           std::to_string(endpoint.port());
}

// One TLS connection: handshake, then requests answered one at a time.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, ssl::context& tls, Service& service, LogFunction log,
            std::shared_ptr<std::size_t> connections)
        : m_peer(describe(socket.remote_endpoint())),
          m_stream(std::move(socket), tls),
          m_timer(m_stream.get_executor()),
          m_service(service),
          m_log(std::move(log)),
          m_connections(std::move(connections)) {
        ++*m_connections;
    }
    ~Session() { --*m_connections; }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start() {
        beast::get_lowest_layer(m_stream).expires_after(handshake_deadline);
        m_stream.async_handshake(ssl::stream_base::server,
                                 [self = shared_from_this()](beast::error_code error) { self->on_handshake(error); });
    }

private:
    void on_handshake(beast::error_code error) {
        if (error) {
            m_log(LogLevel::info, "TLS handshake with " + m_peer + " failed: " + error.message());
            return;
        }
        m_log(LogLevel::debug, "TLS connection from " + m_peer);
        read();
    }

    void read() {
        m_parser.emplace();
        m_parser->header_limit(static_cast<std::uint32_t>(max_header_size));
        m_parser->body_limit(max_body_size);
        beast::get_lowest_layer(m_stream).expires_after(read_deadline);
        http::async_read(m_stream, m_buffer, *m_parser,
                         [self = shared_from_this()](beast::error_code error, std::size_t) { self->on_read(error); });
    }

    void on_read(beast::error_code error) {
        if (error == http::error::end_of_stream || error == asio::ssl::error::stream_truncated) {
            close();
            return;
        }
        if (error == http::error::body_limit) {
            m_log(LogLevel::info, "request from " + m_peer + ": body over the limit");
            respond(body_too_large_answer(max_body_size), false, 11);
            return;
        }
        if (error) {
            if (error != asio::error::operation_aborted && error != beast::error::timeout &&
                error != asio::error::eof && error != asio::error::connection_reset)
                m_log(LogLevel::info, "request from " + m_peer + ": " + error.message());
            return;
        }
        auto request = m_parser->release();
        HttpRequest view;
        view.method = std::string(request.method_string());
        view.target = std::string(request.target());
        view.content_type = std::string(request[http::field::content_type]);
        view.authorization = std::string(request[http::field::authorization]);
        view.body = std::move(request.body());
        HttpAnswer answer;
        try {
            answer = m_service.handle(view);
        } catch (const std::exception& exception) {
            m_log(LogLevel::error, std::string("request handling failed: ") + exception.what());
            answer = HttpAnswer{500, "application/fhir+json", {}, operation_outcome("exception", "internal error"),
                                {},  Delivery::normal};
        }
        respond(std::move(answer), request.keep_alive(), request.version());
    }

    void respond(HttpAnswer answer, bool keep_alive, unsigned version) {
        m_response.emplace(static_cast<http::status>(answer.status), version);
        m_response->set(http::field::server, "carebridge-receiver");
        m_response->set(http::field::content_type, answer.content_type);
        for (const auto& [name, value] : answer.headers)
            m_response->set(name, value);
        m_response->keep_alive(keep_alive);
        m_response->body() = std::move(answer.body);
        m_response->prepare_payload();
        m_delivery = answer.delivery;
        if (answer.delay.count() > 0) {
            m_timer.expires_after(answer.delay);
            m_timer.async_wait([self = shared_from_this()](beast::error_code error) {
                if (!error)
                    self->write();
            });
            return;
        }
        write();
    }

    void write() {
        beast::get_lowest_layer(m_stream).expires_after(write_deadline);
        if (m_delivery == Delivery::drop_after_headers) {
            m_serializer.emplace(*m_response);
            http::async_write_header(
                m_stream, *m_serializer, [self = shared_from_this()](beast::error_code, std::size_t) {
                    // Mid-response: no close_notify, no body, the TCP connection goes.
                    self->m_log(LogLevel::info, "fault: dropped a connection mid-response");
                    beast::error_code ignored;
                    beast::get_lowest_layer(self->m_stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
                    beast::get_lowest_layer(self->m_stream).close();
                });
            return;
        }
        http::async_write(m_stream, *m_response,
                          [self = shared_from_this()](beast::error_code error, std::size_t) { self->on_write(error); });
    }

    void on_write(beast::error_code error) {
        if (error) {
            m_log(LogLevel::info, "answer to " + m_peer + ": " + error.message());
            return;
        }
        if (!m_response->keep_alive()) {
            close();
            return;
        }
        m_response.reset();
        read();
    }

    void close() {
        beast::get_lowest_layer(m_stream).expires_after(handshake_deadline);
        m_stream.async_shutdown([self = shared_from_this()](beast::error_code) {
            beast::error_code ignored;
            beast::get_lowest_layer(self->m_stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
        });
    }

    std::string m_peer;
    beast::ssl_stream<beast::tcp_stream> m_stream;
    asio::steady_timer m_timer;
    beast::flat_buffer m_buffer;
    std::optional<http::request_parser<http::string_body>> m_parser;
    std::optional<http::response<http::string_body>> m_response;
    std::optional<http::response_serializer<http::string_body>> m_serializer;
    Delivery m_delivery = Delivery::normal;
    Service& m_service;
    LogFunction m_log;
    std::shared_ptr<std::size_t> m_connections;
};

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_context(const Options& options) {
    auto tls = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* handle = tls->native_handle();
    if (SSL_CTX_set_min_proto_version(handle, TLS1_2_VERSION) != 1)
        return fail(ErrorKind::internal, "TLS: cannot set the minimum version 1.2");
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::single_dh_use);
    SSL_CTX_set_options(handle, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    beast::error_code error;
    tls->use_certificate_chain_file(options.certificate.string(), error);
    if (error)
        return fail(ErrorKind::invalid_input, "--cert " + options.certificate.string() +
                                                  ": cannot load a PEM certificate chain (" + error.message() + ")");
    tls->use_private_key_file(options.key.string(), ssl::context::pem, error);
    if (error)
        return fail(ErrorKind::invalid_input,
                    "--key " + options.key.string() + ": cannot load a PEM private key (" + error.message() + ")");
    if (SSL_CTX_check_private_key(handle) != 1)
        return fail(ErrorKind::invalid_input,
                    "--key " + options.key.string() + ": does not match the certificate of --cert");
    tls->load_verify_file(options.client_ca.string(), error);
    if (error)
        return fail(ErrorKind::invalid_input, "--client-ca " + options.client_ca.string() +
                                                  ": cannot load PEM CA certificates (" + error.message() + ")");
    // Tell clients which CA we accept, so that they pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca.c_str());
    if (names == nullptr)
        return fail(ErrorKind::invalid_input,
                    "--client-ca " + options.client_ca.string() + ": no CA certificate names in it");
    SSL_CTX_set_client_CA_list(handle, names);
    tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    return tls;
}

Server::Server(asio::io_context& io, std::shared_ptr<ssl::context> tls, Service& service, LogFunction log)
    : m_io(io),
      m_acceptor(io),
      m_tls(std::move(tls)),
      m_service(service),
      m_log(std::move(log)),
      m_connections(std::make_shared<std::size_t>(0)) {}

Result<std::unique_ptr<Server>> Server::listen(asio::io_context& io, const ListenAddress& address,
                                               std::shared_ptr<ssl::context> tls, Service& service, LogFunction log) {
    std::unique_ptr<Server> server(new Server(io, std::move(tls), service, std::move(log)));
    beast::error_code error;
    const auto ip = asio::ip::make_address(address.host, error);
    const std::string where = address.host + ":" + std::to_string(address.port);
    if (error)
        return fail(ErrorKind::invalid_input, "--listen " + where + ": " + error.message());
    const tcp::endpoint endpoint(ip, address.port);
    auto& acceptor = server->m_acceptor;
    acceptor.open(endpoint.protocol(), error);
    if (!error)
        acceptor.set_option(asio::socket_base::reuse_address(true), error);
    if (!error)
        acceptor.bind(endpoint, error);
    if (!error)
        acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
        return fail(ErrorKind::io, "listen on " + describe(endpoint) + ": " + error.message());
    return server;
}

void Server::start() {
    accept();
}

void Server::stop() {
    beast::error_code ignored;
    m_acceptor.close(ignored);
}

void Server::accept() {
    m_acceptor.async_accept(m_io, [this](beast::error_code error, tcp::socket socket) {
        if (error == asio::error::operation_aborted)
            return;
        if (!error) {
            if (*m_connections >= max_connections) {
                m_log(LogLevel::warning,
                      "connection refused: " + std::to_string(max_connections) + " connections already open");
                beast::error_code ignored;
                socket.close(ignored);
            } else {
                beast::error_code peer_error;
                socket.remote_endpoint(peer_error);
                // Answers leave as soon as written (Beast writes head and
                // body as two TLS records: with Nagle the body would wait for
                // the ACK of the head, which a pipelining client delays).
                beast::error_code ignored;
                socket.set_option(tcp::no_delay(true), ignored);
                if (!peer_error)
                    std::make_shared<Session>(std::move(socket), *m_tls, m_service, m_log, m_connections)->start();
            }
        } else {
            m_log(LogLevel::warning, "accept: " + error.message());
        }
        accept();
    });
}

}  // namespace cb::receiver
