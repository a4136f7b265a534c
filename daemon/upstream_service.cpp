#include "daemon/upstream_service.hpp"

namespace cb {

Result<std::shared_ptr<signing::Pkcs11Token>> open_upstream_token(const Config::Upstream& config) {
    return signing::open_pkcs11_token({config.pkcs11_module, config.pkcs11_token, config.pkcs11_pin_file, ""});
}

Result<std::unique_ptr<upstream::HttpsClient>> make_upstream_client(boost::asio::io_context& io,
                                                                    const Config::Upstream& config,
                                                                    std::shared_ptr<signing::Pkcs11Token> token) {
    upstream::HttpsSettings settings;
    settings.host = config.host;
    settings.port = config.port;
    settings.ca_file = config.ca_file.string();
    settings.crl_file = config.crl_file.string();
    settings.cert_file = config.cert_file.string();
    if (config.tls_key == "pkcs11") {
        if (!token)
            token = CB_TRY(open_upstream_token(config));
        settings.key =
            CB_TRY(signing::open_pkcs11_tls_key(std::move(token), {config.pkcs11_tls_key_label, ""}, config.cert_file));
    } else {
        settings.key_file = config.key_file.string();
    }
    settings.timeout = config.timeout;
    settings.max_connections = config.max_connections;
    settings.pipeline_depth = config.pipeline_depth;
    return upstream::HttpsClient::create(io, settings);
}

Forwarder::Devices describe_devices(const DeviceCatalog& catalog) {
    Forwarder::Devices devices;
    catalog.for_each_device([&](const EnrolledDevice& device) {
        DeviceDescription description;
        if (const DeviceModel* model = catalog.model(device.model_id)) {
            description.manufacturer = model->manufacturer;
            description.model = model->name;
        }
        devices.emplace(device.id, std::move(description));
    });
    return devices;
}

Result<std::unique_ptr<UpstreamService>> UpstreamService::start(boost::asio::io_context& io, Logger& log,
                                                                const Config::Upstream& config,
                                                                const std::filesystem::path& database,
                                                                const DeviceCatalog& catalog) {
    auto service = std::unique_ptr<UpstreamService>(new UpstreamService());
    // One token (one login) for the signing key and the TLS key when both live there.
    std::shared_ptr<signing::Pkcs11Token> token;
    if (config.uses_pkcs11())
        token = CB_TRY(open_upstream_token(config));
    if (config.signer == "pkcs11")
        service->m_signer =
            CB_TRY(signing::open_pkcs11_signer(token, {config.pkcs11_key_label, ""}, config.signing_chain_file));
    else
        service->m_signer = CB_TRY(signing::open_pem_signer({config.signing_key_file, config.signing_chain_file}));
    service->m_client = CB_TRY(make_upstream_client(io, config, token));
    auto outbox = CB_TRY(storage::Outbox::open(database));
    ForwarderSettings settings;
    settings.facility_system = config.facility_id_system;
    settings.facility_value = config.facility_id;
    settings.prefetch = std::max<std::size_t>(64, config.max_connections * 64);
    service->m_forwarder = std::make_unique<Forwarder>(io, log, std::move(outbox), *service->m_signer,
                                                       *service->m_client, describe_devices(catalog), settings);
    CB_TRY(service->m_forwarder->start());
    log.info("upstream",
             "forwarding to " + config.host + ":" + std::to_string(config.port) + ", signed " +
                 upstream::to_string(service->m_signer->algorithm()) + " (" + config.signer + " key), TLS key " +
                 (config.tls_key == "pkcs11" ? "on PKCS#11 token \"" + config.pkcs11_token + "\"" : "file") + ", " +
                 std::to_string(config.max_connections) + " connection(s), " + std::to_string(config.pipeline_depth) +
                 " request(s) in flight on each");
    return service;
}

UpstreamService::~UpstreamService() {
    stop();
}

void UpstreamService::stop() {
    if (m_forwarder)
        m_forwarder->stop();
    if (m_client)
        m_client->stop();
}

}  // namespace cb
