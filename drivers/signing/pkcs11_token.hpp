// A PKCS#11 token opened once and shared by what uses its keys: the bundle
// signer (pkcs11_signer.cpp) and the TLS client key (pkcs11_tls_key.cpp).
// Internal to the signing library: the rest of carebridge sees the opaque
// Pkcs11Token of signer.hpp, not p11-kit's types.
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
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "drivers/signing/signer.hpp"

// p11-kit's header, in its PKCS#11 compatibility mode.
#include <p11-kit/pkcs11.h>

namespace cb::signing {

class Pkcs11Token {
public:
    enum class KeyType { ec_p256, rsa };
    struct Key {
        CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
        KeyType type = KeyType::ec_p256;
        std::string what;  // "key \"facility\"" or "key id 01", for messages
    };

    // Loads the module, initializes it, finds the token, opens one session
    // and logs in with the PIN (wiped right after). If the module was already
    // initialized in the process, it is not finalized when the token goes.
    static Result<std::shared_ptr<Pkcs11Token>> open(const Pkcs11TokenConfig& config);
    ~Pkcs11Token();
    Pkcs11Token(const Pkcs11Token&) = delete;
    Pkcs11Token& operator=(const Pkcs11Token&) = delete;

    // Exactly one private key with the label or the id of `ref`, EC P-256 or RSA.
    Result<Key> find_private_key(const Pkcs11KeyRef& ref);

    // C_SignInit + C_Sign of `input` with `mechanism` (CKM_ECDSA, CKM_RSA_PKCS,
    // CKM_RSA_X_509, CKM_SHA256_RSA_PKCS). Calls are serialized: the session is one.
    Result<Bytes> sign(const Key& key, CK_MECHANISM_TYPE mechanism, std::span<const std::uint8_t> input);

    const std::string& label() const noexcept { return m_label; }

private:
    Pkcs11Token() = default;
    Result<void> load(const Pkcs11TokenConfig& config);
    Result<CK_SLOT_ID> find_slot(const std::string& module);
    Result<void> login(const Pkcs11TokenConfig& config);
    Error error(ErrorKind kind, const std::string& what, CK_RV rv) const;

    void* m_module = nullptr;
    CK_FUNCTION_LIST_PTR m_functions = nullptr;
    bool m_finalize = false;
    bool m_logged_in = false;
    CK_SESSION_HANDLE m_session = CK_INVALID_HANDLE;
    std::string m_label;
    std::mutex m_mutex;
};

}  // namespace cb::signing
