/*
 * bench_accuracy.c -- the detector's decisions at the defaults, on every data
 * set we have
 *
 *   test/bench/bench_accuracy [DATA_DIR] [key=value ...]
 *   test/bench/bench_accuracy [DATA_DIR] [key=value ...] --trace SET
 *
 * DATA_DIR defaults to ../shared/data; data sets that are absent are skipped
 * with a message.  Labels are only used to score the results: the detector
 * sees the events alone, in file order.  key=value pairs override detector
 * settings (for exploring; the figures in docs/detector.md use the defaults).
 *
 * What it prints (docs/detector.md#figures explains each target):
 *   - labelled sets (BGL_2k, transactions, a synthetic contaminated stream):
 *     precision, recall, F1 and false alarms of is_anomaly, and the ranking
 *     quality of score (ROC-AUC, PR-AUC, best F1 over all thresholds);
 *   - unlabelled real logs (loghub/): the share of warm events flagged and
 *     the distinct patterns among flagged lines per 1,000 warm events, by a
 *     fixed template (digit runs and hex ids of 8+ characters masked, first
 *     12 whitespace tokens) and by the detector's own pattern_id;
 *   - a long stationary synthetic stream: the share flagged against alpha.
 *
 * --trace SET prints one tab-separated line per event of one set instead
 * (bgl, burst, scattered, contaminated, stationary, or a log's name such as
 * HPC): index, label (-1: none), ncd, score, p_value, flagged, warm, drift,
 * pattern_id (hex), pattern status and count, and the start of the event.
 */
#include "cbad/cbad.h"
#include "bench_common.h"

#include <ctype.h>
#include <math.h>

/* One event's outcome. */
typedef struct sample
{
	double		score;
	int			label;			/* 1 = anomaly, 0 = normal, -1 = unknown */
	int			flagged;
	int			warm;
	uint64_t	pattern_id;
} sample;

/* A data set: events in order, with labels where there are any. */
typedef struct dataset
{
	const char *name;			/* as printed */
	const char *trace_name;		/* as given to --trace */
	char	  **ev;
	size_t	   *len;
	int		   *label;
	size_t		n;
	size_t		score_from;		/* events before this index are not scored */
} dataset;

static cbad_config cfg;
static const char *trace_set;	/* --trace */

static void
dataset_alloc(dataset *d, const char *name, const char *trace_name, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->trace_name = trace_name;
	d->ev = calloc(n, sizeof(char *));
	d->len = calloc(n, sizeof(size_t));
	d->label = calloc(n, sizeof(int));
	d->n = n;
}

static void
dataset_free(dataset *d)
{
	free(d->ev);
	free(d->len);
	free(d->label);
}

static int
tracing(const dataset *d)
{
	return trace_set != NULL && strcmp(trace_set, d->trace_name) == 0;
}

static void
trace_event(const dataset *d, size_t i, const cbad_verdict *v)
{
	printf("%zu\t%d\t%.4f\t%.3f\t%.5f\t%d\t%d\t%d\t%016llx\t%s\t%llu\t%.*s\n",
		   i + 1, d->label[i], v->ncd, v->score, v->p_value, v->is_anomaly, v->warm,
		   v->drift, (unsigned long long) v->pattern_id,
		   cbad_pattern_status_name(v->pattern_status), (unsigned long long) v->pattern_count,
		   (int) (d->len[i] < 120 ? d->len[i] : 120), d->ev[i]);
}

/* Run the detector over a data set; one sample per event from score_from on. */
static size_t
run(const dataset *d, sample *out)
{
	cbad_detector *det;
	size_t		k = 0;

	if (cbad_detector_create(&cfg, NULL, &det) != CBAD_OK)
	{
		fprintf(stderr, "cannot create detector\n");
		exit(2);
	}
	for (size_t i = 0; i < d->n; i++)
	{
		cbad_verdict v;

		if (cbad_detector_observe(det, (const uint8_t *) d->ev[i], d->len[i], &v) != CBAD_OK)
		{
			fprintf(stderr, "observe failed\n");
			exit(2);
		}
		if (tracing(d))
			trace_event(d, i, &v);
		if (i >= d->score_from)
		{
			out[k].score = v.score;
			out[k].label = d->label[i];
			out[k].flagged = v.is_anomaly;
			out[k].warm = v.warm;
			out[k].pattern_id = v.pattern_id;
			k++;
		}
	}
	cbad_detector_free(det);
	return k;
}

