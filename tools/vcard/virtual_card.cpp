#include "tools/vcard/virtual_card.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "protocol/byte_reader.hpp"
#include "protocol/cards/patient_card.hpp"
#include "protocol/cards/practitioner_card.hpp"
#include "protocol/tlv.hpp"

namespace cb::vcard {

namespace {

constexpr std::uint8_t ins_select = 0xA4;
constexpr std::uint8_t ins_read_binary = 0xB0;
constexpr std::uint8_t ins_verify = 0x20;
constexpr std::uint8_t ins_internal_authenticate = 0x88;
constexpr std::uint8_t ins_get_response = 0xC0;

constexpr std::size_t endless_chunk = 16;
constexpr std::size_t deep_levels = 12;

struct FaultName {
    Fault fault;
    const char* name;
};
constexpr std::array<FaultName, 10> fault_names{{
    {Fault::none, "none"},
    {Fault::remove_mid_sequence, "remove-mid-sequence"},
    {Fault::slow, "slow"},
    {Fault::malformed_tlv_overlong, "malformed-tlv-overlong"},
    {Fault::malformed_tlv_truncated, "malformed-tlv-truncated"},
    {Fault::malformed_tlv_deep, "malformed-tlv-deep"},
    {Fault::endless_61xx, "endless-61xx"},
    {Fault::wrong_certificate, "wrong-certificate"},
    {Fault::wrong_signature, "wrong-signature"},
    {Fault::blocked_pin, "blocked-pin"},
}};

Bytes status(std::uint16_t sw) {
    return {static_cast<std::uint8_t>(sw >> 8), static_cast<std::uint8_t>(sw & 0xFF)};
}

Bytes data_and_status(std::span<const std::uint8_t> data, std::uint16_t sw) {
    Bytes out(data.begin(), data.end());
    out.push_back(static_cast<std::uint8_t>(sw >> 8));
    out.push_back(static_cast<std::uint8_t>(sw & 0xFF));
    return out;
}

std::span<const std::uint8_t> as_bytes(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Ne from an Le field of `size` bytes (1: short, 00 = 256; 2: extended, 0000 = 65536).
std::size_t expected_from(std::span<const std::uint8_t> le) {
    if (le.size() == 1)
        return le[0] == 0 ? 256 : le[0];
    const std::size_t value = (std::size_t{le[0]} << 8) | le[1];
    return value == 0 ? 65536 : value;
}

}  // namespace

Result<Fault> parse_fault(std::string_view name) {
    for (const auto& entry : fault_names)
        if (name == entry.name)
            return entry.fault;
    return fail(ErrorKind::invalid_input, "unknown fault mode '" + std::string(name) + "'");
}

const char* to_string(Fault fault) noexcept {
    for (const auto& entry : fault_names)
        if (entry.fault == fault)
            return entry.name;
    return "?";
}

const char* to_string(Profile profile) noexcept {
    return profile == Profile::patient ? "patient" : "practitioner";
}

Result<Bytes> build_identity_file(const PatientFields& fields) {
    std::vector<Tlv> beneficiary;
    beneficiary.push_back(primitive_tlv(0x93, as_bytes(fields.nir)));
    beneficiary.push_back(primitive_tlv(0x80, as_bytes(fields.family_name)));
    beneficiary.push_back(primitive_tlv(0x81, as_bytes(fields.first_name)));
    beneficiary.push_back(primitive_tlv(0x82, as_bytes(fields.birth_date)));
    std::vector<Tlv> card;
    card.push_back(primitive_tlv(0x80, as_bytes(fields.validity_start)));
    std::vector<Tlv> objects;
    objects.push_back(constructed_tlv(0x65, std::move(beneficiary)));
    objects.push_back(constructed_tlv(0x66, std::move(card)));
    ByteWriter out;
    CB_TRY(encode_tlv_tree(out, objects));
    return out.take_bytes();
}

Bytes apply_file_fault(Fault fault, std::span<const std::uint8_t> content) {
    switch (fault) {
        case Fault::malformed_tlv_overlong: {
            // 65 83 FFFFFF: a length far beyond the bytes that follow.
            Bytes out{0x65, 0x83, 0xFF, 0xFF, 0xFF};
            out.insert(out.end(), content.begin(), content.end());
            return out;
        }
        case Fault::malformed_tlv_truncated: {
            const std::size_t keep = content.size() > 3 ? content.size() - 3 : 0;
            return Bytes(content.begin(), content.begin() + static_cast<std::ptrdiff_t>(keep));
        }
        case Fault::malformed_tlv_deep: {
            Bytes inner(content.begin(), content.end());
            for (std::size_t level = 0; level < deep_levels; ++level) {
                ByteWriter out;
                // Cannot fail: a few KiB is far under tlv_max_length.
                if (!encode_tlv(out, 0x65, inner))
                    return inner;
                inner = out.take_bytes();
            }
            return inner;
        }
        default: return Bytes(content.begin(), content.end());
    }
}

Result<cards::CommandApdu> parse_command(std::span<const std::uint8_t> bytes) {
    ByteReader in(bytes);
    cards::CommandApdu command;
    command.cla = CB_TRY(in.read_u8("CLA"));
    command.ins = CB_TRY(in.read_u8("INS"));
    command.p1 = CB_TRY(in.read_u8("P1"));
    command.p2 = CB_TRY(in.read_u8("P2"));
    const std::size_t body = in.remaining();
    if (body == 0)
        return command;  // case 1
    const auto first = in.remaining_bytes();
    if (body == 1) {  // case 2S
        command.expected = expected_from(first.subspan(0, 1));
        return command;
    }
    if (first[0] != 0 || body < 3) {  // short Lc
        const std::size_t lc = first[0];
        if (lc == 0 || body < 1 + lc || body > 2 + lc)
            return fail(ErrorKind::invalid_input, "command APDU: Lc " + std::to_string(lc) + " but " +
                                                      std::to_string(body - 1) + " bytes follow");
        command.data.assign(first.begin() + 1, first.begin() + 1 + static_cast<std::ptrdiff_t>(lc));
        if (body == 2 + lc)
            command.expected = expected_from(first.subspan(1 + lc, 1));
        return command;
    }
    // Extended: 00 then 2 bytes.
    if (body == 3) {  // case 2E
        command.expected = expected_from(first.subspan(1, 2));
        return command;
    }
    const std::size_t lc = (std::size_t{first[1]} << 8) | first[2];
    if (lc == 0 || body < 3 + lc || (body != 3 + lc && body != 5 + lc))
        return fail(ErrorKind::invalid_input, "command APDU: extended Lc " + std::to_string(lc) + " but " +
                                                  std::to_string(body - 3) + " bytes follow");
    command.data.assign(first.begin() + 3, first.begin() + 3 + static_cast<std::ptrdiff_t>(lc));
    if (body == 5 + lc)
        command.expected = expected_from(first.subspan(3 + lc, 2));
    return command;
}

// --- KeySigner ---------------------------------------------------------------

KeySigner::KeySigner(EVP_PKEY* key) : m_key(key) {}

KeySigner::~KeySigner() {
    EVP_PKEY_free(m_key);
}

Result<std::unique_ptr<KeySigner>> KeySigner::from_pem_file(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr)
        return fail(ErrorKind::io, path + ": cannot open the card key: " + system_error_text(errno));
    EVP_PKEY* key = PEM_read_PrivateKey(file, nullptr, nullptr, nullptr);
    std::fclose(file);
    if (key == nullptr)
        return fail(ErrorKind::invalid_input, path + ": not a PEM private key");
    return std::make_unique<KeySigner>(key);
}

Result<Bytes> KeySigner::sign(std::span<const std::uint8_t> challenge) {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    if (context == nullptr)
        return fail(ErrorKind::internal, "card signature: out of memory");
    Bytes signature;
    std::size_t size = 0;
    bool ok = EVP_DigestSignInit(context, nullptr, EVP_sha256(), nullptr, m_key) == 1 &&
              EVP_DigestSign(context, nullptr, &size, challenge.data(), challenge.size()) == 1;
    if (ok) {
        signature.resize(size);
        ok = EVP_DigestSign(context, signature.data(), &size, challenge.data(), challenge.size()) == 1;
        signature.resize(size);
    }
    EVP_MD_CTX_free(context);
    if (!ok)
        return fail(ErrorKind::internal, "card signature: the key cannot sign with SHA-256");
    return signature;
}

// --- VirtualCard -------------------------------------------------------------

VirtualCard::VirtualCard(CardContents contents, ChallengeSigner& signer, Fault fault)
    : m_contents(std::move(contents)), m_signer(signer), m_fault(fault) {
    if (m_fault == Fault::blocked_pin)
        m_contents.pin_tries = 0;
    auto& first_file = m_contents.profile == Profile::patient ? m_contents.identity_file : m_contents.certificate;
    first_file = apply_file_fault(m_fault, first_file);
}

VirtualCard::~VirtualCard() {
    std::fill(m_contents.pin.begin(), m_contents.pin.end(), '\0');
}

Bytes VirtualCard::answer_to_reset() {
    // TS 3B (direct), T0 8A (TD1, 10 historical bytes), TD1 80 (TD2, T=0),
    // TD2 01 (T=1), historical "CAREBRIDGE", TCK = XOR of T0..last.
    Bytes atr{0x3B, 0x8A, 0x80, 0x01, 'C', 'A', 'R', 'E', 'B', 'R', 'I', 'D', 'G', 'E'};
    std::uint8_t check = 0;
    for (std::size_t at = 1; at < atr.size(); ++at)
        check = static_cast<std::uint8_t>(check ^ atr[at]);
    atr.push_back(check);
    return atr;
}

void VirtualCard::reset() noexcept {
    m_selected = Selected::nothing;
    m_pin_verified = false;
    m_endless_position = 0;
}

Bytes VirtualCard::respond(std::span<const std::uint8_t> command_bytes) {
    auto parsed = parse_command(command_bytes);
    if (!parsed)
        return status(0x6700);
    const auto& command = *parsed;
    if (command.cla != 0x00)
        return status(0x6E00);
    switch (command.ins) {
        case ins_select: return select(command);
        case ins_read_binary: return read_binary(command);
        case ins_verify:
            if (m_contents.profile != Profile::practitioner)
                return status(0x6D00);
            return verify(command);
        case ins_internal_authenticate: return internal_authenticate(command);
        case ins_get_response: return get_response(command);
        default: return status(0x6D00);
    }
}

Bytes VirtualCard::select(const cards::CommandApdu& command) {
    if (command.p1 == 0x04 && (command.p2 == 0x00 || command.p2 == 0x0C)) {
        const std::span<const std::uint8_t> aid = m_contents.profile == Profile::patient
                                                      ? std::span<const std::uint8_t>(cards::patient_aid)
                                                      : std::span<const std::uint8_t>(cards::practitioner_aid);
        if (!std::equal(command.data.begin(), command.data.end(), aid.begin(), aid.end())) {
            m_selected = Selected::nothing;
            return status(0x6A82);
        }
        m_selected = Selected::application;
        return status(0x9000);
    }
    if ((command.p1 == 0x02 || command.p1 == 0x00) && command.p2 == 0x0C) {
        if (command.data.size() != 2)
            return status(0x6700);
        if (m_selected == Selected::nothing)
            return status(0x6A82);
        const auto file_id = static_cast<std::uint16_t>((command.data[0] << 8) | command.data[1]);
        if (file_id == cards::patient_identity_file_id && m_contents.profile == Profile::patient) {
            m_selected = Selected::identity_file;
            return status(0x9000);
        }
        if (file_id == certificate_file_id) {
            m_selected = Selected::certificate_file;
            return status(0x9000);
        }
        return status(0x6A82);
    }
    return status(0x6A86);
}

std::span<const std::uint8_t> VirtualCard::selected_file() const noexcept {
    if (m_selected == Selected::identity_file)
        return m_contents.identity_file;
    return m_contents.certificate;
}

Bytes VirtualCard::read_binary(const cards::CommandApdu& command) {
    if ((command.p1 & 0x80) != 0)
        return status(0x6A81);
    if (m_selected != Selected::identity_file && m_selected != Selected::certificate_file)
        return status(0x6986);
    if (!command.data.empty())
        return status(0x6700);
    const auto file = selected_file();
    const std::size_t offset = (std::size_t{command.p1} << 8) | command.p2;
    if (offset >= file.size())
        return status(0x6B00);
    if (m_fault == Fault::endless_61xx)
        return status(static_cast<std::uint16_t>(0x6100 | endless_chunk));
    const std::size_t expected = command.expected.value_or(256);
    const std::size_t count = std::min(expected, file.size() - offset);
    return data_and_status(file.subspan(offset, count), 0x9000);
}

Bytes VirtualCard::verify(const cards::CommandApdu& command) {
    if (command.p1 != 0x00 || command.p2 != cards::practitioner_pin_reference)
        return status(0x6A88);
    if (command.data.empty()) {
        if (m_pin_verified)
            return status(0x9000);
        if (m_contents.pin_tries == 0)
            return status(0x6983);
        return status(static_cast<std::uint16_t>(0x63C0 | m_contents.pin_tries));
    }
    if (command.data.size() != cards::pin_block_size)
        return status(0x6700);
    if (m_contents.pin_tries == 0)
        return status(0x6983);
    std::array<std::uint8_t, cards::pin_block_size> expected{};
    expected.fill(cards::pin_padding);
    for (std::size_t at = 0; at < m_contents.pin.size() && at < expected.size(); ++at)
        expected[at] = static_cast<std::uint8_t>(m_contents.pin[at]);
    // Constant-time comparison: no early exit on the first wrong digit.
    std::uint8_t difference = 0;
    for (std::size_t at = 0; at < expected.size(); ++at)
        difference = static_cast<std::uint8_t>(difference | (expected[at] ^ command.data[at]));
    expected.fill(0);
    if (difference == 0) {
        m_contents.pin_tries = m_contents.max_pin_tries;
        m_pin_verified = true;
        return status(0x9000);
    }
    m_pin_verified = false;
    --m_contents.pin_tries;
    return status(static_cast<std::uint16_t>(0x63C0 | m_contents.pin_tries));
}

Bytes VirtualCard::internal_authenticate(const cards::CommandApdu& command) {
    if (command.p1 != 0x00 || command.p2 != 0x00)
        return status(0x6A86);
    if (m_selected == Selected::nothing)
        return status(0x6985);
    if (m_contents.profile == Profile::practitioner && !m_pin_verified)
        return status(0x6982);
    if (command.data.empty())
        return status(0x6700);
    if (m_fault == Fault::endless_61xx)
        return status(static_cast<std::uint16_t>(0x6100 | endless_chunk));
    auto signature = m_signer.sign(command.data);
    if (!signature)
        return status(0x6F00);
    return data_and_status(*signature, 0x9000);
}

Bytes VirtualCard::get_response(const cards::CommandApdu& command) {
    if (m_fault != Fault::endless_61xx)
        return status(0x6985);
    (void)command;
    const auto file = m_contents.profile == Profile::patient ? std::span<const std::uint8_t>(m_contents.identity_file)
                                                             : std::span<const std::uint8_t>(m_contents.certificate);
    Bytes chunk;
    for (std::size_t at = 0; at < endless_chunk; ++at)
        chunk.push_back(file.empty() ? 0 : file[(m_endless_position + at) % file.size()]);
    m_endless_position += endless_chunk;
    return data_and_status(chunk, static_cast<std::uint16_t>(0x6100 | endless_chunk));
}

}  // namespace cb::vcard
