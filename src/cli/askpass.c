/*
 * askpass.c - ferry-askpass, the SSH_ASKPASS helper of libferry.
 *
 * ssh runs it with a prompt as its only argument and reads the answer from
 * its stdout. The answer comes from the libferry process that started ssh,
 * over the abstract Unix socket named in $FERRY_ASKPASS_SOCKET: that
 * process checks our uid, and answers only a password prompt, once. The
 * password thus never sits on a command line, in an environment or on disk.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int main(int argc, char **argv)
{
	const char *name = getenv("FERRY_ASKPASS_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char answer[4096];
	size_t len, got = 0;
	ssize_t n;
	int fd;

	if (argc != 2 || !name || !*name || strlen(name) >= sizeof(sa.sun_path) - 1) {
		fprintf(stderr, "ferry-askpass: run by ssh for libferry only\n");
		return 2;
	}
	len = strlen(name);
	memcpy(sa.sun_path + 1, name, len); /* abstract: sun_path[0] stays '\0' */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) < 0) {
		fprintf(stderr, "ferry-askpass: cannot reach libferry: %s\n", strerror(errno));
		return 1;
	}
	if (ferry__write_all(fd, argv[1], strlen(argv[1])) < 0 || shutdown(fd, SHUT_WR) < 0)
		return 1;
	while (got < sizeof(answer) && (n = read(fd, answer + got, sizeof(answer) - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 1;
		got += (size_t)n;
	}
	close(fd);
	/* nothing: not a prompt libferry answers (a host key, a passphrase) */
	if (got == 0 || got == sizeof(answer))
		return 1;
	if (ferry__write_all(1, answer, got) < 0 || ferry__write_all(1, "\n", 1) < 0)
		return 1;
	return 0;
}
