/*
 * stream_config.h -- detector settings from jsonb (see stream_config.c)
 */
#ifndef DRIFTLOCK_STREAM_CONFIG_H
#define DRIFTLOCK_STREAM_CONFIG_H

#include "utils/jsonb.h"

#include "cbad/cbad.h"

/* Apply the keys of a jsonb object to cfg; errors name the bad key. */
extern void driftlock_config_apply_jsonb(Jsonb *jb, cbad_config *cfg);

/* Defaults, then the keys of jb (which may be NULL). */
extern void driftlock_config_from_jsonb(Jsonb *jb, cbad_config *cfg);

#endif
