/*
 * lastwords.c - `ferryd.lastwords`: "PID CODE REASON\n", written by an
 * engine that stops because its database cannot be written or is damaged,
 * just before its connections close.
 *
 * Why a file: the engine that dies is not the process that its client
 * started (that one exited once the engine listened), so no pipe is left
 * to say it on; a client that lost the engine reads the words of the
 * engine it spoke to (the pid of its hello) and reports them at once,
 * instead of starting engines that meet the same end for its whole
 * reconnection budget. The next engine, finding words, checks the
 * database before it serves, and empties the file once it listens.
 *
 * The file's first block is reserved when the engine starts (fallocate,
 * size kept): a full disk is one of the reasons, and must not keep the
 * reason from being written.
 */
#include "lastwords.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define WORDS_MAX 4096

int ferry__last_words_open(const char *state_dir, int *had)
{
	char *path = ferry__asprintf("%s/ferryd.lastwords", state_dir);
	struct stat st;
	int fd = path ? open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;

	free(path);
	*had = fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0;
	if (fd >= 0)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, WORDS_MAX); /* best effort */
	return fd;
}

void ferry__last_words_clear(int fd)
{
	/* truncating frees the reserved block too: take it again */
	if (fd >= 0 && ftruncate(fd, 0) == 0)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, WORDS_MAX);
}

void ferry__last_words_say(int fd, int code, const char *why)
{
	char buf[WORDS_MAX];
	int n;

	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%ld %d %s\n", (long)getpid(), code, why);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) {
		n = (int)sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	/* within the reserved block: no new space needed; the file was empty */
	if (pwrite(fd, buf, (size_t)n, 0) != n && ftruncate(fd, 0) < 0)
		return; /* words cut short say nothing: none rather than those */
}

int ferry__last_words_read(const char *state_dir, long pid, int *code, char *why, size_t cap)
{
	char *path = ferry__asprintf("%s/ferryd.lastwords", state_dir);
	char buf[WORDS_MAX];
	int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1, off = 0;
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	long who;

	free(path);
	if (fd >= 0)
		close(fd);
	if (n <= 0 || pid <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (sscanf(buf, "%ld %d %n", &who, code, &off) < 2 || !off || who != pid)
		return 0;
	snprintf(why, cap, "%s", buf + off);
	return 1;
}
