/*
 * driftlock.h
 *		State shared by the PostgreSQL glue of the driftlock extension.
 */
#ifndef DRIFTLOCK_H
#define DRIFTLOCK_H

/*
 * True when the library was loaded through shared_preload_libraries, i.e.
 * in the postmaster before startup finished.  Only then can restart-only
 * settings be real PGC_POSTMASTER settings, and only then can static
 * background workers and shared memory be requested.
 */
extern bool driftlock_preloaded;

#endif							/* DRIFTLOCK_H */