static int
by_score_desc(const void *a, const void *b)
{
	double		x = ((const sample *) a)->score,
				y = ((const sample *) b)->score;

	return (x < y) - (x > y);
}

/*
 * ROC-AUC with ties counted half, average precision (PR-AUC), and the best
 * F1 over all score thresholds: how good the ranking is, not the rule.
 */
static void
ranking_metrics(sample *s, size_t n, double *roc, double *pr, double *best_f1)
{
	size_t		pos = 0,
				neg = 0,
				tp = 0,
				fp = 0;
	double		auc = 0,
				ap = 0;

	*best_f1 = 0;
	for (size_t i = 0; i < n; i++)
		s[i].label ? pos++ : neg++;
	qsort(s, n, sizeof(*s), by_score_desc);
	for (size_t i = 0; i < n;)
	{
		size_t		j = i,
					tp_tie = 0,
					fp_tie = 0;
		double		prec,
					rec;

		while (j < n && s[j].score == s[i].score)
		{
			s[j].label ? tp_tie++ : fp_tie++;
			j++;
		}
		auc += (double) fp_tie * ((double) tp + tp_tie / 2.0);
		tp += tp_tie;
		fp += fp_tie;
		prec = (double) tp / (double) (tp + fp);
		rec = pos ? (double) tp / (double) pos : 0;
		if (prec + rec > 0 && 2 * prec * rec / (prec + rec) > *best_f1)
			*best_f1 = 2 * prec * rec / (prec + rec);
		if (tp_tie)
			ap += (double) tp_tie / (double) pos * ((double) tp / (double) (tp + fp));
		i = j;
	}
	*roc = (pos && neg) ? auc / ((double) pos * neg) : NAN;
	*pr = pos ? ap : NAN;
}

/* A labelled set: the decisions, then the ranking. */
static void
report_labelled(const dataset *d)
{
	sample	   *s = calloc(d->n, sizeof(sample));
	size_t		n = run(d, s),
				tp = 0,
				fp = 0,
				fn = 0,
				normal = 0;
	double		roc,
				pr,
				best_f1,
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
	ranking_metrics(s, n, &roc, &pr, &best_f1);
	precision = tp + fp ? (double) tp / (double) (tp + fp) : 0;
	recall = tp + fn ? (double) tp / (double) (tp + fn) : 0;
	if (!trace_set)
		printf("%-32s events %5zu anomalies %4zu | precision %.3f recall %.3f F1 %.3f | "
			   "false alarms %zu (%.1f per 1000 normal) | ROC-AUC %.3f PR-AUC %.3f best F1 %.3f\n",
			   d->name, n, tp + fn, precision, recall,
			   precision + recall ? 2 * precision * recall / (precision + recall) : 0,
			   fp, normal ? 1000.0 * fp / normal : 0, roc, pr, best_f1);
	free(s);
}

/*
 * The fixed template of a log line, to count distinct flagged patterns the
 * same way whatever the detector's own notion is: hex ids of 8+ characters
 * become "H", other digit runs "0", and the first 12 whitespace-separated
 * tokens are kept.
 */
static void
line_template(const char *line, size_t len, char *out, size_t cap)
{
	size_t		o = 0;
	int			tokens = 0;
	size_t		i = 0;

	while (i < len && tokens < 12)
	{
		while (i < len && isspace((unsigned char) line[i]))
			i++;
		if (i >= len)
			break;
		if (tokens++ > 0 && o + 1 < cap)
			out[o++] = ' ';
		while (i < len && !isspace((unsigned char) line[i]))
		{
			size_t		j = i;
			int			digits = 0;

			while (j < len && isxdigit((unsigned char) line[j]))
				digits += isdigit((unsigned char) line[j++]);
			if (j - i >= 8 && digits > 0)
			{
				if (o + 1 < cap)
					out[o++] = 'H';
				i = j;
			}
			else if (isdigit((unsigned char) line[i]))
			{
				while (i < len && isdigit((unsigned char) line[i]))
					i++;
				if (o + 1 < cap)
					out[o++] = '0';
			}
			else
			{
				if (o + 1 < cap)
					out[o++] = line[i];
				i++;
			}
		}
	}
	out[o] = '\0';
}

