#include "drivers/upstream/https_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <charconv>
#include <deque>
#include <vector>

#include "drivers/file_stamp.hpp"
#include "drivers/signing/signer.hpp"

namespace cb::upstream {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

Result<FileStamp> stamp_of(const std::string& path, const std::string& what) {
    auto stamp = file_stamp(path);
    if (!stamp)
        return fail(ErrorKind::io, what + " " + path + ": " + system_error_text(errno));
    return *stamp;
}

// OpenSSL's reason for the last error in its queue, which is then emptied.
std::string openssl_error_text() {
    const unsigned long code = ERR_peek_last_error();
    const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
    ERR_clear_error();
    return reason != nullptr ? reason : "not a readable PEM certificate file";
}

// The trust anchors and, when crl_file is set, the CRLs the server's
// certificate is checked against, as a store the TLS context takes over.
Result<X509_STORE*> load_trust(const std::string& ca_file, const std::string& crl_file) {
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
    if (!store)
        return fail(ErrorKind::internal, "upstream TLS: cannot allocate a certificate store");
    if (X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
        const std::string why = openssl_error_text();
        return fail(ErrorKind::io, "upstream.ca_file " + ca_file + ": " + why);
    }
    if (!crl_file.empty()) {
        // The server's certificate (not its CA's) is checked against these
        // CRLs; one past its nextUpdate fails every handshake, reported as
        // "CRL has expired", and the forwarder retries: nothing is lost.
        X509_LOOKUP* lookup = X509_STORE_add_lookup(store.get(), X509_LOOKUP_file());
        const int loaded = lookup == nullptr ? 0 : X509_load_crl_file(lookup, crl_file.c_str(), X509_FILETYPE_PEM);
        ERR_clear_error();
        if (loaded < 1)
            return fail(ErrorKind::invalid_input, "upstream.crl_file " + crl_file + ": no PEM CRL could be read");
        X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
    }
    return store.release();
}

}  // namespace

struct HttpsClient::Impl {
    ssl::context tls{ssl::context::tls_client};
    std::optional<FileStamp> crl_stamp;  // of the CRL file the store holds
    std::optional<Error> trust_error;    // the current CRL file could not be used

    // Before each new connection: if upstream.crl_file was replaced since it
    // was read, read it again, so that a CRL the operator refreshes (before
    // the old one's nextUpdate) or a new revocation needs no restart. A file
    // that cannot be read refuses new connections until it is fixed: the
    // forwarder retries, nothing is lost, and revocation is never skipped.
    Result<void> refresh_trust(const HttpsSettings& settings) {
        if (settings.crl_file.empty())
            return {};
        auto stamp = stamp_of(settings.crl_file, "upstream.crl_file");
        if (!stamp) {
            crl_stamp.reset();
            trust_error = stamp.error();
            return stamp.error();
        }
        if (crl_stamp == *stamp)
            return trust_error ? Result<void>(*trust_error) : Result<void>{};
        crl_stamp = *stamp;
        auto store = load_trust(settings.ca_file, settings.crl_file);
        if (!store) {
            trust_error = store.error();
            return store.error();
        }
        SSL_CTX_set_cert_store(tls.native_handle(), *store);  // frees the previous store
        trust_error.reset();
        return {};
    }

    // Whether upstream.crl_file is no longer the file the store holds
    // (replaced, changed, or gone).
    bool trust_changed(const HttpsSettings& settings) const {
        if (settings.crl_file.empty())
            return false;
        auto stamp = stamp_of(settings.crl_file, "upstream.crl_file");
        return !stamp || !(crl_stamp == *stamp);
    }
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

namespace {

// The request in HTTP/1.1 wire form (RFC 9112), written here rather than
// through Beast's serializer: one buffer, no header nodes.
Result<std::string> compose(const HttpRequest& what, const std::string& host) {
    if (what.method != "GET" && what.method != "POST")
        return fail(ErrorKind::internal, "upstream request: method " + what.method + " is not GET or POST");
    const bool post = what.method == "POST";
    if (what.target.empty() || what.target.front() != '/' || !is_header_value(what.target) ||
        what.target.find(' ') != std::string::npos)
        return fail(ErrorKind::internal, "upstream request: target is not an origin-form path");
    if (!is_header_value(what.bearer) || !is_header_value(what.content_type) || !is_header_value(host))
        return fail(ErrorKind::invalid_input,
                    "upstream request: a header value holds a control character (bearer token, content type or host)");
    std::string request;
    request.reserve(256 + what.bearer.size() + what.body.size());
    request.append(post ? "POST " : "GET ").append(what.target).append(" HTTP/1.1\r\nHost: ");
    request.append(host).append("\r\nUser-Agent: carebridge\r\n");
    request.append("Accept: application/fhir+json, application/json\r\n");
    if (!what.bearer.empty())
        request.append("Authorization: Bearer ").append(what.bearer).append("\r\n");
    if (post) {
        request.append("Content-Type: ").append(what.content_type).append("\r\n");
        request.append("Content-Length: ").append(std::to_string(what.body.size())).append("\r\n");
    }
    request.append("\r\n").append(what.body);
    return request;
}

}  // namespace

// One keep-alive connection carrying up to `pipeline_depth` requests at a
// time (HTTP/1.1 pipelining, RFC 9112 §9.3.2): the requests taken are written
// back to back, in as few TLS writes as possible, and the answers read in
// order. A socket's handlers carry its epoch: once the socket is closed,
// those still pending find a newer epoch and do nothing.
struct HttpsClient::Connection : std::enable_shared_from_this<HttpsClient::Connection> {
    enum class Stage { connect, write, read };
    enum class State { closed, connecting, open };

