/* cfg.c - ferry.conf: one INI section per resource, parsed with inih. */
#include "cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>

#include "util.h"

/* Every key of a section, in the order of key_line[]. */
static const char *const section_keys[] = {
    "scheduler",     "slots",	    "port",	     "poll_interval",	       "host",
    "login",	     "queue",	    "transfer_root", "remote_command",	       "ssh_options",
    "drmaa_library", "max_running", "max_queued",    "path_translation_files", "mpi_pe",
    "job_dir",
};
#define NKEYS FERRY_ARRAY_SIZE(section_keys)

/* A section header seen: a second one of the same name is refused. */
struct seen_section {
	char *name;
	int line;
};

struct parse_state {
	struct ferry_cfg *cfg;
	const char *next;	   /* the text inih has not read yet */
	int line;		   /* the number of the line inih parses */
	int msg_line;		   /* the line msg is about */
	char msg[256];		   /* the handler's first error */
	int indented;		   /* the line begins with a blank */
	int keyed;		   /* a key was given since the last header: inih's prev_name */
	int key_line[NKEYS];	   /* where each key of the current section was given, or 0 */
	struct seen_section *seen; /* the section headers so far */
	int nseen;
};

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_int(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static struct ferry_resource_cfg *section(struct ferry_cfg *cfg, const char *name)
{
	struct ferry_resource_cfg *r;

	for (int i = 0; i < cfg->nres; i++)
		if (!strcmp(cfg->res[i].name, name))
			return &cfg->res[i];
	r = realloc(cfg->res, (size_t)(cfg->nres + 1) * sizeof(*r));
	if (!r)
		return NULL;
	cfg->res = r;
	r = &cfg->res[cfg->nres];
	memset(r, 0, sizeof(*r));
	r->name = strdup(name);
	if (!r->name)
		return NULL;
	cfg->nres++;
	return r;
}

/* A key whose value is a bounded integer: 0, -1 with msg set, or 1 when key is none. */
static int set_int(struct ferry_resource_cfg *r, const char *key, const char *v, char *msg,
		   size_t ml)
{
	static const struct {
		const char *key;
		long min, max;
		size_t off;
		const char *range; /* for the message */
	} ints[] = {
	    {"slots", 0, 100000, offsetof(struct ferry_resource_cfg, slots),
	     " (a number from 0 to 100000)"},
	    {"port", 1, 65535, offsetof(struct ferry_resource_cfg, port), ""},
	    {"max_running", 0, 1000000, offsetof(struct ferry_resource_cfg, max_running),
	     " (a number from 0 to 1000000; 0: no bound)"},
	    {"max_queued", 0, 1000000, offsetof(struct ferry_resource_cfg, max_queued),
	     " (a number from 0 to 1000000; 0: no bound)"},
	};
	long n;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(ints); i++) {
		if (strcmp(key, ints[i].key))
			continue;
		if (parse_int(v, ints[i].min, ints[i].max, &n) < 0) {
			snprintf(msg, ml, "invalid %s '%s'%s", key, v, ints[i].range);
			return -1;
		}
		*(int *)((char *)r + ints[i].off) = (int)n;
		return 0;
	}
	return 1;
}

/*
 * The length of the first token of path_translation_files at s ("NAMESPACE{/file}"),
 * and of its namespace in *nslen, 0 at the end of the value. Blanks separate tokens.
 */
static size_t translation_token(const char *s, size_t *nslen)
{
	size_t len = strcspn(s, " \t");

	*nslen = strcspn(s, "{");
	if (*nslen > len)
		*nslen = len;
	return len;
}

/*
 * path_translation_files (soma-workflow's PATH_TRANSLATION_FILES): blank-separated
 * tokens NAMESPACE{/absolute/file}, each namespace once. 0, or -1 with msg set
 * naming the bad token.
 */
