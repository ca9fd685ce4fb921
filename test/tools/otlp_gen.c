/*
 * otlp_gen.c
 *		Write one OpenTelemetry logs export batch, as the OpenTelemetry
 *		Collector's Kafka exporter would put it in a message, for tests and
 *		benchmarks of src/message/otlp_logs.c.
 *
 * Usage:
 *   otlp_gen [-e proto|json] [-s SERVICES] [-r RECORDS] [-S SEED]
 *            [-a N,N,...] [-p PREFIX] [-o FILE]
 *
 *   -e  encoding: proto (otlp_proto, the default) or json (otlp_json)
 *   -s  services, one ResourceLogs each (default 3), service.name
 *       PREFIX0, PREFIX1, ... (-p, default "svc-")
 *   -r  log records per service (default 100)
 *   -S  seed of the deterministic generator (default 1)
 *   -a  record numbers (0-based, within each service) made anomalous:
 *       ERROR or FATAL, an unusual body (an out-of-memory kill, a stack
 *       trace, a panic, a full disk) and an unusual attribute
 *   -o  write to FILE instead of stdout
 *
 * Normal records are INFO or DEBUG lines from a few templates with varying
 * numbers and attributes (http.method, http.status_code as an int,
 * host.name, sometimes a double latency); the fields the decoder leaves out
 * vary on every record (timeUnixNano increasing, observedTimeUnixNano,
 * random traceId and spanId, flags).  The same options give the same
 * records in both encodings, so both decode to the same texts.  The
 * encoders are written here, independent of the decoder.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the records -------------------------------------------------------- */

typedef enum
{
	A_STRING,
	A_INT,
	A_DOUBLE,
	A_BOOL
} AttrType;

typedef struct
{
	const char *key;
	AttrType	type;
	char		s[256];
	int64_t		i;
	double		d;
	bool		b;
} Attr;

typedef struct
{
	uint64_t	time;
	uint64_t	observed;
	int			sev_num;
	const char *sev_text;
	char		body[512];
	Attr		attrs[6];
	int			nattrs;
	uint8_t		trace_id[16];
	uint8_t		span_id[8];
	uint32_t	flags;
} Record;

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* splitmix64 */
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int
pick(int n)
{
	return (int) (rng() % (uint64_t) n);
}

static void
add_str(Record *r, const char *key, const char *val)
{
	Attr	   *a = &r->attrs[r->nattrs++];

	a->key = key;
	a->type = A_STRING;
	snprintf(a->s, sizeof(a->s), "%s", val);
}

static void
add_int(Record *r, const char *key, int64_t v)
{
	Attr	   *a = &r->attrs[r->nattrs++];

	a->key = key;
	a->type = A_INT;
	a->i = v;
}

