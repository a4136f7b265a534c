#include "drivers/upstream/https_client.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "drivers/signing/signer.hpp"

namespace cb::upstream {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

struct HttpsClient::Impl {
    ssl::context tls{ssl::context::tls_client};
};

namespace {

std::string describe(const beast::error_code& error) {
    if (error == beast::error::timeout)
        return "timed out";
    return error.message();
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
    if (value.empty() || value.size() > 10)
        return std::nullopt;
    std::uint64_t seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error != std::errc{} || end != value.data() + value.size())
        return std::nullopt;
    return std::chrono::seconds(std::min<std::uint64_t>(seconds, 86'400));
}

// One keep-alive connection; one request at a time.
struct HttpsClient::Connection : std::enable_shared_from_this<HttpsClient::Connection> {
    enum class Stage { connect, write, read };

    Connection(HttpsClient& client, boost::asio::io_context& context, ssl::context& tls_context)
        : owner(&client), io(context), tls(tls_context), resolver(context) {}

    HttpsClient* owner;  // nullptr once the client stopped
    boost::asio::io_context& io;
    ssl::context& tls;
    tcp::resolver resolver;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    bool connected = false;
    bool busy = false;
    bool reused = false;   // this request went out on a connection that served one before
    bool retried = false;  // the stale keep-alive retry was used
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    std::optional<http::response_parser<http::string_body>> parser;
    Done done;

    const HttpsSettings& settings() const { return owner->m_settings; }

    void start(HttpRequest what, Done callback) {
        busy = true;
        retried = false;
        done = std::move(callback);
        request = {};
        request.version(11);
        request.method(what.method == "GET" ? http::verb::get : http::verb::post);
        request.target(what.target);
        request.set(http::field::host, settings().host);
        request.set(http::field::user_agent, "carebridge");
        request.set(http::field::accept, "application/fhir+json, application/json");
        request.keep_alive(true);
        if (!what.bearer.empty())
            request.set(http::field::authorization, "Bearer " + what.bearer);
        if (request.method() == http::verb::post) {
            request.set(http::field::content_type, what.content_type);
            request.body() = std::move(what.body);
            request.prepare_payload();
        }
        if (connected) {
            reused = true;
            write();
        } else {
            reused = false;
            connect();
        }
    }

    void close() {
        connected = false;
        if (stream) {
            beast::error_code ignored;
            beast::get_lowest_layer(*stream).socket().close(ignored);
        }
        buffer.clear();
    }

    void connect() {
        close();
        stream.emplace(io, tls);
        // SNI, and the name the server's certificate must carry.
        // SSL_set_tlsext_host_name(), without the macro's C cast.
        if (SSL_ctrl(stream->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(settings().host.c_str())) != 1) {
            complete(fail(ErrorKind::internal, "upstream " + settings().host + ": cannot set the TLS server name"));
            return;
        }
        stream->set_verify_callback(ssl::host_name_verification(settings().host));
        resolver.async_resolve(
            settings().host, std::to_string(settings().port),
            [self = shared_from_this()](const beast::error_code& error, const tcp::resolver::results_type& results) {
                if (self->owner == nullptr)
                    return;
                if (error)
                    return self->failed(Stage::connect, "cannot resolve: " + describe(error));
                beast::get_lowest_layer(*self->stream).expires_after(self->settings().timeout);
                beast::get_lowest_layer(*self->stream)
                    .async_connect(results, [self](const beast::error_code& e, const tcp::endpoint&) {
                        if (self->owner == nullptr)
                            return;
                        if (e)
                            return self->failed(Stage::connect, "cannot connect: " + describe(e));
                        beast::get_lowest_layer(*self->stream).socket().set_option(tcp::no_delay(true));
                        self->handshake();
                    });
            });
    }

    void handshake() {
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        stream->async_handshake(ssl::stream_base::client, [self = shared_from_this()](const beast::error_code& error) {
            if (self->owner == nullptr)
                return;
            if (error)
                return self->failed(Stage::connect, "TLS handshake: " + describe(error));
            self->connected = true;
            self->write();
        });
    }

    void write() {
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        http::async_write(*stream, request, [self = shared_from_this()](const beast::error_code& error, std::size_t) {
            if (self->owner == nullptr)
                return;
            if (error)
                return self->failed(Stage::write, "sending the request: " + describe(error));
            self->read();
        });
    }

    void read() {
        parser.emplace();
        parser->body_limit(settings().max_body);
        parser->header_limit(16 * 1024);
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        http::async_read(*stream, buffer, *parser,
                         [self = shared_from_this()](const beast::error_code& error, std::size_t) {
                             if (self->owner == nullptr)
                                 return;
                             if (error)
                                 return self->failed(Stage::read, "reading the answer: " + describe(error));
                             self->answered();
                         });
    }

    void answered() {
        auto response = parser->release();
        HttpResponse answer;
        answer.status = response.result_int();
        answer.body = std::move(response.body());
        if (const auto it = response.find(http::field::retry_after); it != response.end())
            answer.retry_after = parse_retry_after(it->value());
        if (!response.keep_alive())
            close();
        complete(std::move(answer));
    }

    void failed(Stage stage, const std::string& what) {
        const bool nothing_answered = stage == Stage::write || (stage == Stage::read && parser && !parser->got_some());
        close();
        if (reused && !retried && nothing_answered) {
            // The server closed a kept-alive connection between two requests.
            retried = true;
            reused = false;
            connect();
            return;
        }
        const std::string where = "upstream " + settings().host + ":" + std::to_string(settings().port) + ": ";
        complete(fail(stage == Stage::connect ? ErrorKind::unavailable : ErrorKind::io, where + what));
    }

    void complete(Result<HttpResponse> result) {
        busy = false;
        Done callback = std::move(done);
        done = nullptr;
        HttpsClient* client = owner;
        if (callback)
            callback(std::move(result));
        if (client != nullptr && owner != nullptr)
            client->finished(*this);
    }
};

HttpsClient::HttpsClient(boost::asio::io_context& io, HttpsSettings settings, std::unique_ptr<Impl> impl)
    : m_io(io), m_settings(std::move(settings)), m_impl(std::move(impl)) {}

HttpsClient::~HttpsClient() {
    stop();
}

Result<std::unique_ptr<HttpsClient>> HttpsClient::create(boost::asio::io_context& io, HttpsSettings settings) {
    auto impl = std::make_unique<Impl>();
    ssl::context& tls = impl->tls;
    beast::error_code error;
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                    error);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    tls.load_verify_file(settings.ca_file, error);
    if (error)
        return fail(ErrorKind::io, "upstream.ca_file " + settings.ca_file + ": " + error.message());
    tls.use_certificate_chain_file(settings.cert_file, error);
    if (error)
        return fail(ErrorKind::io, "upstream.cert_file " + settings.cert_file + ": " + error.message());
    if (settings.key) {
        // OpenSSL takes its own reference; the token stays open while it holds the key.
        if (SSL_CTX_use_PrivateKey(tls.native_handle(), settings.key.get()) != 1) {
            ERR_clear_error();
            return fail(ErrorKind::invalid_input,
                        "upstream TLS key on the PKCS#11 token does not fit upstream.cert_file " + settings.cert_file);
        }
    } else {
        // Read once, refused if readable by others (the rule of every key file), wiped after use.
        std::string key = CB_TRY(signing::read_private_file(settings.key_file, "upstream.key_file"));
        tls.use_private_key(boost::asio::buffer(key), ssl::context::pem, error);
        OPENSSL_cleanse(key.data(), key.size());
        if (error)
            return fail(ErrorKind::io, "upstream.key_file " + settings.key_file +
                                           ": not a usable PEM private key for upstream.cert_file (" + error.message() +
                                           ")");
    }
    if (settings.max_connections == 0)
        settings.max_connections = 1;
    auto client = std::unique_ptr<HttpsClient>(new HttpsClient(io, std::move(settings), std::move(impl)));
    for (std::size_t i = 0; i < client->m_settings.max_connections; ++i)
        client->m_connections.push_back(std::make_shared<Connection>(*client, io, client->m_impl->tls));
    return client;
}

void HttpsClient::send(HttpRequest request, Done done) {
    if (m_stopped) {
        done(fail(ErrorKind::unavailable, "upstream client stopped"));
        return;
    }
    m_queue.emplace_back(std::move(request), std::move(done));
    pump();
}

void HttpsClient::pump() {
    for (auto& connection : m_connections) {
        if (m_queue.empty())
            return;
        if (connection->busy)
            continue;
        auto [request, done] = std::move(m_queue.front());
        m_queue.pop_front();
        ++m_busy;
        connection->start(std::move(request), std::move(done));
    }
}

void HttpsClient::finished(Connection&) {
    --m_busy;
    pump();
}

void HttpsClient::stop() {
    if (m_stopped)
        return;
    m_stopped = true;
    for (auto& connection : m_connections) {
        connection->owner = nullptr;
        connection->resolver.cancel();
        connection->close();
    }
    m_connections.clear();
    auto queue = std::move(m_queue);
    m_queue.clear();
    for (auto& [request, done] : queue)
        done(fail(ErrorKind::unavailable, "upstream client stopped"));
}

}  // namespace cb::upstream
