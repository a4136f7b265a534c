// HttpsClient's pipelining (RFC 9112 §9.3.2) against a scripted TLS server on
// loopback: requests leave back to back, answers are matched in order, and
// what a closing connection left unanswered is sent again once.
#include "drivers/upstream/https_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/pki.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// One accepted TLS connection, used blockingly from the server's thread.
class Session {
public:
    Session(tcp::socket socket, ssl::context& tls) : m_stream(std::move(socket), tls) {
        // A client that never sends what the script waits for fails the test
        // through its own deadline; this one only ends the server's thread.
        const timeval limit{.tv_sec = 20, .tv_usec = 0};
        ::setsockopt(m_stream.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        m_stream.handshake(ssl::stream_base::server);
    }

    // The body of the next request, once all of it has arrived.
    std::string read_request() {
        for (;;) {
            const auto head_end = m_input.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const auto at = m_input.find("Content-Length: ");
                if (at > head_end)
                    throw std::runtime_error("a request without Content-Length");
                const std::size_t length = std::stoul(m_input.substr(at + 16));
                if (m_input.size() >= head_end + 4 + length) {
                    std::string body = m_input.substr(head_end + 4, length);
                    m_input.erase(0, head_end + 4 + length);
                    return body;
                }
            }
            char chunk[4096];
            const std::size_t got = m_stream.read_some(asio::buffer(chunk));
            m_input.append(chunk, got);
        }
    }

    // Requests whose bytes had all arrived when the last one was read, still unread.
    bool holds_input() const { return !m_input.empty(); }

    void answer(unsigned status, const std::string& body, bool close = false) {
        std::string out = "HTTP/1.1 " + std::to_string(status) + " Created\r\nContent-Type: application/json\r\n" +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n" +
                          (close ? "Connection: close\r\n" : "") + "\r\n" + body;
        asio::write(m_stream, asio::buffer(out));
    }

    void close() {
        boost::system::error_code ignored;
        m_stream.lowest_layer().close(ignored);
    }

private:
    ssl::stream<tcp::socket> m_stream;
    std::string m_input;
};

// A TLS listener on 127.0.0.1 whose script runs on its own thread.
class ScriptedServer {
public:
    using Script = std::function<void(ScriptedServer&)>;

    // `certificate`: a test-pki base name (e.g. "revoked-server"); empty: the broker's.
    ScriptedServer(const cb::test::TestPki& pki, Script script, const std::string& certificate = {})
        : m_tls(ssl::context::tls_server), m_acceptor(m_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        const auto base = pki.directory() / certificate;
        m_tls.use_certificate_chain_file(certificate.empty() ? pki.broker_certificate().string()
                                                             : base.string() + ".crt");
        m_tls.use_private_key_file(certificate.empty() ? pki.broker_key().string() : base.string() + ".key",
                                   ssl::context::pem);
        m_thread = std::thread([this, script = std::move(script)] {
            try {
                script(*this);
            } catch (const std::exception& error) {
                m_failure = error.what();
            }
        });
    }
    ~ScriptedServer() { join(); }
    ScriptedServer(const ScriptedServer&) = delete;
    ScriptedServer& operator=(const ScriptedServer&) = delete;

    std::uint16_t port() const { return m_acceptor.local_endpoint().port(); }

    Session accept() { return Session(m_acceptor.accept(), m_tls); }

    // Waits for the script to end; what it threw, if anything.
    std::string join() {
        if (m_thread.joinable())
            m_thread.join();
        return m_failure;
    }

private:
    asio::io_context m_io;
    ssl::context m_tls;
    tcp::acceptor m_acceptor;
    std::thread m_thread;
    std::string m_failure;
};

struct Outcome {
    std::optional<unsigned> status;
    std::string body;
    std::string error;
};

// POSTs `body` to /fhir and runs `io` until the client has answered.
Outcome post_and_wait(asio::io_context& io, cb::upstream::HttpsClient& client, const std::string& body) {
    Outcome outcome;
    cb::upstream::HttpRequest request;
    request.target = "/fhir";
    request.content_type = "application/fhir+json";
    request.body = body;
    client.send(request, [&outcome](cb::Result<cb::upstream::HttpResponse> answer) {
        if (answer)
            outcome.status = answer->status;
        else
            outcome.error = answer.error().message();
    });
    io.restart();
    io.run();
    return outcome;
}

