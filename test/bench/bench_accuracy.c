/*
 * bench_accuracy.c -- detector accuracy on labelled data, at the defaults
 *
 *   test/bench/bench_accuracy [DATA_DIR] [key=value ...]
 *
 * DATA_DIR defaults to ../shared/data; data sets that are absent are skipped
 * with a message.  Labels are only used to score the results: the detector
 * sees the events alone, in file order.  key=value pairs override detector
 * settings (for exploring; the figures in the README use the defaults).
 */
#include "cbad/cbad.h"
#include "bench_common.h"

#include <math.h>

typedef struct sample
{
	double		score;
	int			label;			/* 1 = anomaly */
	int			flagged;
} sample;

/* Best F1 over all score thresholds: how good the ranking is, not the rule. */
static double best_f1;

static int
by_score_desc(const void *a, const void *b)
{
	double		x = ((const sample *) a)->score,
				y = ((const sample *) b)->score;

	return (x < y) - (x > y);
}

/* ROC-AUC with ties counted half, and average precision (PR-AUC). */
static void
ranking_metrics(sample *s, size_t n, double *roc, double *pr)
{
	size_t		pos = 0,
				neg = 0,
				tp = 0,
				fp = 0;
	double		auc = 0,
				ap = 0;

	best_f1 = 0;

	for (size_t i = 0; i < n; i++)
		s[i].label ? pos++ : neg++;
	qsort(s, n, sizeof(*s), by_score_desc);
	for (size_t i = 0; i < n;)
	{
		size_t		j = i,
					tp_tie = 0,
					fp_tie = 0;

		while (j < n && s[j].score == s[i].score)
		{
			s[j].label ? tp_tie++ : fp_tie++;
			j++;
		}
		auc += (double) fp_tie * ((double) tp + tp_tie / 2.0);
		tp += tp_tie;
		fp += fp_tie;
		{
			double		pr_ = (double) tp / (double) (tp + fp),
						rc_ = pos ? (double) tp / (double) pos : 0;

			if (pr_ + rc_ > 0 && 2 * pr_ * rc_ / (pr_ + rc_) > best_f1)
				best_f1 = 2 * pr_ * rc_ / (pr_ + rc_);
		}
		if (tp_tie)
			ap += (double) tp_tie / (double) pos * ((double) tp / (double) (tp + fp));
		i = j;
	}
	*roc = (pos && neg) ? auc / ((double) pos * neg) : NAN;
	*pr = pos ? ap : NAN;
}

static void
report(const char *name, sample *s, size_t n)
{
	size_t		tp = 0,
				fp = 0,
				fn = 0,
				normal = 0;
	double		roc,
				pr,
				precision,
				recall;

	for (size_t i = 0; i < n; i++)
	{
		if (s[i].label)
			s[i].flagged ? tp++ : fn++;
		else
		{
			normal++;
			fp += s[i].flagged;
		}
	}
	ranking_metrics(s, n, &roc, &pr);
	precision = tp + fp ? (double) tp / (double) (tp + fp) : 0;
	recall = tp + fn ? (double) tp / (double) (tp + fn) : 0;
	printf("%-34s events %5zu anomalies %4zu | ROC-AUC %.3f PR-AUC %.3f | precision %.3f recall %.3f F1 %.3f | "
		   "false alarms %zu (%.1f per 1000 normal) | best F1 over thresholds %.3f\n",
		   name, n, tp + fn, roc, pr, precision, recall,
		   precision + recall ? 2 * precision * recall / (precision + recall) : 0,
		   fp, normal ? 1000.0 * fp / normal : 0, best_f1);
}

static cbad_config cfg;

static cbad_detector *
new_detector(void)
{
	cbad_detector *det;

	if (cbad_detector_create(&cfg, NULL, &det) != CBAD_OK)
	{
		fprintf(stderr, "cannot create detector\n");
		exit(2);
	}
	return det;
}

/* Feed events; keep the samples from index `from` on. */
static size_t
run(char **ev, size_t *len, int *label, size_t n, size_t from, sample *out)
{
	cbad_detector *det = new_detector();
	size_t		k = 0;

	for (size_t i = 0; i < n; i++)
	{
		cbad_verdict v;

		if (cbad_detector_observe(det, (const uint8_t *) ev[i], len[i], &v) != CBAD_OK)
		{
			fprintf(stderr, "observe failed\n");
			exit(2);
		}
		if (i >= from)
		{
			out[k].score = v.score;
			out[k].label = label[i];
			out[k].flagged = v.is_anomaly;
			k++;
		}
	}
	cbad_detector_free(det);
	return k;
}

static void
bench_bgl(const char *dir)
{
	char		path[4096];
	lines		l;
	int		   *label;
	char	  **ev;
	size_t	   *len;
	sample	   *s;
	size_t		n;

	snprintf(path, sizeof(path), "%s/BGL_2k.log", dir);
	if (!lines_read(path, &l))
	{
		printf("BGL_2k.log: skipped (%s not found)\n", path);
		return;
	}
	label = calloc(l.n, sizeof(int));
	ev = calloc(l.n, sizeof(char *));
	len = calloc(l.n, sizeof(size_t));
	s = calloc(l.n, sizeof(sample));
	for (size_t i = 0; i < l.n; i++)
	{
		char	   *sp = strchr(l.line[i], ' ');

		/* the first token is the label: "-" normal, anything else an alert */
		label[i] = !(l.line[i][0] == '-' && l.line[i][1] == ' ');
		ev[i] = sp ? sp + 1 : l.line[i] + l.len[i];
		len[i] = l.len[i] - (size_t) (ev[i] - l.line[i]);
	}
	n = run(ev, len, label, l.n, 100, s);
	report("BGL_2k (lines 101-2000)", s, n);
	free(label);
	free(ev);
	free(len);
	free(s);
	lines_free(&l);
}

