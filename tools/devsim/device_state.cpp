#include "tools/devsim/device_state.hpp"

#include <boost/json.hpp>
#include <cassert>

#include "protocol/devices/reading.hpp"

namespace cb::devsim {

namespace json = boost::json;

std::optional<std::uint64_t> DeviceState::take_sequence() noexcept {
    if (m_next_sequence > devices::max_sequence)
        return std::nullopt;
    return m_next_sequence++;
}

void DeviceState::add(StoredReading reading) {
    assert(reading.sequence > m_acked_through && reading.sequence < m_next_sequence);
    assert(m_unacked.empty() || reading.sequence > m_unacked.back().sequence);
    m_unacked.push_back(std::move(reading));
}

AckOutcome DeviceState::acknowledge(std::uint64_t sequence) {
    AckOutcome outcome;
    if (sequence <= m_acked_through)
        return outcome;
    outcome.advanced = true;
    m_acked_through = sequence;
    if (sequence >= m_next_sequence)
        m_next_sequence = sequence + 1;
    while (!m_unacked.empty() && m_unacked.front().sequence <= sequence) {
        outcome.last = std::move(m_unacked.front());
        m_unacked.pop_front();
        ++outcome.dropped;
    }
    return outcome;
}

std::string serialize_state(const DeviceState& state) {
    json::array unacked;
    for (const auto& reading : state.unacked())
        unacked.push_back(json::object{{"seq", reading.sequence}, {"payload", reading.payload}});
    const json::object root{
        {"format", state_format},
        {"device_id", state.device().str()},
        {"model", to_string(state.model())},
        {"next_seq", state.next_sequence()},
        {"acked_through", state.acked_through()},
        {"unacked", std::move(unacked)},
    };
    return json::serialize(root) + "\n";
}

namespace {

Error invalid(const std::string& message) {
    return fail(ErrorKind::invalid_input, "state file: " + message);
}

// The members of `object` must be exactly `names`.
Result<void> check_members(const json::object& object, std::initializer_list<std::string_view> names,
                           const std::string& where) {
    for (const auto& member : object) {
        bool known = false;
        for (const auto name : names)
            known = known || member.key() == name;
        if (!known)
            return invalid(where + "unknown member \"" + std::string(member.key().substr(0, 64)) + "\"");
    }
    for (const auto name : names)
        if (!object.contains(name))
            return invalid(where + "missing member \"" + std::string(name) + "\"");
    return {};
}

// `value` as an integer lo..hi (a JSON integer, not 7.0).
Result<std::uint64_t> read_integer(const json::value& value, const std::string& name, std::uint64_t lo,
                                   std::uint64_t hi) {
    std::uint64_t number = 0;
    if (value.is_uint64()) {
        number = value.get_uint64();
    } else if (value.is_int64()) {
        if (value.get_int64() < 0)
            return invalid(name + ": " + std::to_string(value.get_int64()) + " is negative");
        number = static_cast<std::uint64_t>(value.get_int64());
    } else {
        return invalid(name + ": expected an integer");
    }
    if (number < lo || number > hi)
        return invalid(name + ": " + std::to_string(number) + " is outside " + std::to_string(lo) + ".." +
                       std::to_string(hi));
    return number;
}

Result<std::string_view> read_string(const json::object& object, std::string_view name, const std::string& where) {
    const auto& value = object.at(name);
    if (!value.is_string())
        return invalid(where + std::string(name) + ": expected a string");
    const auto& text = value.get_string();
    return std::string_view(text.data(), text.size());
}

}  // namespace

Result<DeviceState> parse_state(std::string_view text) {
    if (text.size() > max_state_file_size)
        return fail(ErrorKind::limit_exceeded, "state file: " + std::to_string(text.size()) + " bytes (at most " +
                                                   std::to_string(max_state_file_size) + ")");
    json::parse_options options;
    options.max_depth = 4;
    boost::system::error_code error;
    const json::value root = json::parse(json::string_view(text.data(), text.size()), error, {}, options);
    if (error)
        return invalid("not JSON: " + error.message());
    if (!root.is_object())
        return invalid("expected a JSON object");
    const auto& object = root.get_object();
    CB_TRY(check_members(object, {"format", "device_id", "model", "next_seq", "acked_through", "unacked"}, ""));

    const auto format = CB_TRY(read_string(object, "format", ""));
    if (format != state_format)
        return invalid("format: \"" + std::string(format.substr(0, 64)) + "\" is not \"" + std::string(state_format) +
                       "\"");
    const auto device_text = CB_TRY(read_string(object, "device_id", ""));
    auto device = devices::DeviceId::parse(device_text);
    if (!device)
        return invalid("device_id: " + device.error().message());
    const auto model_text = CB_TRY(read_string(object, "model", ""));
    const auto model = device_model_from_string(model_text);
    if (!model)
        return invalid("model: \"" + std::string(model_text.substr(0, 64)) + "\" is not a simulator model");

    DeviceState state(std::move(device).value(), *model);
    state.m_next_sequence = CB_TRY(read_integer(object.at("next_seq"), "next_seq", 1, devices::max_sequence + 1));
    state.m_acked_through =
        CB_TRY(read_integer(object.at("acked_through"), "acked_through", 0, state.m_next_sequence - 1));

    const auto& unacked = object.at("unacked");
    if (!unacked.is_array())
        return invalid("unacked: expected an array");
    if (unacked.get_array().size() > max_unacked_readings)
        return fail(ErrorKind::limit_exceeded, "state file: unacked: " + std::to_string(unacked.get_array().size()) +
                                                   " readings (at most " + std::to_string(max_unacked_readings) + ")");
    std::uint64_t previous = state.m_acked_through;
    std::size_t index = 0;
    for (const auto& item : unacked.get_array()) {
        const std::string where = "unacked[" + std::to_string(index++) + "]";
        if (!item.is_object())
            return invalid(where + ": expected an object");
        const auto& entry = item.get_object();
        CB_TRY(check_members(entry, {"seq", "payload"}, where + ": "));
        const auto sequence = CB_TRY(read_integer(entry.at("seq"), where + ".seq", 1, devices::max_sequence));
        if (sequence <= previous)
            return invalid(where + ".seq: " + std::to_string(sequence) + " is not above the " +
                           (index == 1 ? "acked_through " : "previous seq ") + std::to_string(previous));
        if (sequence >= state.m_next_sequence)
            return invalid(where + ".seq: " + std::to_string(sequence) + " is not below next_seq " +
                           std::to_string(state.m_next_sequence));
        const auto payload = CB_TRY(read_string(entry, "payload", where + "."));
        if (payload.size() > max_stored_payload)
            return fail(ErrorKind::limit_exceeded, "state file: " + where +
                                                       ".payload: " + std::to_string(payload.size()) +
                                                       " bytes (at most " + std::to_string(max_stored_payload) + ")");
        state.m_unacked.push_back({sequence, std::string(payload)});
        previous = sequence;
    }
    return state;
}

}  // namespace cb::devsim
