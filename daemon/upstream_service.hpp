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

// The PKCS#11 token of config [upstream] (pkcs11_module, pkcs11_token,
// pkcs11_pin_file), opened and logged in.
Result<std::shared_ptr<signing::Pkcs11Token>> open_upstream_token(const Config::Upstream& config);

// The HTTPS client of config [upstream] (TLS material loaded and checked).
// With tls_key = "pkcs11", the key is found on `token`, or on the token
// opened here when `token` is null.
Result<std::unique_ptr<upstream::HttpsClient>> make_upstream_client(boost::asio::io_context& io,
                                                                    const Config::Upstream& config,
                                                                    std::shared_ptr<signing::Pkcs11Token> token = {});

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
