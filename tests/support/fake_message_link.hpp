// A MessageLink that records what was published.
#pragma once

#include <string>
#include <vector>

#include "drivers/mqtt/message_link.hpp"

namespace cb::test {

class FakeMessageLink final : public mqtt::MessageLink {
public:
    struct Published {
        std::string topic;
        std::string payload;
        mqtt::Qos qos;
        mqtt::Retain retain;
    };
    std::vector<Published> published;
    bool receiving = true;
    int pauses = 0;  // times set_receiving(false) turned receiving off

    void publish(std::string_view topic, std::string_view payload, mqtt::Qos qos, mqtt::Retain retain) override {
        published.push_back({std::string(topic), std::string(payload), qos, retain});
    }

    void set_receiving(bool on) override {
        if (receiving && !on)
            ++pauses;
        receiving = on;
    }

    // "topic payload" of every publication, for compact assertions.
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        for (const auto& p : published)
            out.push_back(p.topic + " " + p.payload);
        return out;
    }
};

}  // namespace cb::test