static void
bench_transactions(const char *dir)
{
	char		path[4096];
	lines		normal,
				anom;
	size_t		n;
	char	  **ev;
	size_t	   *len;
	int		   *label;
	sample	   *s;
	size_t		k;

	snprintf(path, sizeof(path), "%s/driftlock-normal-transactions.jsonl", dir);
	if (!lines_read(path, &normal))
	{
		printf("transactions: skipped (%s not found)\n", path);
		return;
	}
	snprintf(path, sizeof(path), "%s/driftlock-anomalous-transactions.jsonl", dir);
	if (!lines_read(path, &anom))
	{
		printf("transactions: skipped (%s not found)\n", path);
		lines_free(&normal);
		return;
	}
	n = normal.n + anom.n;
	ev = calloc(n, sizeof(char *));
	len = calloc(n, sizeof(size_t));
	label = calloc(n, sizeof(int));
	s = calloc(n, sizeof(sample));

	/* 1: all normal events, then the anomalies as one burst */
	for (size_t i = 0; i < n; i++)
	{
		lines	   *src = i < normal.n ? &normal : &anom;
		size_t		j = i < normal.n ? i : i - normal.n;

		ev[i] = src->line[j];
		len[i] = src->len[j];
		label[i] = i >= normal.n;
	}
	k = run(ev, len, label, n, (size_t) cfg.warmup, s);
	report("transactions, burst of 100", s, k);

	/*
	 * 2: the first 300 normal events, then the other 200 with the anomalies
	 * scattered among them in groups of 1 to 4 (a fixed, seeded pattern).
	 */
	{
		uint64_t	rng = 42;
		size_t		ni = 0,
					ai = 0,
					o = 0;

		while (ni < 300)
		{
			ev[o] = normal.line[ni];
			len[o] = normal.len[ni];
			label[o++] = 0;
			ni++;
		}
		while (ni < normal.n || ai < anom.n)
		{
			size_t		gap = 1 + bench_rand(&rng) % 3;
			size_t		group = 1 + bench_rand(&rng) % 4;

			for (size_t g = 0; g < gap && ni < normal.n; g++, ni++)
			{
				ev[o] = normal.line[ni];
				len[o] = normal.len[ni];
				label[o++] = 0;
			}
			for (size_t g = 0; g < group && ai < anom.n; g++, ai++)
			{
				ev[o] = anom.line[ai];
				len[o] = anom.len[ai];
				label[o++] = 1;
			}
		}
		k = run(ev, len, label, n, (size_t) cfg.warmup, s);
		report("transactions, scattered groups", s, k);
	}
	free(ev);
	free(len);
	free(label);
	free(s);
	lines_free(&normal);
	lines_free(&anom);
}

/* On a long normal synthetic stream the share flagged should be about alpha. */
static void
bench_calibration(void)
{
	cbad_detector *det = new_detector();
	uint64_t	rng = 7;
	char		buf[512];
	size_t		flagged = 0,
				warm = 0;
	const size_t n = 50000;

	for (size_t i = 0; i < n; i++)
	{
		size_t		len = synthetic_event(&rng, i, buf, sizeof(buf));
		cbad_verdict v;

		cbad_detector_observe(det, (const uint8_t *) buf, len, &v);
		if (v.warm)
		{
			warm++;
			flagged += v.is_anomaly;
		}
	}
	printf("calibration, synthetic normal    events %zu warm %zu | flagged %zu = %.4f at alpha %.4f (%.2fx alpha)\n",
		   n, warm, flagged, (double) flagged / warm, cfg.alpha, (double) flagged / warm / cfg.alpha);
	cbad_detector_free(det);
}

int
main(int argc, char **argv)
{
	const char *dir = "../shared/data";
	char		err[256];

	cbad_config_default(&cfg);
	for (int i = 1; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');

		if (eq == NULL)
		{
			dir = argv[i];
			continue;
		}
		*eq = '\0';
		{
			const cbad_key_info *key = cbad_config_key(argv[i]);

			if (key == NULL ||
				(key->type == CBAD_KEY_BOOL
				 ? cbad_config_set_bool(&cfg, key, strcmp(eq + 1, "true") == 0, err, sizeof(err))
				 : cbad_config_set_number(&cfg, key, atof(eq + 1), err, sizeof(err))) != CBAD_OK)
			{
				fprintf(stderr, "bad setting %s\n", argv[i]);
				return 2;
			}
		}
	}
	if (cbad_config_validate(&cfg, err, sizeof(err)) != CBAD_OK)
	{
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	printf("driftlock detector accuracy (labels never shown to the detector; alpha %g, baseline %d events / %d bytes, warmup %d)\n",
		   cfg.alpha, cfg.baseline_size, cfg.baseline_bytes, cfg.warmup);
	bench_bgl(dir);
	bench_transactions(dir);
	bench_calibration();
	return 0;
}
