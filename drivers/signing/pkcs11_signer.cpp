// The PKCS#11 backend. The module is loaded with dlopen so that the gateway
// does not link any vendor library; p11-kit's pkcs11.h gives the types.
//
//   | step          | call                                   | failure                          |
//   |---------------|----------------------------------------|----------------------------------|
//   | load          | dlopen, C_GetFunctionList              | io: "cannot load <module>: ..."  |
//   | initialize    | C_Initialize(CKF_OS_LOCKING_OK)        | io, CKR_ name                    |
//   | token         | C_GetSlotList(present), C_GetTokenInfo | unavailable: no token "<label>"  |
//   | session       | C_OpenSession(CKF_SERIAL_SESSION)      | io                               |
//   | login         | C_Login(CKU_USER, PIN); PIN wiped      | invalid_input (CKR_PIN_INCORRECT)|
//   | key           | C_FindObjects(CKO_PRIVATE_KEY, label/id)| invalid_input: none / several   |
//   | key type      | CKA_KEY_TYPE, CKA_EC_PARAMS (P-256)    | unsupported                      |
//   | sign          | C_SignInit + C_Sign (size, then data)  | io                               |
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "drivers/signing/signer.hpp"
#include "drivers/signing/signer_internal.hpp"

// p11-kit's header, in its PKCS#11 compatibility mode.
#include <p11-kit/pkcs11.h>

namespace cb::signing {
namespace {

std::string rv_name(CK_RV rv) {
    switch (rv) {
        case CKR_OK: return "CKR_OK";
        case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
        case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
        case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
        case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
        case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
        case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
        case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
        case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
        case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
        case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
        case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
        case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
        case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
        case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
        case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
        default: {
            char buffer[32];
            std::snprintf(buffer, sizeof buffer, "CKR 0x%lX", static_cast<unsigned long>(rv));
            return buffer;
        }
    }
}

Error p11_error(ErrorKind kind, const std::string& what, CK_RV rv) {
    return Error(kind, what + " (" + rv_name(rv) + ")");
}

// The label of a token as a string: CK_TOKEN_INFO.label is 32 bytes padded with spaces.
std::string token_label(const CK_TOKEN_INFO& info) {
    std::string label(reinterpret_cast<const char*>(info.label), sizeof info.label);
    const auto end = label.find_last_not_of(' ');
    return end == std::string::npos ? std::string() : label.substr(0, end + 1);
}

Result<Bytes> parse_hex(std::string_view text) {
    if (text.empty() || text.size() % 2 != 0 || text.size() > 128)
        return fail(ErrorKind::invalid_input, "key id: expected an even number of hex digits (at most 128)");
    Bytes out;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        unsigned value = 0;
        for (std::size_t k = 0; k < 2; ++k) {
            const char c = text[i + k];
            unsigned digit = 0;
            if (c >= '0' && c <= '9')
                digit = static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f')
                digit = static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                digit = static_cast<unsigned>(c - 'A' + 10);
            else
                return fail(ErrorKind::invalid_input, "key id: '" + std::string(1, c) + "' is not a hex digit");
            value = value * 16 + digit;
        }
        out.push_back(static_cast<std::uint8_t>(value));
    }
    return out;
}

// DER of the P-256 curve OID (1.2.840.10045.3.1.7), as CKA_EC_PARAMS holds it.
constexpr std::array<std::uint8_t, 10> p256_params = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};

class Pkcs11Signer final : public Signer {
public:
    Pkcs11Signer() = default;
    ~Pkcs11Signer() override {
        if (m_functions != nullptr) {
            if (m_session != CK_INVALID_HANDLE) {
                if (m_logged_in)
                    m_functions->C_Logout(m_session);
                m_functions->C_CloseSession(m_session);
            }
            if (m_finalize)
                m_functions->C_Finalize(nullptr);
        }
        if (m_module != nullptr)
            ::dlclose(m_module);
    }

    JwsAlgorithm algorithm() const noexcept override { return m_algorithm; }
    const std::vector<Bytes>& certificate_chain() const noexcept override { return m_chain; }

