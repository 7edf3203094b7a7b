/*
 * dbwhy.c - what a failure of SQLite says of the database's file or its
 * disk, worded for the user (docs/architecture.md, "Recovery").
 */
#include "dbwhy.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "ferry.h"

void ferry__db_why_corrupt(struct ferry_db_why *w, const char *path, const char *detail)
{
	snprintf(w->text, sizeof(w->text),
		 "database '%s' is corrupt (%s): move it aside to start with an empty one "
		 "(`sqlite3 FILE .recover` may save its records)",
		 path, detail);
	for (char *p = w->text; *p; p++)
		*p = *p == '\n' ? ' ' : *p; /* quick_check's report: one line */
	w->code = FERRY_EINTERNAL;
}

int ferry__db_why_explain(struct ferry_db_why *w, const char *path, int rc, int e)
{
	int prim = rc & 0xff;
	int io = prim == SQLITE_IOERR || prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN;

	if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB) {
		ferry__db_why_corrupt(w, path, sqlite3_errstr(rc));
		w->failures++;
		return 1;
	}
	if (prim == SQLITE_FULL || (io && (e == ENOSPC || e == EDQUOT)))
		snprintf(w->text, sizeof(w->text), "cannot write '%s': disk full", path);
	else if (io)
		snprintf(w->text, sizeof(w->text), "cannot %s '%s': %s",
			 rc == SQLITE_IOERR_READ || rc == SQLITE_IOERR_SHORT_READ ? "read"
										  : "write",
			 path, e ? strerror(e) : sqlite3_errstr(rc));
	else
		return 0;
	w->code = FERRY_EIO;
	w->failures++;
	return 1;
}
