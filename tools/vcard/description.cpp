#include "tools/vcard/description.hpp"

#include <set>

namespace cb::vcard {

namespace {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

bool all_digits(std::string_view text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

Result<CardDescription> parse_description(std::string_view text, const std::string& name,
                                          const std::filesystem::path& base) {
    CardDescription description;
    std::set<std::string> seen;
    std::size_t line_number = 0;
    const auto resolve = [&](std::string_view value) {
        const std::filesystem::path path{std::string(value)};
        return path.is_absolute() ? path : base / path;
    };
    while (!text.empty()) {
        ++line_number;
        const auto end = text.find('\n');
        const auto raw = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        const auto line = trim(raw);
        if (line.empty() || line[0] == '#')
            continue;
        const std::string where = name + ":" + std::to_string(line_number) + ": ";
        const auto equals = line.find('=');
        if (equals == std::string_view::npos)
            return fail(ErrorKind::invalid_input, where + "expected 'key = value'");
        std::string key{trim(line.substr(0, equals))};
        const auto value = trim(line.substr(equals + 1));
        if (!seen.insert(key).second)
            return fail(ErrorKind::invalid_input, where + key + ": given twice");
        if (key == "profile") {
            if (value == "patient")
                description.profile = Profile::patient;
            else if (value == "practitioner")
                description.profile = Profile::practitioner;
            else
                return fail(ErrorKind::invalid_input, where + "profile: expected patient or practitioner");
        } else if (key == "certificate") {
            description.certificate = resolve(value);
        } else if (key == "key") {
            description.key = resolve(value);
        } else if (key == "wrong_certificate") {
            description.wrong_certificate = resolve(value);
        } else if (key == "wrong_key") {
            description.wrong_key = resolve(value);
        } else if (key == "nir") {
            description.patient.nir = value;
        } else if (key == "family_name") {
            description.patient.family_name = value;
        } else if (key == "first_name") {
            description.patient.first_name = value;
        } else if (key == "birth_date") {
            description.patient.birth_date = value;
        } else if (key == "validity_start") {
            description.patient.validity_start = value;
        } else if (key == "pin") {
            if (!all_digits(value) || value.size() < 4 || value.size() > 8)
                return fail(ErrorKind::invalid_input, where + "pin: expected 4 to 8 digits");
            description.pin = value;
        } else if (key == "tries") {
            if (!all_digits(value) || value.size() > 2 || std::stoul(std::string(value)) > 15)
                return fail(ErrorKind::invalid_input, where + "tries: expected 0 to 15");
            description.tries = static_cast<unsigned>(std::stoul(std::string(value)));
        } else {
            return fail(ErrorKind::invalid_input, where + "unknown key '" + key.append("'"));
        }
    }
    std::vector<std::string> required{"profile", "certificate", "key"};
    if (description.profile == Profile::patient)
        required.insert(required.end(), {"nir", "family_name", "first_name", "birth_date", "validity_start"});
    else
        required.emplace_back("pin");
    for (auto& key : required)
        if (seen.count(key) == 0)
            return fail(ErrorKind::invalid_input, name + ": missing key '" + key.append("'"));
    return description;
}

}  // namespace cb::vcard