static int check_translations(const char *v, char *msg, size_t ml)
{
	for (v += strspn(v, " \t"); *v; v += strspn(v, " \t")) {
		size_t ns, len = translation_token(v, &ns);
		const char *file = v + ns + 1;
		size_t flen = len > ns + 1 ? len - ns - 2 : 0;

		if (ns == 0 || ns + 2 >= len || v[len - 1] != '}' || *file != '/' ||
		    memchr(v, '}', ns) || memchr(file, '{', flen) || memchr(file, '}', flen)) {
			snprintf(msg, ml,
				 "invalid path_translation_files token '%.*s' (NAMESPACE{/absolute/"
				 "file}, tokens separated by blanks)",
				 (int)len, v);
			return -1;
		}
		for (const char *w = v + len; *(w += strspn(w, " \t"));) {
			size_t ns2, len2 = translation_token(w, &ns2);
			if (ns2 == ns && !memcmp(w, v, ns)) {
				snprintf(msg, ml,
					 "namespace '%.*s' given twice in path_translation_files",
					 (int)ns, v);
				return -1;
			}
			w += len2;
		}
		v += len;
	}
	return 0;
}

/*
 * Sets path_translation_files: v after what r holds when more (an indented
 * line continues the value: one line of ferry.conf holds 198 bytes), checked
 * as a whole and kept with one blank between tokens, so that the client's
 * and an engine's values compare equal. A value of no token is none.
 */
static int set_translations(struct ferry_resource_cfg *r, const char *v, int more, char *msg,
			    size_t ml)
{
	char *all = more && r->path_translation_files
			? ferry__asprintf("%s %s", r->path_translation_files, v)
			: strdup(v);
	char *out = all ? malloc(strlen(all) + 1) : NULL;
	size_t n = 0;

	if (!out) {
		free(all);
		return -1;
	}
	if (check_translations(all, msg, ml) < 0) {
		free(all);
		free(out);
		return -1;
	}
	for (const char *s = all + strspn(all, " \t"); *s; s += strspn(s, " \t")) {
		size_t ns, len = translation_token(s, &ns);
		if (n)
			out[n++] = ' ';
		memcpy(out + n, s, len);
		n += len;
		s += len;
	}
	out[n] = '\0';
	free(all);
	free(r->path_translation_files);
	r->path_translation_files = n ? out : NULL;
	if (!n)
		free(out);
	return 0;
}

int ferry__cfg_translation_file(const char *value, const char *ns, char **file)
{
	size_t want = strlen(ns);

	*file = NULL;
	for (const char *s = value ? value : ""; *(s += strspn(s, " \t"));) {
		size_t n, len = translation_token(s, &n);
		if (n == want && !memcmp(s, ns, n)) {
			*file = strndup(s + n + 1, len - n - 2);
			return *file ? 0 : -1;
		}
		s += len;
	}
	return 0;
}