/* A set of strings, for counting distinct templates (linear; small sets). */
typedef struct strset
{
	char	  **item;
	size_t		n;
} strset;

/* Adds s; returns 1 when it was new. */
static int
strset_add(strset *set, const char *s)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->item[i], s) == 0)
			return 0;
	set->item = realloc(set->item, sizeof(char *) * (set->n + 1));
	set->item[set->n++] = strdup(s);
	return 1;
}

static int
strset_has(const strset *set, const char *s)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->item[i], s) == 0)
			return 1;
	return 0;
}

static void
strset_free(strset *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->item[i]);
	free(set->item);
}

typedef struct noise
{
	double		templates_per_1000;
	double		flagged_share;
} noise;

/*
 * An unlabelled log: the share of warm events flagged, and the distinct
 * templates (and pattern ids) among flagged lines per 1,000 warm events.
 * Flagged lines are also split by why they may be noise: a template already
 * flagged earlier in the log (a repeat), its first occurrence after warm-up
 * (new), or one seen earlier without an alarm (known).
 */
static noise
report_log(const dataset *d)
{
	sample	   *s = calloc(d->n, sizeof(sample));
	size_t		n = run(d, s),
				warm = 0,
				flagged = 0,
				repeat = 0,
				fresh = 0,
				known = 0;
	strset		seen = {0},
				flagged_templates = {0};
	size_t		flagged_patterns = 0;
	uint64_t   *pattern_ids = calloc(d->n, sizeof(uint64_t));
	char		t[1024];
	noise		result = {0, 0};

	for (size_t i = 0; i < n; i++)
	{
		line_template(d->ev[i], d->len[i], t, sizeof(t));
		if (s[i].warm)
		{
			warm++;
			if (s[i].flagged)
			{
				int			was_seen = strset_has(&seen, t);
				int			first_flag = strset_add(&flagged_templates, t);
				int			new_pattern = 1;

				flagged++;
				if (!first_flag)
					repeat++;
				else if (was_seen)
					known++;
				else
					fresh++;
				for (size_t k = 0; k < flagged_patterns; k++)
					new_pattern &= pattern_ids[k] != s[i].pattern_id;
				if (new_pattern)
					pattern_ids[flagged_patterns++] = s[i].pattern_id;
			}
		}
		strset_add(&seen, t);
	}
	if (warm > 0)
	{
		result.templates_per_1000 = 1000.0 * flagged_templates.n / warm;
		result.flagged_share = (double) flagged / warm;
	}
	if (!trace_set)
		printf("%-32s warm %4zu | flagged %4zu = %5.1f%% (repeat %zu, new %zu, known %zu) | "
			   "flagged templates %5.1f per 1000 (pattern_id %5.1f) | templates in log %zu\n",
			   d->name, warm, flagged, 100.0 * result.flagged_share, repeat, fresh, known,
			   result.templates_per_1000, warm ? 1000.0 * flagged_patterns / warm : 0, seen.n);
	strset_free(&seen);
	strset_free(&flagged_templates);
	free(pattern_ids);
	free(s);
	return result;
}

/* Lines of a file as events; label_token: the first token is a label. */
static int
load_lines(dataset *d, lines *l, const char *dir, const char *file,
		   const char *name, const char *trace_name, int label_token)
{
	char		path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (!lines_read(path, l))
	{
		if (!trace_set)
			printf("%-32s skipped (%s not found)\n", name, path);
		return 0;
	}
	dataset_alloc(d, name, trace_name, l->n);
	for (size_t i = 0; i < l->n; i++)
	{
		d->ev[i] = l->line[i];
		d->len[i] = l->len[i];
		d->label[i] = -1;
		if (label_token)
		{
			char	   *sp = strchr(l->line[i], ' ');

			/* "-" is normal, anything else an alert */
			d->label[i] = !(l->line[i][0] == '-' && l->line[i][1] == ' ');
			d->ev[i] = sp ? sp + 1 : l->line[i] + l->len[i];
			d->len[i] = l->len[i] - (size_t) (d->ev[i] - l->line[i]);
		}
	}
	return 1;
}

