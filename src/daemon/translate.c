/*
 * translate.c - the translate_path request (docs/protocol.md): where a
 * soma-workflow SharedResourcePath (namespace, uuid) lies on this host,
 * read in the translation file the resource's path_translation_files names
 * for the namespace (soma-workflow's PATH_TRANSLATION_FILES). The file is
 * read at each request, not cached: it is small, and people edit it while
 * the engine runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "dispatch.h"
#include "jbytes.h"

/* A translation file is a list of lines; a bigger one is refused, not read into memory. */
#define TRANSLATION_MAX (16 << 20)

/* The blanks of Python's str.split() on ASCII, which soma-workflow splits lines with. */
static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Reads the translation file at path into *buf (malloc'd, *len bytes and a
 * NUL after them). A FIFO or a device would block the engine or never end:
 * only a regular file is read, opened without blocking. 0, or the request's
 * failure.
 */
static int read_file(struct ferry_req *r, const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), rc = 0;
	size_t used = 0, cap;
	struct stat st;
	ssize_t n;

	*buf = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = ferry__req_fail(r, FERRY_EIO, "cannot read the translation file '%s': %s",
				     path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TRANSLATION_MAX) {
		rc = ferry__req_fail(
		    r, FERRY_EIO, "cannot read the translation file '%s': %s", path,
		    S_ISREG(st.st_mode) ? "larger than 16 MiB" : "not a regular file");
		goto out;
	}
	/* what it holds now; what is appended meanwhile waits for the next request */
	cap = (size_t)st.st_size;
	if (!(*buf = malloc(cap + 1))) {
		rc = ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
		goto out;
	}
	while (used < cap && (n = read(fd, *buf + used, cap - used)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ferry__req_fail(r, FERRY_EIO,
					     "cannot read the translation file '%s': %s", path,
					     strerror(errno));
			free(*buf);
			*buf = NULL;
			goto out;
		}
		used += (size_t)n;
	}
	(*buf)[used] = '\0';
	*len = used;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * The translation of uuid among the n bytes of lines at buf, as
 * soma-workflow reads them: a line "UUID TRANSLATION" is split at its
 * first run of blanks, the translation is the rest without its trailing
 * blanks, a line of one field says nothing, and a uuid given twice
 * keeps its last line. *at and *alen; 0 when no line gives it.
 */
static int find_uuid(const char *buf, size_t n, const char *uuid, const char **at, size_t *alen)
{
	const char *p = buf, *end = buf + n;
	size_t ulen = strlen(uuid);
	int found = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
		const char *s = p, *f, *t, *te = e;

		while (s < e && blank(*s))
			s++;
		for (f = s; f < e && !blank(*f); f++)
			;
		for (t = f; t < e && blank(*t); t++)
			;
		while (te > t && blank(te[-1]))
			te--;
		if (te > t && (size_t)(f - s) == ulen && !memcmp(s, uuid, ulen)) {
			*at = t;
			*alen = (size_t)(te - t);
			found = 1;
		}
		p = nl ? nl + 1 : end;
	}
	return found;
}

/*
 * A non-empty string field of the request, or NULL with the failure in
 * r->err. Without a NUL byte (the frame's JSON may hold one): cut there,
 * it would match a prefix.
 */
static const char *field(struct ferry_req *r, const char *key)
{
	json_t *v = json_object_get(r->in, key);
	const char *s = json_string_value(v);

	if (!s || !*s || strlen(s) != json_string_length(v)) {
		ferry__req_fail(r, FERRY_EINVAL,
				"field '%s' must be a non-empty string without a NUL byte", key);
		return NULL;
	}
	return s;
}

int ferry__req_translate_path(struct ferry_req *r)
{
	const char *ns = field(r, "namespace"), *uuid = ns ? field(r, "uuid") : NULL;
	const char *value = ferry__engine_cfg(r->eng)->path_translation_files, *at;
	const char *res = ferry__engine_resource(r->eng);
	char *file = NULL, *buf = NULL, *path = NULL;
	size_t len = 0, alen;
	int rc;

	if (!uuid)
		return FERRY_EINVAL;
	if (!value)
		return ferry__req_fail(
		    r, FERRY_EINVAL,
		    "no translation files configured (path_translation_files of resource '%s')",
		    res);
	if (ferry__cfg_translation_file(value, ns, &file) < 0)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	if (!file)
		return ferry__req_fail(
		    r, FERRY_EINVAL,
		    "namespace '%s' has no translation file (path_translation_files "
		    "of resource '%s')",
		    ns, res);
	if ((rc = read_file(r, file, &buf, &len)))
		goto out;
	if (!find_uuid(buf, len, uuid, &at, &alen)) {
		rc = ferry__req_fail(r, FERRY_EINVAL,
				     "no translation of uuid '%s' in namespace '%s' ('%s')", uuid,
				     ns, file);
		goto out;
	}
	/* a path holds no NUL byte: a line that does is no translation */
	if (memchr(at, '\0', alen)) {
		rc = ferry__req_fail(
		    r, FERRY_EINVAL,
		    "the translation of uuid '%s' in '%s' holds a NUL byte (not a path)", uuid,
		    file);
		goto out;
	}
	if (!(path = strndup(at, alen)) ||
	    json_object_set_new(r->out, "path", ferry__json_bytes(path)) < 0)
		rc = ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
out:
	free(path);
	free(buf);
	free(file);
	return rc;
}
