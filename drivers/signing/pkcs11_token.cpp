// The PKCS#11 token (pkcs11_token.hpp). The module is loaded with dlopen so
// that the gateway does not link any vendor library; p11-kit's pkcs11.h gives
// the types.
#include "drivers/signing/pkcs11_token.hpp"

#include <dlfcn.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

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
        case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
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

}  // namespace

Result<std::shared_ptr<Pkcs11Token>> open_pkcs11_token(const Pkcs11TokenConfig& config) {
    return Pkcs11Token::open(config);
}

Result<std::shared_ptr<Pkcs11Token>> Pkcs11Token::open(const Pkcs11TokenConfig& config) {
    auto token = std::shared_ptr<Pkcs11Token>(new Pkcs11Token());
    CB_TRY(token->load(config));
    return token;
}

Pkcs11Token::~Pkcs11Token() {
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

Error Pkcs11Token::error(ErrorKind kind, const std::string& what, CK_RV rv) const {
    return Error(kind, "PKCS#11 token \"" + m_label + "\": " + what + " (" + rv_name(rv) + ")");
}

Result<void> Pkcs11Token::load(const Pkcs11TokenConfig& config) {
    m_label = config.token_label;
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
        return fail(ErrorKind::io, "PKCS#11 module " + module + ": C_GetFunctionList failed (" + rv_name(rv) + ")");

    CK_C_INITIALIZE_ARGS arguments{};
    arguments.flags = CKF_OS_LOCKING_OK;
    rv = m_functions->C_Initialize(&arguments);
    if (rv == CKR_OK)
        m_finalize = true;
    else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return fail(ErrorKind::io, "PKCS#11 module " + module + ": C_Initialize failed (" + rv_name(rv) + ")");

    const CK_SLOT_ID slot = CB_TRY(find_slot(module));
    rv = m_functions->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &m_session);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_OpenSession failed", rv);
    return login(config);
}

Result<CK_SLOT_ID> Pkcs11Token::find_slot(const std::string& module) {
    CK_ULONG count = 0;
    CK_RV rv = m_functions->C_GetSlotList(CK_TRUE, nullptr, &count);
    std::vector<CK_SLOT_ID> slots(count);
    if (rv == CKR_OK)
        rv = m_functions->C_GetSlotList(CK_TRUE, slots.data(), &count);
    if (rv != CKR_OK)
        return fail(ErrorKind::io, "PKCS#11 module " + module + ": C_GetSlotList failed (" + rv_name(rv) + ")");
    slots.resize(count);
    for (const CK_SLOT_ID slot : slots) {
        CK_TOKEN_INFO info{};
        if (m_functions->C_GetTokenInfo(slot, &info) == CKR_OK && token_label(info) == m_label)
            return slot;
    }
    return fail(ErrorKind::unavailable, "PKCS#11 module " + module + ": no token labelled \"" + m_label + "\" (" +
                                            std::to_string(slots.size()) + " tokens present)");
}

Result<void> Pkcs11Token::login(const Pkcs11TokenConfig& config) {
    if (config.pin_file.empty() == config.pin_env.empty())
        return fail(ErrorKind::invalid_input,
                    "PKCS#11 token \"" + m_label + "\": give exactly one of a PIN file and a PIN variable");
    std::string pin;
    if (!config.pin_file.empty()) {
        pin = CB_TRY(read_private_file(config.pin_file, "PIN file"));
    } else {
        // Read once, when the token is opened at start-up; nothing in carebridge
        // modifies the environment (no setenv/putenv), so no write can race this read.
        const char* value = std::getenv(config.pin_env.c_str());  // NOLINT(concurrency-mt-unsafe)
        if (value == nullptr)
            return fail(ErrorKind::invalid_input,
                        "PKCS#11 token \"" + m_label + "\": environment variable " + config.pin_env + " is not set");
        pin = value;
    }
    const auto end = pin.find_first_of("\r\n");
    const std::size_t length = end == std::string::npos ? pin.size() : end;
    const CK_RV rv = m_functions->C_Login(m_session, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()), length);
    OPENSSL_cleanse(pin.data(), pin.size());
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        return {};
    if (rv != CKR_OK)
        return error(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE ? ErrorKind::invalid_input : ErrorKind::io,
                     "login failed", rv);
    m_logged_in = true;
    return {};
}