/* Sets key to v; more: v continues the key's value of the line above (handler()). */
static int set_key(struct ferry_resource_cfg *r, const char *key, const char *v, int more,
		   char *msg, size_t ml)
{
	int rc;

	if (!strcmp(key, "scheduler")) {
		if (strcmp(v, "local") && strcmp(v, "slurm") && strcmp(v, "drmaa")) {
			snprintf(msg, ml, "unknown scheduler '%s' (local, slurm or drmaa)", v);
			return -1;
		}
		return set_str(&r->scheduler, v);
	}
	if ((rc = set_int(r, key, v, msg, ml)) <= 0)
		return rc;
	if (!strcmp(key, "poll_interval")) {
		char *end;
		double d = strtod(v, &end);
		if (end == v || *end || !(d == 0 || (d >= 0.1 && d <= 3600))) {
			snprintf(msg, ml,
				 "invalid poll_interval '%s' (seconds, 0.1 to 3600; 0: default)",
				 v);
			return -1;
		}
		r->poll_interval = d;
		return 0;
	}
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
	    {"host", offsetof(struct ferry_resource_cfg, host)},
	    {"login", offsetof(struct ferry_resource_cfg, login)},
	    {"queue", offsetof(struct ferry_resource_cfg, queue)},
	    {"transfer_root", offsetof(struct ferry_resource_cfg, transfer_root)},
	    {"remote_command", offsetof(struct ferry_resource_cfg, remote_command)},
	    {"ssh_options", offsetof(struct ferry_resource_cfg, ssh_options)},
	    {"drmaa_library", offsetof(struct ferry_resource_cfg, drmaa_library)},
	    {"mpi_pe", offsetof(struct ferry_resource_cfg, mpi_pe)},
	    {"job_dir", offsetof(struct ferry_resource_cfg, job_dir)},
	};
	if (!strcmp(key, "path_translation_files"))
		return set_translations(r, v, more, msg, ml);
	if (!strcmp(key, "ssh_options") && more && r->ssh_options) {
		/* an indented continuation line adds options (handler() refuses a repeat) */
		char *joined = ferry__asprintf("%s %s", r->ssh_options, v);
		if (!joined)
			return -1;
		free(r->ssh_options);
		r->ssh_options = joined;
		return 0;
	}
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(strs); i++)
		if (!strcmp(key, strs[i].key))
			return set_str((char **)((char *)r + strs[i].off), v);
	snprintf(msg, ml, "unknown key '%s' in section [%s]", key, r->name);
	return -1;
}

static int key_index(const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(key, section_keys[i]))
			return (int)i;
	return -1;
}

/*
 * A key given twice in a section would keep its last value without a
 * word, and a value continued on an indented line (inih's multi-line
 * values) its last line: only ssh_options and path_translation_files
 * take more than one. 0, 1 when the line continues the key's value, or
 * -1 with msg set.
 */
static int check_repeat(struct parse_state *st, const char *sec, const char *key, char *msg,
			size_t ml)
{
	int k = key_index(key), continued = st->indented && st->keyed;

	st->keyed = 1;
	if (k < 0)
		return 0; /* set_key() names it */
	if (continued && k != key_index("ssh_options") &&
	    k != key_index("path_translation_files")) {
		snprintf(msg, ml,
			 "an indented line continues the value of '%s' above (which takes one "
			 "value; only ssh_options and path_translation_files continue)",
			 key);
		return -1;
	}
	if (!continued && st->key_line[k]) {
		snprintf(msg, ml, "key '%s' given twice in section [%s] (first on line %d)", key,
			 sec, st->key_line[k]);
		return -1;
	}
	if (!st->key_line[k])
		st->key_line[k] = st->line;
	return continued;
}

static int handler(void *user, const char *sec, const char *key, const char *value)
{
	struct parse_state *st = user;
	struct ferry_resource_cfg *r;
	char msg[200] = "";
	int more;

	if (!sec || !*sec) {
		snprintf(msg, sizeof(msg), "key '%s' outside of a [resource] section", key);
		goto fail;
	}
	if (!ferry__valid_resource_name(sec)) {
		snprintf(msg, sizeof(msg), "invalid resource name '%s'", sec);
		goto fail;
	}
	r = section(st->cfg, sec);
	if (!r) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	if (!key) /* a section with no keys yet (INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;
	if ((more = check_repeat(st, sec, key, msg, sizeof(msg))) < 0)
		goto fail;
	if (set_key(r, key, value, more, msg, sizeof(msg)) < 0) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "out of memory");
		goto fail;
	}
	return 1;
fail:
	if (!st->msg[0]) {
		snprintf(st->msg, sizeof(st->msg), "%s", msg);
		st->msg_line = st->line;
	}
	return 0;
}

#define CONFIG_MAX (1 << 20)
/* Debian's inih reads lines into 200 bytes and parses the rest as a new line. */
#define INIH_MAX_LINE 200
/* and keeps the first 49 characters of a section name (its MAX_SECTION is 50) */
#define INIH_MAX_SECTION 49

/* Reads a whole configuration file (symlinks followed, as dotfiles often are). */
static int read_config(const char *path, char **out, size_t *outlen)
{
	char *buf = malloc(CONFIG_MAX + 1);
	size_t used = 0;
	ssize_t n;
	int fd, e = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = -errno;
		free(buf);
		return e;
	}
	while ((n = read(fd, buf + used, CONFIG_MAX + 1 - used)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = -errno;
			break;
		}
		used += (size_t)n;
		if (used > CONFIG_MAX) {
			e = -EFBIG;
			break;
		}
	}
	close(fd);
	if (e) {
		free(buf);
		return e;
	}
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	return 0;
}

