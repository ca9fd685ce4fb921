/*
 * fuzz_json_path.c -- json_path_lookup (src/message/json_path.c) on arbitrary
 * paths and documents.
 *
 * Input: the path, a newline, then the document (no newline: the path is "a"
 * and the whole input is the document).  Checks, besides memory safety on
 * exactly-sized buffers:
 *  - the result is one of the enum's values, and the same whatever output
 *    buffers are given (full, tiny, or none at all);
 *  - JSON_PATH_BAD_PATH exactly when the path is empty or has an empty
 *    segment;
 *  - JSON_PATH_STRING: *outlen fits in the document, the value is valid
 *    UTF-8 and NUL-terminated, a tiny buffer receives a NUL-terminated prefix
 *    of it; every other result leaves out empty, *outlen 0, and sets
 *    *type_name only for JSON_PATH_NOT_STRING (to one of the five names) and
 *    err only for JSON_PATH_INVALID (non-empty, NUL-terminated, truncated
 *    messages are prefixes of the full one);
 *  - validity does not depend on the path: a document is JSON_PATH_INVALID
 *    for one path iff for any other (so invalid JSON never gives a STRING);
 *  - a valid top-level value that is not an object gives JSON_PATH_MISSING;
 *  - wrapping a valid document as {"w":doc} and looking up "w.<path>" gives
 *    the same answer (unless the extra level crosses JSON_PATH_MAX_DEPTH).
 */
#include "message/json_path.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct lookup
{
	json_path_result r;
	char	   *out;
	size_t		outcap;
	size_t		outlen;
	const char *type;
	char		err[256];
} lookup;

static void
run(lookup *l, const char *doc, size_t len, const char *path, size_t outcap,
	size_t errlen)
{
	l->outcap = outcap;
	l->out = malloc(outcap ? outcap : 1);
	CHECK(l->out != NULL);
	memset(l->out, 0x55, outcap);
	memset(l->err, 0x55, sizeof(l->err));
	l->outlen = 12345;
	l->type = "unset";
	l->r = json_path_lookup(doc, len, path, l->out, outcap, &l->outlen, &l->type,
							l->err, errlen);
	CHECK(l->r >= JSON_PATH_STRING && l->r <= JSON_PATH_BAD_PATH);
	if (errlen > 0)
		CHECK(memchr(l->err, '\0', errlen) != NULL);
}

static bool
path_is_bad(const char *path)
{
	size_t		n = strlen(path);

	return n == 0 || path[0] == '.' || path[n - 1] == '.' || strstr(path, "..") != NULL;
}

/* The output contract of one lookup. */
static void
check_one(const lookup *l, size_t errlen, size_t doclen)
{
	if (l->r == JSON_PATH_STRING)
	{
		size_t		copied = l->outcap ? (l->outlen < l->outcap - 1 ? l->outlen : l->outcap - 1) : 0;

		CHECK(l->outlen <= doclen);
		CHECK(l->type == NULL);
		if (l->outcap > 0)
			CHECK(l->out[copied] == '\0');
	}
	else
	{
		CHECK(l->outlen == 0);
		if (l->outcap > 0)
			CHECK(l->out[0] == '\0');
		if (l->r == JSON_PATH_NOT_STRING)
		{
			CHECK(l->type != NULL);
			CHECK(strcmp(l->type, "number") == 0 || strcmp(l->type, "boolean") == 0 ||
				  strcmp(l->type, "null") == 0 || strcmp(l->type, "object") == 0 ||
				  strcmp(l->type, "array") == 0);
		}
		else
			CHECK(l->type == NULL);
	}
	if (errlen > 0)
	{
		if (l->r == JSON_PATH_INVALID)
			CHECK(l->err[0] != '\0');
		else
			CHECK(l->err[0] == '\0');
	}
}

