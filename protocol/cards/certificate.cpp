#include "protocol/cards/certificate.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <utility>

namespace cb::cards {

namespace {

struct X509StoreDeleter {
    void operator()(X509_STORE* store) const noexcept { X509_STORE_free(store); }
};
struct X509StoreContextDeleter {
    void operator()(X509_STORE_CTX* context) const noexcept { X509_STORE_CTX_free(context); }
};
struct X509StackDeleter {
    void operator()(STACK_OF(X509) * stack) const noexcept { sk_X509_pop_free(stack, X509_free); }
};
struct DigestContextDeleter {
    void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};
struct OpenSslStringDeleter {
    void operator()(unsigned char* text) const noexcept { OPENSSL_free(text); }
};

using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreDeleter>;
using X509StoreContextPtr = std::unique_ptr<X509_STORE_CTX, X509StoreContextDeleter>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;
using DigestContextPtr = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;
using OpenSslStringPtr = std::unique_ptr<unsigned char, OpenSslStringDeleter>;

constexpr std::size_t max_subject_field_size = 64;

// OpenSSL reports details on a thread-local queue; our errors are the values
// we return, so nothing is left there for an unrelated caller to find.
Error openssl_failure(ErrorKind kind, std::string message) {
    ERR_clear_error();
    return fail(kind, std::move(message));
}

Error subject_error(const std::string& rule) {
    return openssl_failure(ErrorKind::invalid_input, "certificate subject: " + rule);
}

// The one attribute with `nid` in `name`, as UTF-8 text.
Result<std::string> subject_field(const X509_NAME* name, int nid, const std::string& label) {
    const int index = X509_NAME_get_index_by_NID(name, nid, -1);
    if (index < 0)
        return subject_error("no " + label);
    if (X509_NAME_get_index_by_NID(name, nid, index) >= 0)
        return subject_error("more than one " + label);
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, data);
    const OpenSslStringPtr owned(utf8);
    if (length < 0 || utf8 == nullptr)
        return subject_error(label + ": not a valid string");
    const auto size = static_cast<std::size_t>(length);
    if (size == 0)
        return subject_error(label + ": empty");
    if (size > max_subject_field_size)
        return subject_error(label + ": " + std::to_string(size) + " bytes exceed the " +
                             std::to_string(max_subject_field_size) + "-byte cap");
    const std::span<const unsigned char> bytes(utf8, size);
    for (std::size_t position = 0; position < bytes.size(); ++position)
        if (bytes[position] < 0x20 || bytes[position] == 0x7F)
            return subject_error(label + ": control character at position " + std::to_string(position));
    return std::string(bytes.begin(), bytes.end());
}

bool all_digits(std::string_view text) {
    for (const char character : text)
        if (character < '0' || character > '9')
            return false;
    return true;
}

Result<std::string> parse_idnps(std::string text) {
    const std::string label = "serialNumber (IDNPS)";
    if (text.size() != 12)
        return subject_error(label + ": expected 12 digits, got " + std::to_string(text.size()) + " characters");
    if (!all_digits(text))
        return subject_error(label + ": not all digits");
    if (text[0] != '8')
        return subject_error(label + ": must start with 8 (RPPS)");
    if (!passes_luhn(std::string_view(text).substr(1)))
        return subject_error(label + ": RPPS Luhn check digit mismatch");
    return text;
}

}  // namespace

void X509Deleter::operator()(X509* certificate) const noexcept {
    X509_free(certificate);
}

bool passes_luhn(std::string_view digits) noexcept {
    if (digits.empty() || !all_digits(digits))
        return false;
    int sum = 0;
    bool doubled = false;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        int digit = *it - '0';
        if (doubled) {
            digit *= 2;
            if (digit > 9)
                digit -= 9;
        }
        sum += digit;
        doubled = !doubled;
    }
    return sum % 10 == 0;
}