cb::upstream::HttpsSettings client_settings(const cb::test::TestPki& pki, std::uint16_t port) {
    cb::upstream::HttpsSettings settings;
    settings.host = "127.0.0.1";
    settings.port = port;
    settings.ca_file = pki.ca_certificate().string();
    settings.cert_file = (pki.directory() / "facility" / "ec.crt").string();
    settings.key_file = (pki.directory() / "facility" / "ec.key").string();
    settings.timeout = std::chrono::seconds(10);
    settings.max_connections = 1;
    return settings;
}

// Sends `bodies` at once and runs the client until every one is answered.
std::vector<Outcome> send_all(const cb::test::TestPki& pki, std::uint16_t port, std::size_t depth,
                              const std::vector<std::string>& bodies, const std::string& crl_file = {}) {
    asio::io_context io;
    auto settings = client_settings(pki, port);
    settings.pipeline_depth = depth;
    settings.crl_file = crl_file;
    auto client = cb::upstream::HttpsClient::create(io, settings);
    REQUIRE(client);
    std::vector<Outcome> outcomes(bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        cb::upstream::HttpRequest request;
        request.target = "/fhir";
        request.content_type = "application/fhir+json";
        request.body = bodies[i];
        (*client)->send(request, [&outcomes, i](cb::Result<cb::upstream::HttpResponse> answer) {
            if (answer) {
                outcomes[i].status = answer->status;
                outcomes[i].body = answer->body;
            } else {
                outcomes[i].error = answer.error().message();
            }
        });
    }
    io.run();
    return outcomes;
}

// Every request answered 201, with these bodies, in order.
void check_created(const std::vector<Outcome>& outcomes, const std::vector<std::string>& bodies) {
    REQUIRE(outcomes.size() == bodies.size());
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        INFO("request " << i << ": " << outcomes[i].error);
        CHECK(outcomes[i].status == 201u);
        CHECK(outcomes[i].body == bodies[i]);
    }
}

}  // namespace

TEST_CASE("https client: pipelined requests leave together and their answers are matched in order") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    std::vector<std::string> seen;
    ScriptedServer server(pki, [&](ScriptedServer& self) {
        Session session = self.accept();
        // Nothing is answered before all four have arrived: a client that
        // waited for an answer before its next request would time out here.
        for (int i = 0; i < 4; ++i)
            seen.push_back(session.read_request());
        for (const auto& body : seen)
            session.answer(201, "answer to " + body);
        session.close();
    });
    const auto outcomes = send_all(pki, server.port(), 4, {"a", "b", "c", "d"});
    CHECK(server.join().empty());
    CHECK(seen == std::vector<std::string>{"a", "b", "c", "d"});
    check_created(outcomes, {"answer to a", "answer to b", "answer to c", "answer to d"});
}

TEST_CASE("https client: what a server closing after an answer left unanswered goes again, in order, once") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    std::vector<std::string> first, second;
    ScriptedServer server(pki, [&](ScriptedServer& self) {
        {
            Session session = self.accept();
            for (int i = 0; i < 4; ++i)
                first.push_back(session.read_request());
            session.answer(201, "1");
            session.answer(201, "2", /*close=*/true);  // e.g. nginx's keepalive_requests reached
            session.close();                           // c and d: read, never processed
        }
        Session session = self.accept();
        for (int i = 0; i < 2; ++i)
            second.push_back(session.read_request());
        session.answer(201, "3");
        session.answer(201, "4");
        session.close();
    });
    const auto outcomes = send_all(pki, server.port(), 4, {"a", "b", "c", "d"});
    CHECK(server.join().empty());
    CHECK(first == std::vector<std::string>{"a", "b", "c", "d"});
    CHECK(second == std::vector<std::string>{"c", "d"});
    check_created(outcomes, {"1", "2", "3", "4"});
}