    Connection(HttpsClient& client, boost::asio::io_context& context, ssl::context& tls_context)
        : owner(&client), io(context), tls(tls_context), resolver(context) {}

    // Closes a connection opened under a CRL that changed and hands back what
    // it carried, for new connections (which check the new CRL). A request
    // that was written may have been processed: sent again, it is a
    // conditional create, like after a failure; it is marked resent.
    std::deque<Exchange> retire() {
        close();
        std::deque<Exchange> taken = std::move(exchanges);
        exchanges.clear();
        for (auto& exchange : taken)
            exchange.resent = true;
        return taken;
    }

    HttpsClient* owner;  // nullptr once the client stopped
    boost::asio::io_context& io;
    ssl::context& tls;
    tcp::resolver resolver;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    State state = State::closed;
    std::uint64_t epoch = 0;
    std::deque<Exchange> exchanges;  // taken, in order; the front is answered next
    std::size_t written = 0;         // exchanges, from the front, whose bytes are all written
    std::size_t writing = 0;         // the exchanges after those, in the write under way
    std::string out;                 // what that write sends
    bool write_posted = false;       // a write is planned for the end of this handler
    bool acknowledged = false;       // TCP_QUICKACK sent since the last answer
    bool reading = false;
    beast::flat_buffer buffer;
    std::optional<AnswerParser> parser;

    const HttpsSettings& settings() const { return owner->m_settings; }

    // Something was taken, or the socket is ready: go on.
    void kick() {
        if (state == State::closed && !exchanges.empty())
            connect();
        else if (state == State::open) {
            write_more();
            read_more();
        }
    }

    void close() {
        ++epoch;
        state = State::closed;
        written = 0;
        writing = 0;
        write_posted = false;
        reading = false;
        if (stream) {
            beast::error_code ignored;
            beast::get_lowest_layer(*stream).socket().close(ignored);
        }
        buffer.clear();
    }

    void connect() {
        close();
        state = State::connecting;
        if (auto trusted = owner->m_impl->refresh_trust(settings()); !trusted) {
            boost::asio::post(io, [self = shared_from_this(), at = epoch, why = trusted.error().message()] {
                if (self->current(at))
                    self->failed(Stage::connect, why);
            });
            return;
        }
        stream.emplace(io, tls);
        // SNI, and the name the server's certificate must carry.
        // SSL_set_tlsext_host_name(), without the macro's C cast.
        if (SSL_ctrl(stream->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(settings().host.c_str())) != 1) {
            boost::asio::post(io, [self = shared_from_this(), at = epoch] {
                if (self->current(at))
                    self->failed(Stage::connect, "cannot set the TLS server name");
            });
            return;
        }
        stream->set_verify_callback(ssl::host_name_verification(settings().host));
        resolver.async_resolve(settings().host, std::to_string(settings().port),
                               [self = shared_from_this(), at = epoch](const beast::error_code& error,
                                                                       const tcp::resolver::results_type& results) {
                                   if (!self->current(at))
                                       return;
                                   if (error)
                                       return self->failed(Stage::connect, "cannot resolve: " + describe(error));
                                   self->tcp_connect(results);
                               });
    }

