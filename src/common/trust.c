/*
 * trust.c - this user's own directories and processes (trust.h). The rule
 * for a directory is OpenSSH's StrictModes, with the sticky exception:
 * a directory anyone else can write can have our entries renamed away and
 * replaced, so a socket or a file found beneath it proves nothing.
 */
#include "trust.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry.h"
#include "util.h"

void ferry__describe_uid(uid_t uid, char *buf, size_t cap)
{
	struct passwd pw, *found = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
		snprintf(buf, cap, "uid %ld (%s)", (long)uid, found->pw_name);
	else
		snprintf(buf, cap, "uid %ld", (long)uid);
}

static int stat_failed(const char *what, const char *path, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "cannot check the %s: cannot stat '%s': %s", what, path, strerror(e));
	return e == EACCES || e == EPERM ? FERRY_EPERM : FERRY_ECONFIG;
}

/*
 * Whether gid is this user's private group (a umask of 002 makes
 * directories group-writable where each user has a group of their own):
 * the group named as the user, with no other member.
 */
static int private_group(gid_t gid)
{
	struct passwd pw, *me = NULL;
	struct group gr, *g = NULL;
	char pbuf[1024], gbuf[4096];

	if (getpwuid_r(geteuid(), &pw, pbuf, sizeof(pbuf), &me) || !me ||
	    getgrgid_r(gid, &gr, gbuf, sizeof(gbuf), &g) || !g || strcmp(g->gr_name, me->pw_name))
		return 0;
	for (char **m = g->gr_mem; *m; m++)
		if (strcmp(*m, me->pw_name))
			return 0;
	return gid == me->pw_gid;
}

/* Whether someone other than the user (or root) can write the directory of st. */
static int others_write(const struct stat *st)
{
	return (st->st_mode & S_IWOTH) ||
	       ((st->st_mode & S_IWGRP) && (st->st_uid != geteuid() || !private_group(st->st_gid)));
}

/* The fix a user can make alone (the directory is theirs), else "". */
static void fix_hint(const struct stat *st, const char *mode, const char *path, char *buf,
		     size_t cap)
{
	if (st->st_uid == geteuid())
		snprintf(buf, cap, "; fix: chmod %s '%s'", mode, path);
	else
		buf[0] = '\0';
}

/* A directory above the one checked: ours or root's, writable by no one else unless sticky. */
static int check_above(const char *what, const char *dir, const char *p, const struct stat *st,
		       char *err, size_t errlen)
{
	char who[160], hint[4200];
	int others = others_write(st);

	if (!S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "cannot use the %s '%s': '%s' is not a directory", what, dir,
			 p);
		return FERRY_ECONFIG;
	}
	if ((st->st_uid == geteuid() || st->st_uid == 0) && (!others || (st->st_mode & S_ISVTX)))
		return 0;
	ferry__describe_uid(st->st_uid, who, sizeof(who));
	fix_hint(st, "go-w", p, hint, sizeof(hint));
	snprintf(err, errlen,
		 "refusing the %s '%s': '%s' above it belongs to %s with mode %04o, so another "
		 "user could replace what is in it (it must be yours or root's, and not writable "
		 "by group or others unless sticky)%s",
		 what, dir, p, who, (unsigned)(st->st_mode & 07777), hint);
	return FERRY_EPERM;
}

/*
 * check_above for each directory above path (and path itself with self),
 * the first that does not exist ending the walk. Along the path as given
 * (lstat) a symbolic link is passed over: its directory was checked, and
 * where it leads is checked along the real path.
 */
static int check_parents(const char *what, const char *dir, const char *path, int self, char *err,
			 size_t errlen)
{
	char *p = ferry__asprintf("%s%s", path, self ? "/" : "");
	struct stat st;
	int rc = 0;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	for (size_t k = 0; !rc && p[k]; k++) {
		if (p[k] != '/' || (!p[k + 1] && !self))
			continue;
		size_t cut = k ? k : 1; /* the root is "/" */
		char keep = p[cut];
		p[cut] = '\0';
		int e = lstat(p, &st) < 0 ? errno : 0;
		if (e == ENOENT) {
			p[cut] = keep;
			break; /* made later, by the caller, 0700 */
		}
		rc = e			   ? stat_failed(what, p, e, err, errlen)
		     : S_ISLNK(st.st_mode) ? 0
					   : check_above(what, dir, p, &st, err, errlen);
		p[cut] = keep;
	}
	free(p);
	return rc;
}

