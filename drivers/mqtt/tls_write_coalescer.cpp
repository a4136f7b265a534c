#include "drivers/mqtt/tls_write_coalescer.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "protocol/result.hpp"

namespace cb::mqtt {

namespace {

// At most this much per OpenSSL call: an int, and far more than a turn writes.
constexpr std::size_t max_write = std::size_t{1} << 20;

using SslWrite = int (*)(SSL*, const void*, int);

// OpenSSL's SSL_write, the definition after ours in the lookup order.
SslWrite openssl_ssl_write() {
    static const auto next = reinterpret_cast<SslWrite>(::dlsym(RTLD_NEXT, "SSL_write"));
    return next;
}

void on_ssl_free(void* /*ssl*/, void* coalescer, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/,
                 void* /*argp*/) {
    if (coalescer != nullptr)
        static_cast<TlsWriteCoalescer*>(coalescer)->ssl_freed();
}

int coalescer_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, on_ssl_free);
    return index;
}

TlsWriteCoalescer* coalescer_of(SSL* ssl) {
    return ssl == nullptr ? nullptr : static_cast<TlsWriteCoalescer*>(SSL_get_ex_data(ssl, coalescer_index()));
}

std::string openssl_error_text() {
    const unsigned long code = ERR_get_error();
    if (code == 0)
        return errno != 0 ? system_error_text(errno) : "connection closed";
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    ERR_clear_error();
    return text.data();
}

}  // namespace

TlsWriteCoalescer::~TlsWriteCoalescer() {
    detach();
}

bool TlsWriteCoalescer::attach(ssl_st* ssl) {
    detach();
    // Coalesce only if libmosquitto's calls reach our SSL_write: the
    // executable exports it, and OpenSSL's is there to hand records to.
    if (ssl == nullptr || openssl_ssl_write() == nullptr ||
        ::dlsym(RTLD_DEFAULT, "SSL_write") != reinterpret_cast<void*>(&::SSL_write) || coalescer_index() < 0)
        return false;
    // A flush hands OpenSSL a buffer that may have grown and moved since a
    // write that could not complete, and takes each record as it is written.
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    // A renegotiation could make a write wait for a read; brokers do not ask
    // for one, and refusing it keeps flush() to "done, blocked or failed".
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    if (SSL_set_ex_data(ssl, coalescer_index(), this) != 1)
        return false;
    m_ssl = ssl;
    return true;
}

void TlsWriteCoalescer::detach() {
    if (m_ssl != nullptr)
        SSL_set_ex_data(m_ssl, coalescer_index(), nullptr);
    ssl_freed();
}

void TlsWriteCoalescer::ssl_freed() noexcept {
    m_ssl = nullptr;
    m_plain.clear();
    m_sent = 0;
}

void TlsWriteCoalescer::take(const void* data, std::size_t size) {
    m_plain.append(static_cast<const char*>(data), size);
}

TlsWriteCoalescer::Flush TlsWriteCoalescer::flush() {
    while (m_ssl != nullptr && pending()) {
        const std::size_t size = std::min(m_plain.size() - m_sent, max_write);
        ERR_clear_error();
        errno = 0;
        const int written = openssl_ssl_write()(m_ssl, m_plain.data() + m_sent, static_cast<int>(size));
        if (written > 0) {
            m_sent += static_cast<std::size_t>(written);
            continue;
        }
        if (SSL_get_error(m_ssl, written) == SSL_ERROR_WANT_WRITE)
            return Flush::blocked;  // OpenSSL keeps the record it made; the next call sends it first
        m_error = openssl_error_text();
        return Flush::failed;
    }
    m_plain.clear();
    m_sent = 0;
    return Flush::done;
}

}  // namespace cb::mqtt

// Every SSL_write of the process (see the header). Attached: the bytes join
// the coalescer's buffer, reported written. Otherwise, and for a size OpenSSL
// would refuse, OpenSSL's SSL_write.
// The parameter names are OpenSSL's.
extern "C" int SSL_write(SSL* ssl, const void* buf, int num) {
    if (num > 0) {
        if (auto* coalescer = cb::mqtt::coalescer_of(ssl)) {
            coalescer->take(buf, static_cast<std::size_t>(num));
            return num;
        }
    }
    const auto openssl = cb::mqtt::openssl_ssl_write();
    if (openssl == nullptr) {
        // Only if OpenSSL is linked statically, which the link would have refused.
        std::fputs("carebridge: OpenSSL's SSL_write is not loaded\n", stderr);
        std::abort();
    }
    return openssl(ssl, buf, num);
}
