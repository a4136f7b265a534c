#include "daemon/toml_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "protocol/result.hpp"

namespace cb {

namespace {

std::string type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

// How a value appears in messages: `"text"`, `42`, or its type for compound values.
std::string describe(const toml::node& node) {
    if (const auto* s = node.as_string())
        return "\"" + s->get() + "\"";
    if (const auto* i = node.as_integer())
        return std::to_string(i->get());
    if (const auto* b = node.as_boolean())
        return b->get() ? "true" : "false";
    if (const auto* f = node.as_floating_point()) {
        std::ostringstream out;
        out << f->get();
        return "float " + out.str();
    }
    return type_name(node);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0U : 1U)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

}  // namespace

std::string ConfigIssue::to_string() const {
    std::string text = file;
    if (line != 0)
        text += ":" + std::to_string(line);
    text += ": ";
    if (!key.empty())
        text += key + ": ";
    text += message;
    return text;
}

std::optional<toml::table> parse_toml(std::string_view text, const std::string& file,
                                      std::vector<ConfigIssue>& issues) {
    try {
        return toml::parse(text, file);
    } catch (const toml::parse_error& error) {
        issues.push_back({file, error.source().begin.line, "", std::string(error.description())});
        return std::nullopt;
    }
}

std::optional<std::string> read_text_file(const std::filesystem::path& path, std::vector<ConfigIssue>& issues,
                                          std::size_t max_size) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        issues.push_back({path.string(), 0, "", "cannot read: " + system_error_text(errno)});
        return std::nullopt;
    }
    std::string text;
    text.resize(max_size + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_size) {
        issues.push_back({path.string(), 0, "", "file larger than " + std::to_string(max_size >> 10) + " KiB"});
        return std::nullopt;
    }
    return text;
}

void sort_issues(std::vector<ConfigIssue>& issues) {
    std::stable_sort(issues.begin(), issues.end(),
                     [](const ConfigIssue& a, const ConfigIssue& b) { return a.line < b.line; });
}

const toml::node* TomlReader::lookup(const std::string& key) {
    m_known.insert(key);
    for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1))
        m_known_tables.insert(key.substr(0, dot));
    return m_table.at_path(key).node();
}

void TomlReader::report(const toml::node& node, const std::string& key, std::string message) {
    m_issues.push_back({m_file, node.source().begin.line, full_key(key), std::move(message)});
}

void TomlReader::integer(const std::string& key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    const toml::node* node = lookup(key);
    if (node == nullptr)
        return;
    const std::string range = std::to_string(min) + ".." + std::to_string(max);
    const auto* value = node->as_integer();
    if (value == nullptr) {
        report(*node, key, "expected an integer in " + range + ", got " + type_name(*node));
        return;
    }
    if (value->get() < min || value->get() > max) {
        report(*node, key, "expected an integer in " + range + ", got " + std::to_string(value->get()));
        return;
    }
    out = value->get();
}

void TomlReader::seconds(const std::string& key, std::chrono::seconds& out, std::int64_t min, std::int64_t max) {
    std::int64_t count = out.count();
    integer(key, count, min, max);
    out = std::chrono::seconds(count);
}

void TomlReader::string(const std::string& key, std::string& out, std::size_t max_length) {
    const toml::node* node = lookup(key);
    if (node == nullptr)
        return;
    const auto* value = node->as_string();
    if (value == nullptr) {
        report(*node, key, "expected a string, got " + type_name(*node));
        return;
    }
    const std::string& text = value->get();
    if (text.empty() || text.size() > max_length) {
        report(*node, key,
               "expected a non-empty string of at most " + std::to_string(max_length) + " bytes, got " +
                   std::to_string(text.size()) + " bytes");
        return;
    }
    if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
        report(*node, key, "expected a string without control characters");
        return;
    }
    out = text;
}

void TomlReader::path(const std::string& key, std::filesystem::path& out) {
    std::string text = out.string();
    string(key, text);
    out = text;
}

void TomlReader::boolean(const std::string& key, bool& out) {
    const toml::node* node = lookup(key);
    if (node == nullptr)
        return;
    const auto* value = node->as_boolean();
    if (value == nullptr) {
        report(*node, key, "expected true or false, got " + describe(*node));
        return;
    }
    out = value->get();
}

