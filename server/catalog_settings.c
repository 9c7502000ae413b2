/*
 * catalog_settings.c - agent settings in the catalog (catalog.h): what
 * the IT office sets for the whole organisation or one department, and
 * which of those settings are locked (override the agent's own file).
 */
#include "catalog_int.h"

/* Schema version 4. */
const char *const cat_schema_settings =
    "CREATE TABLE agent_settings ("
    "  scope TEXT PRIMARY KEY,"      /* "org" or "dept:<id>" */
    "  body TEXT NOT NULL,"          /* JSON object of settings */
    "  locked TEXT NOT NULL,"        /* JSON array of locked keys */
    "  updated INTEGER NOT NULL,"
    "  updated_by INTEGER NOT NULL);";
