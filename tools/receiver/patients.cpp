#include "tools/receiver/patients.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>

#include "protocol/hex.hpp"

namespace cb::receiver {

namespace {

bool printable_no_space(char c) {
    return c > ' ' && c < 0x7f;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<std::string> nir_key(std::string_view nir) {
    bool ok = nir.size() >= 13 && nir.size() <= 15;
    for (const char c : nir)
        ok = ok && ((c >= '0' && c <= '9') || c == 'A' || c == 'B');
    if (!ok)
        return fail(ErrorKind::invalid_input,
                    "nir: expected 13 to 15 characters of [0-9AB], got " + std::to_string(nir.size()) + " characters");
    return std::string(nir.substr(0, 13));
}

bool valid_idpe(std::string_view idpe) noexcept {
    if (idpe.empty() || idpe.size() > 128)
        return false;
    for (const char c : idpe)
        if (!printable_no_space(c) || c == '|')
            return false;
    return true;
}

std::string auto_pair_idpe(std::string_view key) {
    const std::string input = "carebridge-receiver auto-pair " + std::string(key);
    std::array<std::uint8_t, SHA256_DIGEST_LENGTH> digest{};
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
    std::string hex = to_hex(std::span<const std::uint8_t>(digest.data(), 8));
    for (char& c : hex)
        if (c >= 'A' && c <= 'F')
            c = static_cast<char>(c - 'A' + 'a');
    return "idpe-" + hex;
}

Result<PatientDirectory> PatientDirectory::parse(std::string_view text, const std::string& source, AutoPair auto_pair) {
    if (text.size() > max_patients_file_size)
        return fail(ErrorKind::limit_exceeded,
                    source + ": larger than " + std::to_string(max_patients_file_size) + " bytes");
    PatientDirectory directory;
    directory.m_auto_pair = auto_pair;
    std::size_t line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        const std::string where = source + ":" + std::to_string(line_number) + ": ";
        std::array<std::string_view, 3> fields{};
        std::size_t count = 0;
        std::size_t position = 0;
        while (position < line.size()) {
            while (position < line.size() && (line[position] == ' ' || line[position] == '\t'))
                ++position;
            if (position >= line.size())
                break;
            if (count == 0 && line[position] == '#')
                break;
            const std::size_t field_start = position;
            while (position < line.size() && line[position] != ' ' && line[position] != '\t')
                ++position;
            if (count == fields.size())
                return fail(ErrorKind::invalid_input, where + "expected 3 fields \"NIR CODE IDPE\", got more");
            fields[count++] = line.substr(field_start, position - field_start);
        }
        if (count == 0)
            continue;
        if (count != 3)
            return fail(ErrorKind::invalid_input,
                        where + "expected 3 fields \"NIR CODE IDPE\", got " + std::to_string(count));
        auto key = nir_key(fields[0]);
        if (!key)
            return key.error().with_context(where.substr(0, where.size() - 2));
        const auto code = fields[1];
        bool code_ok = code.size() >= 4 && code.size() <= 64;
        for (const char c : code)
            code_ok = code_ok && printable_no_space(c);
        if (!code_ok)
            return fail(ErrorKind::invalid_input,
                        where + "code: expected 4 to 64 printable characters, got " + std::to_string(code.size()));
        if (!valid_idpe(fields[2]))
            return fail(ErrorKind::invalid_input, where + "idpe: expected 1 to 128 printable characters without '|'");
        if (directory.m_patients.size() >= max_patients)
            return fail(ErrorKind::limit_exceeded, where + "more than " + std::to_string(max_patients) + " patients");
        const auto [it, inserted] =
            directory.m_patients.emplace(std::move(*key), Patient{std::string(code), std::string(fields[2])});
        if (!inserted)
            return fail(ErrorKind::invalid_input, where + "nir: the same patient is already on an earlier line");
    }
    return directory;
}

std::optional<std::string> PatientDirectory::pair(std::string_view nir, std::string_view code) const {
    const auto key = nir_key(nir);
    if (!key)
        return std::nullopt;
    if (const auto it = m_patients.find(*key); it != m_patients.end())
        return equal_in_constant_time(code, it->second.code) ? std::optional<std::string>(it->second.idpe)
                                                             : std::nullopt;
    if (m_auto_pair == AutoPair::yes && equal_in_constant_time(code, auto_pair_code))
        return auto_pair_idpe(*key);
    return std::nullopt;
}

}  // namespace cb::receiver
