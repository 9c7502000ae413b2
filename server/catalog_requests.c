/*
 * catalog_requests.c - restore requests in the catalog (catalog.h): a
 * person asks the IT office to restore a shared device of their
 * department; an administrator fulfils or declines the request.
 */
#include "catalog_int.h"

/* Schema version 2. */
const char *const cat_schema_requests =
    "CREATE TABLE restore_requests ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created INTEGER NOT NULL,"
    "  requester_id INTEGER NOT NULL REFERENCES users(id),"
    "  device_id TEXT NOT NULL REFERENCES devices(id),"
    "  paths TEXT NOT NULL,"         /* JSON array of absolute paths */
    "  version TEXT NOT NULL,"       /* snapshot id or prefix, or "" */
    "  as_of INTEGER NOT NULL,"      /* or a time (0: latest) */
    "  destination TEXT NOT NULL,"   /* where to, in the requester's words */
    "  reason TEXT NOT NULL,"
    "  state TEXT NOT NULL,"         /* open, fulfilled, declined */
    "  decided_by INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL,"
    "  outcome TEXT NOT NULL,"       /* decline reason or how fulfilled */
    "  push_id INTEGER NOT NULL);"   /* the push restore that fulfilled it */
    "CREATE INDEX restore_requests_state ON restore_requests(state, id);";