static void
bench_bgl(const char *dir)
{
	lines		l;
	dataset		d;

	if (!load_lines(&d, &l, dir, "BGL_2k.log", "BGL_2k (lines 101-2000)", "bgl", 1))
		return;
	d.score_from = 100;
	report_labelled(&d);
	dataset_free(&d);
	lines_free(&l);
}

static void
bench_logs(const char *dir)
{
	static const char *logs[] = {"HPC", "Hadoop", "Linux", "Spark", "Zookeeper"};
	double		per_1000[5];
	int			done = 0;

	for (int i = 0; i < 5; i++)
	{
		char		file[256],
					name[256];
		lines		l;
		dataset		d;
		noise		r;

		snprintf(file, sizeof(file), "loghub/%s_2k.log", logs[i]);
		snprintf(name, sizeof(name), "%s_2k (unlabelled)", logs[i]);
		if (!load_lines(&d, &l, dir, file, name, logs[i], 0))
			continue;
		r = report_log(&d);
		per_1000[done++] = r.templates_per_1000;
		dataset_free(&d);
		lines_free(&l);
	}
	if (done > 0 && !trace_set)
	{
		double		max = 0;

		/* insertion sort for the median */
		for (int i = 1; i < done; i++)
			for (int j = i; j > 0 && per_1000[j] < per_1000[j - 1]; j--)
			{
				double		t = per_1000[j];

				per_1000[j] = per_1000[j - 1];
				per_1000[j - 1] = t;
			}
		for (int i = 0; i < done; i++)
			max = per_1000[i] > max ? per_1000[i] : max;
		printf("%-32s flagged templates per 1000 warm events: median %.1f, max %.1f over %d logs\n",
			   "real logs", done % 2 ? per_1000[done / 2] : (per_1000[done / 2 - 1] + per_1000[done / 2]) / 2,
			   max, done);
	}
}

static void
bench_transactions(const char *dir)
{
	lines		normal,
				anom;
	dataset		d;
	char		path[4096];
	size_t		n;

	snprintf(path, sizeof(path), "%s/driftlock-normal-transactions.jsonl", dir);
	if (!lines_read(path, &normal))
	{
		if (!trace_set)
			printf("%-32s skipped (%s not found)\n", "transactions", path);
		return;
	}
	snprintf(path, sizeof(path), "%s/driftlock-anomalous-transactions.jsonl", dir);
	if (!lines_read(path, &anom))
	{
		if (!trace_set)
			printf("%-32s skipped (%s not found)\n", "transactions", path);
		lines_free(&normal);
		return;
	}
	n = normal.n + anom.n;

	/* 1: all normal events, then the anomalies as one burst */
	dataset_alloc(&d, "transactions, burst of 100", "burst", n);
	for (size_t i = 0; i < n; i++)
	{
		lines	   *src = i < normal.n ? &normal : &anom;
		size_t		j = i < normal.n ? i : i - normal.n;

		d.ev[i] = src->line[j];
		d.len[i] = src->len[j];
		d.label[i] = i >= normal.n;
	}
	d.score_from = (size_t) cfg.warmup;
	report_labelled(&d);

	/*
	 * 2: the first 300 normal events, then the other 200 with the anomalies
	 * scattered among them in groups of 1 to 4 (a fixed, seeded pattern).
	 */
	{
		uint64_t	rng = 42;
		size_t		ni = 0,
					ai = 0,
					o = 0;

		d.name = "transactions, scattered groups";
		d.trace_name = "scattered";
		while (ni < 300)
		{
			d.ev[o] = normal.line[ni];
			d.len[o] = normal.len[ni];
			d.label[o++] = 0;
			ni++;
		}
		while (ni < normal.n || ai < anom.n)
		{
			size_t		gap = 1 + bench_rand(&rng) % 3;
			size_t		group = 1 + bench_rand(&rng) % 4;

			for (size_t g = 0; g < gap && ni < normal.n; g++, ni++)
			{
				d.ev[o] = normal.line[ni];
				d.len[o] = normal.len[ni];
				d.label[o++] = 0;
			}
			for (size_t g = 0; g < group && ai < anom.n; g++, ai++)
			{
				d.ev[o] = anom.line[ai];
				d.len[o] = anom.len[ai];
				d.label[o++] = 1;
			}
		}
		report_labelled(&d);
	}
	dataset_free(&d);
	lines_free(&normal);
	lines_free(&anom);
}