/* The number of the line of the first NUL byte of text (len bytes), or 0. */
static int nul_line(const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len);
	int n = 1;

	if (!nul)
		return 0;
	for (const char *p = text; p < nul; p++)
		n += *p == '\n';
	return n;
}

/* The number of the first line inih would cut, or 0. */
static int long_line(const char *text)
{
	int n = 1;

	for (const char *p = text; *p; n++) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len > INIH_MAX_LINE - 2)
			return n;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

/* Whether line (number n) is a section header whose name inih would cut. */
static int long_section(const char *line, int n)
{
	if (n == 1 && !strncmp(line, "\xef\xbb\xbf", 3)) /* a byte order mark */
		line += 3;
	return line[0] == '[' && strcspn(line + 1, "]") > INIH_MAX_SECTION;
}

/*
 * The name of the section header line (number n) starts, as inih reads
 * it: after blanks, unless they make it a continuation of a value; NULL
 * when it is no header. *len gets the name's length.
 */
static const char *header_name(const struct parse_state *st, const char *line, int n, size_t *len)
{
	const char *s = line, *end;

	if (n == 1 && !strncmp(s, "\xef\xbb\xbf", 3))
		s += 3;
	s += strspn(s, " \t\v\f");
	if ((s > line && st->keyed) || *s != '[' || !(end = strchr(s + 1, ']')))
		return NULL;
	*len = (size_t)(end - s - 1);
	return s + 1;
}

/*
 * Records the section header of line (number n), resetting what the
 * section's keys have seen. A second header of a name would merge its keys
 * with the first's, a repeated key's last value winning: refused. 0, or -1
 * with st->msg set (ENOMEM too).
 */
static int note_header(struct parse_state *st, const char *line, int n)
{
	size_t len;
	const char *name = header_name(st, line, n, &len);
	struct seen_section *more;

	if (!name)
		return 0;
	st->keyed = 0;
	memset(st->key_line, 0, sizeof(st->key_line));
	for (int i = 0; i < st->nseen; i++) {
		if (strlen(st->seen[i].name) == len && !strncmp(st->seen[i].name, name, len)) {
			snprintf(st->msg, sizeof(st->msg),
				 "section [%s] given twice (first on line %d)", st->seen[i].name,
				 st->seen[i].line);
			return -1;
		}
	}
	more = realloc(st->seen, (size_t)(st->nseen + 1) * sizeof(*more));
	if (more)
		st->seen = more;
	if (!more || !(more[st->nseen].name = strndup(name, len))) {
		snprintf(st->msg, sizeof(st->msg), "out of memory");
		return -1;
	}
	more[st->nseen++].line = n;
	return 0;
}

/*
 * inih's reader: the next line of the text, without its LF or CRLF. Every
 * line fits (long_line), so that inih counts the lines of the file: its own
 * reader would give the CR of a line of 198 characters a line of its own.
 * The text ends, with an error, at a section name inih would cut (and so
 * take for another resource's).
 */
