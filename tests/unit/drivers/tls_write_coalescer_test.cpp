// TlsWriteCoalescer (drivers/mqtt/tls_write_coalescer.hpp) on an in-memory
// TLS 1.3 connection: what SSL_write hands it leaves at flush(), in order, in
// as few records as the bytes allow; a full socket blocks and resumes; the
// SSL object's end detaches it.
#include "drivers/mqtt/tls_write_coalescer.hpp"

#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using cb::mqtt::TlsWriteCoalescer;

template <typename T, void (*Free)(T*)>
struct Freer {
    void operator()(T* object) const { Free(object); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, Freer<SSL_CTX, SSL_CTX_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

void require(bool condition, const char* what) {
    if (!condition)
        throw std::runtime_error(what);
}

// A server context with a throw-away self-signed P-256 certificate.
SslCtxPtr server_context() {
    KeyPtr key(EVP_EC_gen("P-256"));
    CertPtr certificate(X509_new());
    require(key && certificate, "key or certificate");
    X509_set_version(certificate.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
    X509_NAME* name = X509_get_subject_name(certificate.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("broker"), -1, -1, 0);
    X509_set_issuer_name(certificate.get(), name);
    X509_set_pubkey(certificate.get(), key.get());
    require(X509_sign(certificate.get(), key.get(), EVP_sha256()) > 0, "sign");
    SslCtxPtr context(SSL_CTX_new(TLS_server_method()));
    require(context && SSL_CTX_use_certificate(context.get(), certificate.get()) == 1 &&
                SSL_CTX_use_PrivateKey(context.get(), key.get()) == 1,
            "server context");
    return context;
}

// A client and a server over memory. The client writes into one end of a BIO
// pair of `capacity` bytes, like a socket's send buffer; wire() takes what is
// in it, keeps a copy, and passes it to the server.
class Connection {
public:
    explicit Connection(std::size_t capacity = 0)
        : m_server_context(server_context()), m_client_context(SSL_CTX_new(TLS_client_method())) {
        require(m_client_context != nullptr, "client context");
        m_client = SSL_new(m_client_context.get());
        m_server = SSL_new(m_server_context.get());
        BIO* client_end = nullptr;
        BIO* wire_end = nullptr;
        require(BIO_new_bio_pair(&client_end, capacity, &wire_end, capacity) == 1, "bio pair");
        m_wire.reset(wire_end);
        m_client_in = BIO_new(BIO_s_mem());
        m_server_in = BIO_new(BIO_s_mem());
        m_server_out = BIO_new(BIO_s_mem());
        SSL_set0_rbio(m_client, m_client_in);
        SSL_set0_wbio(m_client, client_end);
        SSL_set0_rbio(m_server, m_server_in);
        SSL_set0_wbio(m_server, m_server_out);
        SSL_set_connect_state(m_client);
        SSL_set_accept_state(m_server);
        for (int round = 0; round < 10 && !(SSL_is_init_finished(m_client) && SSL_is_init_finished(m_server));
             ++round) {
            SSL_do_handshake(m_client);
            pass_to_server();
            SSL_do_handshake(m_server);
            pass_to_client();
        }
        require(SSL_is_init_finished(m_client) && SSL_is_init_finished(m_server), "handshake");
        m_captured.clear();
    }
    ~Connection() {
        SSL_free(m_client);
        SSL_free(m_server);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    SSL* client() const { return m_client; }
    void free_client() {
        SSL_free(m_client);
        m_client = nullptr;
    }

    // Moves what the client wrote so far to the server; returns those bytes.
    std::string pass_to_server() {
        std::string moved;
        char chunk[4096];
        for (int got = 0; (got = BIO_read(m_wire.get(), chunk, sizeof chunk)) > 0;)
            moved.append(chunk, static_cast<std::size_t>(got));
        BIO_write(m_server_in, moved.data(), static_cast<int>(moved.size()));
        m_captured += moved;
        return moved;
    }

    // What the server decrypted from everything passed to it.
    std::string server_reads() {
        std::string plain;
        char chunk[4096];
        for (int got = 0; (got = SSL_read(m_server, chunk, sizeof chunk)) > 0;)
            plain.append(chunk, static_cast<std::size_t>(got));
        return plain;
    }

    // Application-data records among the bytes passed since the handshake.
    int records() const {
        int count = 0;
        for (std::size_t at = 0; at + 5 <= m_captured.size();) {
            const auto length = static_cast<std::size_t>((static_cast<unsigned char>(m_captured[at + 3]) << 8) |
                                                         static_cast<unsigned char>(m_captured[at + 4]));
            count += m_captured[at] == 23 ? 1 : 0;
            at += 5 + length;
        }
        return count;
    }

    std::size_t unsent() const { return BIO_ctrl_pending(m_wire.get()); }

private:
    void pass_to_client() {
        char chunk[4096];
        for (int got = 0; (got = BIO_read(m_server_out, chunk, sizeof chunk)) > 0;)
            BIO_write(m_client_in, chunk, got);
    }

    SslCtxPtr m_server_context;
    SslCtxPtr m_client_context;
    SSL* m_client = nullptr;
    SSL* m_server = nullptr;
    BioPtr m_wire;
    BIO* m_client_in = nullptr;   // owned by m_client
    BIO* m_server_in = nullptr;   // owned by m_server
    BIO* m_server_out = nullptr;  // owned by m_server
    std::string m_captured;
};

void write_packets(SSL* ssl, const std::vector<std::string>& packets) {
    for (const auto& packet : packets)
        REQUIRE(SSL_write(ssl, packet.data(), static_cast<int>(packet.size())) == static_cast<int>(packet.size()));
}

const std::vector<std::string> three_pubacks = {std::string("\x40\x02\x00\x01", 4), std::string("\x40\x02\x00\x02", 4),
                                                std::string("\x40\x02\x00\x03", 4)};

}  // namespace

TEST_CASE("tls write coalescer: libraries that call SSL_write reach ours") {
    // The executable exports its SSL_write (drivers/CMakeLists.txt), so the
    // dynamic linker gives it to libmosquitto ahead of OpenSSL's.
    CHECK(::dlsym(RTLD_DEFAULT, "SSL_write") == reinterpret_cast<void*>(&::SSL_write));
    Connection connection;
    TlsWriteCoalescer coalescer;
    CHECK(coalescer.attach(connection.client()));
    CHECK(coalescer.attached());
}

TEST_CASE("tls write coalescer: a turn's packets leave at flush, in order, in one record") {
    Connection connection;
    TlsWriteCoalescer coalescer;
    REQUIRE(coalescer.attach(connection.client()));

    write_packets(connection.client(), three_pubacks);
    CHECK(coalescer.pending());
    CHECK(connection.unsent() == 0);  // nothing reached the socket yet

    CHECK(coalescer.flush() == TlsWriteCoalescer::Flush::done);
    CHECK_FALSE(coalescer.pending());
    connection.pass_to_server();
    CHECK(connection.records() == 1);
    CHECK(connection.server_reads() == three_pubacks[0] + three_pubacks[1] + three_pubacks[2]);
    CHECK(coalescer.flush() == TlsWriteCoalescer::Flush::done);  // nothing left: nothing written
    CHECK(connection.pass_to_server().empty());
}

TEST_CASE("tls write coalescer: detached, each SSL_write is a record of its own again") {
    Connection connection;
    TlsWriteCoalescer coalescer;
    REQUIRE(coalescer.attach(connection.client()));
    coalescer.detach();
    CHECK_FALSE(coalescer.attached());

    write_packets(connection.client(), three_pubacks);
    CHECK(connection.unsent() > 0);
    connection.pass_to_server();
    CHECK(connection.records() == 3);
    CHECK(connection.server_reads() == three_pubacks[0] + three_pubacks[1] + three_pubacks[2]);
}

TEST_CASE("tls write coalescer: a full socket blocks the flush, which resumes in order") {
    Connection connection(4096);  // a send buffer of 4 KiB
    TlsWriteCoalescer coalescer;
    REQUIRE(coalescer.attach(connection.client()));

    std::string expected;
    for (int i = 0; i < 3000; ++i) {
        const std::string packet = "packet " + std::to_string(i) + ";";
        write_packets(connection.client(), {packet});
        expected += packet;
    }
    CHECK(coalescer.flush() == TlsWriteCoalescer::Flush::blocked);
    CHECK(coalescer.pending());

    // More packets while blocked (the buffer grows and may move), then the
    // peer reads and the flush goes on where it stopped.
    int rounds = 0;
    for (auto result = TlsWriteCoalescer::Flush::blocked; result == TlsWriteCoalescer::Flush::blocked; ++rounds) {
        REQUIRE(rounds < 1000);
        const std::string packet = "late " + std::to_string(rounds) + ";";
        write_packets(connection.client(), {packet});
        expected += packet;
        connection.pass_to_server();
        result = coalescer.flush();
        REQUIRE(result != TlsWriteCoalescer::Flush::failed);
    }
    connection.pass_to_server();
    CHECK(rounds > 1);
    CHECK(connection.server_reads() == expected);
    CHECK_FALSE(coalescer.pending());
}

TEST_CASE("tls write coalescer: the SSL object's end detaches it and drops what it held") {
    Connection connection;
    TlsWriteCoalescer coalescer;
    REQUIRE(coalescer.attach(connection.client()));
    write_packets(connection.client(), three_pubacks);
    REQUIRE(coalescer.pending());

    connection.free_client();  // as libmosquitto does when the connection is lost
    CHECK_FALSE(coalescer.attached());
    CHECK_FALSE(coalescer.pending());
    CHECK(coalescer.flush() == TlsWriteCoalescer::Flush::done);
}

TEST_CASE("tls write coalescer: a broken connection fails the flush with a reason") {
    Connection connection;
    TlsWriteCoalescer coalescer;
    REQUIRE(coalescer.attach(connection.client()));
    write_packets(connection.client(), three_pubacks);

    // The socket's end is gone: a write error, not "try again".
    BIO* read_only = BIO_new_mem_buf("", 0);
    SSL_set0_wbio(connection.client(), read_only);
    CHECK(coalescer.flush() == TlsWriteCoalescer::Flush::failed);
    CHECK_FALSE(coalescer.error().empty());
}