    Result<Bytes> sign(std::span<const std::uint8_t> data) override {
        Bytes input;
        CK_MECHANISM mechanism{};
        if (m_algorithm == JwsAlgorithm::es256) {
            // CKM_ECDSA signs a digest and returns r||s, each the size of the order.
            input.resize(32);
            unsigned int length = 0;
            if (EVP_Digest(data.data(), data.size(), input.data(), &length, EVP_sha256(), nullptr) != 1)
                return fail(ErrorKind::internal, "PKCS#11 signer: SHA-256 failed");
            mechanism.mechanism = CKM_ECDSA;
        } else {
            input.assign(data.begin(), data.end());
            mechanism.mechanism = CKM_SHA256_RSA_PKCS;
        }
        const std::lock_guard lock(m_mutex);
        CK_RV rv = m_functions->C_SignInit(m_session, &mechanism, m_key);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_SignInit failed", rv);
        CK_ULONG length = 0;
        rv = m_functions->C_Sign(m_session, input.data(), input.size(), nullptr, &length);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_Sign (size) failed", rv);
        Bytes signature(length);
        rv = m_functions->C_Sign(m_session, input.data(), input.size(), signature.data(), &length);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_Sign failed", rv);
        signature.resize(length);
        if (m_algorithm == JwsAlgorithm::es256 && signature.size() != 64)
            return fail(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": CKM_ECDSA returned " +
                                           std::to_string(signature.size()) + " bytes, expected 64");
        return signature;
    }

    Result<void> open(const Pkcs11SignerConfig& config) {
        m_token = config.token_label;
        const std::string module = config.module.string();
        m_module = ::dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (m_module == nullptr) {
            // False positive: glibc keeps the dlerror() state per thread (dlerror(3): MT-Safe).
            const char* reason = ::dlerror();  // NOLINT(concurrency-mt-unsafe)
            return fail(ErrorKind::io, "PKCS#11 module " + module + ": cannot load: " + (reason ? reason : "?"));
        }
        CK_C_GetFunctionList get_function_list = nullptr;
        void* symbol = ::dlsym(m_module, "C_GetFunctionList");
        static_assert(sizeof symbol == sizeof get_function_list);
        std::memcpy(&get_function_list, &symbol, sizeof symbol);
        if (get_function_list == nullptr)
            return fail(ErrorKind::io, "PKCS#11 module " + module + ": no C_GetFunctionList");
        CK_RV rv = get_function_list(&m_functions);
        if (rv != CKR_OK || m_functions == nullptr)
            return p11_error(ErrorKind::io, "PKCS#11 module " + module + ": C_GetFunctionList failed", rv);

        CK_C_INITIALIZE_ARGS arguments{};
        arguments.flags = CKF_OS_LOCKING_OK;
        rv = m_functions->C_Initialize(&arguments);
        if (rv == CKR_OK)
            m_finalize = true;
        else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
            return p11_error(ErrorKind::io, "PKCS#11 module " + module + ": C_Initialize failed", rv);

        const CK_SLOT_ID slot = CB_TRY(find_slot(module));
        rv = m_functions->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &m_session);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_OpenSession failed", rv);
        CB_TRY(login(config));
        CB_TRY(find_key(config));
        m_chain = CB_TRY(read_certificate_chain(config.certificate_chain_file));
        return {};
    }

