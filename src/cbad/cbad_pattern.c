/*
 * cbad_pattern.c -- what kind of event this is: patterns and the per-stream
 * table of them
 *
 * An event's pattern is its first CBAD_PATTERN_TOKENS tokens with the parts
 * that vary between events of one kind masked: every digit run becomes "0",
 * every hex id of 8 or more characters (with at least one digit) "x", and
 * names of months and days "D".  Tokens are separated by white space and by
 * the punctuation of JSON and of key=value logs, and a token that keeps no
 * two letters of its own in a row once masked (a timestamp, a counter, an
 * id, a date) is left out -- unless the event has no other -- so
 *
 *   Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown
 *   {"ts":"2026-11-03T04:05:06Z","service":"auth","msg":"token expired"}
 *
 * have the patterns "combo sshd pam_unix check pass user unknown" and "ts
 * service auth msg token expired".  The pattern id is a 63-bit hash of that
 * text, so it depends on the event alone: the same event has the same
 * pattern in every stream, in driftlock_score() and after a restore.
 *
 * Each detector keeps a bounded table of the patterns it has seen (the least
 * recently seen is forgotten first): when each was first and last seen, how
 * often, and whether it is known -- an event of it was learnt as normal.
 * When the last learnt event of a known pattern leaves the baseline, the
 * table keeps it as the pattern's exemplar, which goes into the dictionary
 * in its place (cbad_detector.c): a message that is rare but normal stays
 * explained after the recent baseline has forgotten it.
 */
#include "cbad_internal.h"

#include <string.h>

/* Classes of bytes (a table, built on first use: the tokenizer is per event). */
enum
{
	C_SEP = 1,					/* separates tokens */
	C_DIGIT = 2,
	C_HEX = 4,					/* 0-9, a-f, A-F */
	C_WORD = 8					/* letters, digits and non-ASCII bytes */
};

static uint8_t classes[256];

static void
init_classes(void)
{
	static const char separators[] = "{}[]()<>\"',;=|`";

	for (int c = 0; c < 256; c++)
	{
		uint8_t		k = 0;

		if (c <= ' ' || c == 0x7f || (c != 0 && strchr(separators, c) != NULL))
			k |= C_SEP;
		if (c >= '0' && c <= '9')
			k |= C_DIGIT | C_HEX | C_WORD;
		if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
			k |= C_HEX;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
			k |= C_WORD;
		classes[c] = k;
	}
}

typedef struct text_out
{
	char	   *buf;
	size_t		cap;
	size_t		len;
	uint64_t	hash;
} text_out;

static void
put(text_out *o, uint8_t c)
{
	/* ASCII only: a pattern is shown in SQL whatever the event's encoding */
	if (c >= 0x80 || c < ' ')
		c = '?';
	o->hash = (o->hash ^ c) * 1099511628211ULL;
	if (o->len + 1 < o->cap)
		o->buf[o->len] = (char) c;
	o->len++;
}

/*
 * Names of months and days, which vary between events of one kind as much as
 * the digits of a date: three-letter abbreviations and full names, in any
 * case.
 */
static bool
is_date_word(const uint8_t *t, size_t len)
{
	static const struct
	{
		const char *name;
		size_t		len;
	}			names[] = {
		{"january", 7}, {"february", 8}, {"march", 5}, {"april", 5}, {"may", 3},
		{"june", 4}, {"july", 4}, {"august", 6}, {"september", 9}, {"october", 7},
		{"november", 8}, {"december", 8}, {"monday", 6}, {"tuesday", 7},
		{"wednesday", 9}, {"thursday", 8}, {"friday", 6}, {"saturday", 8}, {"sunday", 6}
	};

	/* the initials of the names: j f m a s o n d t w */
	const uint32_t initials = 1u << ('j' - 'a') | 1u << ('f' - 'a') | 1u << ('m' - 'a') |
		1u << ('a' - 'a') | 1u << ('s' - 'a') | 1u << ('o' - 'a') | 1u << ('n' - 'a') |
		1u << ('d' - 'a') | 1u << ('t' - 'a') | 1u << ('w' - 'a');
	uint8_t		c0 = t[0] | 0x20;

	if (len < 3 || len > 9 || c0 < 'a' || c0 > 'z' || !(initials >> (c0 - 'a') & 1))
		return false;
	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
	{
		size_t		i;

		if (len != 3 && len != names[n].len)
			continue;
		if ((uint8_t) names[n].name[0] != c0)
			continue;
		for (i = 1; i < len; i++)
			if ((t[i] | 0x20) != (uint8_t) names[n].name[i])
				break;
		if (i == len)
			return true;
	}
	return false;
}

