// The upstream side of the daemon, composed from config [upstream]: the
// signer (PEM or PKCS#11), the HTTPS client (mutual TLS) and the forwarder
// over the store's outbox. Also what `carebridged --pair` needs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <memory>

#include "daemon/catalog.hpp"
#include "daemon/config.hpp"
#include "daemon/forwarder.hpp"
#include "daemon/log.hpp"

namespace cb {

// The HTTPS client of config [upstream] (TLS material loaded and checked).
Result<std::unique_ptr<upstream::HttpsClient>> make_upstream_client(boost::asio::io_context& io,
                                                                    const Config::Upstream& config);

// The device descriptions the bundles carry, from the catalog.
Forwarder::Devices describe_devices(const DeviceCatalog& catalog);

class UpstreamService {
public:
    // Opens the signer and the client, queues again what was in flight, and
    // starts forwarding. `database` is the readings store (already migrated).
    static Result<std::unique_ptr<UpstreamService>> start(boost::asio::io_context& io, Logger& log,
                                                          const Config::Upstream& config,
                                                          const std::filesystem::path& database,
                                                          const DeviceCatalog& catalog);
    ~UpstreamService();  // stop()

    void poke() { m_forwarder->poke(); }
    void set_devices(const DeviceCatalog& catalog) { m_forwarder->set_devices(describe_devices(catalog)); }
    void stop();
    const Forwarder& forwarder() const { return *m_forwarder; }

private:
    UpstreamService() = default;
    std::unique_ptr<signing::Signer> m_signer;
    std::unique_ptr<upstream::HttpsClient> m_client;
    std::unique_ptr<Forwarder> m_forwarder;
};

}  // namespace cb
