// Reads typed, range-checked values out of a parsed TOML document and
// collects every problem instead of stopping at the first one. Used by the
// daemon's configuration and the device catalog.
//
// Each problem names file, line, key and expectation:
//     devices.toml:14: device[2].model: expected one of the [[model]] ids, got "bp-9"
// Keys are dotted paths relative to the reader's table; `prefix` (e.g.
// "device[2]") is prepended in messages. Every key a reader asked for is
// "known"; report_unknown_keys() reports the others, with a suggestion when a
// known key is one or two edits away.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cb {

// One problem found in a TOML file. line is 0 when it has no position.
struct ConfigIssue {
    std::string file;
    std::uint32_t line = 0;
    std::string key;      // dotted path, e.g. "mqtt.port"; empty for syntax errors
    std::string message;  // e.g. "expected an integer in 1..65535, got 0"

    std::string to_string() const;
};

// Parses TOML text. On a syntax error returns nullopt and appends the issue.
std::optional<toml::table> parse_toml(std::string_view text, const std::string& file, std::vector<ConfigIssue>& issues);

// Reads a whole file of at most `max_size` bytes; appends an issue naming the
// OS error (or the size) and returns nullopt when it cannot.
std::optional<std::string> read_text_file(const std::filesystem::path& path, std::vector<ConfigIssue>& issues,
                                          std::size_t max_size = 1 << 20);

// Orders issues by line, keeping the order of issues on the same line.
void sort_issues(std::vector<ConfigIssue>& issues);

// Reads `path` (read_text_file) and hands its text to `load_text(text, file)`;
// an unreadable file gives a Load whose only issue names the OS error.
template <typename Load, typename LoadText>
Load load_toml_file(const std::filesystem::path& path, LoadText load_text) {
    Load load;
    const auto text = read_text_file(path, load.issues);
    if (!text)
        return load;
    return load_text(*text, path.string());
}

class TomlReader {
public:
    TomlReader(const toml::table& table, std::string file, std::vector<ConfigIssue>& issues, std::string prefix = {})
        : m_table(table), m_file(std::move(file)), m_issues(issues), m_prefix(std::move(prefix)) {}

    // Each reader leaves `out` unchanged when the key is absent or wrong.
    void integer(const std::string& key, std::int64_t& out, std::int64_t min, std::int64_t max);
    template <typename T>
    void integer(const std::string& key, T& out, std::int64_t min, std::int64_t max) {
        std::int64_t value = static_cast<std::int64_t>(out);
        integer(key, value, min, max);
        out = static_cast<T>(value);
    }
    void seconds(const std::string& key, std::chrono::seconds& out, std::int64_t min, std::int64_t max);
    // Non-empty, at most max_length bytes, no control characters.
    void string(const std::string& key, std::string& out, std::size_t max_length = 4096);
    void path(const std::string& key, std::filesystem::path& out);
    void boolean(const std::string& key, bool& out);
    // One of `choices`; returns the index chosen, nullopt if absent or wrong.
    std::optional<std::size_t> choice(const std::string& key, std::span<const std::string_view> choices);
    // An array of strings (each as string()), at most max_items.
    void string_array(const std::string& key, std::vector<std::string>& out, std::size_t max_items = 256,
                      std::size_t max_length = 4096);

    // The tables of an array of tables ([[key]]), each with a reader whose
    // prefix is "key[i]". Absent: empty. Wrong type: reported, empty.
    struct Element {
        const toml::table* table;
        std::string label;  // "device[2]"
        std::uint32_t line;
    };
    std::vector<Element> table_array(const std::string& key, std::size_t max_items = 10000);

    // Reports a problem about `key` (a key of this table) at the line of `node`.
    void report(const toml::node& node, const std::string& key, std::string message);
    void report_unknown_keys();

    std::string full_key(const std::string& key) const { return m_prefix.empty() ? key : m_prefix + "." + key; }

private:
    const toml::node* lookup(const std::string& key);
    void walk(const toml::table& table, const std::string& prefix);
    std::optional<std::string> closest_known(const std::string& prefix, const std::string& name) const;

    const toml::table& m_table;
    std::string m_file;
    std::vector<ConfigIssue>& m_issues;
    std::string m_prefix;
    std::set<std::string> m_known;
    std::set<std::string> m_known_tables;
};

}  // namespace cb