/* A token masked, before it goes into the pattern. */
typedef struct token_out
{
	uint8_t		buf[CBAD_PATTERN_TOKEN_BYTES];
	size_t		len;
	int			run;			/* letters of the event's own in a row */
	bool		literal;		/* holds two of them in a row: a word, not
								 * only a mask's "0", "x" or "D" or the
								 * single letters of 2026-11-03T04:05Z,
								 * 12.5s or u20109 */
} token_out;

static void
tput(token_out *t, uint8_t c, bool letter)
{
	if (t->len < CBAD_PATTERN_TOKEN_BYTES)
	{
		t->buf[t->len++] = c;
		t->run = letter ? t->run + 1 : 0;
		t->literal |= t->run >= 2;
	}
}

/* The masked token t[0, len).  One pass: each run of hex digits is looked at once. */
static void
mask_token(token_out *o, const uint8_t *t, size_t len)
{
	size_t		i = 0;

	o->len = 0;
	o->run = 0;
	o->literal = false;
	if (is_date_word(t, len))
	{
		tput(o, 'D', false);
		return;
	}
	while (i < len && o->len < CBAD_PATTERN_TOKEN_BYTES)
	{
		size_t		j = i;
		bool		digit = false;

		if (!(classes[t[i]] & C_HEX))
		{
			/* a hex id that masking already replaced (cbad_mask) */
			while (j < len && t[j] == 'x')
				j++;
			if (j - i >= 4)
			{
				tput(o, 'x', false);
				i = j;
			}
			else
			{
				tput(o, t[i], (classes[t[i]] & (C_WORD | C_DIGIT)) == C_WORD);
				i++;
			}
			continue;
		}
		while (j < len && (classes[t[j]] & C_HEX))
			digit |= (classes[t[j++]] & C_DIGIT) != 0;
		if (j - i >= 8 && digit)
			tput(o, 'x', false);
		else
			for (size_t k = i; k < j; k++)
			{
				/* a run of digits is one "0" */
				if (!(classes[t[k]] & C_DIGIT))
					tput(o, t[k], true);
				else if (k == i || !(classes[t[k - 1]] & C_DIGIT))
					tput(o, '0', false);
			}
		i = j;
	}
}

/*
 * The first CBAD_PATTERN_TOKENS tokens of the event into o; with
 * literal_only, only the tokens that keep two letters of their own in a row
 * once masked (timestamps, counters, ids and names of days vary between
 * events of one kind and say nothing about it).  How many.
 */
static int
put_tokens(text_out *o, const uint8_t *event, size_t len, bool literal_only)
{
	int			tokens = 0;
	size_t		i = 0;
	token_out	t;

	while (i < len && tokens < CBAD_PATTERN_TOKENS)
	{
		size_t		start;
		bool		word = false;

		while (i < len && (classes[event[i]] & C_SEP))
			i++;
		start = i;
		while (i < len && !(classes[event[i]] & C_SEP))
			word |= (classes[event[i++]] & C_WORD) != 0;
		/* a token of punctuation alone (":", "-") means nothing: dropped */
		if (!word)
			continue;
		mask_token(&t, event + start, i - start);
		if (literal_only && !t.literal)
			continue;
		if (tokens++ > 0)
			put(o, ' ');
		for (size_t k = 0; k < t.len; k++)
			put(o, t.buf[k]);
	}
	return tokens;
}

uint64_t
cbad_pattern_of(const uint8_t *event, size_t len, char *text, size_t textcap)
{
	text_out	o = {text, textcap, 0, 14695981039346656037ULL};

	if (classes['{'] == 0)
		init_classes();			/* idempotent: a race writes the same bytes */
	/* an event of numbers alone keeps them: its shape is all there is */
	if (put_tokens(&o, event, len, true) == 0)
		put_tokens(&o, event, len, false);
	if (textcap > 0)
		text[o.len < textcap ? o.len : textcap - 1] = '\0';
	/* a positive bigint, never 0 (0 means "no pattern" to callers) */
	o.hash ^= o.hash >> 29;
	o.hash *= 0xBF58476D1CE4E5B9ULL;
	o.hash ^= o.hash >> 32;
	o.hash &= INT64_MAX;
	return o.hash ? o.hash : 1;
}

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */

/* Index slots: a power of two, at least twice the capacity. */
static int
index_size(int cap)
{
	int			n = 16;

	while (n < 2 * cap)
		n *= 2;
	return n;
}

bool
cbad_patterns_init(cbad_mem *mem, cbad_patterns *t, int cap)
{
	int			size = index_size(cap);

	memset(t, 0, sizeof(*t));
	t->entries = cbad_mem_alloc(mem, sizeof(cbad_pattern_entry) * (size_t) cap);
	t->index = cbad_mem_alloc(mem, sizeof(int32_t) * (size_t) size);
	if (t->entries == NULL || t->index == NULL)
		return false;
	t->cap = cap;
	t->index_size = size;
	cbad_patterns_clear(mem, t);
	return true;
}

