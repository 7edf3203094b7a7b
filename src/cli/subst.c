/*
 * subst.c - local paths in a job's words become server paths (subst.h).
 *
 * A plain substring search would rewrite "a.nii" inside "data.nii" or
 * "a.nii.gz", so an occurrence must stand apart from the name bytes
 * around it; the separators of options and lists ("--x=", ':', ',', a
 * blank or a quote in a shell command) do set it apart.
 */
#include "subst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int name_byte(unsigned char ch)
{
	return ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("._-+~/", ch));
}

/* Appends component [s, s+len) to out (a path of *n bytes), or drops one for "..". */
static void push_component(char *out, size_t *n, const char *s, size_t len)
{
	if (len == 0 || (len == 1 && s[0] == '.'))
		return;
	if (len == 2 && s[0] == '.' && s[1] == '.') {
		while (*n > 0 && out[*n - 1] != '/')
			(*n)--;
		if (*n > 0)
			(*n)--; /* the slash; ".." of the root is the root */
		return;
	}
	out[(*n)++] = '/';
	memcpy(out + *n, s, len);
	*n += len;
}

/* Lexically: the shell's spelling of a path, not the file system's (no links followed). */
static char *normalize(const char *cwd, const char *p)
{
	char *joined = p[0] == '/' ? strdup(p) : ferry__asprintf("%s/%s", cwd, p);
	char *out = joined ? malloc(strlen(joined) + 2) : NULL;
	size_t n = 0;

	if (!out) {
		free(joined);
		return NULL;
	}
	for (const char *s = joined; *s;) {
		size_t len = strcspn(s, "/");
		push_component(out, &n, s, len);
		s += len + (s[len] == '/');
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	free(joined);
	return out;
}

int ferry__subst_prepare(struct ferry_subst *s, const char *local)
{
	size_t len = strlen(local);
	char *cwd = getcwd(NULL, 0);

	memset(s, 0, sizeof(*s));
	s->local = local;
	if (!cwd)
		return -1;
	while (len > 1 && local[len - 1] == '/')
		len--;
	s->given = strndup(local, len);
	s->abs = normalize(cwd, local);
	free(cwd);
	if (!s->given || !s->abs) {
		ferry__subst_release(s);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void ferry__subst_release(struct ferry_subst *s)
{
	free(s->given);
	free(s->abs);
	s->given = s->abs = NULL;
}

/* Length of form at word + i when it ends where a name ends, else 0. */
static size_t match_len(const char *word, size_t i, const char *form)
{
	size_t len = strlen(form);
	unsigned char next;

	if (len == 0 || strncmp(word + i, form, len) != 0)
		return 0;
	next = (unsigned char)word[i + len];
	return next == '/' || !name_byte(next) ? len : 0;
}

/* The longest path at word + i: its index in v, or -1; *len its length there. */
static long longest_at(const struct ferry_subst *v, size_t n, const char *word, size_t i,
		       size_t *len)
{
	long best = -1;

	*len = 0;
	for (size_t k = 0; k < n; k++) {
		size_t a = match_len(word, i, v[k].given), b = match_len(word, i, v[k].abs);
		size_t l = a > b ? a : b;
		if (l > *len) {
			*len = l;
			best = (long)k;
		}
	}
	return best;
}

char *ferry__subst_word(struct ferry_subst *v, size_t n, const char *word)
{
	char *out = NULL;
	size_t outlen = 0, i = 0, len;
	FILE *f = open_memstream(&out, &outlen);

	if (!f)
		return NULL;
	while (word[i]) {
		long k = i == 0 || !name_byte((unsigned char)word[i - 1])
			     ? longest_at(v, n, word, i, &len)
			     : -1;
		if (k < 0) {
			fputc(word[i++], f);
			continue;
		}
		v[k].used = 1;
		if (v[k].server)
			fputs(v[k].server, f);
		else
			fwrite(word + i, 1, len, f);
		i += len;
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
