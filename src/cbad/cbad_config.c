/*
 * cbad_config.c -- detector settings: defaults, the documented key table,
 * range checks
 *
 * The defaults were chosen with test/bench/bench_accuracy (see
 * docs/detector.md); change them only with new figures from it.
 */
#include "cbad_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void
cbad_config_default(cbad_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->baseline_size = 256;
	cfg->baseline_bytes = 32768;
	cfg->warmup = 100;
	cfg->calibration_size = 500;
	cfg->alpha = 0.01;
	cfg->learn_threshold = 0.3;
	cfg->rebuild_interval = 64;
	cfg->zstd_level = 3;
	cfg->mask = true;
	cfg->drift_window = 200;
	cfg->drift_threshold = 0.6;
	cfg->drift_novelty = 0.45;
	cfg->max_event_bytes = 65536;
}

static const cbad_key_info keys[] = {
	{"baseline_size", CBAD_KEY_INT, 8, 10000,
	"number of recent normal events kept in the baseline"},
	{"baseline_bytes", CBAD_KEY_INT, 1024, 4194304,
	"number of bytes of recent normal events kept in the baseline (the zstd dictionary)"},
	{"warmup", CBAD_KEY_INT, 2, 10000,
	"number of events seen before verdicts are warm; at least 1/alpha - 1 for anything to be flagged"},
	{"calibration_size", CBAD_KEY_INT, 10, 100000,
	"number of recent scores kept to compute p-values"},
	{"alpha", CBAD_KEY_REAL, 1e-6, 0.5,
	"significance level: an event is anomalous when its p-value is at most alpha"},
	{"learn_threshold", CBAD_KEY_REAL, 0.0, 1.0,
	"p-value above which an event joins the baseline (keeps unusual events out of it)"},
	{"rebuild_interval", CBAD_KEY_INT, 1, 10000,
	"number of normal events accepted between rebuilds of the baseline dictionary"},
	{"zstd_level", CBAD_KEY_INT, 1, CBAD_MAX_ZSTD_LEVEL,
	"zstd compression level used for scoring"},
	{"mask", CBAD_KEY_BOOL, 0, 1,
	"switch that masks volatile tokens (timestamps, long numbers, UUIDs, hex ids, IP addresses) before compressing"},
	{"drift_window", CBAD_KEY_INT, 10, 100000,
	"number of recent events looked at to tell a lasting shift from a burst"},
	{"drift_threshold", CBAD_KEY_REAL, 0.05, 1.0,
	"share of drift_window flagged that is treated as a lasting shift (drift)"},
	{"drift_novelty", CBAD_KEY_REAL, 0.05, 1.5,
	"novelty (0-1) of each of a storm of anomalies relative to the ones before it that is treated as drift; above 1 switches storms off"},
	{"max_event_bytes", CBAD_KEY_INT, 64, 16777216,
	"number of leading bytes of an event that are scored (the rest is ignored)"},
	{NULL, CBAD_KEY_INT, 0, 0, NULL}
};

const cbad_key_info *
cbad_config_keys(void)
{
	return keys;
}

