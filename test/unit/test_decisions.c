/*
 * test_decisions.c -- unit tests of the detector's decisions: patterns,
 * the calibration's tail, recurring anomalies, exemplars, drift storms and
 * settling, and version 1 states
 *
 * Run with "make unit".  Prints one line per failed check and ends with
 * "N passed, M failed".
 */
#include "cbad/cbad.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "state_v1.h"
#include "../bench/bench_common.h"

#define EV_CAP 1024

static cbad_detector *
new_detector(const cbad_config *cfg)
{
	cbad_detector *det = NULL;

	CHECK_INT(cbad_detector_create(cfg, NULL, &det), ==, CBAD_OK);
	return det;
}

static bool
observe(cbad_detector *det, const char *event, size_t len, cbad_verdict *v)
{
	cbad_status st = cbad_detector_observe(det, (const uint8_t *) event, len, v);

	CHECK_INT(st, ==, CBAD_OK);
	return st == CBAD_OK;
}

/* ------------------------------------------------------------------------
 * 1. The pattern of an event
 * ------------------------------------------------------------------------ */
static void
check_pattern(const char *event, const char *expected, int line)
{
	char		text[CBAD_PATTERN_TEXT_MAX];
	uint64_t	id = cbad_pattern_of((const uint8_t *) event, strlen(event), text, sizeof(text));
	uint64_t	again = cbad_pattern_of((const uint8_t *) event, strlen(event), NULL, 0);

	CHECK_MSG(strcmp(text, expected) == 0, "line %d: pattern of \"%s\" is \"%s\", expected \"%s\"",
			  line, event, text, expected);
	CHECK_MSG(id == again && id > 0 && id <= INT64_MAX,
			  "line %d: id %llu, without text %llu", line, (unsigned long long) id,
			  (unsigned long long) again);
}

