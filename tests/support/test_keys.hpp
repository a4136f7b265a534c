// In-process throw-away keys and certificates for unit tests of signatures
// (protocol/upstream/jws): a CA and a leaf, made with OpenSSL at test time,
// valid 2020-01-01..2040-01-01 so that tests verify at a fixed instant.
// Nothing here is a secret. Header-only: link OpenSSL::Crypto.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace cb::test {

using DerBytes = std::vector<std::uint8_t>;

struct PkeyDeleter {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

enum class TestKeyType { ec_p256, rsa_2048, ec_p384 };

inline PkeyPtr make_test_key(TestKeyType type) {
    EVP_PKEY* key = nullptr;
    switch (type) {
        case TestKeyType::ec_p256: key = EVP_EC_gen("P-256"); break;
        case TestKeyType::ec_p384: key = EVP_EC_gen("P-384"); break;
        case TestKeyType::rsa_2048: key = EVP_RSA_gen(2048); break;
    }
    if (key == nullptr)
        throw std::runtime_error("test key generation failed");
    return PkeyPtr(key);
}

struct TestCertificate {
    PkeyPtr key;
    DerBytes der;
    std::string pem;
};

namespace detail {
inline void add_extension(X509* certificate, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    if (extension == nullptr)
        throw std::runtime_error("test certificate extension failed");
    X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
}
}  // namespace detail

// A certificate for `key_type` with subject CN=`common_name`, issued by
// `issuer` (self-signed when null). `ca` makes it a CA.
inline TestCertificate make_test_certificate(TestKeyType key_type, const std::string& common_name,
                                             const TestCertificate* issuer, bool ca, long serial = 1) {
    TestCertificate out;
    out.key = make_test_key(key_type);
    X509* certificate = X509_new();
    X509_set_version(certificate, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial);
    ASN1_TIME_set_string(X509_getm_notBefore(certificate), "20200101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(certificate), "20400101000000Z");
    X509_set_pubkey(certificate, out.key.get());
    X509_NAME* name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                               -1, -1, 0);
    X509* issuer_certificate = nullptr;
    if (issuer != nullptr) {
        const unsigned char* cursor = issuer->der.data();
        issuer_certificate = d2i_X509(nullptr, &cursor, static_cast<long>(issuer->der.size()));
        X509_set_issuer_name(certificate, X509_get_subject_name(issuer_certificate));
    } else {
        X509_set_issuer_name(certificate, name);
    }
    X509* extension_issuer = issuer_certificate != nullptr ? issuer_certificate : certificate;
    if (ca) {
        detail::add_extension(certificate, extension_issuer, NID_basic_constraints, "critical,CA:TRUE");
        detail::add_extension(certificate, extension_issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        detail::add_extension(certificate, extension_issuer, NID_basic_constraints, "critical,CA:FALSE");
        detail::add_extension(certificate, extension_issuer, NID_key_usage, "critical,digitalSignature");
    }
    EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : out.key.get();
    if (X509_sign(certificate, signing_key, EVP_sha256()) == 0)
        throw std::runtime_error("test certificate signature failed");
    const int length = i2d_X509(certificate, nullptr);
    out.der.resize(static_cast<std::size_t>(length));
    unsigned char* cursor = out.der.data();
    i2d_X509(certificate, &cursor);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, certificate);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    out.pem.assign(data, static_cast<std::size_t>(size));
    BIO_free(bio);
    X509_free(issuer_certificate);
    X509_free(certificate);
    return out;
}

// The DER ECDSA or RSA signature of `data` with SHA-256, as OpenSSL gives it.
inline DerBytes openssl_sign(EVP_PKEY* key, const std::uint8_t* data, std::size_t size) {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    std::size_t length = 0;
    DerBytes signature;
    if (EVP_DigestSignInit(context, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestSign(context, nullptr, &length, data, size) == 1) {
        signature.resize(length);
        EVP_DigestSign(context, signature.data(), &length, data, size);
        signature.resize(length);
    }
    EVP_MD_CTX_free(context);
    if (signature.empty())
        throw std::runtime_error("test signature failed");
    return signature;
}

}  // namespace cb::test