static void
make_record(Record *r, int service, int n, int records, bool anomaly)
{
	static const char *const methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
	static const char *const paths[] = {"/api/orders", "/api/users", "/api/products", "/api/cart"};
	static const int statuses[] = {200, 200, 200, 201, 204, 304, 404};
	char		host[32];
	const char *method = methods[pick(6)];
	int			status = statuses[pick(7)];

	memset(r, 0, sizeof(*r));
	r->time = 1767225600000000000ULL + ((uint64_t) service * (uint64_t) records + (uint64_t) n) * 1000000ULL +
		(uint64_t) pick(1000);
	r->observed = r->time + 1000 + (uint64_t) pick(100000);
	for (int i = 0; i < 16; i++)
		r->trace_id[i] = (uint8_t) rng();
	for (int i = 0; i < 8; i++)
		r->span_id[i] = (uint8_t) rng();
	r->flags = 1;
	snprintf(host, sizeof(host), "host-%d", service * 10 + pick(3));

	if (anomaly)
	{
		switch (pick(4))
		{
			case 0:
				r->sev_num = 21;
				r->sev_text = "FATAL";
				snprintf(r->body, sizeof(r->body),
						 "kernel: Out of memory: Killed process %d (java) total-vm:%dkB",
						 4000 + pick(1000), 8000000 + pick(1000000));
				add_int(r, "oom.killed_pid", 4000 + pick(1000));
				break;
			case 1:
				r->sev_num = 17;
				r->sev_text = "ERROR";
				snprintf(r->body, sizeof(r->body),
						 "java.lang.NullPointerException: Cannot invoke \"Order.getId()\"\n"
						 "\tat com.example.shop.OrderService.place(OrderService.java:%d)\n"
						 "\tat com.example.shop.OrderController.post(OrderController.java:%d)",
						 100 + pick(200), 40 + pick(50));
				add_str(r, "exception.type", "java.lang.NullPointerException");
				break;
			case 2:
				r->sev_num = 21;
				r->sev_text = "FATAL";
				snprintf(r->body, sizeof(r->body),
						 "panic: runtime error: index out of range [%d] with length %d",
						 5 + pick(10), 3);
				add_str(r, "goroutine", "main");
				break;
			default:
				r->sev_num = 17;
				r->sev_text = "ERROR";
				snprintf(r->body, sizeof(r->body),
						 "could not write to file \"pg_wal/xlogtemp.%d\": No space left on device",
						 100 + pick(900));
				{
					Attr	   *a = &r->attrs[r->nattrs++];

					a->key = "disk.full";
					a->type = A_BOOL;
					a->b = true;
				}
				break;
		}
		add_str(r, "host.name", host);
		return;
	}

	switch (pick(5))
	{
		case 0:
		case 1:
			snprintf(r->body, sizeof(r->body), "%s %s/%d %d %dms", method,
					 paths[pick(4)], 1000 + pick(9000), status, 1 + pick(200));
			break;
		case 2:
			snprintf(r->body, sizeof(r->body), "user %d logged in from 10.0.%d.%d",
					 pick(100000), pick(256), pick(256));
			break;
		case 3:
			snprintf(r->body, sizeof(r->body), "cache hit for key product:%d", pick(50000));
			break;
		default:
			snprintf(r->body, sizeof(r->body), "processed batch of %d items in %dms",
					 1 + pick(500), 1 + pick(2000));
			break;
	}
	if (pick(5) == 0)
	{
		r->sev_num = 5;
		r->sev_text = "DEBUG";
	}
	else
	{
		r->sev_num = 9;
		r->sev_text = "INFO";
	}
	add_str(r, "http.method", method);
	add_int(r, "http.status_code", status);
	add_str(r, "host.name", host);
	if (pick(4) == 0)
	{
		Attr	   *a = &r->attrs[r->nattrs++];

		a->key = "latency_s";
		a->type = A_DOUBLE;
		a->d = (1 + pick(5000)) / 1000.0;
	}
}

/* ---- output buffer ------------------------------------------------------ */