static char *read_line(char *buf, int size, void *stream)
{
	struct parse_state *st = stream;
	size_t len = strcspn(st->next, "\n"), n = len;

	if (!*st->next)
		return NULL;
	if (n && st->next[n - 1] == '\r')
		n--;
	if (n > (size_t)size - 1)
		n = (size_t)size - 1;
	memcpy(buf, st->next, n);
	buf[n] = '\0';
	st->next += len + (st->next[len] == '\n');
	st->line++;
	st->indented = buf[0] && strchr(" \t\v\f", buf[0]);
	if (st->msg[0])
		return buf; /* a handler failed: inih reports it, nothing more is checked */
	if (long_section(buf, st->line)) {
		snprintf(st->msg, sizeof(st->msg),
			 "resource name longer than %d characters (the most a section "
			 "header holds)",
			 INIH_MAX_SECTION);
		st->msg_line = st->line;
		return NULL;
	}
	if (note_header(st, buf, st->line) < 0) {
		st->msg_line = st->line;
		return NULL;
	}
	return buf;
}

int ferry__cfg_parse(const char *path, const char *text, struct ferry_cfg *cfg, char *err,
		     size_t errlen)
{
	struct parse_state st = {.cfg = cfg};
	int line;

	char *owned = NULL;
	size_t len = 0;
	int e;

	memset(cfg, 0, sizeof(*cfg));
	if (!text) {
		e = read_config(path, &owned, &len);
		if (e < 0) {
			snprintf(err, errlen, "cannot open '%s': %s", path,
				 e == -EFBIG ? "larger than 1 MiB" : strerror(-e));
			return -1;
		}
		text = owned;
		/* the text would end there, and what follows go unchecked */
		line = nul_line(text, len);
		if (line > 0) {
			snprintf(err, errlen, "%s:%d: NUL byte (not a text file?)", path, line);
			free(owned);
			return -1;
		}
	}
	line = long_line(text);
	if (line > 0) {
		/* bytes, not characters: a line of 100 'é' is too long too */
		snprintf(err, errlen,
			 "%s:%d: line %d is longer than %d bytes (continue a value on indented "
			 "lines)",
			 path, line, line, INIH_MAX_LINE - 2);
		free(owned);
		return -1;
	}
	st.next = text;
	line = ini_parse_stream(read_line, &st, handler, &st);
	if (line == 0 && st.msg[0]) /* the reader stopped at a section header */
		line = st.msg_line;
	free(owned);
	for (int i = 0; i < st.nseen; i++)
		free(st.seen[i].name);
	free(st.seen);
	if (line == 0)
		return 0;
	/* inih reports its first error; the handler's may be a later line's */
	if (line == -2)
		snprintf(err, errlen, "%s: out of memory", path);
	else
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 st.msg[0] && st.msg_line == line ? st.msg : "syntax error");
	ferry__cfg_release(cfg);
	return -1;
}

void ferry__resource_cfg_release(struct ferry_resource_cfg *r)
{
	free(r->name);
	free(r->scheduler);
	free(r->host);
	free(r->login);
	free(r->queue);
	free(r->transfer_root);
	free(r->remote_command);
	free(r->ssh_options);
	free(r->drmaa_library);
	free(r->mpi_pe);
	free(r->job_dir);
	free(r->path_translation_files);
	memset(r, 0, sizeof(*r));
}

void ferry__cfg_release(struct ferry_cfg *cfg)
{
	for (int i = 0; i < cfg->nres; i++)
		ferry__resource_cfg_release(&cfg->res[i]);
	free(cfg->res);
	memset(cfg, 0, sizeof(*cfg));
}

/* Keys that say how to reach a remote engine, meaningful only with 'host'. */
static const struct {
	const char *key;
	size_t off;
} ssh_keys[] = {
    {"login", offsetof(struct ferry_resource_cfg, login)},
    {"remote_command", offsetof(struct ferry_resource_cfg, remote_command)},
    {"ssh_options", offsetof(struct ferry_resource_cfg, ssh_options)},
};