/*
 * The directory itself: the user's with no access for anyone else
 * (FERRY_DIR_PRIVATE), or the user's or root's and writable by no one
 * else (FERRY_DIR_NOT_WRITABLE, the StrictModes rule without the sticky
 * exception: others may not add entries).
 */
static int check_self(const char *what, const char *dir, const char *real, const struct stat *st,
		      enum ferry_dir_rule rule, char *err, size_t errlen)
{
	int private = rule == FERRY_DIR_PRIVATE;
	char who[160], hint[4200], must[160];

	if (!S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "cannot use the %s '%s': it is not a directory", what, dir);
		return FERRY_ECONFIG;
	}
	if (private ? st->st_uid == geteuid() && !(st->st_mode & 077)
		    : (st->st_uid == geteuid() || st->st_uid == 0) && !others_write(st))
		return 0;
	ferry__describe_uid(st->st_uid, who, sizeof(who));
	fix_hint(st, private ? "0700" : "go-w", real, hint, sizeof(hint));
	snprintf(must, sizeof(must),
		 private ? "yours (uid %ld) with no access for group and others (mode 0700)"
			 : "yours (uid %ld) or root's, and not writable by group or others",
		 (long)geteuid());
	snprintf(err, errlen,
		 "refusing the %s '%s'%s%s%s: it belongs to %s with mode %04o; it must be %s%s",
		 what, dir, strcmp(dir, real) ? " (at '" : "", strcmp(dir, real) ? real : "",
		 strcmp(dir, real) ? "')" : "", who, (unsigned)(st->st_mode & 07777), must, hint);
	return FERRY_EPERM;
}

/* The real path of dir, or of the nearest directory above it that exists (*exists 0). */
static char *real_path_of(const char *dir, int *exists)
{
	char *p = strdup(dir), *real = NULL, *slash;

	*exists = 1;
	while (p && !(real = realpath(p, NULL)) && errno == ENOENT && (slash = strrchr(p, '/'))) {
		*exists = 0;
		slash[slash == p] = '\0'; /* "/x" leaves "/" */
	}
	int e = errno;
	free(p);
	errno = e;
	return real;
}

/* ferry__check_own_dir with the rule for the directory itself. */
static int check_dir(const char *what, const char *dir, enum ferry_dir_rule rule, char *err,
		     size_t errlen)
{
	struct stat st;
	int exists, rc = check_parents(what, dir, dir, 0, err, errlen);
	char *real = rc ? NULL : real_path_of(dir, &exists);

	if (rc)
		return rc;
	if (!real)
		return stat_failed(what, dir, errno, err, errlen);
	/* where links lead: the directories of the real path, and dir itself */
	rc = check_parents(what, dir, real, !exists, err, errlen);
	if (!rc && exists)
		rc = stat(real, &st) < 0 ? stat_failed(what, real, errno, err, errlen)
					 : check_self(what, dir, real, &st, rule, err, errlen);
	free(real);
	return rc;
}

int ferry__check_own_dir(const char *what, const char *dir, char *err, size_t errlen)
{
	return check_dir(what, dir, FERRY_DIR_PRIVATE, err, errlen);
}

int ferry__check_own_dir_fd(const char *what, const char *dir, int fd, enum ferry_dir_rule rule,
			    char *err, size_t errlen)
{
	struct stat a, b;
	int rc = check_dir(what, dir, rule, err, errlen);

	if (rc)
		return rc;
	if (fstat(fd, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return 0;
	snprintf(err, errlen, "cannot use the %s '%s': it changed while it was checked", what, dir);
	return FERRY_EPERM;
}

int ferry__check_peer(int fd, const char *path, char *err, size_t errlen)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char who[160];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot tell who listens on '%s': %s", path, strerror(e));
		return FERRY_ECONNECT;
	}
	if (cr.uid == geteuid())
		return 0;
	ferry__describe_uid(cr.uid, who, sizeof(who));
	snprintf(err, errlen,
		 "refusing the engine on '%s': it runs as %s, not as you (uid %ld); nothing was "
		 "sent to it",
		 path, who, (long)geteuid());
	return FERRY_EPERM;
}
