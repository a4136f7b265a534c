// The TLS client key on a PKCS#11 token (pkcs11_tls_key.hpp).
//
// EC_KEY_METHOD, RSA_METHOD and their ex_data are deprecated in OpenSSL 3;
// the header says why we use them anyway. This is the only file that does.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "drivers/signing/pkcs11_tls_key.hpp"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>

#include "drivers/signing/pkcs11_token.hpp"
#include "drivers/signing/signer_internal.hpp"

namespace cb::signing {
namespace {

// What a key's ex_data holds: the token and the key's handle on it.
struct TokenKey {
    std::shared_ptr<Pkcs11Token> token;
    Pkcs11Token::Key key;
};

void free_token_key(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/,
                    void* /*argp*/) {
    delete static_cast<TokenKey*>(pointer);
}

struct Methods {
    int ec_index = -1;
    int rsa_index = -1;
    EC_KEY_METHOD* ec = nullptr;
    RSA_METHOD* rsa = nullptr;
};
const Methods& methods();

// The token's error as an OpenSSL error, so that the handshake's error names it.
void raise(const Error& error) {
    ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", error.message().c_str());
}

ECDSA_SIG* ec_sign_sig(const unsigned char* digest, int length, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/,
                       EC_KEY* key) {
    const auto* data = static_cast<const TokenKey*>(EC_KEY_get_ex_data(key, methods().ec_index));
    if (data == nullptr || length <= 0)
        return nullptr;
    const auto signature = data->token->sign(data->key, CKM_ECDSA, std::span(digest, static_cast<std::size_t>(length)));
    if (!signature) {
        raise(signature.error());
        return nullptr;
    }
    if (signature->size() != 64)
        return nullptr;
    BIGNUM* r = BN_bin2bn(signature->data(), 32, nullptr);
    BIGNUM* s = BN_bin2bn(signature->data() + 32, 32, nullptr);
    ECDSA_SIG* out = ECDSA_SIG_new();
    if (r == nullptr || s == nullptr || out == nullptr || ECDSA_SIG_set0(out, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(out);
        return nullptr;
    }
    return out;
}

// OpenSSL pads (PKCS#1 v1.5 DigestInfo, or PSS with RSA_NO_PADDING); the
// token does the private-key operation.
int rsa_private_encrypt(int length, const unsigned char* from, unsigned char* to, RSA* rsa, int padding) {
    const auto* data = static_cast<const TokenKey*>(RSA_get_ex_data(rsa, methods().rsa_index));
    if (data == nullptr || length <= 0)
        return -1;
    CK_MECHANISM_TYPE mechanism = 0;
    if (padding == RSA_PKCS1_PADDING)
        mechanism = CKM_RSA_PKCS;
    else if (padding == RSA_NO_PADDING)
        mechanism = CKM_RSA_X_509;
    else
        return -1;
    const auto signature = data->token->sign(data->key, mechanism, std::span(from, static_cast<std::size_t>(length)));
    if (!signature) {
        raise(signature.error());
        return -1;
    }
    if (signature->size() > static_cast<std::size_t>(RSA_size(rsa)))
        return -1;
    std::memcpy(to, signature->data(), signature->size());
    return static_cast<int>(signature->size());
}

// TLS client authentication never decrypts with the client's key.
int rsa_private_decrypt(int /*length*/, const unsigned char* /*from*/, unsigned char* /*to*/, RSA* /*rsa*/,
                        int /*padding*/) {
    return -1;
}

Methods make_methods() {
    Methods out;
    out.ec_index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, free_token_key);
    out.rsa_index = RSA_get_ex_new_index(0, nullptr, nullptr, nullptr, free_token_key);
    out.ec = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (out.ec != nullptr) {
        // The default sign() DER-encodes what sign_sig() returns.
        int (*sign)(int, const unsigned char*, int, unsigned char*, unsigned int*, const BIGNUM*, const BIGNUM*,
                    EC_KEY*) = nullptr;
        EC_KEY_METHOD_get_sign(out.ec, &sign, nullptr, nullptr);
        EC_KEY_METHOD_set_sign(out.ec, sign, nullptr, ec_sign_sig);
    }
    out.rsa = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    if (out.rsa != nullptr) {
        RSA_meth_set1_name(out.rsa, "carebridge PKCS#11");
        RSA_meth_set_priv_enc(out.rsa, rsa_private_encrypt);
        RSA_meth_set_priv_dec(out.rsa, rsa_private_decrypt);
    }
    return out;
}

// Made once, kept for the life of the process (keys refer to them).
const Methods& methods() {
    static const Methods instance = make_methods();
    return instance;
}

Result<internal::X509Ptr> first_certificate(const std::filesystem::path& file) {
    auto leaf = internal::decode_leaf(CB_TRY(read_certificate_chain(file)));
    if (!leaf)
        return fail(ErrorKind::invalid_input,
                    "certificate " + file.string() + ": the first certificate does not parse");
    return leaf;
}

// An EVP_PKEY with the certificate's public key whose private operations go
// to `data`'s token; null when OpenSSL fails. The method is set before the
// key goes into the EVP_PKEY: OpenSSL decides there whether a key is foreign.
// Once the key's ex_data holds `data`, the key owns it (free_token_key).
EVP_PKEY* token_backed_key(EVP_PKEY* public_key, std::unique_ptr<TokenKey> data) {
    const Methods& all = methods();
    EVP_PKEY* key = EVP_PKEY_new();
    bool ok = key != nullptr && all.ec != nullptr && all.rsa != nullptr;
    if (ok && data->key.type == Pkcs11Token::KeyType::ec_p256) {
        EC_KEY* ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(public_key));
        ok = ec != nullptr && EC_KEY_set_method(ec, all.ec) == 1 &&
             EC_KEY_set_ex_data(ec, all.ec_index, data.get()) == 1;
        if (ok)
            static_cast<void>(data.release());
        ok = ok && EVP_PKEY_assign_EC_KEY(key, ec) == 1;
        if (!ok)
            EC_KEY_free(ec);
    } else if (ok) {
        RSA* rsa = RSAPublicKey_dup(EVP_PKEY_get0_RSA(public_key));
        ok =
            rsa != nullptr && RSA_set_method(rsa, all.rsa) == 1 && RSA_set_ex_data(rsa, all.rsa_index, data.get()) == 1;
        if (ok)
            static_cast<void>(data.release());
        ok = ok && EVP_PKEY_assign_RSA(key, rsa) == 1;
        if (!ok)
            RSA_free(rsa);
    }
    if (!ok) {
        EVP_PKEY_free(key);
        return nullptr;
    }
    return key;
}

// Signs a fixed message through OpenSSL with `key` and verifies it with the
// certificate's public key.
bool proves(EVP_PKEY* key, EVP_PKEY* public_key) {
    static constexpr std::string_view message = "carebridge TLS key self-test";
    const auto* data = reinterpret_cast<const unsigned char*>(message.data());
    std::array<unsigned char, 1024> signature{};
    std::size_t length = signature.size();
    EVP_MD_CTX* sign = EVP_MD_CTX_new();
    EVP_MD_CTX* verify = EVP_MD_CTX_new();
    const bool ok = sign != nullptr && verify != nullptr &&
                    EVP_DigestSignInit(sign, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                    EVP_DigestSign(sign, signature.data(), &length, data, message.size()) == 1 &&
                    EVP_DigestVerifyInit(verify, nullptr, EVP_sha256(), nullptr, public_key) == 1 &&
                    EVP_DigestVerify(verify, signature.data(), length, data, message.size()) == 1;
    EVP_MD_CTX_free(sign);
    EVP_MD_CTX_free(verify);
    return ok;
}

}  // namespace

Result<TlsKey> open_pkcs11_tls_key(std::shared_ptr<Pkcs11Token> token, const Pkcs11KeyRef& key,
                                   const std::filesystem::path& certificate_file) {
    auto found = CB_TRY(token->find_private_key(key));
    const std::string what = "PKCS#11 token \"" + token->label() + "\": TLS " + found.what;
    const auto certificate = CB_TRY(first_certificate(certificate_file));
    EVP_PKEY* public_key = X509_get0_pubkey(certificate.get());
    const int expected = found.type == Pkcs11Token::KeyType::ec_p256 ? EVP_PKEY_EC : EVP_PKEY_RSA;
    if (public_key == nullptr || EVP_PKEY_get_base_id(public_key) != expected) {
        ERR_clear_error();
        return fail(ErrorKind::invalid_input, what + " is " + (expected == EVP_PKEY_EC ? "an EC" : "an RSA") +
                                                  " key but certificate " + certificate_file.string() +
                                                  " holds another type");
    }
    EVP_PKEY* made = token_backed_key(public_key, std::make_unique<TokenKey>(TokenKey{std::move(token), found}));
    TlsKey out(made, EVP_PKEY_free);
    const bool proven = made != nullptr && proves(made, public_key);
    ERR_clear_error();
    if (made == nullptr)
        return fail(ErrorKind::internal, what + ": OpenSSL could not make the key");
    if (!proven)
        return fail(ErrorKind::invalid_input, what + " does not match certificate " + certificate_file.string());
    return out;
}

}  // namespace cb::signing
