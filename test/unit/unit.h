/*
 * unit.h -- a tiny assertion framework for the C unit tests
 *
 * Every CHECK counts as one check; a failed check prints one line with
 * file:line, the expression and the values, and the run goes on.  Call
 * UNIT_REPORT() at the end of main: it prints "N passed, M failed" and
 * returns the exit status (0 only when nothing failed).
 */
#ifndef UNIT_H
#define UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned long unit_passed;
static unsigned long unit_failed;

static inline int
unit_record(int ok)
{
	if (ok)
		unit_passed++;
	else
		unit_failed++;
	return ok;
}

/* A plain condition; the message (printf-style) gives the values. */
#define CHECK_MSG(cond, ...) \
	do { \
		if (!unit_record((cond) ? 1 : 0)) \
		{ \
			printf("%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__); \
			printf("\n"); \
			fflush(stdout); \
		} \
	} while (0)

#define CHECK(cond) CHECK_MSG(cond, "false")

#define CHECK_INT(a, op, b) \
	do { \
		long long unit_a_ = (long long) (a), unit_b_ = (long long) (b); \
		CHECK_MSG(unit_a_ op unit_b_, "%s = %lld, %s = %lld", #a, unit_a_, #b, unit_b_); \
	} while (0)

#define CHECK_DBL(a, op, b) \
	do { \
		double unit_a_ = (double) (a), unit_b_ = (double) (b); \
		CHECK_MSG(unit_a_ op unit_b_, "%s = %.17g, %s = %.17g", #a, unit_a_, #b, unit_b_); \
	} while (0)

#define CHECK_NEAR(a, b, tol) \
	do { \
		double unit_a_ = (double) (a), unit_b_ = (double) (b); \
		double unit_d_ = unit_a_ > unit_b_ ? unit_a_ - unit_b_ : unit_b_ - unit_a_; \
		CHECK_MSG(unit_d_ <= (tol), "%s = %.17g, %s = %.17g (tolerance %g)", \
				  #a, unit_a_, #b, unit_b_, (double) (tol)); \
	} while (0)

#define CHECK_STR(a, b) \
	do { \
		const char *unit_a_ = (a), *unit_b_ = (b); \
		CHECK_MSG(unit_a_ != NULL && unit_b_ != NULL && strcmp(unit_a_, unit_b_) == 0, \
				  "%s = \"%s\", expected \"%s\"", #a, unit_a_ ? unit_a_ : "(null)", \
				  unit_b_ ? unit_b_ : "(null)"); \
	} while (0)

#define UNIT_REPORT() \
	(printf("%lu passed, %lu failed\n", unit_passed, unit_failed), unit_failed == 0 ? 0 : 1)

#endif
