/* dbwhy.h - what a failure of SQLite says of the database's file or disk. */
#ifndef FERRY_DBWHY_H
#define FERRY_DBWHY_H

/* The last such word (text "" when none), and how many there were. */
struct ferry_db_why {
	char text[640];
	int code;	   /* the FERRY_E* a client gets for it */
	unsigned failures; /* how many failures said something of the file */
};

/* Records that the database at path is corrupt, detail saying how. */
void ferry__db_why_corrupt(struct ferry_db_why *w, const char *path, const char *detail);

/*
 * Names what SQLite's extended code rc (and errno e) says about the file
 * at path or its disk, so that a client learns "disk full" or "damaged",
 * on which path, rather than "database error": 1 when it did, else 0.
 * Kept until the next transaction: the commit that fails after a full
 * disk rolled the transaction back says only "no transaction is active".
 */
int ferry__db_why_explain(struct ferry_db_why *w, const char *path, int rc, int e);

#endif