    void tcp_connect(const tcp::resolver::results_type& results) {
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        beast::get_lowest_layer(*stream).async_connect(
            results, [self = shared_from_this(), at = epoch](const beast::error_code& error, const tcp::endpoint&) {
                if (!self->current(at))
                    return;
                if (error)
                    return self->failed(Stage::connect, "cannot connect: " + describe(error));
                beast::get_lowest_layer(*self->stream).socket().set_option(tcp::no_delay(true));
                self->handshake();
            });
    }

    void handshake() {
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        stream->async_handshake(
            ssl::stream_base::client, [self = shared_from_this(), at = epoch](const beast::error_code& error) {
                if (!self->current(at))
                    return;
                if (error)
                    return self->failed(Stage::connect, "TLS handshake: " + describe(error) + self->verify_result());
                self->state = State::open;
                self->kick();
            });
    }

    bool current(std::uint64_t at) const { return owner != nullptr && at == epoch; }

    // Why the server's certificate was refused, if it was: OpenSSL's handshake
    // error only says "certificate verify failed".
    std::string verify_result() {
        const long result = SSL_get_verify_result(stream->native_handle());
        return result == X509_V_OK ? std::string() : std::string(" (") + X509_verify_cert_error_string(result) + ")";
    }

    // Every request taken and not yet written goes in one write. The write
    // waits for the end of the current handler, so that the requests sent
    // together (a chunk of signed bundles) leave together; and while answers
    // are awaited it waits until half the pipeline is free, so that answers
    // trickling in do not each cost a write.
    void write_more() {
        const std::size_t unwritten = exchanges.size() - written - writing;
        if (writing > 0 || write_posted || unwritten == 0)
            return;
        if (written > 0 && unwritten * 2 < settings().pipeline_depth) {
            // Held back, nothing goes out for the server's last answer to be
            // acknowledged with: the ACK leaves now rather than after the
            // kernel's delayed-ACK timeout, or a server with Nagle on would
            // keep its next answer until then (40 ms per answer).
            if (!acknowledged) {
                const int on = 1;
                ::setsockopt(beast::get_lowest_layer(*stream).socket().native_handle(), IPPROTO_TCP, TCP_QUICKACK, &on,
                             sizeof on);
                acknowledged = true;
            }
            return;
        }
        write_posted = true;
        boost::asio::post(io, [self = shared_from_this(), at = epoch] {
            if (!self->current(at))
                return;
            self->write_posted = false;
            self->write_now();
        });
    }

    void write_now() {
        if (writing > 0 || written == exchanges.size())
            return;
        out.clear();
        for (std::size_t i = written; i < exchanges.size(); ++i)
            out += exchanges[i].wire;
        writing = exchanges.size() - written;
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        boost::asio::async_write(*stream, boost::asio::buffer(out),
                                 [self = shared_from_this(), at = epoch](const beast::error_code& error, std::size_t) {
                                     if (!self->current(at))
                                         return;
                                     if (error)
                                         return self->failed(Stage::write, "sending the request: " + describe(error));
                                     self->written += self->writing;
                                     self->writing = 0;
                                     self->kick();
                                 });
    }

