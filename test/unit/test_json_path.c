/*
 * test_json_path.c -- unit tests of json_path_lookup()
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message/json_path.h"
#include "unit.h"

/* Result of one lookup, with all the outputs. */
typedef struct lookup
{
	json_path_result r;
	char		out[256];
	size_t		outlen;
	const char *type;
	char		err[256];
} lookup;

static lookup
look_n(const char *doc, size_t len, const char *path)
{
	lookup		l;

	memset(&l, 0, sizeof(l));
	l.r = json_path_lookup(doc, len, path, l.out, sizeof(l.out), &l.outlen,
						   &l.type, l.err, sizeof(l.err));
	return l;
}

static lookup
look(const char *doc, const char *path)
{
	return look_n(doc, strlen(doc), path);
}

/*
 * Run the lookup on an exact-size heap copy, so ASan catches any read past
 * the end of the document.
 */
static lookup
look_heap(const char *doc, size_t len, const char *path)
{
	char	   *copy = malloc(len ? len : 1);
	lookup		l;

	memcpy(copy, doc, len);
	l = look_n(len ? copy : NULL, len, path);
	free(copy);
	return l;
}

#define CHECK_STRING(doc, path, expect) \
	do { \
		lookup l_ = look((doc), (path)); \
		CHECK_INT(l_.r, ==, JSON_PATH_STRING); \
		CHECK_STR(l_.out, (expect)); \
		CHECK_INT(l_.outlen, ==, strlen(expect)); \
	} while (0)

#define CHECK_NOT_STRING(doc, path, tname) \
	do { \
		lookup l_ = look((doc), (path)); \
		CHECK_INT(l_.r, ==, JSON_PATH_NOT_STRING); \
		CHECK_STR(l_.type, (tname)); \
	} while (0)

#define CHECK_RESULT(doc, path, res) \
	do { \
		lookup l_ = look((doc), (path)); \
		CHECK_MSG(l_.r == (res), "doc \"%s\" path \"%s\": got %d, want %d (%s)", \
				  (doc), (path), (int) l_.r, (int) (res), l_.err); \
	} while (0)

#define CHECK_INVALID_N(doc, len) \
	do { \
		lookup l_ = look_heap((doc), (len), "a"); \
		CHECK_MSG(l_.r == JSON_PATH_INVALID && l_.err[0] != '\0', \
				  "doc \"%.*s\" (%zu bytes): got %d, err \"%s\"", \
				  (int) (len), (doc), (size_t) (len), (int) l_.r, l_.err); \
	} while (0)

#define CHECK_INVALID(doc) CHECK_INVALID_N((doc), strlen(doc))

