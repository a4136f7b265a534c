// The HTTPS transport of the receiver: one io_context thread, Boost.Beast
// HTTP/1.1 with keep-alive over OpenSSL, mutual TLS.
//
//   | what            | value                                                        |
//   |-----------------|--------------------------------------------------------------|
//   | TLS             | 1.2 minimum, 1.3 preferred; server chain from --cert/--key   |
//   | client          | certificate required, verified against --client-ca; without |
//   |                 | one, or from another CA, the handshake fails                 |
//   | limits          | headers 16 KiB, body 1 MiB (413), 256 connections            |
//   | deadlines       | handshake 10 s, reading a request 60 s (idle keep-alive      |
//   |                 | included), writing an answer 30 s                            |
//   | faults          | an answer's delay is an asynchronous timer; a dropped answer |
//   |                 | is its headers, then the TCP connection is closed            |
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <memory>

#include "protocol/result.hpp"
#include "tools/receiver/options.hpp"
#include "tools/receiver/service.hpp"

namespace cb::receiver {

inline constexpr std::size_t max_body_size = 1024 * 1024;
inline constexpr std::size_t max_header_size = 16 * 1024;
inline constexpr std::size_t max_connections = 256;

// The server's TLS context. Fails with ErrorKind::invalid_input naming the file
// that cannot be loaded (never its content).
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const Options& options);

class Server {
public:
    // Binds and listens on `address`; fails with ErrorKind::io naming it.
    static Result<std::unique_ptr<Server>> listen(boost::asio::io_context& io, const ListenAddress& address,
                                                  std::shared_ptr<boost::asio::ssl::context> tls, Service& service,
                                                  LogFunction log);

    boost::asio::ip::tcp::endpoint local_endpoint() const { return m_acceptor.local_endpoint(); }
    void start();
    // Stops accepting; connections in progress end with the io_context.
    void stop();

private:
    Server(boost::asio::io_context& io, std::shared_ptr<boost::asio::ssl::context> tls, Service& service,
           LogFunction log);
    void accept();

    boost::asio::io_context& m_io;
    boost::asio::ip::tcp::acceptor m_acceptor;
    std::shared_ptr<boost::asio::ssl::context> m_tls;
    Service& m_service;
    LogFunction m_log;
    std::shared_ptr<std::size_t> m_connections;
};

}  // namespace cb::receiver