/*
 * A contaminated stream: synthetic JSON logs, after warm-up 3% anomalies of
 * three recurring kinds, each isolated (at least 5 normal events between
 * two anomalies).  The anomalies recur for the whole stream, so any rule
 * that lets flagged events into its threshold soon stops flagging them.
 */
#define CONTAMINATED_EVENTS 10000
#define EVENT_CAP 512

static void
bench_contaminated(void)
{
	dataset		d;
	char	   *buf = malloc((size_t) CONTAMINATED_EVENTS * EVENT_CAP);
	uint64_t	rng = 11;
	size_t		since_anomaly = 0;

	dataset_alloc(&d, "synthetic, 3% recurring anomalies", "contaminated", CONTAMINATED_EVENTS);
	for (size_t i = 0; i < d.n; i++)
	{
		char	   *e = buf + i * EVENT_CAP;
		/* 3% overall: one in 28 of the eligible events, with 5 normal between */
		int			anomalous = i >= (size_t) cfg.warmup && since_anomaly >= 5 &&
			bench_rand(&rng) % 28 == 0;

		d.ev[i] = e;
		d.label[i] = anomalous;
		d.len[i] = anomalous
			? synthetic_anomaly(&rng, i, (int) (bench_rand(&rng) % 3), e, EVENT_CAP)
			: synthetic_event(&rng, i, e, EVENT_CAP);
		since_anomaly = anomalous ? 0 : since_anomaly + 1;
	}
	d.score_from = (size_t) cfg.warmup;
	report_labelled(&d);
	dataset_free(&d);
	free(buf);
}

/* On a long stationary normal stream the share flagged should be about alpha. */
static void
bench_stationary(void)
{
	dataset		d;
	const size_t n = 50000;
	char	   *buf = malloc(n * EVENT_CAP);
	uint64_t	rng = 7;
	sample	   *s = calloc(n, sizeof(sample));
	size_t		k,
				warm = 0,
				flagged = 0;

	dataset_alloc(&d, "synthetic, stationary", "stationary", n);
	for (size_t i = 0; i < n; i++)
	{
		d.ev[i] = buf + i * EVENT_CAP;
		d.len[i] = synthetic_event(&rng, i, d.ev[i], EVENT_CAP);
	}
	k = run(&d, s);
	for (size_t i = 0; i < k; i++)
		if (s[i].warm)
		{
			warm++;
			flagged += s[i].flagged;
		}
	if (!trace_set)
		printf("%-32s events %5zu warm %zu | flagged %zu = %.4f at alpha %.4f (%.2fx alpha)\n",
			   d.name, n, warm, flagged, (double) flagged / warm, cfg.alpha,
			   (double) flagged / warm / cfg.alpha);
	dataset_free(&d);
	free(buf);
	free(s);
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
		const cbad_key_info *key;

		if (strcmp(argv[i], "--trace") == 0 && i + 1 < argc)
		{
			trace_set = argv[++i];
			continue;
		}
		if (eq == NULL)
		{
			dir = argv[i];
			continue;
		}
		*eq = '\0';
		key = cbad_config_key(argv[i]);
		if (key == NULL ||
			(key->type == CBAD_KEY_BOOL
			 ? cbad_config_set_bool(&cfg, key, strcmp(eq + 1, "true") == 0, err, sizeof(err))
			 : cbad_config_set_number(&cfg, key, atof(eq + 1), err, sizeof(err))) != CBAD_OK)
		{
			fprintf(stderr, "bad setting %s\n", argv[i]);
			return 2;
		}
	}
	if (cbad_config_validate(&cfg, err, sizeof(err)) != CBAD_OK)
	{
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (!trace_set)
		printf("driftlock detector decisions (labels never shown to the detector; alpha %g, baseline %d events / %d bytes, warmup %d)\n",
			   cfg.alpha, cfg.baseline_size, cfg.baseline_bytes, cfg.warmup);
	bench_bgl(dir);
	bench_transactions(dir);
	bench_contaminated();
	bench_stationary();
	bench_logs(dir);
	return 0;
}
