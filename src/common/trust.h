/*
 * trust.h - whether a directory or the process behind a socket is this
 * user's own: what the client checks before it talks to an engine, and
 * the engine before it keeps files in its state directory or transfer root.
 */
#ifndef FERRY_TRUST_H
#define FERRY_TRUST_H

#include <stddef.h>
#include <sys/types.h>

/* "uid N (name)", or "uid N" when the name is unknown, into buf. */
void ferry__describe_uid(uid_t uid, char *buf, size_t cap);

/* What a directory itself must be; the rule for those above it is one. */
enum ferry_dir_rule {
	/* the user's, with no access for group and others (mode 0700) */
	FERRY_DIR_PRIVATE,
	/*
	 * the user's or root's, writable by no one else (OpenSSH's
	 * StrictModes; group-writable for the user's own group, and no
	 * sticky exception): others can read it, but not swap what is in it
	 */
	FERRY_DIR_NOT_WRITABLE,
};

/*
 * Whether dir (what: "state directory", "transfer root", for messages) is
 * this user's own, that no one else can change or replace: dir, when it
 * exists, a directory owned by the effective uid with no access for group
 * and others; every directory above it, along the path as given and
 * along its real path, owned by this uid or root and writable by no one
 * else unless it is sticky (as /tmp). A dir that does not exist yet passes
 * (the caller makes it, 0700), its existing parents checked. 0, or
 * FERRY_EPERM (another code when a stat fails otherwise) with err naming
 * the path, its owner and its mode, and the chmod that fixes it when the
 * user can.
 */
int ferry__check_own_dir(const char *what, const char *dir, char *err, size_t errlen);

/*
 * ferry__check_own_dir with rule for dir itself, and whether the
 * directory open at fd is the one checked: what the caller then reaches
 * through fd. 0 or an error.
 */
int ferry__check_own_dir_fd(const char *what, const char *dir, int fd, enum ferry_dir_rule rule,
			    char *err, size_t errlen);

/*
 * Whether the process at the other end of the connected Unix socket fd
 * (reached at path, for messages) runs as this user (SO_PEERCRED). 0, or
 * FERRY_EPERM (FERRY_ECONNECT when it cannot be told) with err set.
 */
int ferry__check_peer(int fd, const char *path, char *err, size_t errlen);

#endif
