/*
 * logs.c - `ferry logs`: a job's stdout or stderr as the engine has it,
 * once or followed until the job ended. On this host the file is read
 * here (ferry_open_output), passed on to stdout by the kernel where it
 * can (sendfile): as fast as cat. A remote resource's bytes come through
 * the engine, a chunk per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "cli.h"

#define READ_CHUNK     (64 * 1024)
#define FOLLOW_DELAY_S 0.2

struct logs_opts {
	enum ferry_stream stream;
	int follow;
};

static int logs_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct logs_opts *o = data;

	if (opt == OPT_STDERR)
		o->stream = FERRY_STDERR;
	else if (opt == 'f')
		o->follow = 1;
	else
		return ferry__cli_usage_error(c);
	return CLI_OK;
}

/* Through the engine, from off on: a remote resource's output. */
static int copy_output(const struct ctx *c, ferry_job_id id, const struct logs_opts *o, char *buf,
		       uint64_t off)
{
	size_t got;
	int ended, rc;

	for (;;) {
		got = 0;
		ended = 0;
		rc = ferry_read_output(c->conn, id, o->stream, off, buf, READ_CHUNK, &got, &ended);
		if (rc == FERRY_EEOF)
			return CLI_OK;
		if (rc < 0)
			return ferry__cli_report_id(c, id, rc);
		if (got > 0) {
			if (fwrite(buf, 1, got, stdout) != got) {
				ferry__cli_errorf(c, "cannot write the output: %s",
						  ferry__cli_errno_str(errno));
				return CLI_ERR;
			}
			off += got;
			continue;
		}
		if (!o->follow || ended)
			return CLI_OK;
		/* The API has no "wait for output"; polling is the only way to follow. */
		fflush(stdout);
		ferry__cli_sleep(FOLLOW_DELAY_S);
	}
}

/* write(2) of all of p, retried where it was cut short. */
static int write_all(const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Copies fd from *off to its current end to stdout: by sendfile, where
 * the kernel moves the file's pages into a pipe or file without a copy
 * here; by read and write where stdout takes no sendfile (a terminal,
 * a file opened to append). 0, or -1 with errno.
 */
static int copy_fd(int fd, off_t *off, char *buf, int *plain)
{
	/* a pipe of 1 MiB takes 16 times the pages per call: fewer switches to its reader */
	if (!*plain)
		(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		ssize_t n;
		if (!*plain) {
			n = sendfile(STDOUT_FILENO, fd, off, 1 << 30);
			if (n > 0)
				continue;
			if (n == 0)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno != EINVAL && errno != ENOSYS)
				return -1;
			*plain = 1;
		}
		n = pread(fd, buf, READ_CHUNK, *off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		if (write_all(buf, (size_t)n) < 0)
			return -1;
		*off += n;
	}
}

/*
 * Whether the job ended, asked before the copy that follows: once it
 * ended, what the copy reads is all there is.
 */
static int job_ended(const struct ctx *c, ferry_job_id id, const struct logs_opts *o, int *fd,
		     int *ended, off_t off)
{
	size_t got = 0;
	char none;

	if (*fd < 0)
		return ferry_open_output(c->conn, id, o->stream, fd, ended);
	return ferry_read_output(c->conn, id, o->stream, (uint64_t)off, &none, 0, &got, ended);
}

/* On this host: the file read here, followed by polling like the engine's reads. */
static int copy_local(const struct ctx *c, ferry_job_id id, const struct logs_opts *o, char *buf,
		      int fd, int ended)
{
	int plain = 0, rc = CLI_OK;
	off_t off = 0;

	for (;;) {
		if (fd >= 0 && copy_fd(fd, &off, buf, &plain) < 0) {
			ferry__cli_errorf(c, "cannot copy the output of job %" PRId64 ": %s", id,
					  ferry__cli_errno_str(errno));
			rc = CLI_ERR;
			break;
		}
		if (!o->follow || ended)
			break;
		fflush(stdout);
		ferry__cli_sleep(FOLLOW_DELAY_S);
		int e = job_ended(c, id, o, &fd, &ended, off);
		if (e == FERRY_EUNSUPPORTED) /* another file there now: the engine reads it */
			rc = copy_output(c, id, o, buf, (uint64_t)off);
		else if (e < 0)
			rc = ferry__cli_report_id(c, id, e);
		if (e < 0)
			break;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int ferry__cli_cmd_logs(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"stderr", no_argument, NULL, OPT_STDERR},
	    {"follow", no_argument, NULL, 'f'},
	    {0},
	};
	struct logs_opts o = {.stream = FERRY_STDOUT};
	ferry_job_id id;
	int rc, fd = -1, ended = 0;
	char *buf;

	rc = ferry__cli_parse_opts(c, argc, argv, "hf", opts, logs_opt, &o);
	if (rc == CLI_OK)
		rc = ferry__cli_one_job(c, argc, argv, &id);
	if (rc != CLI_OK)
		return rc;
	buf = malloc(READ_CHUNK);
	if (!buf)
		return ferry__cli_out_of_memory(c);
	rc = ferry_open_output(c->conn, id, o.stream, &fd, &ended);
	if (rc == FERRY_EUNSUPPORTED)
		rc = copy_output(c, id, &o, buf, 0);
	else if (rc < 0)
		rc = ferry__cli_report_id(c, id, rc);
	else
		rc = copy_local(c, id, &o, buf, fd, ended);
	free(buf);
	return rc;
}