/* Each scheduler's bound on its jobs under the key that says what it counts. */
static int check_bounds(const struct ferry_resource_cfg *r, int local, char *err, size_t errlen)
{
	if (local && r->max_queued) {
		snprintf(err, errlen,
			 "key 'max_queued' of resource '%s' is for a cluster scheduler; the local "
			 "scheduler's is 'max_running'",
			 r->name);
		return -1;
	}
	if (!local && r->max_running) {
		snprintf(err, errlen,
			 "key 'max_running' of resource '%s' is for the local scheduler; a "
			 "cluster scheduler's is 'max_queued' (its jobs in the cluster's queue)",
			 r->name);
		return -1;
	}
	return 0;
}

int ferry__resource_supported(const struct ferry_resource_cfg *r, char *err, size_t errlen)
{
	if (!r->host) {
		for (size_t i = 0; i < FERRY_ARRAY_SIZE(ssh_keys); i++) {
			if (*(char *const *)((const char *)r + ssh_keys[i].off)) {
				snprintf(err, errlen,
					 "key '%s' of resource '%s' needs 'host' (it says how to "
					 "reach a remote engine)",
					 ssh_keys[i].key, r->name);
				return -1;
			}
		}
		if (r->port) {
			snprintf(err, errlen,
				 "key 'port' of resource '%s' needs 'host' (it says how to reach "
				 "a remote engine)",
				 r->name);
			return -1;
		}
	}
	const char *sched = r->scheduler ? r->scheduler : "local";
	int local = !strcmp(sched, "local");

	if (!local && strcmp(sched, "slurm") && strcmp(sched, "drmaa")) {
		snprintf(err, errlen, "scheduler '%s' of resource '%s' is not supported", sched,
			 r->name);
		return -1;
	}
	if (r->drmaa_library && strcmp(sched, "drmaa")) {
		snprintf(err, errlen,
			 "key 'drmaa_library' of resource '%s' is for the drmaa scheduler, not %s",
			 r->name, sched);
		return -1;
	}
	if (r->mpi_pe && strcmp(sched, "drmaa")) {
		snprintf(err, errlen,
			 "key 'mpi_pe' of resource '%s' is for the drmaa scheduler (Grid Engine), "
			 "not %s",
			 r->name, sched);
		return -1;
	}
	if (r->mpi_pe && (!*r->mpi_pe || r->mpi_pe[strspn(r->mpi_pe, "abcdefghijklmnopqrstuvwxyz"
								     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
								     "0123456789_.-")])) {
		/* it goes into the native specification, a word of its own */
		snprintf(err, errlen,
			 "key 'mpi_pe' of resource '%s': '%s' is not a parallel environment name",
			 r->name, r->mpi_pe);
		return -1;
	}
	if (r->job_dir && r->job_dir[0] != '/') {
		/* the engine's cwd is no place the nodes agree on */
		snprintf(err, errlen,
			 "key 'job_dir' of resource '%s': '%s' is not an absolute path", r->name,
			 r->job_dir);
		return -1;
	}
	if (local && r->poll_interval > 0) {
		snprintf(
		    err, errlen,
		    "key 'poll_interval' of resource '%s' is for cluster schedulers; the local "
		    "scheduler needs no polling",
		    r->name);
		return -1;
	}
	if (local && r->queue) {
		snprintf(err, errlen,
			 "key 'queue' of resource '%s': the local scheduler has no queues",
			 r->name);
		return -1;
	}
	if (!local && r->slots) {
		snprintf(err, errlen,
			 "key 'slots' of resource '%s' is for the local scheduler; %s schedules "
			 "its jobs itself",
			 r->name, sched);
		return -1;
	}
	return check_bounds(r, local, err, errlen);
}

/* The keys that configure an engine (as opposed to the way to reach it). */
static const char *const engine_keys[] = {
    "scheduler",     "slots",	      "max_running",
    "max_queued",    "queue",	      "transfer_root",
    "poll_interval", "drmaa_library", "path_translation_files",
    "mpi_pe",	     "job_dir",
};

