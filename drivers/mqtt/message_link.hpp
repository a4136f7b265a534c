// The role the ingest service needs from the device bus: publish a message.
// Incoming messages reach the service through a handler given at
// construction. The MQTT implementation is MosquittoClient; tests use a fake.
#pragma once

#include <string>
#include <string_view>

namespace cb::mqtt {

enum class Qos : int { at_most_once = 0, at_least_once = 1 };
enum class Retain : bool { no = false, yes = true };

struct Message {
    std::string topic;
    std::string payload;
};

class MessageLink {
public:
    virtual ~MessageLink() = default;

    // Queues a message for the broker. While disconnected, only the latest
    // message per topic is kept and sent on reconnection: everything the
    // gateway publishes (acknowledgements, status) is retained state, where
    // the latest value supersedes the others.
    virtual void publish(std::string_view topic, std::string_view payload, Qos qos, Retain retain) = 0;

    // Flow control. While off, incoming messages are not read: they wait in
    // the socket, then in the broker's queue for our session (TCP does the
    // rest), so a consumer that falls behind holds a bounded amount in memory.
    virtual void set_receiving(bool on) = 0;
};

}  // namespace cb::mqtt
