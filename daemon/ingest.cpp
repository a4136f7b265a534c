#include "daemon/ingest.hpp"

#include <boost/asio/post.hpp>

namespace cb {

namespace {

constexpr std::string_view component = "ingest";
// Distinct (device, reason) pairs logged at warning level; beyond this, counters only.
constexpr std::size_t max_logged_pairs = 10'000;
// The quota is checked at most this often (a stat of the database and WAL files).
constexpr auto quota_check_interval = std::chrono::seconds(1);

std::int64_t micros(devices::Microseconds time) {
    return time.time_since_epoch().count();
}

}  // namespace

IngestService::IngestService(boost::asio::io_context& io, Logger& log, const DeviceCatalog& catalog,
                             storage::GroupCommitter& committer, mqtt::MessageLink& link,
                             const PatientPresence& presence, Clock clock, DiskUsage disk_usage,
                             IngestSettings settings)
    : m_io(io),
      m_log(log),
      m_catalog(catalog),
      m_committer(committer),
      m_link(link),
      m_presence(presence),
      m_clock(std::move(clock)),
      m_disk_usage(std::move(disk_usage)),
      m_settings(std::move(settings)),
      m_ack_budget(m_settings.max_acks_per_s),  // m_settings is declared, so initialised, first
      m_ack_timer(io) {}

Result<void> IngestService::restore(storage::ReadingStore& store) {
    CB_TRY(store.for_each_sequence([this](std::string_view device, std::int64_t sequence) {
        m_acks.handled(device, static_cast<std::uint64_t>(sequence), first_sequence(device));
    }));
    m_acks.for_each([this](const std::string& device, std::uint64_t through) { publish_ack(device, through); });
    m_log.info(component, "restored acknowledgements of " + std::to_string(m_acks.device_count()) + " device(s)");
    return {};
}

void IngestService::on_message(const mqtt::Message& message) {
    ++m_counters.received;
    auto device_id = devices::parse_measurement_topic(message.topic);
    if (!device_id) {
        ++m_counters.unreadable;
        ++m_counters.by_reason["bad-topic"];
        log_once("?", "bad-topic", "message on " + message.topic + ": " + device_id.error().message());
        return;
    }
    const std::string& device = device_id->str();
    const devices::Microseconds now = m_clock();
    auto reading = devices::Reading::parse(*device_id, message.payload, now, m_settings.limits);

    std::optional<std::uint64_t> sequence;
    if (reading)
        sequence = reading->sequence();
    else
        sequence = devices::peek_sequence(*device_id, message.payload);
    if (!sequence) {
        // Without a trustworthy seq there is nothing to store under and nothing
        // to acknowledge: the device keeps the reading (and the problem shows here).
        ++m_counters.unreadable;
        const std::string reason = devices::to_string(reading.error().reason);
        ++m_counters.by_reason[reason];
        log_once(
            device, reason,
            "device " + device + ": unusable reading (" + reason + "), not acknowledged: " + reading.error().message);
        return;
    }
    if (over_quota()) {
        ++m_counters.over_quota;
        return;
    }

    storage::NewReading row;
    row.device_id = device;
    row.sequence = static_cast<std::int64_t>(*sequence);
    row.received_us = micros(now);
    const EnrolledDevice* enrolled = m_catalog.device(device);
    if (!reading) {
        const std::string reason = devices::to_string(reading.error().reason);
        row.disposition =
            std::string(to_string(enrolled == nullptr ? Disposition::quarantined : Disposition::rejected));
        row.reason = enrolled == nullptr ? "unknown-device" : reason;
        row.body = message.payload;
        log_once(device, row.reason,
                 "device " + device + ": reading " + std::to_string(*sequence) + " " + row.disposition + " (" +
                     row.reason + "): " + reading.error().message);
    } else {
        const Placement placement = place_reading(m_catalog, enrolled, *reading, m_presence);
        row.disposition = std::string(to_string(placement.disposition));
        row.reason = placement.reason;
        row.patient = placement.patient;
        row.type = devices::to_string(reading->type());
        row.device_time_us = micros(reading->device_time().utc);
        row.body =
            placement.disposition == Disposition::quarantined ? message.payload : devices::to_storage_json(*reading);
        if (placement.disposition != Disposition::accepted)
            log_once(device, placement.reason,
                     "device " + device + ": readings " + row.disposition + " (" + placement.reason + ")");
    }
    ++m_counters.by_disposition[row.disposition];
    if (!row.reason.empty())
        ++m_counters.by_reason[row.reason];
    submit(std::move(row));
}

void IngestService::submit(storage::NewReading reading) {
    if (++m_in_flight >= m_settings.max_in_flight && m_receiving) {
        m_receiving = false;
        m_link.set_receiving(false);
    }
    const std::string device = reading.device_id;
    const auto sequence = static_cast<std::uint64_t>(reading.sequence);
    m_committer.submit(std::move(reading), [this, device, sequence](const Result<storage::CommitOutcome>& outcome) {
        // On the storage thread: queue the outcome for the loop, posting only
        // when no post is pending (the loop may drain a batch in a few goes).
        std::lock_guard lock(m_completed_mutex);
        m_completed.push_back({device, sequence, outcome});
        if (!m_completions_posted) {
            m_completions_posted = true;
            boost::asio::post(m_io, [this] { on_completions(); });
        }
    });
}

void IngestService::on_completions() {
    std::vector<Completion> completed;
    {
        std::lock_guard lock(m_completed_mutex);
        completed.swap(m_completed);
        m_completions_posted = false;
    }
    const auto stored_before = m_counters.stored;
    for (const auto& completion : completed)
        on_committed(completion.device, completion.sequence, completion.outcome);
    if (m_counters.stored != stored_before && m_settings.on_stored)
        m_settings.on_stored();
    if (!m_receiving && m_in_flight <= m_settings.max_in_flight / 2) {
        m_receiving = true;
        m_link.set_receiving(true);
    }
    flush_acks();
}

void IngestService::on_committed(const std::string& device, std::uint64_t sequence,
                                 const Result<storage::CommitOutcome>& outcome) {
    --m_in_flight;
    if (!outcome) {
        // Not on disk: no ack, the device resends. Logged once per outage.
        ++m_counters.commit_failures;
        if (!m_storage_failing)
            m_log.error(component, "cannot store readings, acknowledgements stop: " + outcome.error().message());
        m_storage_failing = true;
        return;
    }
    if (m_storage_failing)
        m_log.notice(component, "storing readings again");
    m_storage_failing = false;
    if (outcome.value() == storage::CommitOutcome::duplicate) {
        ++m_counters.duplicates;
        // The device resent something we have: it may have missed its ack
        // (coalesced like any other: a resent backlog gets one ack, not one each).
        if (const auto current = m_acks.acknowledged(device); current && sequence <= *current)
            schedule_ack(device);
        return;
    }
    ++m_counters.stored;
    const auto waiting_before = m_acks.waiting(device);
    if (m_acks.handled(device, sequence, first_sequence(device))) {
        schedule_ack(device);
    } else if (waiting_before == 0 && m_acks.waiting(device) > 0) {
        m_log.warning(
            component,
            "device " + device + ": gap before sequence " + std::to_string(sequence) + ", acknowledgement waits at " +
                (m_acks.acknowledged(device) ? std::to_string(*m_acks.acknowledged(device)) : std::string("nothing")) +
                " until the device resends the missing readings");
    }
}

void IngestService::schedule_ack(const std::string& device) {
    // Queued once per device: the retained ack is a state, so a device that
    // advances again while waiting needs no second ack; flush_acks() publishes
    // its latest prefix.
    if (m_ack_due.insert(device).second)
        m_ack_queue.push_back(device);
}

void IngestService::flush_acks() {
    if (m_ack_queue.empty())
        return;
    const auto now = AckBudget::Clock::now();
    for (auto granted = m_ack_budget.take(now, m_ack_queue.size()); granted > 0; --granted) {
        const std::string device = std::move(m_ack_queue.front());
        m_ack_queue.pop_front();
        m_ack_due.erase(device);
        if (const auto through = m_acks.acknowledged(device))
            publish_ack(device, *through);
    }
    if (m_ack_queue.empty() || m_ack_timer_armed)
        return;
    // Over budget: the rest waits for the bucket, and keeps merging meanwhile.
    m_ack_timer_armed = true;
    m_ack_timer.expires_after(
        std::max(m_ack_budget.until_next(now), AckBudget::Clock::duration(std::chrono::milliseconds(5))));
    m_ack_timer.async_wait([this](const boost::system::error_code& error) {
        if (error)
            return;  // cancelled: the service is going away (restore() re-publishes at the next start)
        m_ack_timer_armed = false;
        flush_acks();
    });
}

std::uint64_t IngestService::first_sequence(std::string_view device) const {
    const EnrolledDevice* enrolled = m_catalog.device(device);
    return enrolled != nullptr ? enrolled->first_sequence : 1;
}

void IngestService::publish_ack(const std::string& device, std::uint64_t sequence) {
    const auto id = devices::DeviceId::parse(device);
    if (!id)
        return;  // stored ids come from parsed topics; cannot happen
    m_link.publish(devices::ack_topic(*id), devices::make_ack_payload(sequence), mqtt::Qos::at_least_once,
                   mqtt::Retain::yes);
    ++m_counters.acks_published;
    if (m_log.enabled(LogLevel::debug))
        m_log.debug(component, "ack " + device + " " + std::to_string(sequence));
}

bool IngestService::over_quota() {
    if (m_settings.quota_bytes == 0)
        return false;
    const auto now = m_clock();
    if (now - m_quota_checked_at >= quota_check_interval || m_quota_reached) {
        m_quota_checked_at = now;
        const bool reached = m_disk_usage() >= m_settings.quota_bytes;
        if (reached && !m_quota_reached)
            m_log.warning(component, "disk quota of " + std::to_string(m_settings.quota_bytes) +
                                         " bytes reached: readings are no longer stored nor acknowledged; devices "
                                         "keep them until space is freed");
        if (!reached && m_quota_reached)
            m_log.notice(component, "below the disk quota again: storing readings");
        m_quota_reached = reached;
    }
    return m_quota_reached;
}

void IngestService::log_once(const std::string& device, const std::string& reason, const std::string& message) {
    if (m_logged.size() >= max_logged_pairs || !m_logged.emplace(device, reason).second)
        return;
    m_log.warning(component, message);
}

}  // namespace cb