TEST_CASE("https client: requests a dropped connection left unanswered are sent once more, then reported") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    std::vector<std::string> seen;
    ScriptedServer server(pki, [&](ScriptedServer& self) {
        for (int round = 0; round < 2; ++round) {
            Session session = self.accept();
            for (int i = 0; i < 2; ++i)
                seen.push_back(session.read_request());
            session.close();  // no answer at all
        }
    });
    const auto outcomes = send_all(pki, server.port(), 4, {"a", "b"});
    CHECK(server.join().empty());
    CHECK(seen == std::vector<std::string>{"a", "b", "a", "b"});
    for (const auto& outcome : outcomes) {
        CHECK_FALSE(outcome.status.has_value());
        CHECK(outcome.error.find("reading the answer") != std::string::npos);
    }
}

TEST_CASE("https client: with a pipeline depth of 1, the next request waits for the answer") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    std::vector<bool> more_waiting;
    ScriptedServer server(pki, [&](ScriptedServer& self) {
        Session session = self.accept();
        for (int i = 0; i < 3; ++i) {
            const auto body = session.read_request();
            more_waiting.push_back(session.holds_input());
            session.answer(201, body);
        }
        session.close();
    });
    const auto outcomes = send_all(pki, server.port(), 1, {"a", "b", "c"});
    CHECK(server.join().empty());
    CHECK(more_waiting == std::vector<bool>{false, false, false});
    for (const auto& outcome : outcomes)
        CHECK(outcome.status == 201u);
}

TEST_CASE("https client: with upstream.crl_file, a revoked server certificate is refused, naming why") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    const std::string crl = (pki.directory() / "ca.crl").string();
    {
        ScriptedServer revoked(
            pki, [](ScriptedServer& self) { self.accept(); }, "revoked-server");
        const auto outcomes = send_all(pki, revoked.port(), 1, {"a"}, crl);
        CHECK_FALSE(revoked.join().empty());  // its handshake failed
        REQUIRE(outcomes.size() == 1);
        CHECK_FALSE(outcomes[0].status.has_value());
        CHECK_THAT(outcomes[0].error, Catch::Contains("TLS handshake: ") && Catch::Contains("(certificate revoked)"));
    }
    {
        // Without the CRL the same certificate is accepted: the CRL is what refused it.
        ScriptedServer revoked(
            pki,
            [](ScriptedServer& self) {
                Session session = self.accept();
                session.answer(201, session.read_request());
                session.close();
            },
            "revoked-server");
        check_created(send_all(pki, revoked.port(), 1, {"a"}), {"a"});
        CHECK(revoked.join().empty());
    }
    // A certificate the CRL does not list still passes.
    ScriptedServer valid(pki, [](ScriptedServer& self) {
        Session session = self.accept();
        session.answer(201, session.read_request());
        session.close();
    });
    check_created(send_all(pki, valid.port(), 1, {"b"}, crl), {"b"});
    CHECK(valid.join().empty());
}

// A test PKI and an upstream.crl_file that lists nothing at first
// (ca-empty.crl); replace() puts another of the PKI's CRLs in its place as an
// operator would: written beside it, renamed over it.
struct CrlFile {
    cb::test::TempDir dir;
    cb::test::TestPki pki{CAREBRIDGE_SOURCE_DIR, dir / "pki", {}};
    std::filesystem::path path = dir / "upstream.crl";

    CrlFile() { replace("ca-empty.crl"); }

    void replace(const std::string& pki_file) const {
        std::filesystem::copy_file(pki.directory() / pki_file, dir / "upstream.crl.new",
                                   std::filesystem::copy_options::overwrite_existing);
        std::filesystem::rename(dir / "upstream.crl.new", path);
    }

    // A client of the server on `port`, checking it against this file, which
    // it looks at before a request at most every `check_interval`.
    std::unique_ptr<cb::upstream::HttpsClient> client(
        asio::io_context& io, std::uint16_t port,
        std::chrono::milliseconds check_interval = cb::upstream::HttpsSettings{}.trust_check_interval) const {
        auto settings = client_settings(pki, port);
        settings.crl_file = path.string();
        settings.trust_check_interval = check_interval;
        auto client = cb::upstream::HttpsClient::create(io, settings);
        REQUIRE(client);
        return std::move(*client);
    }
};

