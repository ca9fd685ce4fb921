/*
 * bench_speed.c -- detector throughput and memory per stream, at the defaults
 *
 *   test/bench/bench_speed [EVENTS] [STREAMS] [key=value ...]
 *
 * Throughput: events/s on one core for ~200-byte JSON log events (about 1%
 * of them anomalous), printed beside one plain ZSTD_compressCCtx per event
 * over the same events in the same run (best of five interleaved runs each).  Memory: the bytes a warm detector
 * holds (its dictionary, baseline, calibration and drift state, as counted by
 * its allocator), averaged over STREAMS streams.
 */
#include "cbad/cbad.h"
#include "bench_common.h"

#include <zstd.h>

#define EVENT_CAP 512

static const char *anomalies[] = {
	"{\"ts\":\"2026-11-03T04:05:06.789Z\",\"service\":\"payments\",\"level\":\"error\",\"msg\":\"FATAL: ledger checksum mismatch, refusing writes\",\"shard\":17}",
	"{\"ts\":\"2026-11-03T04:05:06.789Z\",\"service\":\"auth\",\"level\":\"warn\",\"msg\":\"password spray suspected from 203.0.113.9\",\"attempts\":912}",
	"\\x00\\x01 binary garbage \\xff\\xfe where JSON was expected"
};

