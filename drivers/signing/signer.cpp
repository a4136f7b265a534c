#include "drivers/signing/signer.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>

#include "drivers/signing/signer_internal.hpp"

namespace cb::signing {

namespace {
constexpr std::size_t max_private_file = std::size_t{64} * 1024;
constexpr std::size_t max_chain_file = std::size_t{8} * 16 * 1024;
constexpr std::size_t max_chain_certificates = 8;

// Reads all of `fd` up to `cap` bytes; the descriptor is closed.
Result<std::string> read_all(int fd, std::size_t cap, const std::string& what) {
    std::string out;
    std::array<char, 4096> buffer{};
    while (true) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            const int error = errno;
            OPENSSL_cleanse(out.data(), out.size());
            ::close(fd);
            return fail(ErrorKind::io, what + ": read failed: " + system_error_text(error));
        }
        if (got == 0)
            break;
        if (out.size() + static_cast<std::size_t>(got) > cap) {
            OPENSSL_cleanse(out.data(), out.size());
            OPENSSL_cleanse(buffer.data(), buffer.size());
            ::close(fd);
            return fail(ErrorKind::limit_exceeded, what + ": larger than " + std::to_string(cap) + " bytes");
        }
        out.append(buffer.data(), static_cast<std::size_t>(got));
    }
    OPENSSL_cleanse(buffer.data(), buffer.size());
    ::close(fd);
    return out;
}
}  // namespace

std::string foreign_owner(unsigned owner) {
    const uid_t self = ::geteuid();
    if (owner == self || owner == 0)
        return {};
    return "owned by uid " + std::to_string(owner) + ", neither the user carebridged runs as (uid " +
           std::to_string(self) + ") nor root; chown it";
}

std::string mode_text(unsigned mode) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "%04o", mode & 07777U);
    return buffer;
}

Result<std::string> read_private_file(const std::filesystem::path& file, const char* what) {
    const std::string name = std::string(what) + " " + file.string();
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(ErrorKind::io, name + ": cannot open: " + system_error_text(errno));
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        const int error = errno;
        ::close(fd);
        return fail(ErrorKind::io, name + ": cannot stat: " + system_error_text(error));
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        return fail(ErrorKind::invalid_input, name + ": not a regular file");
    }
    if ((status.st_mode & 07777 & ~static_cast<mode_t>(0600)) != 0) {
        ::close(fd);
        return fail(ErrorKind::invalid_input,
                    name + ": mode " + mode_text(status.st_mode) + " is wider than 0600; chmod 600 it");
    }
    if (auto problem = foreign_owner(status.st_uid); !problem.empty()) {
        ::close(fd);
        return fail(ErrorKind::invalid_input, name + ": " + problem);
    }
    return read_all(fd, max_private_file, name);
}

Result<std::vector<Bytes>> read_certificate_chain(const std::filesystem::path& file) {
    const std::string name = "certificate chain " + file.string();
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(ErrorKind::io, name + ": cannot open: " + system_error_text(errno));
    const std::string pem = CB_TRY(read_all(fd, max_chain_file, name));
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr)
        return fail(ErrorKind::internal, name + ": out of memory");
    std::vector<Bytes> chain;
    while (chain.size() <= max_chain_certificates) {
        X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        if (certificate == nullptr)
            break;
        const int length = i2d_X509(certificate, nullptr);
        Bytes der(static_cast<std::size_t>(length > 0 ? length : 0));
        unsigned char* out = der.data();
        if (length > 0)
            i2d_X509(certificate, &out);
        X509_free(certificate);
        chain.push_back(std::move(der));
    }
    BIO_free(bio);
    ERR_clear_error();
    if (chain.empty())
        return fail(ErrorKind::invalid_input, name + ": no PEM certificate");
    if (chain.size() > max_chain_certificates)
        return fail(ErrorKind::limit_exceeded,
                    name + ": more than " + std::to_string(max_chain_certificates) + " certificates");
    return chain;
}

upstream::SignFunction sign_function(Signer& signer) {
    return [&signer](std::span<const std::uint8_t> data) { return signer.sign(data); };
}

upstream::SignatureRequest signature_request(const Signer& signer, devices::Microseconds when, std::string who_system,
                                             std::string who_value) {
    upstream::SignatureRequest request;
    request.algorithm = signer.algorithm();
    request.certificate_chain = signer.certificate_chain();
    request.when = when;
    request.who_system = std::move(who_system);
    request.who_value = std::move(who_value);
    return request;
}

namespace internal {

Result<JwsAlgorithm> algorithm_of(EVP_PKEY* key, const std::string& what) {
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        std::array<char, 64> group{};
        std::size_t length = 0;
        if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1 ||
            std::string_view(group.data(), length) != "prime256v1")
            return fail(ErrorKind::unsupported, what + ": an EC key not on P-256 (ES256 needs P-256)");
        return JwsAlgorithm::es256;
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < static_cast<int>(upstream::min_rsa_bits))
            return fail(ErrorKind::unsupported, what + ": an RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
                                                    " bits (at least " + std::to_string(upstream::min_rsa_bits) + ")");
        return JwsAlgorithm::rs256;
    }
    return fail(ErrorKind::unsupported, what + ": neither an EC P-256 nor an RSA key");
}

X509Ptr decode_leaf(const std::vector<Bytes>& chain) {
    const unsigned char* cursor = chain.front().data();
    X509Ptr leaf(d2i_X509(nullptr, &cursor, static_cast<long>(chain.front().size())));
    if (!leaf)
        ERR_clear_error();
    return leaf;
}

Result<void> prove(Signer& signer, const std::string& what) {
    static constexpr std::string_view message = "carebridge signer self-test";
    const auto data = std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size());
    const auto signature = signer.sign(data);
    if (!signature)
        return signature.error().with_context(what + ": self-test signature");
    const X509Ptr leaf = decode_leaf(signer.certificate_chain());
    if (!leaf)
        return fail(ErrorKind::invalid_input, what + ": the first certificate of the chain does not parse");
    std::array<char, 256> subject{};
    X509_NAME_oneline(X509_get_subject_name(leaf.get()), subject.data(), static_cast<int>(subject.size()));
    EVP_PKEY* key = X509_get0_pubkey(leaf.get());
    Bytes signature_bytes = *signature;
    bool valid = key != nullptr;
    if (valid && signer.algorithm() == JwsAlgorithm::es256) {
        auto der = upstream::ecdsa_raw_to_der(signature_bytes);
        valid = der.has_value();
        if (valid)
            signature_bytes = std::move(der).value();
    }
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    valid = valid && context != nullptr && EVP_DigestVerifyInit(context, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(context, signature_bytes.data(), signature_bytes.size(), data.data(), data.size()) == 1;
    EVP_MD_CTX_free(context);
    ERR_clear_error();
    if (!valid)
        return fail(ErrorKind::invalid_input, what + " does not match the certificate " + std::string(subject.data()));
    return {};
}

}  // namespace internal
}  // namespace cb::signing