static int is_engine_key(const char *key)
{
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(engine_keys); i++)
		if (!strcmp(key, engine_keys[i]))
			return 1;
	return 0;
}

int ferry__cfg_set(struct ferry_resource_cfg *r, const char *assignment, char *err, size_t errlen)
{
	const char *eq = strchr(assignment, '=');
	char key[32], msg[200] = "";

	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(key)) {
		snprintf(err, errlen, "invalid setting '%s' (KEY=VALUE)", assignment);
		return -1;
	}
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	if (!is_engine_key(key)) {
		snprintf(err, errlen, "key '%s' cannot be set for an engine (only %s)", key,
			 "scheduler, slots, max_running, max_queued, queue, transfer_root, "
			 "poll_interval, drmaa_library, path_translation_files, mpi_pe, job_dir");
		return -1;
	}
	if (set_key(r, key, eq + 1, 0, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s", msg[0] ? msg : "out of memory");
		return -1;
	}
	return 0;
}

/* The value of an engine key as a string, or NULL when it is not set. */
static char *engine_value(const struct ferry_resource_cfg *r, const char *key)
{
	if (!strcmp(key, "slots"))
		return r->slots ? ferry__asprintf("%d", r->slots) : NULL;
	if (!strcmp(key, "max_running"))
		return r->max_running ? ferry__asprintf("%d", r->max_running) : NULL;
	if (!strcmp(key, "max_queued"))
		return r->max_queued ? ferry__asprintf("%d", r->max_queued) : NULL;
	if (!strcmp(key, "poll_interval"))
		return r->poll_interval > 0 ? ferry__asprintf("%g", r->poll_interval) : NULL;
	const char *v = !strcmp(key, "scheduler")		 ? r->scheduler
			: !strcmp(key, "queue")			 ? r->queue
			: !strcmp(key, "transfer_root")		 ? r->transfer_root
			: !strcmp(key, "path_translation_files") ? r->path_translation_files
			: !strcmp(key, "mpi_pe")		 ? r->mpi_pe
			: !strcmp(key, "job_dir")		 ? r->job_dir
								 : r->drmaa_library;
	return v ? strdup(v) : NULL;
}

char **ferry__cfg_engine_settings(const struct ferry_resource_cfg *r)
{
	char **v = calloc(FERRY_ARRAY_SIZE(engine_keys) + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(engine_keys); i++) {
		char *val = engine_value(r, engine_keys[i]);
		if (!val)
			continue;
		v[n] = ferry__asprintf("%s=%s", engine_keys[i], val);
		free(val);
		if (!v[n++]) {
			ferry__strv_free(v);
			return NULL;
		}
	}
	return v;
}

