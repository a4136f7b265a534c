#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
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

// Reads typed values out of a parsed TOML table, recording every key it
// knows so that the rest can be reported as unknown.
class ConfigReader {
public:
    ConfigReader(const toml::table& root, std::string file) : m_root(root), m_file(std::move(file)) {}

    // Integer in [min, max].
    template <typename T>
    void integer(const std::string& key, T& out, std::int64_t min, std::int64_t max) {
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
        out = static_cast<T>(value->get());
    }

    void seconds(const std::string& key, std::chrono::seconds& out, std::int64_t min, std::int64_t max) {
        std::int64_t count = out.count();
        integer(key, count, min, max);
        out = std::chrono::seconds(count);
    }

    // Non-empty string of at most max_length bytes, without control characters.
    void string(const std::string& key, std::string& out, std::size_t max_length = 4096) {
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

    void path(const std::string& key, std::filesystem::path& out) {
        std::string text = out.string();
        string(key, text);
        out = text;
    }

    void log_level(const std::string& key, LogLevel& out) {
        const toml::node* node = lookup(key);
        if (node == nullptr)
            return;
        const auto* value = node->as_string();
        const auto parsed = value != nullptr ? parse_log_level(value->get()) : std::nullopt;
        if (!parsed) {
            report(*node, key,
                   "expected one of \"error\", \"warning\", \"notice\", \"info\", \"debug\", got " + describe(*node));
            return;
        }
        out = *parsed;
    }

    // Reports every key of the file that no reader call asked for, with a
    // suggestion when a known key is one or two edits away.
    void report_unknown_keys() { walk(m_root, ""); }

    std::vector<ConfigIssue> take_issues() { return std::move(m_issues); }

private:
    const toml::node* lookup(const std::string& key) {
        m_known.insert(key);
        // Every enclosing table is known too.
        for (std::size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1))
            m_known_tables.insert(key.substr(0, dot));
        return m_root.at_path(key).node();
    }

    void report(const toml::node& node, const std::string& key, std::string message) {
        m_issues.push_back({m_file, node.source().begin.line, key, std::move(message)});
    }

    void walk(const toml::table& table, const std::string& prefix) {
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
                message += " (did you mean \"" + *suggestion + "\"?)";
            // A key's own position is where its name is written.
            m_issues.push_back({m_file, name.source().begin.line, key, message});
        }
    }

    std::optional<std::string> closest_known(const std::string& prefix, const std::string& name) const {
        std::optional<std::string> best;
        std::size_t best_distance = 3;  // suggest only near misses
        const auto consider = [&](const std::string& known) {
            const std::string expected_prefix = prefix.empty() ? "" : prefix + ".";
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

    const toml::table& m_root;
    std::string m_file;
    std::set<std::string> m_known;
    std::set<std::string> m_known_tables;
    std::vector<ConfigIssue> m_issues;
};

void read_config(ConfigReader& reader, Config& config) {
    reader.path("daemon.state_dir", config.daemon.state_dir);
    reader.log_level("daemon.log_level", config.daemon.log_level);
    reader.seconds("daemon.shutdown_timeout_s", config.daemon.shutdown_timeout, 1, 60);

    reader.string("mqtt.host", config.mqtt.host, 253);
    reader.integer("mqtt.port", config.mqtt.port, 1, 65535);
    reader.string("mqtt.client_id", config.mqtt.client_id, 23);  // MQTT 3.1.1 §3.1.3.1 guarantees 23 bytes
    reader.seconds("mqtt.keepalive_s", config.mqtt.keepalive, 5, 3600);
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

ConfigLoad load_config_text(std::string_view text, const std::string& file) {
    ConfigLoad load;
    toml::table root;
    try {
        root = toml::parse(text, file);
    } catch (const toml::parse_error& error) {
        load.issues.push_back({file, error.source().begin.line, "", std::string(error.description())});
        return load;
    }
    Config config;
    ConfigReader reader(root, file);
    read_config(reader, config);
    reader.report_unknown_keys();
    load.issues = reader.take_issues();
    std::stable_sort(load.issues.begin(), load.issues.end(),
                     [](const ConfigIssue& a, const ConfigIssue& b) { return a.line < b.line; });
    if (load.issues.empty())
        load.config = std::move(config);
    return load;
}

ConfigLoad load_config_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ConfigLoad load;
        load.issues.push_back({path.string(), 0, "", std::string("cannot read: ") + system_error_text(errno)});
        return load;
    }
    constexpr std::size_t max_size = 1 << 20;  // a config file is a few KiB; refuse to slurp a disk image
    std::string text;
    text.resize(max_size + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_size) {
        ConfigLoad load;
        load.issues.push_back({path.string(), 0, "", "file larger than 1 MiB"});
        return load;
    }
    return load_config_text(text, path.string());
}

}  // namespace cb
