// Coalesces the MQTT packets libmosquitto writes on one TLS connection into
// as few TLS records as possible.
//
// Why: libmosquitto writes every packet with its own SSL_write, so every
// PUBACK becomes a TLS record of 26 bytes, and Mosquitto 2.0.11 reads one TLS
// record per turn of its event loop (epoll_wait, read the record header, read
// its body). Draining a backlog then cost the broker one loop turn per reading
// for our PUBACKs alone: 24.6 µs of broker CPU per reading, against 9.8 µs
// once a turn's PUBACKs share a record (bench/README.md, session 11).
//
// How: libmosquitto offers no hook for its writes, so this file defines
// SSL_write. The dynamic linker binds libmosquitto's calls to the executable's
// definition, ahead of OpenSSL's (drivers/CMakeLists.txt exports it with
// --dynamic-list). For an SSL object with a coalescer attached, SSL_write
// appends the bytes to the coalescer and reports them written; for any other
// SSL object (the upstream HTTPS client, tests) it is OpenSSL's SSL_write,
// found with dlsym(RTLD_NEXT). The owner flushes once per loop turn, through
// OpenSSL: one record per 16 KiB.
//
//   | call         | effect                                                       |
//   |--------------|--------------------------------------------------------------|
//   | attach(ssl)  | SSL_write(ssl, …) now appends; false if SSL_write is not ours |
//   |              | in this process (writes then go to OpenSSL one record each)  |
//   | flush()      | done: every byte written to the socket's BIO; blocked: the   |
//   |              | socket is full, call again once it is writable; failed: the  |
//   |              | connection is broken, error() says why                       |
//   | detach()     | SSL_write(ssl, …) is OpenSSL's again; unsent bytes dropped,  |
//   |              | so detach after flush() == done unless the connection is lost |
//   | SSL freed    | detached (an ex_data free callback), unsent bytes dropped    |
//
// Order is kept: bytes leave in the order libmosquitto wrote them. A
// coalescer is used from one thread, the one that drives its libmosquitto
// client; libmosquitto writes only from inside the calls that thread makes.
#pragma once

#include <cstddef>
#include <string>

struct ssl_st;  // OpenSSL SSL

namespace cb::mqtt {

class TlsWriteCoalescer {
public:
    enum class Flush { done, blocked, failed };

    TlsWriteCoalescer() = default;
    ~TlsWriteCoalescer();
    TlsWriteCoalescer(const TlsWriteCoalescer&) = delete;
    TlsWriteCoalescer& operator=(const TlsWriteCoalescer&) = delete;

    bool attach(ssl_st* ssl);
    void detach();
    Flush flush();

    bool attached() const noexcept { return m_ssl != nullptr; }
    bool pending() const noexcept { return m_sent < m_plain.size(); }
    // Why the last flush() failed: OpenSSL's reason or the system error.
    const std::string& error() const noexcept { return m_error; }

    // For the SSL_write definition and the ex_data free callback only.
    void take(const void* data, std::size_t size);
    void ssl_freed() noexcept;

private:
    ssl_st* m_ssl = nullptr;
    std::string m_plain;     // bytes libmosquitto wrote, not yet all given to OpenSSL
    std::size_t m_sent = 0;  // of which OpenSSL has taken this many
    std::string m_error;
};

}  // namespace cb::mqtt
