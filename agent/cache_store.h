/*
 * cache_store.h - the agent's store: the server's, with a local copy of
 * the archive's immutable small objects (config, index objects, snapshots)
 * in the state database (cache_store.c).
 */
#ifndef CAIRN_AGENT_CACHE_STORE_H
#define CAIRN_AGENT_CACHE_STORE_H

#include "cairn/store.h"

struct agent_state;

/*
 * A store reading config, index and snapshot objects from st's copy when
 * it has them (checked against their names) and from inner otherwise,
 * keeping what it reads and what is written through it.  Takes ownership
 * of inner (freed with the result); st must outlive it.  0 or
 * CAIRN_ENOMEM (inner is then still the caller's).
 */
int agent_cache_store_new(struct cairn_store *inner, struct agent_state *st,
                          struct cairn_store **out);

#endif
