#include "drivers/storage/outbox.hpp"

#include "drivers/storage/reading_store.hpp"

namespace cb::storage {

const char* to_string(OutboxState state) noexcept {
    switch (state) {
        case OutboxState::queued: return "queued";
        case OutboxState::in_flight: return "in_flight";
        case OutboxState::delivered: return "delivered";
        case OutboxState::refused: return "refused";
        case OutboxState::held: return "held";
    }
    return "queued";
}

Result<Outbox> Outbox::open(const std::filesystem::path& path) {
    // The store's opening creates and migrates the file (a no-op when it is current).
    CB_TRY(SqliteReadingStore::open(path));
    auto database = CB_TRY(Database::open(path));
    // Outbox transitions are committed without waiting for the disk (WAL,
    // synchronous=NORMAL): a power cut may only lose the latest marks, so a
    // row goes back to queued or in_flight and is sent again, which the
    // platform's conditional create answers without a second Observation. A
    // crash of the process loses nothing (the WAL is written at commit).
    // Readings themselves are committed with synchronous=FULL by the store.
    CB_TRY(database.execute("PRAGMA synchronous=NORMAL", "configure the outbox connection"));
    CB_TRY(database.execute(wal_checkpoint_pragma, "configure the outbox connection"));
    return Outbox(std::move(database));
}

Result<Statement*> Outbox::cached(std::optional<Statement>& slot, std::string_view sql, std::string_view what) {
    if (!slot)
        slot.emplace(CB_TRY(m_database.prepare(sql, what)));
    slot->reset();
    return &*slot;
}

const char* const Outbox::next_query =
    "SELECT o.reading_id, r.device_id, r.sequence, r.type, r.body, r.patient, o.attempts"
    " FROM outbox o JOIN readings r ON r.id = o.reading_id"
    " WHERE o.state = 'queued' AND o.reading_id > ?1 ORDER BY o.reading_id LIMIT ?2";

Result<std::vector<OutboxItem>> Outbox::next(std::int64_t after_id, std::size_t limit) {
    Statement& query = *CB_TRY(cached(m_next, next_query, "read the outbox"));
    query.bind(1, after_id).bind(2, static_cast<std::int64_t>(limit));
    std::vector<OutboxItem> items;
    while (CB_TRY(query.step()) == Step::row) {
        OutboxItem item;
        item.reading_id = query.column_int64(0);
        item.device_id = query.column_text(1);
        item.sequence = query.column_int64(2);
        item.type = query.column_text(3);
        item.body = query.column_text(4);
        item.patient = query.column_text(5);
        item.attempts = query.column_int64(6);
        items.push_back(std::move(item));
    }
    query.reset();
    return items;
}

Result<void> Outbox::record(std::span<const OutboxTransition> transitions, std::int64_t now_us) {
    if (transitions.empty())
        return {};
    Statement& update = *CB_TRY(
        cached(m_update,
               "UPDATE outbox SET state = ?2, reason = nullif(?3, ''), server_id = coalesce(nullif(?4, ''), server_id),"
               " attempts = attempts + ?5, updated_us = ?6 WHERE reading_id = ?1",
               "update the outbox"));
    auto transaction = CB_TRY(WriteTransaction::begin(m_database, "begin outbox update"));
    for (const auto& transition : transitions) {
        update.reset();
        update.bind(1, transition.reading_id)
            .bind(2, to_string(transition.state))
            .bind(3, transition.reason)
            .bind(4, transition.server_id)
            .bind(5, std::int64_t{transition.attempted ? 1 : 0})
            .bind(6, now_us);
        if (auto stepped = update.step(); !stepped) {
            update.reset();
            return std::move(stepped).error();  // rolled back as `transaction` ends
        }
    }
    update.reset();
    return transaction.commit("commit outbox update");
}

Result<std::int64_t> Outbox::resume_in_flight(std::int64_t now_us) {
    auto update = CB_TRY(m_database.prepare(
        "UPDATE outbox SET state = 'queued', updated_us = ?1 WHERE state = 'in_flight'", "resume in-flight items"));
    update.bind(1, now_us);
    CB_TRY(update.step());
    return m_database.changes();
}

Result<std::int64_t> Outbox::requeue_held(std::string_view patient, std::string_view reason, std::int64_t now_us) {
    auto update =
        CB_TRY(m_database.prepare("UPDATE outbox SET state = 'queued', reason = NULL, updated_us = ?3"
                                  " WHERE state = 'held' AND substr(reason, 1, length(?2)) = ?2"
                                  " AND (?1 = '' OR reading_id IN (SELECT id FROM readings WHERE patient = ?1))",
                                  "queue held items again"));
    update.bind(1, patient).bind(2, reason).bind(3, now_us);
    CB_TRY(update.step());
    return m_database.changes();
}

Result<std::optional<Pairing>> Outbox::pairing(std::string_view patient) {
    Statement& query = *CB_TRY(cached(
        m_pairing,
        "SELECT id_pe, access_token, refresh_token, access_expires_us, paired_us FROM pairings WHERE patient = ?1",
        "read a pairing"));
    query.bind(1, patient);
    if (CB_TRY(query.step()) == Step::done)
        return std::optional<Pairing>{};
    Pairing pairing;
    pairing.patient = std::string(patient);
    pairing.id_pe = query.column_text(0);
    pairing.access_token = query.column_text(1);
    pairing.refresh_token = query.column_text(2);
    pairing.access_expires_us = query.column_int64(3);
    pairing.paired_us = query.column_int64(4);
    query.reset();
    return std::optional<Pairing>(std::move(pairing));
}

Result<void> Outbox::save_pairing(const Pairing& pairing) {
    auto upsert = CB_TRY(m_database.prepare(
        "INSERT INTO pairings (patient, id_pe, access_token, refresh_token, access_expires_us, paired_us)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (patient) DO UPDATE SET id_pe = ?2, access_token = ?3,"
        " refresh_token = ?4, access_expires_us = ?5, paired_us = ?6",
        "save a pairing"));
    upsert.bind(1, pairing.patient)
        .bind(2, pairing.id_pe)
        .bind(3, pairing.access_token)
        .bind(4, pairing.refresh_token)
        .bind(5, pairing.access_expires_us)
        .bind(6, pairing.paired_us);
    CB_TRY(upsert.step());
    return {};
}

Result<std::map<std::string, std::int64_t>> Outbox::counts() {
    auto query = CB_TRY(m_database.prepare(
        "SELECT state, coalesce(reason, ''), count(*) FROM outbox GROUP BY state, reason", "count the outbox"));
    std::map<std::string, std::int64_t> counts;
    while (CB_TRY(query.step()) == Step::row) {
        const std::string state = query.column_text(0);
        const std::string reason = query.column_text(1);
        const std::int64_t n = query.column_int64(2);
        counts[state] += n;
        if ((state == "held" || state == "refused") && !reason.empty()) {
            std::string key = state;
            key += ": ";
            key += reason;
            counts[key] += n;
        }
    }
    return counts;
}

}  // namespace cb::storage
