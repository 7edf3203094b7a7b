/*
 * subst.h - `ferry submit --in/--out`: the local paths named in a job's
 * command and options become the server paths of their transfers.
 */
#ifndef FERRY_CLI_SUBST_H
#define FERRY_CLI_SUBST_H

#include <stddef.h>

/* One local path of --in or --out, the forms it is looked for in, and its server path. */
struct ferry_subst {
	const char *local;  /* as given on the command line (borrowed) */
	char *given;	    /* local without trailing slashes */
	char *abs;	    /* the absolute form: getcwd(3) joined, '.', '..' and '//' resolved */
	const char *server; /* its transfer's path (borrowed); NULL: replace by itself */
	int used;	    /* an occurrence was found */
};

/*
 * Fills s for local (not empty). Returns 0, or -1 with errno set (ENOMEM,
 * or what getcwd(3) failed with). Release with ferry__subst_release().
 */
int ferry__subst_prepare(struct ferry_subst *s, const char *local);
void ferry__subst_release(struct ferry_subst *s);

/*
 * A malloc'd copy of word in which each occurrence of a path of v[0..n)
 * (its given or its absolute form) is replaced by that path's server path,
 * and marked used. An occurrence counts only where it does not continue a
 * longer name: it starts word or follows a byte that is no name byte, and
 * it ends word or is followed by '/' or a byte that is no name byte. Name
 * bytes are ASCII letters and digits, '.', '_', '-', '+', '~', '/' and
 * every byte from 0x80 (UTF-8). At one place the longest occurrence wins;
 * replaced text is not searched again. NULL when out of memory.
 */
char *ferry__subst_word(struct ferry_subst *v, size_t n, const char *word);

#endif
