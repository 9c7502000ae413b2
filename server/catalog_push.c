/*
 * catalog_push.c - push restores in the catalog (catalog.h): an
 * administrator restores one device's files onto another enrolled device,
 * whose cairn fetches the job and writes the files.
 */
#include "catalog_int.h"

/* Schema version 3. */
const char *const cat_schema_push =
    "CREATE TABLE push_jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created INTEGER NOT NULL,"
    "  created_by INTEGER NOT NULL REFERENCES users(id),"
    "  source_device TEXT NOT NULL REFERENCES devices(id),"
    "  target_device TEXT NOT NULL REFERENCES devices(id),"
    "  snapshot TEXT NOT NULL,"      /* snapshot id (hex) */
    "  paths TEXT NOT NULL,"         /* JSON array of absolute paths */
    "  target_dir TEXT NOT NULL,"    /* on the target device */
    "  wrapped_key BLOB NOT NULL,"   /* source archive key, wrapped for
                                      * the target device */
    "  state TEXT NOT NULL,"         /* queued, running, done, failed */
    "  updated INTEGER NOT NULL,"
    "  files INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  error TEXT NOT NULL,"
    "  request_id INTEGER NOT NULL);"
    "CREATE INDEX push_jobs_target ON push_jobs(target_device, state);";
