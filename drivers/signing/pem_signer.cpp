// The PEM-file backend: the key is read once, held as an EVP_PKEY in memory,
// and the file's bytes are wiped.
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <memory>

#include "drivers/signing/signer.hpp"
#include "drivers/signing/signer_internal.hpp"

namespace cb::signing {
namespace {

class PemSigner final : public Signer {
public:
    PemSigner(EVP_PKEY* key, JwsAlgorithm algorithm, std::vector<Bytes> chain)
        : m_key(key), m_algorithm(algorithm), m_chain(std::move(chain)) {}
    ~PemSigner() override { EVP_PKEY_free(m_key); }

    JwsAlgorithm algorithm() const noexcept override { return m_algorithm; }
    const std::vector<Bytes>& certificate_chain() const noexcept override { return m_chain; }

    Result<Bytes> sign(std::span<const std::uint8_t> data) override {
        EVP_MD_CTX* context = EVP_MD_CTX_new();
        std::size_t length = 0;
        Bytes signature;
        bool ok = context != nullptr && EVP_DigestSignInit(context, nullptr, EVP_sha256(), nullptr, m_key) == 1 &&
                  EVP_DigestSign(context, nullptr, &length, data.data(), data.size()) == 1;
        if (ok) {
            signature.resize(length);
            ok = EVP_DigestSign(context, signature.data(), &length, data.data(), data.size()) == 1;
            signature.resize(length);
        }
        EVP_MD_CTX_free(context);
        ERR_clear_error();
        if (!ok)
            return fail(ErrorKind::io, "PEM signer: signing failed");
        if (m_algorithm == JwsAlgorithm::es256)
            return upstream::ecdsa_der_to_raw(signature, 32);
        return signature;
    }

private:
    EVP_PKEY* m_key;
    JwsAlgorithm m_algorithm;
    std::vector<Bytes> m_chain;
};

// No passphrase: an encrypted key fails to load (and no prompt on a terminal).
int refuse_passphrase(char*, int, int, void*) {
    return -1;
}

}  // namespace

Result<std::unique_ptr<Signer>> open_pem_signer(const PemSignerConfig& config) {
    const std::string what = "key file " + config.key_file.string();
    std::string pem = CB_TRY(read_private_file(config.key_file, "key file"));
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    EVP_PKEY* key = bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, refuse_passphrase, nullptr) : nullptr;
    BIO_free(bio);
    OPENSSL_cleanse(pem.data(), pem.size());
    ERR_clear_error();
    if (key == nullptr)
        return fail(ErrorKind::invalid_input, what + ": not an unencrypted PEM private key");
    const auto algorithm = internal::algorithm_of(key, what);
    if (!algorithm) {
        EVP_PKEY_free(key);
        return algorithm.error();
    }
    auto chain = read_certificate_chain(config.certificate_chain_file);
    if (!chain) {
        EVP_PKEY_free(key);
        return chain.error();
    }
    auto signer = std::make_unique<PemSigner>(key, *algorithm, std::move(chain).value());
    CB_TRY(internal::prove(*signer, what));
    return std::unique_ptr<Signer>(std::move(signer));
}

}  // namespace cb::signing
