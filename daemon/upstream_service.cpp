#include "daemon/upstream_service.hpp"

namespace cb {

Result<std::unique_ptr<upstream::HttpsClient>> make_upstream_client(boost::asio::io_context& io,
                                                                    const Config::Upstream& config) {
    upstream::HttpsSettings settings;
    settings.host = config.host;
    settings.port = config.port;
    settings.ca_file = config.ca_file.string();
    settings.cert_file = config.cert_file.string();
    settings.key_file = config.key_file.string();
    settings.timeout = config.timeout;
    settings.max_connections = config.max_connections;
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
    if (config.signer == "pkcs11") {
        signing::Pkcs11SignerConfig signer;
        signer.module = config.pkcs11_module;
        signer.token_label = config.pkcs11_token;
        signer.key_label = config.pkcs11_key_label;
        signer.pin_file = config.pkcs11_pin_file;
        signer.certificate_chain_file = config.signing_chain_file;
        service->m_signer = CB_TRY(signing::open_pkcs11_signer(signer));
    } else {
        service->m_signer = CB_TRY(signing::open_pem_signer({config.signing_key_file, config.signing_chain_file}));
    }
    service->m_client = CB_TRY(make_upstream_client(io, config));
    auto outbox = CB_TRY(storage::Outbox::open(database));
    ForwarderSettings settings;
    settings.facility_system = config.facility_id_system;
    settings.facility_value = config.facility_id;
    settings.prefetch = std::max<std::size_t>(64, config.max_connections * 64);
    service->m_forwarder = std::make_unique<Forwarder>(io, log, std::move(outbox), *service->m_signer,
                                                       *service->m_client, describe_devices(catalog), settings);
    CB_TRY(service->m_forwarder->start());
    log.info("upstream", "forwarding to " + config.host + ":" + std::to_string(config.port) + ", signed " +
                             upstream::to_string(service->m_signer->algorithm()) + " (" + config.signer + " key), " +
                             std::to_string(config.max_connections) + " connection(s)");
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