typedef struct
{
	uint8_t    *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
put(Buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
		{
			fprintf(stderr, "otlp_gen: out of memory\n");
			exit(1);
		}
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
puts_(Buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void
printf_(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
printf_(Buf *b, const char *fmt, ...)
{
	char		tmp[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	put(b, tmp, (size_t) n);
}

/* ---- protobuf ----------------------------------------------------------- */

static void
pb_varint(Buf *b, uint64_t v)
{
	uint8_t		tmp[10];
	size_t		n = 0;

	do
	{
		tmp[n] = (uint8_t) (v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	put(b, tmp, n);
}

static void
pb_tag(Buf *b, int field, int wt)
{
	pb_varint(b, (uint64_t) field << 3 | (uint64_t) wt);
}

static void
pb_bytes(Buf *b, int field, const void *p, size_t n)
{
	pb_tag(b, field, 2);
	pb_varint(b, n);
	put(b, p, n);
}

static void
pb_string(Buf *b, int field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

static void
pb_fixed(Buf *b, int field, uint64_t v, int bytes)
{
	uint8_t		tmp[8];

	pb_tag(b, field, bytes == 8 ? 1 : 5);
	for (int i = 0; i < bytes; i++)
		tmp[i] = (uint8_t) (v >> (8 * i));
	put(b, tmp, (size_t) bytes);
}

/* A submessage: its bytes are in sub, written as field of b; sub is emptied. */
static void
pb_message(Buf *b, int field, Buf *sub)
{
	pb_bytes(b, field, sub->data, sub->len);
	sub->len = 0;
}

static void
pb_keyvalue(Buf *b, int field, const Attr *a)
{
	Buf			kv = {0},
				any = {0};

	switch (a->type)
	{
		case A_STRING:
			pb_string(&any, 1, a->s);
			break;
		case A_BOOL:
			pb_tag(&any, 2, 0);
			pb_varint(&any, a->b);
			break;
		case A_INT:
			pb_tag(&any, 3, 0);
			pb_varint(&any, (uint64_t) a->i);
			break;
		case A_DOUBLE:
			{
				uint64_t	bits;

				memcpy(&bits, &a->d, 8);
				pb_fixed(&any, 4, bits, 8);
			}
			break;
	}
	pb_string(&kv, 1, a->key);
	pb_message(&kv, 2, &any);
	pb_message(b, field, &kv);
	free(kv.data);
	free(any.data);
}

static void
pb_record(Buf *b, const Record *r)
{
	Buf			lr = {0},
				body = {0};

	pb_fixed(&lr, 1, r->time, 8);
	pb_fixed(&lr, 11, r->observed, 8);
	pb_tag(&lr, 2, 0);
	pb_varint(&lr, (uint64_t) r->sev_num);
	pb_string(&lr, 3, r->sev_text);
	pb_string(&body, 1, r->body);
	pb_message(&lr, 5, &body);
	for (int i = 0; i < r->nattrs; i++)
		pb_keyvalue(&lr, 6, &r->attrs[i]);
	pb_fixed(&lr, 8, r->flags, 4);
	pb_bytes(&lr, 9, r->trace_id, 16);
	pb_bytes(&lr, 10, r->span_id, 8);
	pb_message(b, 2, &lr);
	free(lr.data);
	free(body.data);
}

/* ---- JSON --------------------------------------------------------------- */

static void
js_string(Buf *b, const char *s)
{
	puts_(b, "\"");
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			char		e[2] = {'\\', (char) c};

			put(b, e, 2);
		}
		else if (c == '\n')
			puts_(b, "\\n");
		else if (c == '\t')
			puts_(b, "\\t");
		else if (c < 0x20)
			printf_(b, "\\u%04x", c);
		else
			put(b, &c, 1);
	}
	puts_(b, "\"");
}

static void
js_hex(Buf *b, const uint8_t *p, size_t n)
{
	puts_(b, "\"");
	for (size_t i = 0; i < n; i++)
		printf_(b, "%02x", p[i]);
	puts_(b, "\"");
}

static void
js_keyvalue(Buf *b, const Attr *a)
{
	puts_(b, "{\"key\":");
	js_string(b, a->key);
	puts_(b, ",\"value\":{");
	switch (a->type)
	{
		case A_STRING:
			puts_(b, "\"stringValue\":");
			js_string(b, a->s);
			break;
		case A_BOOL:
			puts_(b, a->b ? "\"boolValue\":true" : "\"boolValue\":false");
			break;
		case A_INT:
			/* OTLP/JSON writes 64-bit integers as strings */
			printf_(b, "\"intValue\":\"%lld\"", (long long) a->i);
			break;
		case A_DOUBLE:
			printf_(b, "\"doubleValue\":%.17g", a->d);
			break;
	}
	puts_(b, "}}");
}

static void
js_record(Buf *b, const Record *r)
{
	printf_(b, "{\"timeUnixNano\":\"%llu\",\"observedTimeUnixNano\":\"%llu\",",
			(unsigned long long) r->time, (unsigned long long) r->observed);
	printf_(b, "\"severityNumber\":%d,\"severityText\":", r->sev_num);
	js_string(b, r->sev_text);
	puts_(b, ",\"body\":{\"stringValue\":");
	js_string(b, r->body);
	puts_(b, "},\"attributes\":[");
	for (int i = 0; i < r->nattrs; i++)
	{
		if (i > 0)
			puts_(b, ",");
		js_keyvalue(b, &r->attrs[i]);
	}
	printf_(b, "],\"flags\":%u,\"traceId\":", r->flags);
	js_hex(b, r->trace_id, 16);
	puts_(b, ",\"spanId\":");
	js_hex(b, r->span_id, 8);
	puts_(b, "}");
}

/* ---- main --------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
			"usage: otlp_gen [-e proto|json] [-s SERVICES] [-r RECORDS] [-S SEED]\n"
			"                [-a N,N,...] [-p PREFIX] [-o FILE]\n"
			"Write one OTLP logs export batch (otlp_proto or otlp_json) to stdout.\n"
			"  -e  encoding (proto)        -s  services (3)\n"
			"  -r  records per service (100)  -S  seed (1)\n"
			"  -a  anomalous record numbers within each service, e.g. 50,80\n"
			"  -p  service.name prefix (svc-)  -o  output file\n");
}

static long
number(const char *s, const char *opt)
{
	char	   *end;
	long		v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0)
	{
		fprintf(stderr, "otlp_gen: %s wants a non-negative number, not \"%s\"\n", opt, s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	bool		json = false;
	long		services = 3,
				records = 100;
	uint64_t	seed = 1;
	const char *prefix = "svc-";
	const char *outfile = NULL;
	long	   *anomalies = NULL;
	size_t		nanomalies = 0;
	Buf			out = {0};
	FILE	   *f = stdout;

	for (int i = 1; i < argc; i++)
	{
		const char *o = argv[i];

		if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		if (o[0] != '-' || o[1] == '\0' || o[2] != '\0' || strchr("esrSapo", o[1]) == NULL)
		{
			fprintf(stderr, "otlp_gen: unknown option \"%s\"\n", o);
			usage(stderr);
			return 2;
		}
		if (i + 1 >= argc)
		{
			fprintf(stderr, "otlp_gen: %s needs a value\n", o);
			return 2;
		}
		{
			const char *v = argv[++i];

			switch (o[1])
			{
				case 'e':
					if (strcmp(v, "json") == 0)
						json = true;
					else if (strcmp(v, "proto") == 0)
						json = false;
					else
					{
						fprintf(stderr, "otlp_gen: -e is proto or json, not \"%s\"\n", v);
						return 2;
					}
					break;
				case 's':
					services = number(v, "-s");
					break;
				case 'r':
					records = number(v, "-r");
					break;
				case 'S':
					seed = (uint64_t) number(v, "-S");
					break;
				case 'p':
					prefix = v;
					break;
				case 'o':
					outfile = v;
					break;
				case 'a':
					{
						char	   *copy = strdup(v);

						for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
						{
							anomalies = realloc(anomalies, (nanomalies + 1) * sizeof(long));
							anomalies[nanomalies++] = number(tok, "-a");
						}
						free(copy);
					}
					break;
			}
		}
	}

	rng_state = seed;
	if (json)
		puts_(&out, "{\"resourceLogs\":[");
	for (long s = 0; s < services; s++)
	{
		char		name[256];
		Record		r;
		Attr		svc = {.key = "service.name", .type = A_STRING},
					host = {.key = "host.name", .type = A_STRING},
					lang = {.key = "telemetry.sdk.language", .type = A_STRING};

		snprintf(name, sizeof(name), "%.200s%ld", prefix, s);
		snprintf(svc.s, sizeof(svc.s), "%s", name);
		snprintf(host.s, sizeof(host.s), "node-%ld", s % 4);
		snprintf(lang.s, sizeof(lang.s), "%s", s % 2 ? "java" : "go");
		if (json)
		{
			if (s > 0)
				puts_(&out, ",");
			puts_(&out, "{\"resource\":{\"attributes\":[");
			js_keyvalue(&out, &svc);
			puts_(&out, ",");
			js_keyvalue(&out, &host);
			puts_(&out, ",");
			js_keyvalue(&out, &lang);
			puts_(&out, "]},\"scopeLogs\":[{\"scope\":{\"name\":\"io.example.logger\",\"version\":\"1.2.0\"},\"logRecords\":[");
			for (long n = 0; n < records; n++)
			{
				bool		anomaly = false;

				for (size_t k = 0; k < nanomalies; k++)
					anomaly |= anomalies[k] == n;
				make_record(&r, (int) s, (int) n, (int) records, anomaly);
				if (n > 0)
					puts_(&out, ",");
				js_record(&out, &r);
			}
			puts_(&out, "]}],\"schemaUrl\":\"https://opentelemetry.io/schemas/1.24.0\"}");
		}
		else
		{
			Buf			rl = {0},
						res = {0},
						sl = {0},
						scope = {0};

			pb_keyvalue(&res, 1, &svc);
			pb_keyvalue(&res, 1, &host);
			pb_keyvalue(&res, 1, &lang);
			pb_message(&rl, 1, &res);
			pb_string(&scope, 1, "io.example.logger");
			pb_string(&scope, 2, "1.2.0");
			pb_message(&sl, 1, &scope);
			for (long n = 0; n < records; n++)
			{
				bool		anomaly = false;

				for (size_t k = 0; k < nanomalies; k++)
					anomaly |= anomalies[k] == n;
				make_record(&r, (int) s, (int) n, (int) records, anomaly);
				pb_record(&sl, &r);
			}
			pb_message(&rl, 2, &sl);
			pb_string(&rl, 3, "https://opentelemetry.io/schemas/1.24.0");
			pb_message(&out, 1, &rl);
			free(rl.data);
			free(res.data);
			free(sl.data);
			free(scope.data);
		}
	}
	if (json)
		puts_(&out, "]}");

	if (outfile != NULL && (f = fopen(outfile, "wb")) == NULL)
	{
		perror(outfile);
		return 1;
	}
	if ((out.len > 0 && fwrite(out.data, 1, out.len, f) != out.len) || fflush(f) != 0)
	{
		perror(outfile ? outfile : "stdout");
		return 1;
	}
	if (outfile != NULL)
		fclose(f);
	free(out.data);
	free(anomalies);
	return 0;
}