static void
test_found(void)
{
	lookup		l;

	CHECK_STRING("{\"stream_id\":\"abc\"}", "stream_id", "abc");
	CHECK_STRING(" \t\r\n{ \"a\" : \"x\" , \"stream_id\" : \"s-1\" } \n", "stream_id", "s-1");
	CHECK_STRING("{\"ts\":1,\"metadata\":{\"source\":{\"x\":[1,{\"stream_id\":\"no\"}]},"
				 "\"stream_id\":\"orders-eu\"},\"v\":[true,null]}",
				 "metadata.stream_id", "orders-eu");
	CHECK_STRING("{\"a\":{\"b\":{\"c\":\"deep\"}}}", "a.b.c", "deep");
	CHECK_STRING("{\"a\":{\"b\":{\"c\":\"deep\"},\"d\":\"sib\"}}", "a.d", "sib");
	CHECK_STRING("{\"a\":\"\"}", "a", "");
	/* a value somewhere else with the same leaf name is not it */
	CHECK_RESULT("{\"x\":{\"c\":\"no\"},\"a\":{\"b\":{}}}", "a.b.c", JSON_PATH_MISSING);
	CHECK_RESULT("{\"c\":\"no\",\"a\":{\"b\":{\"c\":1}}}", "a.b.c", JSON_PATH_NOT_STRING);

	/* escapes decoded */
	CHECK_STRING("{\"a\":\"l1\\nl2\\t\\\"q\\\"\\\\\\/\\b\\f\\r\"}", "a", "l1\nl2\t\"q\"\\/\b\f\r");
	CHECK_STRING("{\"a\":\"caf\\u00e9\"}", "a", "caf\xc3\xa9");
	CHECK_STRING("{\"a\":\"\\ud83d\\ude00\"}", "a", "\xf0\x9f\x98\x80");
	CHECK_STRING("{\"a\":\"\\u20AC \\u0041\"}", "a", "\xe2\x82\xac A");
	CHECK_STRING("{\"a\":\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}", "a",
				 "raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
	/* \u0000 decodes to a NUL byte, counted in outlen */
	l = look("{\"a\":\"x\\u0000y\"}", "a");
	CHECK_INT(l.r, ==, JSON_PATH_STRING);
	CHECK_INT(l.outlen, ==, 3);
	CHECK(memcmp(l.out, "x\0y", 4) == 0);

	/* keys compared unescaped */
	CHECK_STRING("{\"stream\\u005fid\":\"k1\"}", "stream_id", "k1");
	CHECK_STRING("{\"meta\\u0064ata\":{\"\\u0073tream_id\":\"k2\"}}", "metadata.stream_id", "k2");
	CHECK_STRING("{\"caf\\u00e9\":\"k3\"}", "caf\xc3\xa9", "k3");
	CHECK_STRING("{\"a\\\"b\":\"k4\"}", "a\"b", "k4");
	/* prefixes and extensions of a segment do not match */
	CHECK_RESULT("{\"stream\":\"x\",\"stream_idx\":\"y\"}", "stream_id", JSON_PATH_MISSING);
	CHECK_RESULT("{\"stream_id\\u0000\":\"x\"}", "stream_id", JSON_PATH_MISSING);
}

static void
test_not_string(void)
{
	CHECK_NOT_STRING("{\"a\":12}", "a", "number");
	CHECK_NOT_STRING("{\"a\":-0.5e+10}", "a", "number");
	CHECK_NOT_STRING("{\"a\":true}", "a", "boolean");
	CHECK_NOT_STRING("{\"a\":false}", "a", "boolean");
	CHECK_NOT_STRING("{\"a\":null}", "a", "null");
	CHECK_NOT_STRING("{\"a\":{\"b\":\"x\"}}", "a", "object");
	CHECK_NOT_STRING("{\"a\":{}}", "a", "object");
	CHECK_NOT_STRING("{\"a\":[\"x\"]}", "a", "array");
	CHECK_NOT_STRING("{\"a\":[]}", "a", "array");
	CHECK_NOT_STRING("{\"m\":{\"a\":1}}", "m.a", "number");
}

static void
test_missing(void)
{
	CHECK_RESULT("{}", "a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"b\":\"x\"}", "a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":{\"b\":\"x\"}}", "m.a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":\"x\"}", "m.a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":1}", "m.a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":null}", "m.a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":[{\"a\":\"x\"}]}", "m.a", JSON_PATH_MISSING);
	CHECK_RESULT("[{\"a\":\"x\"}]", "a", JSON_PATH_MISSING);
	CHECK_RESULT("\"a\"", "a", JSON_PATH_MISSING);
	CHECK_RESULT("1", "a", JSON_PATH_MISSING);
	CHECK_RESULT("null", "a", JSON_PATH_MISSING);
	/* a key one level too deep or too shallow */
	CHECK_RESULT("{\"x\":{\"a\":\"v\"}}", "a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"a\":\"v\",\"x\":{}}", "x.a", JSON_PATH_MISSING);
}

static void
test_duplicates(void)
{
	CHECK_STRING("{\"a\":\"first\",\"a\":\"last\"}", "a", "last");
	CHECK_STRING("{\"a\":\"a-long-first-value\",\"a\":\"b\"}", "a", "b");
	CHECK_NOT_STRING("{\"a\":\"x\",\"a\":7}", "a", "number");
	CHECK_STRING("{\"a\":7,\"a\":\"x\"}", "a", "x");
	/* a later intermediate object replaces the earlier subtree */
	CHECK_RESULT("{\"m\":{\"s\":\"x\"},\"m\":{\"t\":\"y\"}}", "m.s", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":{\"s\":\"x\"},\"m\":5}", "m.s", JSON_PATH_MISSING);
	CHECK_STRING("{\"m\":{\"t\":\"y\"},\"m\":{\"s\":\"x\"}}", "m.s", "x");
	CHECK_STRING("{\"m\":{\"s\":\"x\",\"s\":\"z\"},\"k\":1}", "m.s", "z");
	CHECK_STRING("{\"m\":{\"n\":{\"s\":\"1\"}},\"m\":{\"n\":{\"s\":\"2\"}}}", "m.n.s", "2");
	CHECK_RESULT("{\"m\":{\"n\":{\"s\":\"1\"}},\"m\":{\"n\":{}}}", "m.n.s", JSON_PATH_MISSING);
	CHECK_RESULT("{\"m\":{\"n\":{\"s\":\"1\"},\"n\":[]}}", "m.n.s", JSON_PATH_MISSING);
}

static void
test_bad_path(void)
{
	static const char *const bad[] = {"", ".", "a.", ".a", "a..b", "..", "a.b."};
	size_t		i;
	lookup		l;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_RESULT("{\"a\":{\"b\":\"x\"}}", bad[i], JSON_PATH_BAD_PATH);
	l = look_n("{}", 2, NULL);
	CHECK_INT(l.r, ==, JSON_PATH_BAD_PATH);
}

static void
test_truncation(void)
{
	char		out[4];
	size_t		outlen = 0;
	const char *doc = "{\"a\":\"0123456789\"}";
	json_path_result r;

	memset(out, 'X', sizeof(out));
	r = json_path_lookup(doc, strlen(doc), "a", out, 4, &outlen, NULL, NULL, 0);
	CHECK_INT(r, ==, JSON_PATH_STRING);
	CHECK_STR(out, "012");
	CHECK_INT(outlen, ==, 10);

	/* truncation in the middle of an escape's bytes */
	doc = "{\"a\":\"ab\\u00e9cd\"}";
	memset(out, 'X', sizeof(out));
	r = json_path_lookup(doc, strlen(doc), "a", out, 4, &outlen, NULL, NULL, 0);
	CHECK_INT(r, ==, JSON_PATH_STRING);
	CHECK(memcmp(out, "ab\xc3\0", 4) == 0);
	CHECK_INT(outlen, ==, 6);

	/* outcap 1 and 0 */
	r = json_path_lookup(doc, strlen(doc), "a", out, 1, &outlen, NULL, NULL, 0);
	CHECK_INT(r, ==, JSON_PATH_STRING);
	CHECK_INT(out[0], ==, 0);
	CHECK_INT(outlen, ==, 6);
	r = json_path_lookup(doc, strlen(doc), "a", NULL, 0, &outlen, NULL, NULL, 0);
	CHECK_INT(r, ==, JSON_PATH_STRING);
	CHECK_INT(outlen, ==, 6);
}

static void
test_invalid(void)
{
	static const char *const bad[] = {
		"{\"a\":\"x\"} x", "{\"a\":\"x\"}}", "{\"a\":1}{}", "1 2", "[1]]",
		"{\"a\":1,}", "[1,]", "[,1]", "{,}", "{\"a\" 1}", "{\"a\"}",
		"{'a':1}", "{\"a\":'x'}", "{a:1}", "{1:1}",
		"01", "-01", "1.", ".5", "-", "1e", "1e+", "+1", "1.e5", "--1", "0x10",
		"NaN", "Infinity", "-Infinity", "tru", "nul", "True", "falsey", "nulll",
		"\"a\tb\"", "\"a\nb\"", "\"\x1f\"", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\U0041\"",
		"\"\\ud800\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"\\ud800\\ud800\"",
		"\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xff\"", "\"\x80\"",
		"\"\xc3\"", "\"\xe2\x82\"", "\"\xf0\x9f\x98\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"",
		"\"\xc3\x28\"", "{\"\xc3\":1}",
		"[1 2]", "{\"a\":1 \"b\":2}", "[\"a\" \"b\"]", "{\"a\"::1}", "[}", "{]",
		"\"abc", "[", "{", "{\"a\":", "\f{}", "{}\v", "\xef\xbb\xbf{}",
		"[1,,2]", "[-]", "[1e5.0]", "{\"a\":1}/", "// c\n{}",
	};
	static const char nul_in[] = "{\"a\":\"x\0y\"}";
	static const char nul_out[] = "{\"a\":1\0}";
	static const char nul_end[] = "{}\0";
	size_t		i;
	lookup		l;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INVALID(bad[i]);
	CHECK_INVALID_N(nul_in, sizeof(nul_in) - 1);
	CHECK_INVALID_N(nul_out, sizeof(nul_out) - 1);
	CHECK_INVALID_N(nul_end, sizeof(nul_end) - 1);

	/* empty, NULL and whitespace-only documents */
	l = look_n(NULL, 0, "a");
	CHECK_INT(l.r, ==, JSON_PATH_INVALID);
	CHECK_STR(l.err, "empty document");
	CHECK_INVALID_N("", 0);
	CHECK_INVALID(" ");
	CHECK_INVALID(" \t\r\n ");

	/* messages carry the byte offset */
	l = look("{\"a\": x}", "a");
	CHECK_STR(l.err, "unexpected character 'x' at byte 6");
	l = look("{\"a\":\"abc", "a");
	CHECK_STR(l.err, "unterminated string starting at byte 5");
	l = look("{\"a\":\"ab\xff\"}", "a");
	CHECK_STR(l.err, "invalid UTF-8 at byte 8");
	l = look("{\"a\":\"x\"} z", "a");
	CHECK(strstr(l.err, "at byte 10") != NULL);

	/* a tiny err buffer is NUL-terminated, and NULL err is accepted */
	{
		char		small[8];
		json_path_result r;

		memset(small, 'X', sizeof(small));
		r = json_path_lookup("{x}", 3, "a", NULL, 0, NULL, NULL, small, sizeof(small));
		CHECK_INT(r, ==, JSON_PATH_INVALID);
		CHECK_INT(strlen(small), ==, 7);
		r = json_path_lookup("{x}", 3, "a", NULL, 0, NULL, NULL, NULL, 0);
		CHECK_INT(r, ==, JSON_PATH_INVALID);
	}

	/* valid documents, for contrast */
	CHECK_RESULT("0", "a", JSON_PATH_MISSING);
	CHECK_RESULT("-0.0e-0", "a", JSON_PATH_MISSING);
	CHECK_RESULT("[1E5, 1e+5, -12.5e-3, 0, [], {}, \"\", true, false, null]", "a", JSON_PATH_MISSING);
	CHECK_RESULT("{\"a\":\"\\/\\ud83d\\ude00\\uDBFF\\uDFFF\"}", "a", JSON_PATH_STRING);
	CHECK_RESULT("{\"\":{\"a\":\"x\"}}", "a", JSON_PATH_MISSING);
}

/* Every proper prefix of a valid document is invalid. */
static void
test_prefixes(void)
{
	static const char *const docs[] = {
		/* one document split over two lines (parenthesised: clang checks for a missing comma) */
		("{\"ts\":1712345678.25,\"metadata\":{\"stream_id\":\"orders\\u00e9\\ud83d\\ude00\","
		 "\"tags\":[\"a\",\"b\\n\",{\"k\":null}],\"ok\":true,\"no\":false},\"v\":-1.5e-3}"),
		"{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : \"\xe2\x82\xac\" }",
	};
	size_t		i,
				n;
	unsigned long bad = 0;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
	{
		size_t		len = strlen(docs[i]);

		CHECK_INT(look_heap(docs[i], len, "metadata.stream_id").r, !=, JSON_PATH_INVALID);
		for (n = 0; n < len; n++)
			if (look_heap(docs[i], n, "metadata.stream_id").r != JSON_PATH_INVALID)
			{
				printf("prefix of %zu bytes of doc %zu accepted\n", n, i);
				bad++;
			}
	}
	CHECK_INT(bad, ==, 0);
}

static void
test_deep(void)
{
	size_t		n = 100000,
				i,
				pos;
	char	   *doc = malloc(9000 * 6 + 64);
	lookup		l;

	/* 100,000 nested arrays: too deep */
	{
		char	   *arr = malloc(2 * n);

		memset(arr, '[', n);
		memset(arr + n, ']', n);
		l = look_heap(arr, 2 * n, "a");
		CHECK_INT(l.r, ==, JSON_PATH_INVALID);
		CHECK_STR(l.err, "nested deeper than 10000 levels at byte 10000");
		/* exactly JSON_PATH_MAX_DEPTH levels are fine */
		l = look_heap(arr + n - JSON_PATH_MAX_DEPTH, 2 * JSON_PATH_MAX_DEPTH, "a");
		CHECK_INT(l.r, ==, JSON_PATH_MISSING);
		l = look_heap(arr + n - JSON_PATH_MAX_DEPTH - 1, 2 * JSON_PATH_MAX_DEPTH + 2, "a");
		CHECK_INT(l.r, ==, JSON_PATH_INVALID);
		free(arr);
	}

	/* 9,000 nested objects {"a":{"a":...{"a":"leaf"}...}, "s":"top"} */
	pos = 0;
	doc[pos++] = '{';
	memcpy(doc + pos, "\"s\":\"top\",", 10);
	pos += 10;
	for (i = 0; i < 9000 - 1; i++)
	{
		memcpy(doc + pos, "\"a\":{", 5);
		pos += 5;
	}
	memcpy(doc + pos, "\"a\":\"leaf\"", 10);
	pos += 10;
	for (i = 0; i < 9000; i++)
		doc[pos++] = '}';
	l = look_heap(doc, pos, "s");
	CHECK_INT(l.r, ==, JSON_PATH_STRING);
	CHECK_STR(l.out, "top");
	l = look_heap(doc, pos, "a.a.a");
	CHECK_INT(l.r, ==, JSON_PATH_NOT_STRING);
	CHECK_STR(l.type, "object");
	l = look_heap(doc, pos, "a.b");
	CHECK_INT(l.r, ==, JSON_PATH_MISSING);
	{
		/* the full 9,000-segment path reaches the leaf */
		char	   *path = malloc(9000 * 2);

		for (i = 0; i < 9000; i++)
		{
			path[2 * i] = 'a';
			path[2 * i + 1] = '.';
		}
		path[2 * 9000 - 1] = '\0';
		l = look_heap(doc, pos, path);
		CHECK_INT(l.r, ==, JSON_PATH_STRING);
		CHECK_STR(l.out, "leaf");
		free(path);
	}
	/* one closing brace short */
	l = look_heap(doc, pos - 1, "s");
	CHECK_INT(l.r, ==, JSON_PATH_INVALID);
	free(doc);
}

/* ---- randomized mutations ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Brackets and braces balance, and match, outside strings. */
static int
naive_balanced(const unsigned char *d, size_t len)
{
	char		stack[256];
	size_t		depth = 0,
				i;
	int			in_str = 0;

	for (i = 0; i < len; i++)
	{
		unsigned char c = d[i];

		if (in_str)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '{' || c == '[')
		{
			if (depth == sizeof(stack))
				return 0;
			stack[depth++] = (char) c;
		}
		else if (c == '}' || c == ']')
		{
			if (depth == 0 || stack[depth - 1] != (c == '}' ? '{' : '['))
				return 0;
			depth--;
		}
	}
	return depth == 0 && !in_str;
}

static void
test_random(void)
{
	static const char *const seeds[] = {
		/* one document split over two lines (parenthesised: clang checks for a missing comma) */
		("{\"ts\":1712345678.25,\"metadata\":{\"stream_id\":\"orders\\u00e9\\ud83d\\ude00\","
		 "\"tags\":[\"a\",\"b\\n\",{\"k\":null}],\"ok\":true,\"no\":false},\"v\":-1.5e-3}"),
		"{\"metadata\":{\"stream_id\":\"x\"},\"metadata\":{\"stream_id\":7}}",
		"[{\"a\":[[],{}]},\"\xe2\x82\xac\",0,-0.1E+2]",
		"{\"metadata\" : { \"stream\\u005fid\" : \"caf\xc3\xa9 \\\"q\\\"\" } }",
	};
	static const char alphabet[] = "{}[]\":,\\ -+.0123456789eEtrufalsn\x00\x1f\x7f\x80\xbf\xc3\xed\xf0\xff";
	unsigned char buf[512];
	unsigned long iters = 200000,
				k,
				bad_enum = 0,
				unbalanced = 0,
				accepted = 0;

	for (k = 0; k < iters; k++)
	{
		const char *seed = seeds[k % (sizeof(seeds) / sizeof(seeds[0]))];
		size_t		len = strlen(seed);
		int			nmut = 1 + (int) (rng() % 4),
					m;
		lookup		l;

		memcpy(buf, seed, len);
		for (m = 0; m < nmut; m++)
		{
			uint64_t	r = rng();
			size_t		at = len ? (size_t) ((r >> 8) % len) : 0;
			unsigned char c = (r >> 40) & 1 ? (unsigned char) (r >> 48)
				: (unsigned char) alphabet[(r >> 48) % (sizeof(alphabet) - 1)];

			switch (r % 3)
			{
				case 0:			/* flip / replace a byte */
					if (len)
						buf[at] = (r >> 4) & 1 ? (unsigned char) (buf[at] ^ (1u << ((r >> 5) & 7))) : c;
					break;
				case 1:			/* insert */
					if (len < sizeof(buf))
					{
						at = (size_t) ((r >> 8) % (len + 1));
						memmove(buf + at + 1, buf + at, len - at);
						buf[at] = c;
						len++;
					}
					break;
				case 2:			/* delete */
					if (len)
					{
						memmove(buf + at, buf + at + 1, len - at - 1);
						len--;
					}
					break;
			}
		}
		l = look_heap((const char *) buf, len, k & 1 ? "metadata.stream_id" : "a");
		if (l.r > JSON_PATH_BAD_PATH || l.r < JSON_PATH_STRING || l.r == JSON_PATH_BAD_PATH)
			bad_enum++;
		if (l.r == JSON_PATH_INVALID && l.err[0] == '\0')
			bad_enum++;
		if (l.r != JSON_PATH_INVALID)
		{
			accepted++;
			if (!naive_balanced(buf, len))
				unbalanced++;
			if (l.r == JSON_PATH_STRING && l.outlen < sizeof(l.out) && strlen(l.out) > l.outlen)
				bad_enum++;
		}
	}
	CHECK_INT(bad_enum, ==, 0);
	CHECK_INT(unbalanced, ==, 0);
	CHECK_INT(accepted, >, 0);
	printf("random: %lu mutated documents, %lu accepted\n", iters, accepted);
}

int
main(void)
{
	test_found();
	test_not_string();
	test_missing();
	test_duplicates();
	test_bad_path();
	test_truncation();
	test_invalid();
	test_prefixes();
	test_deep();
	test_random();
	return UNIT_REPORT();
}
