#include "protocol/devices/topics.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <system_error>

#include "protocol/devices/reading.hpp"

namespace cb::devices {

namespace {

bool allowed_id_character(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

// Shows a byte as itself when printable, as \xNN otherwise.
std::string printable(char c) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '"' && c != '\\')
        return std::string(1, c);
    static constexpr char digits[] = "0123456789ABCDEF";
    return std::string("\\x") + digits[byte >> 4] + digits[byte & 0x0F];
}

// At most `limit` bytes of `text` for a message, control and non-ASCII bytes
// as \xNN, so that hostile input cannot forge log lines.
std::string shown(std::string_view text, std::size_t limit) {
    std::string out;
    for (const char c : text.substr(0, limit))
        out += printable(c);
    if (text.size() > limit)
        out += "...";
    return out;
}

Result<std::string> check_id(std::string_view what, std::string_view text) {
    if (text.empty())
        return fail(ErrorKind::invalid_input, std::string(what) + " is empty (expected 1..64 of A-Z a-z 0-9 . _ -)");
    if (text.size() > max_id_length)
        return fail(ErrorKind::invalid_input,
                    std::string(what) + " is " + std::to_string(text.size()) + " bytes long (at most 64)");
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (!allowed_id_character(text[i]))
            return fail(ErrorKind::invalid_input, std::string(what) + " \"" + shown(text, 64) + "\": character '" +
                                                      printable(text[i]) + "' at " + std::to_string(i) +
                                                      " is not allowed (A-Z a-z 0-9 . _ -)");
    }
    return std::string(text);
}

}  // namespace

Result<DeviceId> DeviceId::parse(std::string_view text) {
    return DeviceId(CB_TRY(check_id("device id", text)));
}

Result<GatewayId> GatewayId::parse(std::string_view text) {
    return GatewayId(CB_TRY(check_id("gateway id", text)));
}

Result<DeviceId> parse_measurement_topic(std::string_view topic) {
    static constexpr std::string_view head = "cb/v1/dev/";
    static constexpr std::string_view tail = "/meas";
    // Topics are at most 65535 bytes in MQTT; ours are short, so the message
    // quotes at most 100 bytes of a bad one.
    const auto quoted = [topic] { return "topic \"" + shown(topic, 100) + "\""; };
    if (topic.size() < head.size() + tail.size() || topic.substr(0, head.size()) != head ||
        topic.substr(topic.size() - tail.size()) != tail)
        return fail(ErrorKind::invalid_input,
                    quoted() + ": not a measurement topic (expected cb/v1/dev/{deviceId}/meas)");
    const std::string_view id = topic.substr(head.size(), topic.size() - head.size() - tail.size());
    auto device = DeviceId::parse(id);
    if (!device)
        return std::move(device).error().with_context(quoted());
    return device;
}

std::string measurement_topic(const DeviceId& device) {
    return "cb/v1/dev/" + device.str() + "/meas";
}

std::string ack_topic(const DeviceId& device) {
    return "cb/v1/dev/" + device.str() + "/ack";
}

std::string device_status_topic(const DeviceId& device) {
    return "cb/v1/dev/" + device.str() + "/status";
}

std::string gateway_status_topic(const GatewayId& gateway) {
    return "cb/v1/gw/" + gateway.str() + "/status";
}

std::string make_ack_payload(std::uint64_t sequence) {
    return "{\"seq\":" + std::to_string(sequence) + "}";
}

Result<std::uint64_t> parse_ack_payload(std::string_view payload) {
    if (payload.size() > 64)
        return fail(ErrorKind::limit_exceeded,
                    "ack payload: " + std::to_string(payload.size()) + " bytes (at most 64)");
    boost::json::parse_options options;
    options.max_depth = 2;
    boost::system::error_code code;
    const boost::json::value json = boost::json::parse(payload, code, {}, options);
    if (code)
        return fail(ErrorKind::invalid_input, "ack payload: not JSON (" + code.message() + ")");
    const boost::json::object* object = json.if_object();
    if (object == nullptr || object->size() != 1 || !object->contains("seq"))
        return fail(ErrorKind::invalid_input, "ack payload: expected {\"seq\":N}");
    const boost::json::value& seq = object->at("seq");
    std::uint64_t sequence = 0;
    if (const auto* as_int = seq.if_int64(); as_int != nullptr && *as_int > 0)
        sequence = static_cast<std::uint64_t>(*as_int);
    else if (const auto* as_uint = seq.if_uint64(); as_uint != nullptr)
        sequence = *as_uint;
    if (sequence < 1 || sequence > max_sequence)
        return fail(ErrorKind::invalid_input, "ack payload: seq is not an integer 1..9007199254740991");
    return sequence;
}

}  // namespace cb::devices
