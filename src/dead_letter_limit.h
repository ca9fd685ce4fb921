/*
 * dead_letter_limit.h -- at most driftlock.dead_letter_rate_limit dead
 * letters per Kafka partition and minute keep their payload
 */
#ifndef DRIFTLOCK_DEAD_LETTER_LIMIT_H
#define DRIFTLOCK_DEAD_LETTER_LIMIT_H

/*
 * Called for each dead letter about to be written, inside its transaction:
 * when its partition has had its share of payloads this minute, sets
 * *payload to NULL and *len to 0, appends the reason to *detail (palloc'd)
 * and counts it in driftlock_dead_letter_payloads_dropped_total.
 */
extern void dead_letter_limit_apply(const char *topic, int32 partition,
									const uint8_t **payload, size_t *len,
									const char **detail);

#endif