TEST_CASE("https client: a replaced upstream.crl_file takes effect at the next connection, without a restart") {
    const CrlFile crl;  // lists nothing yet
    const auto& pki = crl.pki;

    // One server with the certificate the CA is about to revoke: it answers
    // on a first connection, sees the client refuse the second handshake,
    // and answers on a third.
    bool refused = false;  // written on the server's thread, read after join()
    ScriptedServer server(
        pki,
        [&refused](ScriptedServer& self) {
            {
                Session session = self.accept();
                session.answer(201, session.read_request(), /*close=*/true);
            }
            try {
                self.accept();
            } catch (const std::exception&) {
                refused = true;  // the handshake failed
            }
            Session session = self.accept();
            session.answer(201, session.read_request(), /*close=*/true);
        },
        "revoked-server");
    asio::io_context io;
    const auto client = crl.client(io, server.port());
    const auto send = [&](const std::string& body) { return post_and_wait(io, *client, body); };

    const auto first = send("a");
    INFO(first.error);
    CHECK(first.status == 201u);

    crl.replace("ca.crl");  // now revokes the server's certificate
    const auto second = send("b");
    CHECK_FALSE(second.status.has_value());
    CHECK_THAT(second.error, Catch::Contains("TLS handshake: ") && Catch::Contains("(certificate revoked)"));

    // A file that is not a CRL refuses new connections (revocation is never
    // skipped), naming the file, before reaching the network; so does a
    // missing one.
    std::ofstream(crl.dir / "upstream.crl.new") << "not a CRL\n";
    std::filesystem::rename(crl.dir / "upstream.crl.new", crl.path);
    const auto third = send("c");
    CHECK_FALSE(third.status.has_value());
    CHECK_THAT(third.error, Catch::Contains("upstream.crl_file " + crl.path.string() + ": no PEM CRL could be read"));
    std::filesystem::remove(crl.path);
    const auto fourth = send("d");
    CHECK_FALSE(fourth.status.has_value());
    CHECK_THAT(fourth.error, Catch::Contains("upstream.crl_file " + crl.path.string() + ": No such file"));

    // Fixed: the next connection goes through.
    crl.replace("ca-empty.crl");
    const auto fifth = send("e");
    INFO(fifth.error);
    CHECK(fifth.status == 201u);
    CHECK(server.join().empty());
    CHECK(refused);
}

TEST_CASE("https client: a replaced upstream.crl_file also closes the connections opened under the old one") {
    const CrlFile crl;
    const auto& pki = crl.pki;

    // The server keeps its first connection open and would answer a second
    // request on it; the client must leave it once the CRL revokes the
    // server, and its new handshake must fail.
    bool answered_on_old = false;  // written on the server's thread, read after join()
    bool refused = false;
    ScriptedServer server(
        pki,
        [&](ScriptedServer& self) {
            Session kept = self.accept();
            kept.answer(201, kept.read_request(), /*close=*/false);
            try {
                kept.answer(201, kept.read_request(), /*close=*/false);
                answered_on_old = true;  // the client kept using it
                return;
            } catch (const std::exception&) {
                // the client closed it: expected
            }
            try {
                self.accept();
            } catch (const std::exception&) {
                refused = true;
            }
        },
        "revoked-server");
    asio::io_context io;
    const auto client = crl.client(io, server.port(), std::chrono::milliseconds(0));  // every request looks
    const auto send = [&](const std::string& body) { return post_and_wait(io, *client, body); };

    const auto first = send("a");
    INFO(first.error);
    CHECK(first.status == 201u);

    crl.replace("ca.crl");  // now revokes the server's certificate
    const auto second = send("b");
    CHECK_FALSE(second.status.has_value());
    CHECK_THAT(second.error, Catch::Contains("(certificate revoked)"));
    CHECK(server.join().empty());
    CHECK_FALSE(answered_on_old);
    CHECK(refused);
}

TEST_CASE("https client: an upstream.crl_file without a CRL is refused at creation") {
    cb::test::TempDir dir;
    const cb::test::TestPki pki(CAREBRIDGE_SOURCE_DIR, dir / "pki", {});
    asio::io_context io;
    auto settings = client_settings(pki, 9);
    settings.crl_file = pki.ca_certificate().string();  // a PEM certificate, not a CRL
    const auto client = cb::upstream::HttpsClient::create(io, settings);
    REQUIRE_FALSE(client);
    CHECK(client.error().message() == "upstream.crl_file " + settings.crl_file + ": no PEM CRL could be read");
}