int
main(int argc, char **argv)
{
	size_t		nevents = argc > 1 && !strchr(argv[1], '=') ? (size_t) atol(argv[1]) : 200000;
	int			nstreams = argc > 2 && !strchr(argv[2], '=') ? atoi(argv[2]) : 1000;
	char	   *events = malloc(nevents * EVENT_CAP);
	size_t	   *lens = malloc(nevents * sizeof(size_t));
	uint64_t	rng = 1;
	size_t		total_bytes = 0,
				flagged = 0;
	cbad_config cfg;
	cbad_detector *det;
	double		t0,
				t_detect,
				t_zstd;
	ZSTD_CCtx  *cctx = ZSTD_createCCtx();
	char	   *out = malloc(ZSTD_compressBound(EVENT_CAP));
	size_t		sink = 0;

	for (size_t i = 0; i < nevents; i++)
	{
		char	   *e = events + i * EVENT_CAP;

		if (i > 1000 && bench_rand(&rng) % 100 == 0)
		{
			const char *a = anomalies[bench_rand(&rng) % 3];

			lens[i] = strlen(a);
			memcpy(e, a, lens[i]);
		}
		else
			lens[i] = synthetic_event(&rng, i, e, EVENT_CAP);
		total_bytes += lens[i];
	}

	cbad_config_default(&cfg);
	for (int i = 1; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');
		const cbad_key_info *key;
		char		err[256];

		if (eq == NULL)
			continue;
		*eq = '\0';
		key = cbad_config_key(argv[i]);
		if (key == NULL || key->type == CBAD_KEY_BOOL ||
			cbad_config_set_number(&cfg, key, atof(eq + 1), err, sizeof(err)) != CBAD_OK)
		{
			fprintf(stderr, "bad setting %s\n", argv[i]);
			return 2;
		}
	}
	/* best of five interleaved runs of each, so a busy machine disturbs the figure less */
	t_detect = t_zstd = 1e30;
	for (int rep = 0; rep < 5; rep++)
	{
		double		t;
		cbad_stats	st;

		flagged = 0;
		if (cbad_detector_create(&cfg, NULL, &det) != CBAD_OK)
			return 2;
		t0 = now_seconds();
		for (size_t i = 0; i < nevents; i++)
		{
			cbad_verdict v;

			if (cbad_detector_observe(det, (const uint8_t *) events + i * EVENT_CAP, lens[i], &v) != CBAD_OK)
				return 2;
			flagged += v.is_anomaly;
		}
		t = now_seconds() - t0;
		if (t < t_detect)
			t_detect = t;
		cbad_detector_stats(det, &st);
		if (rep == 0)
			printf("dictionary rebuilds %llu (every %d accepted events)\n",
				   (unsigned long long) st.rebuilds, cfg.rebuild_interval);
		cbad_detector_free(det);

		t0 = now_seconds();
		for (size_t i = 0; i < nevents; i++)
			sink += ZSTD_compressCCtx(cctx, out, ZSTD_compressBound(EVENT_CAP),
									  events + i * EVENT_CAP, lens[i], cfg.zstd_level);
		t = now_seconds() - t0;
		if (t < t_zstd)
			t_zstd = t;
	}

	printf("events %zu, mean %.0f bytes, flagged %zu (%.2f%%)\n",
		   nevents, (double) total_bytes / nevents, flagged, 100.0 * flagged / nevents);
	printf("detector (observe, one core)   %10.0f events/s  %6.2f us/event\n",
		   nevents / t_detect, 1e6 * t_detect / nevents);
	printf("plain ZSTD_compressCCtx        %10.0f events/s  %6.2f us/event  (level %d)\n",
		   nevents / t_zstd, 1e6 * t_zstd / nevents, cfg.zstd_level);
	printf("ratio detector / plain zstd    %10.2f\n", t_zstd / t_detect);

	/* memory: many warm streams */
	{
		cbad_detector **dets = malloc(sizeof(*dets) * (size_t) nstreams);
		size_t		sum = 0,
					max = 0;

		for (int s = 0; s < nstreams; s++)
		{
			cbad_stats st;
			uint64_t	srng = (uint64_t) s + 100;
			char		buf[EVENT_CAP];

			if (cbad_detector_create(&cfg, NULL, &dets[s]) != CBAD_OK)
				return 2;
			for (int i = 0; i < 600; i++)
			{
				cbad_verdict v;
				size_t		len = synthetic_event(&srng, (uint64_t) i, buf, sizeof(buf));

				cbad_detector_observe(dets[s], (const uint8_t *) buf, len, &v);
			}
			cbad_detector_stats(dets[s], &st);
			sum += st.memory_bytes;
			if (st.memory_bytes > max)
				max = st.memory_bytes;
		}
		printf("memory per warm stream         %10.1f KiB mean, %.1f KiB max over %d streams (600 events each)\n",
			   sum / 1024.0 / nstreams, max / 1024.0, nstreams);
		/* what a worker writes at a checkpoint and reads on a cache miss */
		{
			size_t		state_sum = 0,
						plain_sum = 0;
			double		t_save,
						t_load;

			t0 = now_seconds();
			for (int s = 0; s < nstreams; s++)
			{
				uint8_t    *state;
				size_t		state_len;

				if (cbad_detector_serialize(dets[s], &state, &state_len) != CBAD_OK)
					return 2;
				state_sum += state_len;
				/* format 3: the plain state's length follows the version */
				plain_sum += (size_t) state[8] | (size_t) state[9] << 8 |
					(size_t) state[10] << 16 | (size_t) state[11] << 24;
				cbad_buffer_free(dets[s], state);
			}
			t_save = now_seconds() - t0;
			t0 = now_seconds();
			for (int s = 0; s < nstreams; s++)
			{
				uint8_t    *state;
				size_t		state_len;
				cbad_detector *copy;

				if (cbad_detector_serialize(dets[s], &state, &state_len) != CBAD_OK ||
					cbad_detector_deserialize(state, state_len, NULL, &copy) != CBAD_OK)
					return 2;
				cbad_buffer_free(dets[s], state);
				cbad_detector_free(copy);
			}
			t_load = now_seconds() - t0 - t_save;
			printf("saved state per warm stream    %10.1f KiB mean (%.1f KiB before compression); save %.0f us, load %.0f us\n",
				   state_sum / 1024.0 / nstreams, plain_sum / 1024.0 / nstreams,
				   1e6 * t_save / nstreams, 1e6 * t_load / nstreams);
		}
		for (int s = 0; s < nstreams; s++)
			cbad_detector_free(dets[s]);
		free(dets);
	}
	ZSTD_freeCCtx(cctx);
	free(out);
	free(events);
	free(lens);
	return sink == 0;
}