int ferry__cfg_check_settings(const struct ferry_resource_cfg *r, const char *const *sets,
			      char *err, size_t errlen)
{
	for (size_t i = 0; sets && sets[i]; i++) {
		const char *eq = strchr(sets[i], '=');
		char key[32], *have;
		int same;

		if (!eq || (size_t)(eq - sets[i]) >= sizeof(key) || eq == sets[i]) {
			snprintf(err, errlen, "invalid setting '%s' (KEY=VALUE)", sets[i]);
			return -1;
		}
		memcpy(key, sets[i], (size_t)(eq - sets[i]));
		key[eq - sets[i]] = '\0';
		if (!is_engine_key(key)) {
			snprintf(err, errlen, "key '%s' cannot be set for an engine", key);
			return -1;
		}
		/* compare normalised values: "2.0" and "2" are the same interval */
		struct ferry_resource_cfg want = {.name = r->name};
		char msg[200] = "";
		if (set_key(&want, key, eq + 1, 0, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%s", msg[0] ? msg : "out of memory");
			return -1;
		}
		char *w = engine_value(&want, key);
		want.name = NULL;
		ferry__resource_cfg_release(&want);
		have = engine_value(r, key);
		same = (!w && !have) || (w && have && !strcmp(w, have)) ||
		       (!strcmp(key, "scheduler") && !have && w && !strcmp(w, "local"));
		if (!same)
			snprintf(err, errlen,
				 "the engine of resource '%s' runs with %s '%s', but the client's "
				 "configuration says '%s'; stop that engine ('ferry -r %s daemon "
				 "stop' on its host) to change it",
				 r->name, key, have ? have : "(default)", w ? w : "(default)",
				 r->name);
		free(w);
		free(have);
		if (!same)
			return -1;
	}
	return 0;
}

static int dup_or_null(char **dst, const char *s)
{
	*dst = NULL;
	if (s && !(*dst = strdup(s)))
		return -1;
	return 0;
}

static int copy_resource(struct ferry_resource_cfg *out, const struct ferry_resource_cfg *in)
{
	memset(out, 0, sizeof(*out));
	out->slots = in->slots;
	out->max_running = in->max_running;
	out->max_queued = in->max_queued;
	out->port = in->port;
	out->poll_interval = in->poll_interval;
	if (dup_or_null(&out->name, in->name) || dup_or_null(&out->scheduler, in->scheduler) ||
	    dup_or_null(&out->host, in->host) || dup_or_null(&out->login, in->login) ||
	    dup_or_null(&out->queue, in->queue) ||
	    dup_or_null(&out->transfer_root, in->transfer_root) ||
	    dup_or_null(&out->remote_command, in->remote_command) ||
	    dup_or_null(&out->ssh_options, in->ssh_options) ||
	    dup_or_null(&out->drmaa_library, in->drmaa_library) ||
	    dup_or_null(&out->mpi_pe, in->mpi_pe) || dup_or_null(&out->job_dir, in->job_dir) ||
	    dup_or_null(&out->path_translation_files, in->path_translation_files)) {
		ferry__resource_cfg_release(out);
		return -1;
	}
	return 0;
}

int ferry__resolve_resource(const char *config_file, const char *resource,
			    struct ferry_resource_cfg *out, char *err, size_t errlen)
{
	return ferry__resolve_resource_set(config_file, resource, NULL, out, err, errlen);
}

int ferry__resolve_resource_set(const char *config_file, const char *resource,
				const char *const *sets, struct ferry_resource_cfg *out, char *err,
				size_t errlen)
{
	struct ferry_cfg cfg = {0};
	char *path = NULL;
	int rc = -1, loaded = 0;

	if (!resource)
		resource = "local";
	if (!ferry__valid_resource_name(resource)) {
		snprintf(err, errlen, "invalid resource name '%s'", resource);
		return -1;
	}
	path = config_file ? strdup(config_file) : ferry__default_config_path();
	if (path && (config_file || access(path, F_OK) == 0)) {
		if (ferry__cfg_parse(path, NULL, &cfg, err, errlen) < 0)
			goto out;
		loaded = 1;
	}
	for (int i = 0; i < cfg.nres; i++) {
		if (strcmp(cfg.res[i].name, resource))
			continue;
		if (copy_resource(out, &cfg.res[i]) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		rc = 0;
		goto apply;
	}
	/* a remote client (sets, even none) defines the resource here */
	if (!strcmp(resource, "local") || sets) {
		memset(out, 0, sizeof(*out));
		out->name = strdup(resource);
		rc = out->name ? 0 : -1;
		if (rc) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		goto apply;
	}
	if (loaded)
		snprintf(err, errlen, "unknown resource '%s' (no [%s] section in '%s')", resource,
			 resource, path);
	else
		snprintf(err, errlen, "unknown resource '%s' (no configuration file '%s')",
			 resource, path ? path : "ferry.conf");
apply:
	for (size_t i = 0; sets && sets[i]; i++) {
		if (ferry__cfg_set(out, sets[i], err, errlen) < 0) {
			ferry__resource_cfg_release(out);
			rc = -1;
			break;
		}
	}
out:
	ferry__cfg_release(&cfg);
	free(path);
	return rc;
}