Result<Pkcs11Token::Key> Pkcs11Token::find_private_key(const Pkcs11KeyRef& ref) {
    if (ref.label.empty() == ref.id_hex.empty())
        return fail(ErrorKind::invalid_input,
                    "PKCS#11 token \"" + m_label + "\": give exactly one of a key label and a key id");
    Key key;
    key.what = ref.label.empty() ? "key id " + ref.id_hex : "key \"" + ref.label + "\"";
    Bytes id;
    if (!ref.id_hex.empty())
        id = CB_TRY(parse_hex(ref.id_hex));
    CK_OBJECT_CLASS key_class = CKO_PRIVATE_KEY;
    std::string label = ref.label;
    std::vector<CK_ATTRIBUTE> query{{CKA_CLASS, &key_class, sizeof key_class}};
    if (!label.empty())
        query.push_back({CKA_LABEL, label.data(), label.size()});
    else
        query.push_back({CKA_ID, id.data(), id.size()});

    const std::lock_guard lock(m_mutex);
    CK_RV rv = m_functions->C_FindObjectsInit(m_session, query.data(), query.size());
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_FindObjectsInit failed", rv);
    std::array<CK_OBJECT_HANDLE, 2> found{};
    CK_ULONG count = 0;
    rv = m_functions->C_FindObjects(m_session, found.data(), found.size(), &count);
    m_functions->C_FindObjectsFinal(m_session);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_FindObjects failed", rv);
    if (count == 0)
        return fail(ErrorKind::invalid_input, "PKCS#11 token \"" + m_label + "\": no private " + key.what);
    if (count > 1)
        return fail(ErrorKind::invalid_input,
                    "PKCS#11 token \"" + m_label + "\": several private keys match " + key.what);
    key.handle = found[0];

    CK_KEY_TYPE key_type = 0;
    CK_ATTRIBUTE type_attribute{CKA_KEY_TYPE, &key_type, sizeof key_type};
    rv = m_functions->C_GetAttributeValue(m_session, key.handle, &type_attribute, 1);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "cannot read the type of " + key.what, rv);
    if (key_type == CKK_EC) {
        std::array<std::uint8_t, 64> params{};
        CK_ATTRIBUTE params_attribute{CKA_EC_PARAMS, params.data(), params.size()};
        rv = m_functions->C_GetAttributeValue(m_session, key.handle, &params_attribute, 1);
        if (rv != CKR_OK || params_attribute.ulValueLen != p256_params.size() ||
            !std::equal(p256_params.begin(), p256_params.end(), params.begin()))
            return fail(ErrorKind::unsupported,
                        "PKCS#11 token \"" + m_label + "\": " + key.what + " is an EC key not on P-256");
        key.type = KeyType::ec_p256;
    } else if (key_type == CKK_RSA) {
        key.type = KeyType::rsa;
    } else {
        return fail(ErrorKind::unsupported,
                    "PKCS#11 token \"" + m_label + "\": " + key.what + " is neither an EC nor an RSA key");
    }
    return key;
}

Result<Bytes> Pkcs11Token::sign(const Key& key, CK_MECHANISM_TYPE mechanism_type, std::span<const std::uint8_t> input) {
    CK_MECHANISM mechanism{mechanism_type, nullptr, 0};
    // PKCS#11 takes non-const input pointers; C_Sign does not write through them.
    auto* data = const_cast<CK_BYTE*>(input.data());
    const std::lock_guard lock(m_mutex);
    CK_RV rv = m_functions->C_SignInit(m_session, &mechanism, key.handle);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_SignInit with " + key.what + " failed", rv);
    CK_ULONG length = 0;
    rv = m_functions->C_Sign(m_session, data, input.size(), nullptr, &length);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_Sign (size) with " + key.what + " failed", rv);
    Bytes signature(length);
    rv = m_functions->C_Sign(m_session, data, input.size(), signature.data(), &length);
    if (rv != CKR_OK)
        return error(ErrorKind::io, "C_Sign with " + key.what + " failed", rv);
    signature.resize(length);
    return signature;
}

}  // namespace cb::signing