void
cbad_patterns_clear(cbad_mem *mem, cbad_patterns *t)
{
	for (int i = 0; i < t->count; i++)
		cbad_mem_free(mem, t->entries[i].exemplar);
	t->count = 0;
	t->exemplar_bytes = 0;
	for (int i = 0; i < t->index_size; i++)
		t->index[i] = -1;
}

void
cbad_patterns_release(cbad_mem *mem, cbad_patterns *t)
{
	if (t->entries != NULL)
		cbad_patterns_clear(mem, t);
	cbad_mem_free(mem, t->entries);
	cbad_mem_free(mem, t->index);
	memset(t, 0, sizeof(*t));
}

/* Index slot of id: where it is, or the empty slot where it would go. */
static int
slot_of(const cbad_patterns *t, uint64_t id)
{
	int			mask = t->index_size - 1;
	int			s = (int) (id & (uint64_t) mask);

	while (t->index[s] >= 0 && t->entries[t->index[s]].id != id)
		s = (s + 1) & mask;
	return s;
}

cbad_pattern_entry *
cbad_patterns_find(const cbad_patterns *t, uint64_t id)
{
	int			s = slot_of(t, id);

	return t->index[s] >= 0 ? &t->entries[t->index[s]] : NULL;
}

/* Rebuild the index after entries moved (rare: only when one is evicted). */
static void
reindex(cbad_patterns *t)
{
	for (int i = 0; i < t->index_size; i++)
		t->index[i] = -1;
	for (int i = 0; i < t->count; i++)
		t->index[slot_of(t, t->entries[i].id)] = (int32_t) i;
}

static void
drop_exemplar(cbad_mem *mem, cbad_patterns *t, cbad_pattern_entry *e)
{
	t->exemplar_bytes -= e->exemplar_len;
	cbad_mem_free(mem, e->exemplar);
	e->exemplar = NULL;
	e->exemplar_len = 0;
}

/* Forget the least recently seen pattern. */
static void
evict_oldest(cbad_mem *mem, cbad_patterns *t)
{
	int			oldest = 0;

	for (int i = 1; i < t->count; i++)
		if (t->entries[i].last_event < t->entries[oldest].last_event)
			oldest = i;
	drop_exemplar(mem, t, &t->entries[oldest]);
	t->entries[oldest] = t->entries[--t->count];
	reindex(t);
}

cbad_pattern_entry *
cbad_patterns_add(cbad_mem *mem, cbad_patterns *t, uint64_t id, uint64_t event)
{
	cbad_pattern_entry *e;

	if (t->count == t->cap)
		evict_oldest(mem, t);
	e = &t->entries[t->count];
	memset(e, 0, sizeof(*e));
	e->id = id;
	e->first_event = event;
	e->last_event = event;
	t->index[slot_of(t, id)] = (int32_t) t->count;
	t->count++;
	return e;
}

/* Occurrences per event since the pattern was first seen, up to event now. */
static double
rate(const cbad_pattern_entry *e, uint64_t now)
{
	return (double) e->count / (double) (now - e->first_event + 1);
}

/*
 * Keep event (its first CBAD_EXEMPLAR_BYTES bytes) as the exemplar of e,
 * replacing the one it had; then, while the exemplars take more than budget
 * bytes, drop those of the most frequent other patterns (as of event now):
 * they are the likeliest to be learnt again soon, while the rare ones are
 * what exemplars are for.  Returns false when memory is short (the table is
 * unchanged but for e's old exemplar).
 */
bool
cbad_patterns_keep_exemplar(cbad_mem *mem, cbad_patterns *t, cbad_pattern_entry *e,
							const uint8_t *event, size_t len, size_t budget, uint64_t now)
{
	uint8_t    *copy;

	if (len > CBAD_EXEMPLAR_BYTES)
		len = CBAD_EXEMPLAR_BYTES;
	drop_exemplar(mem, t, e);
	if (len == 0)
		return true;
	copy = cbad_mem_alloc(mem, len);
	if (copy == NULL)
		return false;
	memcpy(copy, event, len);
	e->exemplar = copy;
	e->exemplar_len = (uint32_t) len;
	t->exemplar_bytes += len;
	while (t->exemplar_bytes > budget)
	{
		cbad_pattern_entry *victim = e;

		/* ties go to the lower id: the order of entries is not deterministic */
		for (int i = 0; i < t->count; i++)
		{
			cbad_pattern_entry *c = &t->entries[i];
			double		rc,
						rv;

			if (c == e || c->exemplar == NULL)
				continue;
			rc = rate(c, now);
			rv = victim == e ? -1 : rate(victim, now);
			if (rc > rv || (rc == rv && c->id < victim->id))
				victim = c;
		}
		drop_exemplar(mem, t, victim);
	}
	return true;
}
