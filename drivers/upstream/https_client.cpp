#include "drivers/upstream/https_client.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
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

// A header value we write ourselves: visible ASCII and spaces, so that
// nothing (a token from the platform, a configured host) can end the header
// line or start another.
bool is_header_value(std::string_view value) {
    return std::all_of(value.begin(), value.end(), [](char c) { return c == ' ' || (c > 0x20 && c < 0x7F); });
}

// The answer as the forwarder needs it: status, Retry-After and body. Beast's
// response_parser would keep every header in an allocated node; nothing but
// Retry-After is read, so none is kept. Limits and keep-alive are
// basic_parser's.
class AnswerParser final : public http::basic_parser<false> {
public:
    unsigned status = 0;
    std::optional<std::chrono::seconds> retry_after;
    std::string body;

private:
    void on_request_impl(http::verb, beast::string_view, beast::string_view, int, beast::error_code&) override {}
    void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
        status = static_cast<unsigned>(code);
    }
    void on_field_impl(http::field name, beast::string_view, beast::string_view value, beast::error_code&) override {
        if (name == http::field::retry_after)
            retry_after = parse_retry_after(std::string_view(value.data(), value.size()));
    }
    void on_header_impl(beast::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
        if (length)
            body.reserve(static_cast<std::size_t>(*length));  // at most body_limit: checked before
    }
    std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
        body.append(data.data(), data.size());
        return data.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data, beast::error_code&) override {
        body.append(data.data(), data.size());
        return data.size();
    }
    void on_finish_impl(beast::error_code&) override {}
};

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
    std::string request;  // the whole request, head and body: one TLS write
    std::optional<AnswerParser> parser;
    Done done;

    const HttpsSettings& settings() const { return owner->m_settings; }

    // The request in HTTP/1.1 wire form (RFC 9112), written here rather than
    // through Beast's serializer: one buffer, no header nodes.
    Result<void> compose(const HttpRequest& what) {
        if (what.method != "GET" && what.method != "POST")
            return fail(ErrorKind::internal, "upstream request: method " + what.method + " is not GET or POST");
        const bool post = what.method == "POST";
        if (what.target.empty() || what.target.front() != '/' || !is_header_value(what.target) ||
            what.target.find(' ') != std::string::npos)
            return fail(ErrorKind::internal, "upstream request: target is not an origin-form path");
        if (!is_header_value(what.bearer) || !is_header_value(what.content_type) || !is_header_value(settings().host))
            return fail(ErrorKind::invalid_input,
                        "upstream request: a header value holds a control character (bearer token, content type "
                        "or host)");
        request.clear();
        request.reserve(256 + what.bearer.size() + what.body.size());
        request.append(post ? "POST " : "GET ").append(what.target).append(" HTTP/1.1\r\nHost: ");
        request.append(settings().host).append("\r\nUser-Agent: carebridge\r\n");
        request.append("Accept: application/fhir+json, application/json\r\n");
        if (!what.bearer.empty())
            request.append("Authorization: Bearer ").append(what.bearer).append("\r\n");
        if (post) {
            request.append("Content-Type: ").append(what.content_type).append("\r\n");
            request.append("Content-Length: ").append(std::to_string(what.body.size())).append("\r\n");
        }
        request.append("\r\n").append(what.body);
        return {};
    }

    void start(const HttpRequest& what, Done callback) {
        busy = true;
        retried = false;
        done = std::move(callback);
        if (auto composed = compose(what); !composed) {
            // Answered asynchronously, like every other outcome.
            boost::asio::post(io, [self = shared_from_this(), error = std::move(composed).error()]() mutable {
                if (self->owner != nullptr)
                    self->complete(std::move(error));
            });
            return;
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
        boost::asio::async_write(*stream, boost::asio::buffer(request),
                                 [self = shared_from_this()](const beast::error_code& error, std::size_t) {
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
        HttpResponse answer;
        answer.status = parser->status;
        answer.body = std::move(parser->body);
        answer.retry_after = parser->retry_after;
        if (!parser->keep_alive())
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
        connection->start(request, std::move(done));
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
