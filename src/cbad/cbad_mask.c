/*
 * cbad_mask.c -- masking of volatile tokens, and byte entropy
 *
 * Timestamps, long numbers, UUIDs, dash-joined hex ids and hex ids are
 * unique per event by design;
 * left in, they make every event look a little novel.  Masking keeps each
 * token's shape and length but not its value.  Only digit runs of 3 or more
 * digits are masked on their own: short numbers (event ids, small counts,
 * status digits) often carry the signal, and masking them was measured to
 * destroy it on id-sequence streams.
 */
#include "cbad_internal.h"

#include <math.h>
#include <string.h>

static inline bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static inline bool
is_alnum(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool
is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool
is_hex_letter(uint8_t c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Length of dash-joined hex groups at p, e.g. a UUID or a request id such as
 * "d12aa01f-8a96": at least two groups of 4+ hex digits with digits and
 * letters among them; 0 otherwise.
 */
static size_t
hex_groups_at(const uint8_t *p, size_t avail)
{
	size_t		n = 0;
	int			groups = 0;
	bool		digit = false,
				letter = false;

	for (;;)
	{
		size_t		start = n;

		while (n < avail && is_hex(p[n]))
		{
			digit |= is_digit(p[n]);
			letter |= is_hex_letter(p[n]);
			n++;
		}
		if (n - start < 4)
			return 0;
		groups++;
		if (n + 1 < avail && p[n] == '-' && is_hex(p[n + 1]))
		{
			n++;
			continue;
		}
		break;
	}
	if (groups < 2 || !digit || !letter || (n < avail && is_alnum(p[n])))
		return 0;
	return n;
}

/*
 * A numeric compound at p: digit groups joined by one of - : . / T, e.g. a
 * date, a time, a timestamp, an IP address.  Returns its length when it has
 * 3 or more groups, or 2 joined by ':' (hh:mm); 0 otherwise.
 */
static size_t
compound_at(const uint8_t *p, size_t avail)
{
	size_t		n = 0;
	int			groups = 0;
	bool		colon = false;

	for (;;)
	{
		while (n < avail && is_digit(p[n]))
			n++;
		groups++;
		if (n + 1 < avail && strchr("-:./T", p[n]) != NULL && p[n] != '\0' &&
			is_digit(p[n + 1]))
		{
			colon |= p[n] == ':';
			n++;
			continue;
		}
		break;
	}
	return (groups >= 3 || (groups == 2 && colon)) ? n : 0;
}

void
cbad_mask(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t		i = 0;

	if (len)
		memcpy(out, in, len);
	while (i < len)
	{
		uint8_t		c = in[i];
		bool		starts_token = i == 0 || !is_alnum(in[i - 1]);

		if (!is_alnum(c))
		{
			i++;
			continue;
		}
		if (starts_token)
		{
			size_t		end = i,
						n;
			bool		digit = false,
						letter = false,
						hex = true;

			/* UUIDs and request ids such as d12aa01f-8a96 */
			if ((n = hex_groups_at(in + i, len - i)) > 0)
			{
				for (size_t k = i; k < i + n; k++)
					if (in[k] != '-')
						out[k] = 'x';
				i += n;
				continue;
			}
			while (end < len && is_alnum(in[end]))
			{
				hex &= is_hex(in[end]);
				digit |= is_digit(in[end]);
				letter |= is_hex_letter(in[end]);
				end++;
			}
			/* 0x1f2e, and hex ids such as 9f86d081884c7d65 */
			if (end - i > 2 && in[i] == '0' && (in[i + 1] == 'x' || in[i + 1] == 'X'))
			{
				bool		rest_hex = true;

				for (size_t k = i + 2; k < end; k++)
					rest_hex &= is_hex(in[k]);
				if (rest_hex)
				{
					memset(out + i + 2, 'x', end - i - 2);
					i = end;
					continue;
				}
			}
			if (hex && digit && letter && end - i >= 8)
			{
				memset(out + i, 'x', end - i);
				i = end;
				continue;
			}
			if (is_digit(c) && (n = compound_at(in + i, len - i)) > 0)
			{
				for (size_t k = i; k < i + n; k++)
					if (is_digit(in[k]))
						out[k] = '0';
				i += n;
				continue;
			}
		}
		if (is_digit(c))
		{
			size_t		end = i;

			while (end < len && is_digit(in[end]))
				end++;
			if (end - i >= 3)
				memset(out + i, '0', end - i);
			i = end;
			continue;
		}
		i++;
	}
}

double
cbad_entropy(const uint8_t *data, size_t len)
{
	size_t		counts[256] = {0};
	double		h = 0.0;

	if (len == 0)
		return 0.0;
	for (size_t i = 0; i < len; i++)
		counts[data[i]]++;
	for (int b = 0; b < 256; b++)
	{
		if (counts[b])
		{
			double		p = (double) counts[b] / (double) len;

			h -= p * log2(p);
		}
	}
	return h;
}