    // The next answer, once its request is written.
    void read_more() {
        if (reading || written == 0)
            return;
        reading = true;
        parser.emplace();
        parser->body_limit(settings().max_body);
        parser->header_limit(16 * 1024);
        beast::get_lowest_layer(*stream).expires_after(settings().timeout);
        http::async_read(*stream, buffer, *parser,
                         [self = shared_from_this(), at = epoch](const beast::error_code& error, std::size_t) {
                             if (!self->current(at))
                                 return;
                             self->reading = false;
                             self->acknowledged = false;
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
        Exchange done = std::move(exchanges.front());
        exchanges.pop_front();
        --written;
        std::deque<Exchange> unanswered;
        if (!parser->keep_alive()) {
            // The server closes after this answer (e.g. its requests-per-
            // connection limit): what follows it was not processed; it goes
            // again on a new connection, first in line.
            close();
            unanswered = std::move(exchanges);
            exchanges.clear();
        }
        HttpsClient* client = owner;
        client->released(1 + unanswered.size());
        client->requeue(std::move(unanswered));
        done.done(std::move(answer));
        if (owner != nullptr) {
            client->pump();
            kick();
        }
    }

    void failed(Stage stage, const std::string& what) {
        // The front may have had part of its answer: it cannot be known
        // whether the server processed it. Every other request had nothing
        // and is sent once more on a new connection (a stale keep-alive, a
        // server restart; our POSTs are conditional creates: idempotent).
        // A failure to connect is the platform being unreachable: reported.
        const bool front_answered = stage == Stage::read && parser && parser->got_some();
        close();
        std::deque<Exchange> taken = std::move(exchanges);
        exchanges.clear();
        std::deque<Exchange> again;
        std::vector<Exchange> failing;
        for (std::size_t i = 0; i < taken.size(); ++i) {
            const bool resend = stage != Stage::connect && !taken[i].resent && !(i == 0 && front_answered);
            if (resend) {
                taken[i].resent = true;
                again.push_back(std::move(taken[i]));
            } else {
                failing.push_back(std::move(taken[i]));
            }
        }
        HttpsClient* client = owner;
        client->released(taken.size());
        client->requeue(std::move(again));
        const std::string where = "upstream " + settings().host + ":" + std::to_string(settings().port) + ": ";
        for (auto& exchange : failing) {
            exchange.done(fail(stage == Stage::connect ? ErrorKind::unavailable : ErrorKind::io, where + what));
            if (owner == nullptr)
                return;  // the client was stopped from a callback
        }
        client->pump();
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
    if (!settings.crl_file.empty())
        impl->crl_stamp = CB_TRY(stamp_of(settings.crl_file, "upstream.crl_file"));
    SSL_CTX_set_cert_store(tls.native_handle(), CB_TRY(load_trust(settings.ca_file, settings.crl_file)));
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
    settings.max_connections = std::max<std::size_t>(settings.max_connections, 1);
    settings.pipeline_depth = std::max<std::size_t>(settings.pipeline_depth, 1);
    auto client = std::unique_ptr<HttpsClient>(new HttpsClient(io, std::move(settings), std::move(impl)));
    for (std::size_t i = 0; i < client->m_settings.max_connections; ++i)
        client->m_connections.push_back(std::make_shared<Connection>(*client, io, client->m_impl->tls));
    return client;
}

void HttpsClient::send(const HttpRequest& request, Done done) {
    if (m_stopped) {
        done(fail(ErrorKind::unavailable, "upstream client stopped"));
        return;
    }
    auto wire = compose(request, m_settings.host);
    if (!wire) {
        // Answered asynchronously, like every other outcome.
        boost::asio::post(
            m_io, [done = std::move(done), error = std::move(wire).error()]() mutable { done(std::move(error)); });
        return;
    }
    retire_if_trust_changed();
    m_queue.push_back(Exchange{.wire = std::move(*wire), .done = std::move(done), .resent = false});
    pump();
}

void HttpsClient::retire_if_trust_changed() {
    if (m_settings.crl_file.empty())
        return;
    const auto now = std::chrono::steady_clock::now();
    if (now < m_next_trust_check)
        return;
    m_next_trust_check = now + m_settings.trust_check_interval;
    if (!m_impl->trust_changed(m_settings))
        return;
    // A connection checked the server against the old file only: a server
    // revoked since must not get another request on it. Every open one
    // closes; the next connect() reads the file (refresh_trust).
    std::deque<Exchange> carried;
    for (auto& connection : m_connections) {
        auto taken = connection->retire();
        released(taken.size());
        carried.insert(carried.end(), std::make_move_iterator(taken.begin()), std::make_move_iterator(taken.end()));
    }
    requeue(std::move(carried));
}

void HttpsClient::requeue(std::deque<Exchange> exchanges) {
    // In front of the queue, in their order: they were sent before it.
    m_queue.insert(m_queue.begin(), std::make_move_iterator(exchanges.begin()),
                   std::make_move_iterator(exchanges.end()));
}

void HttpsClient::released(std::size_t count) {
    m_busy -= count;
}

void HttpsClient::pump() {
    // Each request to the least loaded connection, up to the pipeline depth.
    std::vector<Connection*> touched;
    while (!m_queue.empty()) {
        Connection* best = nullptr;
        for (auto& connection : m_connections)
            if (connection->exchanges.size() < m_settings.pipeline_depth &&
                (best == nullptr || connection->exchanges.size() < best->exchanges.size()))
                best = connection.get();
        if (best == nullptr)
            break;
        best->exchanges.push_back(std::move(m_queue.front()));
        m_queue.pop_front();
        ++m_busy;
        if (std::find(touched.begin(), touched.end(), best) == touched.end())
            touched.push_back(best);
    }
    for (Connection* connection : touched)
        connection->kick();
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
    for (auto& exchange : queue)
        exchange.done(fail(ErrorKind::unavailable, "upstream client stopped"));
}

}  // namespace cb::upstream
