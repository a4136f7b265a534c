// The PEM-file backend: the key is read once, held as an EVP_PKEY in memory,
// and the file's bytes are wiped.
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <memory>
#include <mutex>
#include <vector>

#include "drivers/signing/signer.hpp"
#include "drivers/signing/signer_internal.hpp"

namespace cb::signing {
namespace {

class PemSigner final : public Signer {
public:
    PemSigner(EVP_PKEY* key, JwsAlgorithm algorithm, std::vector<Bytes> chain)
        : m_key(key),
          m_algorithm(algorithm),
          m_chain(std::move(chain)),
          m_sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {}
    ~PemSigner() override {
        for (EVP_PKEY_CTX* context : m_contexts)
            EVP_PKEY_CTX_free(context);
        EVP_MD_free(m_sha256);
        EVP_PKEY_free(m_key);
    }
    PemSigner(const PemSigner&) = delete;
    PemSigner& operator=(const PemSigner&) = delete;

    JwsAlgorithm algorithm() const noexcept override { return m_algorithm; }
    const std::vector<Bytes>& certificate_chain() const noexcept override { return m_chain; }

    // SHA-256 here, then the key's sign over the digest with a context made
    // once and reused (EVP_DigestSignInit per call costs a context set-up and
    // a digest fetch: bench/forward). Contexts are not shared between threads:
    // each call takes one from the pool and gives it back.
    Result<Bytes> sign(std::span<const std::uint8_t> data) override {
        std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
        unsigned int digest_length = 0;
        EVP_PKEY_CTX* context = take_context();
        std::size_t length = 0;
        Bytes signature;
        bool ok = context != nullptr &&
                  EVP_Digest(data.data(), data.size(), digest.data(), &digest_length, m_sha256, nullptr) == 1 &&
                  EVP_PKEY_sign(context, nullptr, &length, digest.data(), digest_length) == 1;
        if (ok) {
            signature.resize(length);
            ok = EVP_PKEY_sign(context, signature.data(), &length, digest.data(), digest_length) == 1;
            signature.resize(length);
        }
        give_back(context);
        ERR_clear_error();
        if (!ok)
            return fail(ErrorKind::io, "PEM signer: signing failed");
        if (m_algorithm == JwsAlgorithm::es256)
            return upstream::ecdsa_der_to_raw(signature, 32);
        return signature;
    }

private:
    EVP_PKEY_CTX* take_context() {
        if (m_sha256 == nullptr)
            return nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (!m_contexts.empty()) {
                EVP_PKEY_CTX* context = m_contexts.back();
                m_contexts.pop_back();
                return context;
            }
        }
        EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_from_pkey(nullptr, m_key, nullptr);
        if (context == nullptr || EVP_PKEY_sign_init(context) != 1 ||
            EVP_PKEY_CTX_set_signature_md(context, m_sha256) != 1) {
            EVP_PKEY_CTX_free(context);
            return nullptr;
        }
        return context;
    }

    void give_back(EVP_PKEY_CTX* context) {
        if (context == nullptr)
            return;
        std::lock_guard lock(m_mutex);
        m_contexts.push_back(context);
    }

    EVP_PKEY* m_key;
    JwsAlgorithm m_algorithm;
    std::vector<Bytes> m_chain;
    EVP_MD* m_sha256;  // fetched once
    std::mutex m_mutex;
    std::vector<EVP_PKEY_CTX*> m_contexts;  // idle signing contexts; guarded by m_mutex
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