static void
test_patterns(void)
{
	char		text[CBAD_PATTERN_TEXT_MAX];
	char		small[8];
	char		longer[600];
	uint64_t	a,
				b;

	check_pattern("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown",
				  "combo sshd pam_unix check pass user unknown", __LINE__);
	check_pattern("{\"ts\":\"2026-11-03T04:05:06Z\",\"service\":\"auth\",\"msg\":\"token expired\"}",
				  "ts service auth msg token expired", __LINE__);
	/*
	 * hex ids of 8+ with a digit are one "x"; ids that masking replaced too;
	 * a token left without two letters of its own in a row is left out
	 */
	check_pattern("block blk_-1608999687919862906 replica 0a1b2c3d4e5f from deadbeef",
				  "block blk_-x replica from deadbeef", __LINE__);
	check_pattern("session xxxxxxxx-xxxx closed", "session closed", __LINE__);
	check_pattern("exit 3 after 12.5s code e4 user u2042 on sda1", "exit after code user on sda0", __LINE__);
	/* months and days, any case, short or long, are left out like numbers */
	check_pattern("at Wed Jun 22 13:16:30 2005 on MONDAY or in september",
				  "at on or in", __LINE__);
	/* unless the event has nothing else */
	check_pattern("2005-06-22 13:16:30 Jun", "0-0-0 0:0:0 D", __LINE__);
	/* only the first 12 tokens; lone punctuation is no token */
	check_pattern("a b c - d e f : g h i j k l m n o", "a b c d e f g h i j k l", __LINE__);
	/* non-ASCII and control bytes show as '?' */
	check_pattern("caf\xc3\xa9 \x01xy\x7f", "caf?? xy", __LINE__);
	check_pattern("", "", __LINE__);

	/* a token is cut at 32 bytes */
	memset(longer, 'q', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	cbad_pattern_of((const uint8_t *) longer, strlen(longer), text, sizeof(text));
	CHECK_INT(strlen(text), ==, 32);
	/* the text is cut to the buffer, the id is not */
	a = cbad_pattern_of((const uint8_t *) "alpha beta gamma", 16, small, sizeof(small));
	b = cbad_pattern_of((const uint8_t *) "alpha beta gamma", 16, NULL, 0);
	CHECK(strcmp(small, "alpha b") == 0);
	CHECK(a == b);

	/* events of one kind share a pattern; other kinds do not */
	a = cbad_pattern_of((const uint8_t *) "GET /api/v1/items/123 200 12ms", 30, NULL, 0);
	b = cbad_pattern_of((const uint8_t *) "GET /api/v1/items/98765 200 7ms", 31, NULL, 0);
	CHECK(a == b);
	b = cbad_pattern_of((const uint8_t *) "POST /api/v1/items/123 500 12ms", 31, NULL, 0);
	CHECK(a != b);

	/*
	 * Pattern ids are stored (driftlock.anomalies, incidents, suppressions):
	 * the hash must never change between versions.
	 */
	CHECK_INT(cbad_pattern_of((const uint8_t *) "check pass; user unknown", 24, NULL, 0), ==,
			  INT64_C(508175421974661899));
}

/* ------------------------------------------------------------------------
 * 2. The calibration's tail
 * ------------------------------------------------------------------------ */
static void
test_tail(void)
{
	cbad_config cfg;
	cbad_detector *det;
	const uint8_t *ev[300];
	size_t		lens[300];
	char		bufs[300][EV_CAP];
	uint64_t	rng = 3;
	cbad_verdict prev = {0};
	double		last_p = 1;
	int			increasing = 0;

	cbad_config_default(&cfg);
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	for (int i = 0; i < 300; i++)
	{
		lens[i] = synthetic_event(&rng, (uint64_t) i, bufs[i], EV_CAP);
		ev[i] = (const uint8_t *) bufs[i];
	}
	CHECK_INT(cbad_detector_fit(det, ev, lens, 300), ==, CBAD_OK);

	/*
	 * The p-value falls as the event is more unexplained, continuously,
	 * into the tail: events made of more and more random bytes.
	 */
	for (int k = 0; k <= 200; k += 10)
	{
		char		e[EV_CAP];
		size_t		len = synthetic_event(&rng, 500, e, sizeof(e));
		cbad_verdict v;

		for (int j = 0; j < k && j < (int) len; j++)
			e[j] = (char) ('!' + bench_rand(&rng) % 90);
		CHECK_INT(cbad_detector_score(det, (const uint8_t *) e, len, &v), ==, CBAD_OK);
		CHECK(v.p_value > 0 && v.p_value <= 1);
		if (k > 0 && v.ncd > prev.ncd)
			increasing += v.p_value <= last_p;
		prev = v;
		last_p = v.p_value;
	}
	CHECK_MSG(increasing >= 15, "p-value fell with a higher ncd only %d times of 20", increasing);
	CHECK_DBL(last_p, <, 1e-3);
	cbad_detector_free(det);
}

/* ------------------------------------------------------------------------
 * 3. Recurring anomalies stay anomalous
 * ------------------------------------------------------------------------ */

/*
 * A stream with 3% anomalies of three recurring kinds, isolated: every
 * occurrence must be flagged, the last ones as much as the first (a
 * calibration that let them in would soon stop flagging them), and few
 * normal events.
 */
static void
test_recurring(void)
{
	cbad_detector *det;
	cbad_config cfg;
	uint64_t	rng = 23;
	int			since = 0,
				anomalies[2] = {0, 0},
				caught[2] = {0, 0},
				normal = 0,
				false_alarms = 0,
				repeats = 0;
	char		e[EV_CAP];

	cbad_config_default(&cfg);
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	for (int i = 0; i < 8000; i++)
	{
		bool		anomalous = i >= cfg.warmup && since >= 5 && bench_rand(&rng) % 28 == 0;
		size_t		len = anomalous ? synthetic_anomaly(&rng, (uint64_t) i, (int) (bench_rand(&rng) % 3), e, sizeof(e))
			: synthetic_event(&rng, (uint64_t) i, e, sizeof(e));
		cbad_verdict v;

		if (!observe(det, e, len, &v))
			break;
		since = anomalous ? 0 : since + 1;
		if (!v.warm)
			continue;
		if (anomalous)
		{
			anomalies[i >= 4000]++;
			caught[i >= 4000] += v.is_anomaly;
			repeats += v.pattern_status == CBAD_PATTERN_REPEAT;
			CHECK(v.drift == CBAD_DRIFT_NONE);
		}
		else
		{
			normal++;
			false_alarms += v.is_anomaly;
		}
	}
	for (int half = 0; half < 2; half++)
		CHECK_MSG(caught[half] >= 0.9 * anomalies[half], "half %d: %d of %d recurring anomalies flagged",
				  half + 1, caught[half], anomalies[half]);
	CHECK_MSG(false_alarms <= 0.01 * normal, "%d false alarms in %d normal events", false_alarms, normal);
	/* two of the kinds have patterns of their own, never learnt: repeats */
	CHECK_MSG(repeats >= (anomalies[0] + anomalies[1]) / 2, "only %d repeats among %d anomalies",
			  repeats, anomalies[0] + anomalies[1]);
	cbad_detector_free(det);
}

/* ------------------------------------------------------------------------
 * 4. Pattern status, counts and exemplars
 * ------------------------------------------------------------------------ */

/* A message of its own, normal but rare. */
static size_t
rare_event(uint64_t seq, char *buf, size_t cap)
{
	return (size_t) snprintf(buf, cap,
							 "{\"ts\":\"2026-11-02T03:%02d:%02dZ\",\"service\":\"backup\",\"level\":\"info\","
							 "\"msg\":\"nightly snapshot uploaded to cold storage\",\"bytes\":%llu}",
							 (int) (seq / 60 % 60), (int) (seq % 60),
							 (unsigned long long) (1000000 + seq * 7));
}

static void
test_pattern_status(void)
{
	cbad_config cfg;
	cbad_detector *det;
	uint64_t	rng = 31;
	char		e[EV_CAP];
	cbad_verdict v;
	const char *failure = "{\"service\":\"payments\",\"level\":\"error\",\"msg\":\"ledger checksum mismatch, refusing writes\"}";
	uint64_t	first = 0;

	cbad_config_default(&cfg);
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	for (int i = 0; i < 300; i++)
		observe(det, e, synthetic_event(&rng, (uint64_t) i, e, sizeof(e)), &v);

	/* new, then a repeat with its count and first event, never learnt */
	for (int k = 1; k <= 3; k++)
	{
		observe(det, failure, strlen(failure), &v);
		CHECK(v.is_anomaly);
		CHECK_INT(v.pattern_status, ==, k == 1 ? CBAD_PATTERN_NEW : CBAD_PATTERN_REPEAT);
		CHECK_INT(v.pattern_count, ==, k);
		if (k == 1)
			first = v.event_number;
		CHECK_INT(v.pattern_first_event, ==, first);
		for (int i = 0; i < 10; i++)
			observe(det, e, synthetic_event(&rng, (uint64_t) (400 + 10 * k + i), e, sizeof(e)), &v);
	}
	/* a normal event's pattern is known once learnt */
	observe(det, e, synthetic_event(&rng, 999, e, sizeof(e)), &v);
	CHECK_INT(v.pattern_status, ==, CBAD_PATTERN_KNOWN);

	cbad_detector_free(det);

	/*
	 * Exemplars: a rare normal message, learnt during warm-up, is still
	 * known and explained after far more than baseline_size newer events
	 * pushed it out of the baseline.
	 */
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	{
		cbad_detector *fresh;
		cbad_verdict later,
					unknown;
		size_t		len;

		for (int i = 0; i < 3000; i++)
		{
			len = i == 50 ? rare_event((uint64_t) i, e, sizeof(e))
				: synthetic_event(&rng, (uint64_t) i, e, sizeof(e));
			observe(det, e, len, &v);
		}
		len = rare_event(77, e, sizeof(e));
		CHECK_INT(cbad_detector_score(det, (const uint8_t *) e, len, &later), ==, CBAD_OK);
		CHECK_INT(later.pattern_status, ==, CBAD_PATTERN_KNOWN);
		CHECK_INT(later.pattern_first_event, ==, 51);
		CHECK(!later.is_anomaly);

		/* a detector that never saw it finds it new and unexplained */
		fresh = new_detector(&cfg);
		if (fresh != NULL)
		{
			for (int i = 0; i < 600; i++)
				observe(fresh, e, synthetic_event(&rng, (uint64_t) (9000 + i), e, sizeof(e)), &v);
			len = rare_event(77, e, sizeof(e));
			CHECK_INT(cbad_detector_score(fresh, (const uint8_t *) e, len, &unknown), ==, CBAD_OK);
			CHECK_INT(unknown.pattern_status, ==, CBAD_PATTERN_NEW);
			CHECK(unknown.is_anomaly);
			CHECK_MSG(later.ncd < 0.5 * unknown.ncd, "ncd with the exemplar %.3f, without %.3f",
					  later.ncd, unknown.ncd);
			cbad_detector_free(fresh);
		}
	}
	cbad_detector_free(det);
}

/* ------------------------------------------------------------------------
 * 5. Drift: a storm of new messages, then settling
 * ------------------------------------------------------------------------ */

/* A service restarting: every line a message of its own. */
static size_t
restart_event(uint64_t *rng, int i, char *buf, size_t cap)
{
	static const char *const words[] = {
		"loading", "module", "kernel", "mounted", "filesystem", "interface", "listening",
		"registered", "cache", "warmed", "shard", "replica", "election", "leader", "follower",
		"snapshot", "restored", "schema", "migrated", "plugin", "driver", "probe", "firmware"
	};
	int			n = 0;

	n += snprintf(buf + n, cap - (size_t) n, "boot[%d]: %s", i,
				  words[bench_rand(rng) % (sizeof(words) / sizeof(words[0]))]);
	for (int k = 0; k < 6; k++)
		n += snprintf(buf + n, cap - (size_t) n, " %s%c%c",
					  words[bench_rand(rng) % (sizeof(words) / sizeof(words[0]))],
					  (char) ('a' + bench_rand(rng) % 26), (char) ('a' + bench_rand(rng) % 26));
	return (size_t) n;
}

static void
test_storm(void)
{
	cbad_config cfg;
	cbad_detector *det;
	uint64_t	rng = 41;
	char		e[EV_CAP];
	cbad_verdict v;
	int			storm_at = -1,
				flagged_settling = 0,
				settling = 0,
				first_warm = -1;

	cbad_config_default(&cfg);
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	for (int i = 0; i < 400; i++)
		observe(det, e, synthetic_event(&rng, (uint64_t) i, e, sizeof(e)), &v);
	for (int i = 0; i < 300 && first_warm < 0; i++)
	{
		size_t		len = restart_event(&rng, i, e, sizeof(e));

		if (!observe(det, e, len, &v))
			break;
		if (v.drift != CBAD_DRIFT_NONE && storm_at < 0)
		{
			char		text[4096];

			storm_at = i;
			CHECK_INT(v.drift, ==, CBAD_DRIFT_STORM);
			cbad_explain(det, (const uint8_t *) e, len, &v, text, sizeof(text));
			CHECK_MSG(strstr(text, "Drift: half of the last 20") != NULL, "explanation: %s", text);
			continue;
		}
		if (storm_at >= 0 && !v.warm)
		{
			settling++;
			flagged_settling += v.is_anomaly;
			CHECK(v.has_calibration);
			CHECK_INT(v.warmup_left, ==, (uint64_t) cfg.warmup - (uint64_t) (i - storm_at) + 1);
		}
		if (storm_at >= 0 && v.warm)
			first_warm = i;
	}
	CHECK_MSG(storm_at >= 9 && storm_at < 40, "storm recognised after %d events", storm_at);
	CHECK_INT(settling, ==, cfg.warmup);
	CHECK_INT(flagged_settling, ==, 0);
	CHECK_MSG(first_warm == storm_at + cfg.warmup + 1, "warm again at %d (storm at %d)", first_warm, storm_at);
	cbad_detector_free(det);

	/* drift_novelty above 1 switches storms off: the same stream is flagged on */
	cfg.drift_novelty = 1.5;
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	rng = 41;
	for (int i = 0; i < 400; i++)
		observe(det, e, synthetic_event(&rng, (uint64_t) i, e, sizeof(e)), &v);
	{
		int			flagged = 0;

		for (int i = 0; i < 100; i++)
		{
			observe(det, e, restart_event(&rng, i, e, sizeof(e)), &v);
			CHECK(v.drift == CBAD_DRIFT_NONE);
			flagged += v.is_anomaly;
		}
		CHECK_MSG(flagged >= 90, "only %d of 100 restart lines flagged without storms", flagged);
	}
	cbad_detector_free(det);
}

/* ------------------------------------------------------------------------
 * 6. Save and restore through all of it
 * ------------------------------------------------------------------------ */

/* Serialise, restore, and check both go on identically for n events. */
static void
check_continues(cbad_detector *det, uint64_t seed, int n, const char *what)
{
	uint8_t    *data = NULL,
			   *again = NULL;
	size_t		len = 0,
				again_len = 0;
	cbad_detector *copy = NULL;
	uint64_t	r1 = seed,
				r2 = seed;
	int			mismatches = 0;

	CHECK_INT(cbad_detector_serialize(det, &data, &len), ==, CBAD_OK);
	CHECK_INT(cbad_detector_deserialize(data, len, NULL, &copy), ==, CBAD_OK);
	if (copy == NULL)
		return;
	CHECK_INT(cbad_detector_serialize(copy, &again, &again_len), ==, CBAD_OK);
	CHECK_MSG(again_len == len && memcmp(again, data, len) == 0, "%s: re-serialised state differs", what);
	for (int i = 0; i < n; i++)
	{
		char		e1[EV_CAP],
					e2[EV_CAP];
		size_t		l1 = i % 3 == 0 ? restart_event(&r1, i, e1, sizeof(e1)) : synthetic_event(&r1, (uint64_t) i, e1, sizeof(e1));
		size_t		l2 = i % 3 == 0 ? restart_event(&r2, i, e2, sizeof(e2)) : synthetic_event(&r2, (uint64_t) i, e2, sizeof(e2));
		cbad_verdict v1,
					v2;

		observe(det, e1, l1, &v1);
		observe(copy, e2, l2, &v2);
		if (memcmp(&v1.p_value, &v2.p_value, sizeof(double)) != 0 || v1.ncd != v2.ncd ||
			v1.is_anomaly != v2.is_anomaly || v1.pattern_id != v2.pattern_id ||
			v1.pattern_status != v2.pattern_status || v1.pattern_count != v2.pattern_count ||
			v1.warm != v2.warm || v1.drift != v2.drift || v1.warmup_left != v2.warmup_left)
			mismatches++;
	}
	CHECK_MSG(mismatches == 0, "%s: %d of %d verdicts differ after a restore", what, mismatches, n);
	cbad_buffer_free(det, data);
	cbad_buffer_free(copy, again);
	cbad_detector_free(copy);
}

static void
test_round_trips(void)
{
	cbad_config cfg;
	cbad_detector *det;
	uint64_t	rng = 5;
	char		e[EV_CAP];
	cbad_verdict v;
	bool		settling_checked = false;

	cbad_config_default(&cfg);
	det = new_detector(&cfg);
	if (det == NULL)
		return;
	check_continues(det, 1, 150, "fresh, through warm-up");
	for (int i = 0; i < 600; i++)
		observe(det, e, synthetic_event(&rng, (uint64_t) i, e, sizeof(e)), &v);
	/* with exemplars in the dictionary, recurring anomalies and rare normals */
	for (int round = 0; round < 4; round++)
	{
		observe(det, e, rare_event((uint64_t) round, e, sizeof(e)), &v);
		for (int i = 0; i < 400; i++)
		{
			size_t		len = i % 37 == 0 ? synthetic_anomaly(&rng, (uint64_t) i, i % 3, e, sizeof(e))
				: synthetic_event(&rng, (uint64_t) (1000 + round * 400 + i), e, sizeof(e));

			observe(det, e, len, &v);
		}
	}
	check_continues(det, 2, 400, "with exemplars and recurring anomalies");
	/* into a storm, and while settling after it */
	for (int i = 0; i < 200 && !settling_checked; i++)
	{
		observe(det, e, restart_event(&rng, i, e, sizeof(e)), &v);
		if (!v.warm && v.warmup_left < (uint64_t) cfg.warmup - 5)
		{
			check_continues(det, 3, 300, "settling after a storm");
			settling_checked = true;
		}
	}
	CHECK(settling_checked);
	cbad_detector_free(det);
}

/* ------------------------------------------------------------------------
 * 7. Version 1 states (driftlock 0.1.0) are converted
 * ------------------------------------------------------------------------ */
static void
test_state_v1(void)
{
	cbad_detector *det = NULL;
	cbad_stats	st;
	uint8_t    *data = NULL;
	size_t		len = 0;
	uint64_t	rng = 77;
	char		e[EV_CAP];
	cbad_verdict v;
	int			flagged = 0;
	const char *failure = "{\"level\":\"fatal\",\"msg\":\"ledger checksum mismatch, refusing writes\",\"shard\":17}";

	CHECK_INT(cbad_detector_deserialize(state_v1, sizeof(state_v1) - 1, NULL, &det), ==, CBAD_OK);
	if (det == NULL)
		return;
	cbad_detector_stats(det, &st);
	CHECK_INT(st.events, ==, 60);
	CHECK_INT(st.anomalies, ==, 8);
	CHECK_INT(st.baseline_events, ==, 10);
	CHECK_INT(st.calibration_events, ==, 20);
	CHECK_DBL(cbad_detector_config(det)->drift_novelty, ==, 0.45);
	CHECK_DBL(cbad_detector_config(det)->alpha, ==, 0.1);

	/* it goes on judging, and its new state is version 3 */
	for (int i = 60; i < 160; i++)
	{
		size_t		n = synthetic_event(&rng, (uint64_t) i, e, sizeof(e));

		observe(det, e, n, &v);
		CHECK(v.warm);
		CHECK_INT(v.event_number, ==, (uint64_t) i + 1);
	}
	observe(det, failure, strlen(failure), &v);
	flagged += v.is_anomaly;
	CHECK_INT(flagged, ==, 1);
	CHECK_INT(cbad_detector_serialize(det, &data, &len), ==, CBAD_OK);
	CHECK(data != NULL && len > 8 && data[6] == 3 && data[7] == 0);
	cbad_buffer_free(det, data);
	check_continues(det, 9, 200, "converted from version 1");
	cbad_detector_free(det);

	/* a damaged version 1 state is refused like any other */
	{
		unsigned char bad[sizeof(state_v1)];

		memcpy(bad, state_v1, sizeof(state_v1));
		bad[100] ^= 0x10;
		CHECK_INT(cbad_detector_deserialize(bad, sizeof(state_v1) - 1, NULL, &det), ==, CBAD_ECORRUPT);
		CHECK(det == NULL);
	}
}

int
main(void)
{
	test_patterns();
	test_tail();
	test_recurring();
	test_pattern_status();
	test_storm();
	test_round_trips();
	test_state_v1();
	return UNIT_REPORT();
}