std::optional<std::size_t> TomlReader::choice(const std::string& key, std::span<const std::string_view> choices) {
    const toml::node* node = lookup(key);
    if (node == nullptr)
        return std::nullopt;
    if (const auto* value = node->as_string())
        for (std::size_t i = 0; i < choices.size(); ++i)
            if (choices[i] == value->get())
                return i;
    std::string expected = "expected one of ";
    for (std::size_t i = 0; i < choices.size(); ++i)
        expected += (i == 0 ? "\"" : ", \"") + std::string(choices[i]) + "\"";
    report(*node, key, expected + ", got " + describe(*node));
    return std::nullopt;
}

void TomlReader::string_array(const std::string& key, std::vector<std::string>& out, std::size_t max_items,
                              std::size_t max_length) {
    const toml::node* node = lookup(key);
    if (node == nullptr)
        return;
    const auto* array = node->as_array();
    if (array == nullptr) {
        report(*node, key, "expected an array of strings, got " + type_name(*node));
        return;
    }
    if (array->size() > max_items) {
        report(*node, key,
               "expected at most " + std::to_string(max_items) + " items, got " + std::to_string(array->size()));
        return;
    }
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& item = *array->get(i);
        const std::string item_key = key + "[" + std::to_string(i) + "]";
        const auto* text = item.as_string();
        if (text == nullptr || text->get().empty() || text->get().size() > max_length ||
            std::any_of(text->get().begin(), text->get().end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
            report(item, item_key,
                   "expected a non-empty string of at most " + std::to_string(max_length) +
                       " bytes without control characters, got " + describe(item));
            return;
        }
        values.push_back(text->get());
    }
    out = std::move(values);
}

std::vector<TomlReader::Element> TomlReader::table_array(const std::string& key, std::size_t max_items) {
    const toml::node* node = lookup(key);
    std::vector<Element> elements;
    if (node == nullptr)
        return elements;
    const auto* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
        report(*node, key, "expected an array of tables ([[" + key + "]]), got " + type_name(*node));
        return elements;
    }
    if (array->size() > max_items) {
        report(*node, key,
               "expected at most " + std::to_string(max_items) + " entries, got " + std::to_string(array->size()));
        return elements;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::table* table = array->get(i)->as_table();
        elements.push_back({table, full_key(key) + "[" + std::to_string(i) + "]", table->source().begin.line});
    }
    return elements;
}

void TomlReader::report_unknown_keys() {
    walk(m_table, "");
}

void TomlReader::walk(const toml::table& table, const std::string& prefix) {
    for (const auto& [name, node] : table) {
        const std::string key = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
        if (m_known_tables.count(key) != 0) {
            if (const auto* child = node.as_table()) {
                walk(*child, key);
                continue;
            }
            report(node, key, "expected a table, got " + type_name(node));
            continue;
        }
        if (m_known.count(key) != 0)
            continue;
        std::string message = "unknown key";
        if (const auto suggestion = closest_known(prefix, std::string(name.str())))
            message += " (did you mean \"" + full_key(*suggestion) + "\"?)";
        // A key's own position is where its name is written.
        m_issues.push_back({m_file, name.source().begin.line, full_key(key), message});
    }
}

std::optional<std::string> TomlReader::closest_known(const std::string& prefix, const std::string& name) const {
    std::optional<std::string> best;
    std::size_t best_distance = 3;  // suggest only near misses
    const std::string expected_prefix = prefix.empty() ? "" : prefix + ".";
    const auto consider = [&](const std::string& known) {
        if (known.rfind(expected_prefix, 0) != 0)
            return;
        const std::string tail = known.substr(expected_prefix.size());
        if (tail.find('.') != std::string::npos)
            return;
        const std::size_t distance = edit_distance(name, tail);
        if (distance < best_distance) {
            best_distance = distance;
            best = known;
        }
    };
    for (const auto& known : m_known)
        consider(known);
    for (const auto& known : m_known_tables)
        consider(known);
    return best;
}

}  // namespace cb
