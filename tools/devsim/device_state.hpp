// What a simulated device keeps in "non-volatile memory" (docs/device-protocol.md
// §3, device side): its next sequence number and every reading the gateway has
// not acknowledged yet, plus the state file that holds them across restarts.
//
// State file (--state-dir DIR: DIR/{deviceId}.json, written to a temporary
// file, fsync'd, renamed over the old one, directory fsync'd). One JSON object,
// exactly these members:
//
//   | member        | JSON type | rule                                                         |
//   |---------------|-----------|--------------------------------------------------------------|
//   | format        | string    | "carebridge-devsim-state/1"                                  |
//   | device_id     | string    | a valid device id (topics.hpp)                               |
//   | model         | string    | a simulator model id ("sim-bp-1", payload.hpp)               |
//   | next_seq      | integer   | the next sequence to use, 1..2^53 (never reused)             |
//   | acked_through | integer   | the highest seq the gateway acknowledged, 0..next_seq-1       |
//   | unacked       | array     | at most max_unacked_readings objects, seq strictly increasing |
//   | unacked[i]    | object    | exactly {"seq": acked_through < seq < next_seq,               |
//   |               |           |          "payload": string of at most max_stored_payload bytes}|
//
// The file is at most max_state_file_size bytes. parse_state never throws and
// reports the first broken rule, naming the member.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/devices/topics.hpp"
#include "protocol/result.hpp"
#include "tools/devsim/payload.hpp"

namespace cb::devsim {

inline constexpr std::string_view state_format = "carebridge-devsim-state/1";
inline constexpr std::size_t max_unacked_readings = 1'000'000;
inline constexpr std::size_t max_stored_payload = 65'536;
inline constexpr std::size_t max_state_file_size = 256u * 1024u * 1024u;

struct StoredReading {
    std::uint64_t sequence = 0;
    std::string payload;

    friend bool operator==(const StoredReading&, const StoredReading&) = default;
};

// What acknowledge() did.
struct AckOutcome {
    bool advanced = false;              // acked_through moved forward
    std::size_t dropped = 0;            // readings removed from the store
    std::optional<StoredReading> last;  // the highest dropped reading (for --misbehave replay)
};

class DeviceState {
public:
    DeviceState(devices::DeviceId device, DeviceModel model) : m_device(std::move(device)), m_model(model) {}

    const devices::DeviceId& device() const noexcept { return m_device; }
    DeviceModel model() const noexcept { return m_model; }
    std::uint64_t next_sequence() const noexcept { return m_next_sequence; }
    std::uint64_t acked_through() const noexcept { return m_acked_through; }
    // Oldest first.
    const std::deque<StoredReading>& unacked() const noexcept { return m_unacked; }

    // Hands out the next sequence number (1, 2, 3, ...), or nullopt once 2^53-1 is used.
    std::optional<std::uint64_t> take_sequence() noexcept;
    // Keeps `reading` until acknowledged. Its sequence must have been handed out
    // by take_sequence and be above every stored one and above acked_through.
    void add(StoredReading reading);
    // An ack {"seq":N}: drops every reading with seq <= N. An N at or beyond
    // next_sequence (the gateway knows more than we do: our state was lost)
    // moves next_sequence past it, so that no acknowledged seq is ever reused.
    // An N below acked_through changes nothing.
    AckOutcome acknowledge(std::uint64_t sequence);

    friend bool operator==(const DeviceState&, const DeviceState&) = default;

private:
    friend Result<DeviceState> parse_state(std::string_view text);

    devices::DeviceId m_device;
    DeviceModel m_model;
    std::uint64_t m_next_sequence = 1;
    std::uint64_t m_acked_through = 0;
    std::deque<StoredReading> m_unacked;
};

// The state file's text (table above).
std::string serialize_state(const DeviceState& state);
// Reads a state file's text. Fails with ErrorKind::invalid_input (or
// limit_exceeded for the size caps), e.g.
//   state file: unacked[2].seq: 7 is not above the previous seq 7
Result<DeviceState> parse_state(std::string_view text);

}  // namespace cb::devsim