static void
done(lookup *l)
{
	free(l->out);
	l->out = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t		pathlen = nl ? (size_t) (nl - data) : 0;
	char	   *path = malloc(pathlen + 3);
	size_t		doclen = nl ? size - pathlen - 1 : size;
	char	   *doc = malloc(doclen ? doclen : 1);
	lookup		full,
				tiny,
				other,
				wrapped;
	json_path_result bare;
	size_t		i;

	CHECK(path != NULL && doc != NULL);
	if (nl)
	{
		memcpy(path, data, pathlen);
		path[pathlen] = '\0';	/* may be shorter: stops at a NUL byte */
	}
	else
		strcpy(path, "a");
	memcpy(doc, nl ? nl + 1 : data, doclen);

	run(&full, doc, doclen, path, doclen + 1, sizeof(full.err));
	check_one(&full, sizeof(full.err), doclen);
	run(&tiny, doc, doclen, path, 1 + size % 5, 16);
	check_one(&tiny, 16, doclen);
	bare = json_path_lookup(doc, doclen, path, NULL, 0, NULL, NULL, NULL, 0);

	/* the same answer whatever the output buffers */
	CHECK(tiny.r == full.r && bare == full.r);
	CHECK((full.r == JSON_PATH_BAD_PATH) == path_is_bad(path));
	if (full.r == JSON_PATH_STRING)
	{
		CHECK(tiny.outlen == full.outlen);
		CHECK(full.out[full.outlen] == '\0');
		CHECK(valid_utf8((const unsigned char *) full.out, full.outlen));
		CHECK(memcmp(tiny.out, full.out, strlen(tiny.out)) == 0);
		CHECK(strlen(tiny.out) <= tiny.outcap - 1);
	}
	if (full.r == JSON_PATH_INVALID)
		CHECK(strncmp(tiny.err, full.err, strlen(tiny.err)) == 0);

	/* validity does not depend on the path */
	run(&other, doc, doclen, "a", 8, sizeof(other.err));
	check_one(&other, sizeof(other.err), doclen);
	if (full.r != JSON_PATH_BAD_PATH)
	{
		CHECK((other.r == JSON_PATH_INVALID) == (full.r == JSON_PATH_INVALID));
		if (full.r == JSON_PATH_INVALID)
			CHECK(strcmp(other.err, full.err) == 0);
	}

	/* a path names object members: a top-level non-object has none */
	for (i = 0; i < doclen && doc[i] != '\0' && strchr(" \t\r\n", doc[i]) != NULL; i++)
		;
	if (other.r != JSON_PATH_INVALID && i < doclen && doc[i] != '{')
		CHECK(other.r == JSON_PATH_MISSING && (full.r == JSON_PATH_MISSING || full.r == JSON_PATH_BAD_PATH));

	/* {"w":doc} at w.<path> is doc at <path> */
	if (full.r != JSON_PATH_BAD_PATH)
	{
		char	   *wdoc = malloc(doclen + 6);
		char	   *wpath = malloc(strlen(path) + 3);

		CHECK(wdoc != NULL && wpath != NULL);
		memcpy(wdoc, "{\"w\":", 5);
		memcpy(wdoc + 5, doc, doclen);
		wdoc[doclen + 5] = '}';
		strcpy(wpath, "w.");
		strcat(wpath, path);
		run(&wrapped, wdoc, doclen + 6, wpath, doclen + 1, sizeof(wrapped.err));
		check_one(&wrapped, sizeof(wrapped.err), doclen + 6);
		/* (an invalid doc may become valid: {"w":{},"x":1} from {},"x":1) */
		if (full.r != JSON_PATH_INVALID &&
			!(wrapped.r == JSON_PATH_INVALID && strstr(wrapped.err, "nested deeper") != NULL))
		{
			CHECK(wrapped.r == full.r);
			CHECK(wrapped.outlen == full.outlen);
			CHECK(memcmp(wrapped.out, full.out, full.outlen + 1) == 0);
			CHECK(wrapped.type == full.type ||
				  (wrapped.type && full.type && strcmp(wrapped.type, full.type) == 0));
		}
		done(&wrapped);
		free(wdoc);
		free(wpath);
	}

	done(&full);
	done(&tiny);
	done(&other);
	free(path);
	free(doc);
	return 0;
}
