// MQTT topics and the acknowledgement payload of the device protocol
// (docs/device-protocol.md is the full specification).
//
//   | topic                       | direction        | QoS | retained | payload                      |
//   |-----------------------------|------------------|-----|----------|------------------------------|
//   | cb/v1/dev/{deviceId}/meas   | device → gateway | 1   | no       | one reading (reading.hpp)    |
//   | cb/v1/dev/{deviceId}/ack    | gateway → device | 1   | yes      | {"seq":N}: the highest       |
//   |                             |                  |     |          | sequence durably committed   |
//   | cb/v1/dev/{deviceId}/status | device → broker  | 1   | yes      | "online" (birth) or          |
//   |                             |                  |     |          | "offline" (last will)        |
//   | cb/v1/gw/{gatewayId}/status | gateway → broker | 1   | yes      | "online" / "offline" (will)  |
//
// Identifier syntax (device and gateway ids alike):
//
//   | rule          | value                                                          |
//   |---------------|----------------------------------------------------------------|
//   | characters    | A-Z a-z 0-9 . _ -   (so never '/', '+', '#', '$', NUL, space)  |
//   | length        | 1..64 bytes                                                    |
//   | case          | significant ("Cuff-1" and "cuff-1" are two devices)            |
//
// The character set keeps an id a single topic level that can never be an
// MQTT wildcard, a system topic ($SYS) or a broker ACL pattern (%c, %u).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace cb::devices {

inline constexpr std::size_t max_id_length = 64;
inline constexpr std::string_view topic_prefix = "cb/v1/";
// What the gateway subscribes to (QoS 1).
inline constexpr std::string_view measurement_subscription = "cb/v1/dev/+/meas";
inline constexpr std::string_view status_online = "online";
inline constexpr std::string_view status_offline = "offline";

// A device's id, valid by construction (syntax above).
class DeviceId {
public:
    // Fails with ErrorKind::invalid_input, naming the rule broken:
    //   device id "a/b": character '/' at 1 is not allowed (A-Z a-z 0-9 . _ -)
    static Result<DeviceId> parse(std::string_view text);

    const std::string& str() const noexcept { return m_text; }
    friend bool operator==(const DeviceId&, const DeviceId&) = default;

private:
    explicit DeviceId(std::string text) : m_text(std::move(text)) {}
    std::string m_text;
};

// A gateway's id: the same syntax as a device id.
class GatewayId {
public:
    // Fails as DeviceId::parse does, with "gateway id" in the message.
    static Result<GatewayId> parse(std::string_view text);

    const std::string& str() const noexcept { return m_text; }
    friend bool operator==(const GatewayId&, const GatewayId&) = default;

private:
    explicit GatewayId(std::string text) : m_text(std::move(text)) {}
    std::string m_text;
};

// The device id of a measurement topic "cb/v1/dev/{deviceId}/meas". Fails with
// ErrorKind::invalid_input when the topic has another shape
//   topic "cb/v1/dev/x/ack": not a measurement topic (expected cb/v1/dev/{deviceId}/meas)
// or when the id breaks the syntax (the DeviceId::parse message, prefixed with the topic).
Result<DeviceId> parse_measurement_topic(std::string_view topic);

std::string measurement_topic(const DeviceId& device);       // cb/v1/dev/{id}/meas
std::string ack_topic(const DeviceId& device);               // cb/v1/dev/{id}/ack
std::string device_status_topic(const DeviceId& device);     // cb/v1/dev/{id}/status
std::string gateway_status_topic(const GatewayId& gateway);  // cb/v1/gw/{id}/status

// The acknowledgement payload: {"seq":N}, N in decimal, no spaces.
std::string make_ack_payload(std::uint64_t sequence);

// Reads an acknowledgement payload (for simulators and tests): a JSON object
// whose only member is "seq", an integer 1..2^53-1. Fails with
// ErrorKind::invalid_input naming what is wrong ("ack payload: ...").
Result<std::uint64_t> parse_ack_payload(std::string_view payload);

}  // namespace cb::devices
