// The PKCS#11 signer: a key on a Pkcs11Token (pkcs11_token.hpp) signing JWS
// payloads. ES256 hashes here and asks the token for CKM_ECDSA over the
// digest; RS256 asks for CKM_SHA256_RSA_PKCS over the payload.
#include <openssl/evp.h>

#include <array>

#include "drivers/signing/pkcs11_token.hpp"
#include "drivers/signing/signer.hpp"
#include "drivers/signing/signer_internal.hpp"

namespace cb::signing {
namespace {

class Pkcs11Signer final : public Signer {
public:
    Pkcs11Signer(std::shared_ptr<Pkcs11Token> token, Pkcs11Token::Key key, std::vector<Bytes> chain)
        : m_token(std::move(token)), m_key(std::move(key)), m_chain(std::move(chain)) {}

    JwsAlgorithm algorithm() const noexcept override {
        return m_key.type == Pkcs11Token::KeyType::ec_p256 ? JwsAlgorithm::es256 : JwsAlgorithm::rs256;
    }
    const std::vector<Bytes>& certificate_chain() const noexcept override { return m_chain; }

    Result<Bytes> sign(std::span<const std::uint8_t> data) override {
        if (m_key.type == Pkcs11Token::KeyType::rsa)
            return m_token->sign(m_key, CKM_SHA256_RSA_PKCS, data);
        // CKM_ECDSA signs a digest and returns r||s, each the size of the order.
        std::array<std::uint8_t, 32> digest{};
        unsigned int length = 0;
        if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1)
            return fail(ErrorKind::internal, "PKCS#11 signer: SHA-256 failed");
        Bytes signature = CB_TRY(m_token->sign(m_key, CKM_ECDSA, digest));
        if (signature.size() != 64)
            return fail(ErrorKind::io, "PKCS#11 token \"" + m_token->label() + "\": CKM_ECDSA returned " +
                                           std::to_string(signature.size()) + " bytes, expected 64");
        return signature;
    }

private:
    std::shared_ptr<Pkcs11Token> m_token;
    Pkcs11Token::Key m_key;
    std::vector<Bytes> m_chain;
};

}  // namespace

Result<std::unique_ptr<Signer>> open_pkcs11_signer(std::shared_ptr<Pkcs11Token> token, const Pkcs11KeyRef& key,
                                                   const std::filesystem::path& certificate_chain_file) {
    const std::string what = "PKCS#11 token \"" + token->label() + "\" key";
    auto found = CB_TRY(token->find_private_key(key));
    auto chain = CB_TRY(read_certificate_chain(certificate_chain_file));
    auto signer = std::make_unique<Pkcs11Signer>(std::move(token), std::move(found), std::move(chain));
    // The RSA key size is checked through the certificate by prove(): an RSA
    // certificate under 2048 bits is refused by upstream::sign_bundle anyway.
    CB_TRY(internal::prove(*signer, what));
    return std::unique_ptr<Signer>(std::move(signer));
}

Result<std::unique_ptr<Signer>> open_pkcs11_signer(const Pkcs11SignerConfig& config) {
    auto token = CB_TRY(open_pkcs11_token(config.token));
    return open_pkcs11_signer(std::move(token), config.key, config.certificate_chain_file);
}

}  // namespace cb::signing