private:
    Result<CK_SLOT_ID> find_slot(const std::string& module) {
        CK_ULONG count = 0;
        CK_RV rv = m_functions->C_GetSlotList(CK_TRUE, nullptr, &count);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 module " + module + ": C_GetSlotList failed", rv);
        std::vector<CK_SLOT_ID> slots(count);
        rv = m_functions->C_GetSlotList(CK_TRUE, slots.data(), &count);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 module " + module + ": C_GetSlotList failed", rv);
        slots.resize(count);
        for (const CK_SLOT_ID slot : slots) {
            CK_TOKEN_INFO info{};
            if (m_functions->C_GetTokenInfo(slot, &info) == CKR_OK && token_label(info) == m_token)
                return slot;
        }
        return fail(ErrorKind::unavailable, "PKCS#11 module " + module + ": no token labelled \"" + m_token + "\" (" +
                                                std::to_string(slots.size()) + " tokens present)");
    }

    Result<void> login(const Pkcs11SignerConfig& config) {
        if (config.pin_file.empty() == config.pin_env.empty())
            return fail(ErrorKind::invalid_input,
                        "PKCS#11 token \"" + m_token + "\": give exactly one of a PIN file and a PIN variable");
        std::string pin;
        if (!config.pin_file.empty()) {
            pin = CB_TRY(read_private_file(config.pin_file, "PIN file"));
        } else {
            // Read once, when the signer is opened at start-up; nothing in carebridge
            // modifies the environment (no setenv/putenv), so no write can race this read.
            const char* value = std::getenv(config.pin_env.c_str());  // NOLINT(concurrency-mt-unsafe)
            if (value == nullptr)
                return fail(ErrorKind::invalid_input, "PKCS#11 token \"" + m_token + "\": environment variable " +
                                                          config.pin_env + " is not set");
            pin = value;
        }
        const auto end = pin.find_first_of("\r\n");
        const std::size_t length = end == std::string::npos ? pin.size() : end;
        const CK_RV rv = m_functions->C_Login(m_session, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()), length);
        OPENSSL_cleanse(pin.data(), pin.size());
        if (rv == CKR_USER_ALREADY_LOGGED_IN)
            return {};
        if (rv != CKR_OK)
            return p11_error(
                rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE ? ErrorKind::invalid_input : ErrorKind::io,
                "PKCS#11 token \"" + m_token + "\": login failed", rv);
        m_logged_in = true;
        return {};
    }

    Result<void> find_key(const Pkcs11SignerConfig& config) {
        if (config.key_label.empty() == config.key_id_hex.empty())
            return fail(ErrorKind::invalid_input,
                        "PKCS#11 token \"" + m_token + "\": give exactly one of a key label and a key id");
        const std::string what =
            config.key_label.empty() ? "key id " + config.key_id_hex : "key \"" + config.key_label + "\"";
        Bytes id;
        if (!config.key_id_hex.empty())
            id = CB_TRY(parse_hex(config.key_id_hex));
        CK_OBJECT_CLASS key_class = CKO_PRIVATE_KEY;
        std::string label = config.key_label;
        std::vector<CK_ATTRIBUTE> query{{CKA_CLASS, &key_class, sizeof key_class}};
        if (!label.empty())
            query.push_back({CKA_LABEL, label.data(), label.size()});
        else
            query.push_back({CKA_ID, id.data(), id.size()});
        CK_RV rv = m_functions->C_FindObjectsInit(m_session, query.data(), query.size());
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_FindObjectsInit failed", rv);
        std::array<CK_OBJECT_HANDLE, 2> found{};
        CK_ULONG count = 0;
        rv = m_functions->C_FindObjects(m_session, found.data(), found.size(), &count);
        m_functions->C_FindObjectsFinal(m_session);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": C_FindObjects failed", rv);
        if (count == 0)
            return fail(ErrorKind::invalid_input, "PKCS#11 token \"" + m_token + "\": no private " + what);
        if (count > 1)
            return fail(ErrorKind::invalid_input,
                        "PKCS#11 token \"" + m_token + "\": several private keys match " + what);
        m_key = found[0];

        CK_KEY_TYPE key_type = 0;
        CK_ATTRIBUTE type_attribute{CKA_KEY_TYPE, &key_type, sizeof key_type};
        rv = m_functions->C_GetAttributeValue(m_session, m_key, &type_attribute, 1);
        if (rv != CKR_OK)
            return p11_error(ErrorKind::io, "PKCS#11 token \"" + m_token + "\": cannot read the type of " + what, rv);
        if (key_type == CKK_EC) {
            std::array<std::uint8_t, 64> params{};
            CK_ATTRIBUTE params_attribute{CKA_EC_PARAMS, params.data(), params.size()};
            rv = m_functions->C_GetAttributeValue(m_session, m_key, &params_attribute, 1);
            if (rv != CKR_OK || params_attribute.ulValueLen != p256_params.size() ||
                !std::equal(p256_params.begin(), p256_params.end(), params.begin()))
                return fail(ErrorKind::unsupported,
                            "PKCS#11 token \"" + m_token + "\": " + what + " is an EC key not on P-256");
            m_algorithm = JwsAlgorithm::es256;
        } else if (key_type == CKK_RSA) {
            m_algorithm = JwsAlgorithm::rs256;
        } else {
            return fail(ErrorKind::unsupported,
                        "PKCS#11 token \"" + m_token + "\": " + what + " is neither an EC nor an RSA key");
        }
        return {};
    }

    void* m_module = nullptr;
    CK_FUNCTION_LIST_PTR m_functions = nullptr;
    bool m_finalize = false;
    bool m_logged_in = false;
    CK_SESSION_HANDLE m_session = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE m_key = CK_INVALID_HANDLE;
    JwsAlgorithm m_algorithm = JwsAlgorithm::es256;
    std::string m_token;
    std::vector<Bytes> m_chain;
    std::mutex m_mutex;
};

}  // namespace

Result<std::unique_ptr<Signer>> open_pkcs11_signer(const Pkcs11SignerConfig& config) {
    auto signer = std::make_unique<Pkcs11Signer>();
    CB_TRY(signer->open(config));
    // The RSA key size is checked through the certificate by prove(): an RSA
    // certificate under 2048 bits is refused by upstream::sign_bundle anyway.
    CB_TRY(internal::prove(*signer, "PKCS#11 token \"" + config.token_label + "\" key"));
    return std::unique_ptr<Signer>(std::move(signer));
}

}  // namespace cb::signing