const cbad_key_info *
cbad_config_key(const char *name)
{
	for (const cbad_key_info *k = keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* Address of the field a key sets; the table and the struct must agree. */
static void *
field_of(cbad_config *cfg, const char *name)
{
	if (strcmp(name, "baseline_size") == 0)
		return &cfg->baseline_size;
	if (strcmp(name, "baseline_bytes") == 0)
		return &cfg->baseline_bytes;
	if (strcmp(name, "warmup") == 0)
		return &cfg->warmup;
	if (strcmp(name, "calibration_size") == 0)
		return &cfg->calibration_size;
	if (strcmp(name, "alpha") == 0)
		return &cfg->alpha;
	if (strcmp(name, "learn_threshold") == 0)
		return &cfg->learn_threshold;
	if (strcmp(name, "rebuild_interval") == 0)
		return &cfg->rebuild_interval;
	if (strcmp(name, "zstd_level") == 0)
		return &cfg->zstd_level;
	if (strcmp(name, "mask") == 0)
		return &cfg->mask;
	if (strcmp(name, "drift_window") == 0)
		return &cfg->drift_window;
	if (strcmp(name, "drift_threshold") == 0)
		return &cfg->drift_threshold;
	if (strcmp(name, "drift_novelty") == 0)
		return &cfg->drift_novelty;
	if (strcmp(name, "max_event_bytes") == 0)
		return &cfg->max_event_bytes;
	return NULL;
}

cbad_status
cbad_config_set_number(cbad_config *cfg, const cbad_key_info *key,
					   double value, char *err, size_t errlen)
{
	void	   *field = field_of(cfg, key->name);

	if (field == NULL || key->type == CBAD_KEY_BOOL)
	{
		snprintf(err, errlen, "Setting \"%s\" takes a boolean, not a number.", key->name);
		return CBAD_EINVAL;
	}
	if (!isfinite(value) || value < key->min || value > key->max)
	{
		if (key->type == CBAD_KEY_INT)
			snprintf(err, errlen, "Setting \"%s\" must be between %.0f and %.0f.",
					 key->name, key->min, key->max);
		else
			snprintf(err, errlen, "Setting \"%s\" must be between %g and %g.",
					 key->name, key->min, key->max);
		return CBAD_EINVAL;
	}
	if (key->type == CBAD_KEY_INT)
	{
		if (value != floor(value))
		{
			snprintf(err, errlen, "Setting \"%s\" must be a whole number.", key->name);
			return CBAD_EINVAL;
		}
		*(int *) field = (int) value;
	}
	else
		*(double *) field = value;
	return CBAD_OK;
}

cbad_status
cbad_config_set_bool(cbad_config *cfg, const cbad_key_info *key, bool value,
					 char *err, size_t errlen)
{
	void	   *field = field_of(cfg, key->name);

	if (field == NULL || key->type != CBAD_KEY_BOOL)
	{
		snprintf(err, errlen, "Setting \"%s\" takes a number, not a boolean.", key->name);
		return CBAD_EINVAL;
	}
	*(bool *) field = value;
	return CBAD_OK;
}

cbad_status
cbad_config_validate(const cbad_config *cfg, char *err, size_t errlen)
{
	/* Every field within its documented range (catches hand-built configs). */
	for (const cbad_key_info *k = keys; k->name; k++)
	{
		const void *field = field_of((cbad_config *) cfg, k->name);
		double		v;

		if (k->type == CBAD_KEY_BOOL)
			continue;
		v = k->type == CBAD_KEY_INT ? (double) *(const int *) field : *(const double *) field;
		if (!(v >= k->min && v <= k->max))
		{
			snprintf(err, errlen, "Setting \"%s\" must be between %g and %g.",
					 k->name, k->min, k->max);
			return CBAD_EINVAL;
		}
	}
	if (cfg->warmup > cfg->baseline_size)
	{
		snprintf(err, errlen,
				 "Setting \"warmup\" (%d) must not exceed \"baseline_size\" (%d), because warm-up events form the first baseline.",
				 cfg->warmup, cfg->baseline_size);
		return CBAD_EINVAL;
	}
	if (cfg->learn_threshold < cfg->alpha)
	{
		snprintf(err, errlen,
				 "Setting \"learn_threshold\" (%g) must not be below \"alpha\" (%g), or flagged events would be learnt.",
				 cfg->learn_threshold, cfg->alpha);
		return CBAD_EINVAL;
	}
	if (cfg->warmup > cfg->calibration_size)
	{
		snprintf(err, errlen,
				 "Setting \"warmup\" (%d) must not exceed \"calibration_size\" (%d), because warm-up events seed the calibration.",
				 cfg->warmup, cfg->calibration_size);
		return CBAD_EINVAL;
	}
	return CBAD_OK;
}

bool
cbad_config_equal(const cbad_config *a, const cbad_config *b)
{
	return a->baseline_size == b->baseline_size &&
		a->baseline_bytes == b->baseline_bytes &&
		a->warmup == b->warmup &&
		a->calibration_size == b->calibration_size &&
		a->alpha == b->alpha &&
		a->learn_threshold == b->learn_threshold &&
		a->rebuild_interval == b->rebuild_interval &&
		a->zstd_level == b->zstd_level &&
		a->mask == b->mask &&
		a->drift_window == b->drift_window &&
		a->drift_threshold == b->drift_threshold &&
		a->drift_novelty == b->drift_novelty &&
		a->max_event_bytes == b->max_event_bytes;
}

const char *
cbad_status_message(cbad_status status)
{
	switch (status)
	{
		case CBAD_OK:
			return "success";
		case CBAD_ENOMEM:
			return "out of memory";
		case CBAD_EINVAL:
			return "invalid argument";
		case CBAD_ECORRUPT:
			return "detector state is damaged or was written by an incompatible version";
		case CBAD_EZSTD:
			return "zstd compression failed";
	}
	return "unknown error";
}