Result<X509Ptr> parse_certificate(std::span<const std::uint8_t> der, const std::string& what) {
    if (der.size() > max_certificate_size)
        return fail(ErrorKind::limit_exceeded, what + ": " + std::to_string(der.size()) + " bytes exceed the " +
                                                   std::to_string(max_certificate_size) + "-byte cap");
    const unsigned char* cursor = der.data();
    X509Ptr certificate(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
    if (!certificate)
        return openssl_failure(ErrorKind::invalid_input, what + ": not a DER certificate");
    // The re-encoding's size tells how much d2i consumed, without pointer arithmetic.
    const int encoded_size = i2d_X509(certificate.get(), nullptr);
    if (encoded_size <= 0)
        return openssl_failure(ErrorKind::invalid_input, what + ": cannot be re-encoded");
    if (static_cast<std::size_t>(encoded_size) != der.size())
        return openssl_failure(
            ErrorKind::invalid_input,
            what + ": " + std::to_string(der.size() - std::min(der.size(), static_cast<std::size_t>(encoded_size))) +
                " bytes after the certificate (or a non-canonical encoding)");
    return certificate;
}

Result<VerifiedCertificate> verify_chain(std::span<const std::uint8_t> leaf_der,
                                         std::span<const Bytes> intermediates_der,
                                         std::span<const std::uint8_t> trusted_ca_der, std::int64_t verification_time) {
    if (intermediates_der.size() > max_intermediates)
        return fail(ErrorKind::limit_exceeded, "certificate chain: " + std::to_string(intermediates_der.size()) +
                                                   " intermediates exceed the cap of " +
                                                   std::to_string(max_intermediates));
    X509Ptr leaf = CB_TRY(parse_certificate(leaf_der, "leaf certificate"));
    X509Ptr trusted = CB_TRY(parse_certificate(trusted_ca_der, "trusted CA certificate"));

    X509StackPtr untrusted(sk_X509_new_null());
    X509StorePtr store(X509_STORE_new());
    X509StoreContextPtr context(X509_STORE_CTX_new());
    if (!untrusted || !store || !context)
        return openssl_failure(ErrorKind::internal, "certificate chain: out of memory");
    for (std::size_t index = 0; index < intermediates_der.size(); ++index) {
        X509Ptr intermediate = CB_TRY(
            parse_certificate(intermediates_der[index], "intermediate certificate " + std::to_string(index + 1)));
        if (sk_X509_push(untrusted.get(), intermediate.get()) <= 0)
            return openssl_failure(ErrorKind::internal, "certificate chain: out of memory");
        static_cast<void>(intermediate.release());  // now owned by the stack
    }
    if (X509_STORE_add_cert(store.get(), trusted.get()) != 1)
        return openssl_failure(ErrorKind::internal, "certificate chain: cannot add the trusted CA");
    if (X509_STORE_CTX_init(context.get(), store.get(), leaf.get(), untrusted.get()) != 1)
        return openssl_failure(ErrorKind::internal, "certificate chain: cannot initialise verification");
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(context.get()), static_cast<time_t>(verification_time));

    if (X509_verify_cert(context.get()) != 1) {
        const int error = X509_STORE_CTX_get_error(context.get());
        const int depth = X509_STORE_CTX_get_error_depth(context.get());
        return openssl_failure(ErrorKind::invalid_input, std::string("certificate chain: ") +
                                                             X509_verify_cert_error_string(error) + " (at depth " +
                                                             std::to_string(depth) + ")");
    }
    return VerifiedCertificate(std::move(leaf));
}

Result<void> verify_card_signature(const VerifiedCertificate& certificate, std::span<const std::uint8_t> challenge,
                                   std::span<const std::uint8_t> signature) {
    if (signature.size() > max_signature_size)
        return fail(ErrorKind::limit_exceeded, "card signature: " + std::to_string(signature.size()) +
                                                   " bytes exceed the " + std::to_string(max_signature_size) +
                                                   "-byte cap");
    // X509_get0_pubkey takes a non-const X509 in OpenSSL 3 but does not modify it.
    EVP_PKEY* key = X509_get0_pubkey(const_cast<X509*>(certificate.certificate()));
    if (key == nullptr)
        return openssl_failure(ErrorKind::unsupported, "card signature: the certificate's key cannot be read");

    const int type = EVP_PKEY_get_base_id(key);
    if (type == EVP_PKEY_EC) {
        std::array<char, 64> group{};
        std::size_t group_size = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &group_size) !=
                1 ||
            std::string_view(group.data(), group_size) != "prime256v1")
            return openssl_failure(ErrorKind::unsupported, "card signature: EC key is not on curve P-256");
    } else if (type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < 2048)
            return openssl_failure(ErrorKind::unsupported, "card signature: RSA key of " +
                                                               std::to_string(EVP_PKEY_get_bits(key)) +
                                                               " bits, expected 2048 or more");
    } else {
        return openssl_failure(ErrorKind::unsupported, "card signature: key type is neither EC P-256 nor RSA");
    }

    DigestContextPtr context(EVP_MD_CTX_new());
    if (!context)
        return openssl_failure(ErrorKind::internal, "card signature: out of memory");
    EVP_PKEY_CTX* key_context = nullptr;  // owned by `context`
    if (EVP_DigestVerifyInit(context.get(), &key_context, EVP_sha256(), nullptr, key) != 1)
        return openssl_failure(ErrorKind::internal, "card signature: cannot initialise verification");
    if (type == EVP_PKEY_RSA && EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PADDING) != 1)
        return openssl_failure(ErrorKind::internal, "card signature: cannot select PKCS#1 v1.5 padding");
    if (EVP_DigestVerify(context.get(), signature.data(), signature.size(), challenge.data(), challenge.size()) != 1)
        return openssl_failure(ErrorKind::invalid_input, "card signature: does not verify with the certificate's key");
    return {};
}

Result<PractitionerIdentity> practitioner_identity_from_subject(const X509* certificate) {
    const X509_NAME* subject = X509_get_subject_name(certificate);
    if (subject == nullptr)
        return subject_error("missing");
    PractitionerIdentity identity;
    identity.m_given_name = CB_TRY(subject_field(subject, NID_givenName, "GN (given name)"));
    identity.m_family_name = CB_TRY(subject_field(subject, NID_surname, "SN (family name)"));
    std::string serial_number = CB_TRY(subject_field(subject, NID_serialNumber, "serialNumber (IDNPS)"));
    identity.m_idnps = CB_TRY(parse_idnps(std::move(serial_number)));
    std::string profession = CB_TRY(subject_field(subject, NID_title, "title (profession code)"));
    if (profession.size() != 2 || !all_digits(profession))
        return subject_error("title (profession code): expected 2 digits");
    identity.m_profession_code = std::move(profession);
    return identity;
}

Result<PractitionerIdentity> practitioner_identity_from_certificate(const VerifiedCertificate& certificate) {
    return practitioner_identity_from_subject(certificate.certificate());
}

Result<PractitionerIdentity> practitioner_identity_from_unverified_der(std::span<const std::uint8_t> der) {
    const X509Ptr certificate = CB_TRY(parse_certificate(der, "certificate"));
    return practitioner_identity_from_subject(certificate.get());
}

}  // namespace cb::cards
