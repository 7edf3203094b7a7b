/*
 * top.c - `ferry top`: the jobs of a resource in a terminal (ncurses), a
 * page of them refreshed every interval, with their output and the
 * kill/stop/restart of control.c a key away. It is a libferry client like
 * every command: `ferry -r REMOTE top` goes over the same ssh link.
 *
 * What it asks the engine (docs/architecture.md, "ferry top"): one `jobs`
 * listing of the rows shown (keyset paging: the jobs after an id, limit
 * the rows + 1; with a name filter, which is ours, at most SCAN_MAX jobs
 * read), and, for the counts per state, an ids-only listing of each
 * state. Whatever takes long is asked again only after COUNTS_FACTOR
 * times its time, so top never takes more than a tenth of the engine.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include "cli.h"

#define NAME_MAX_SHOWN 128
#define FILTER_MAX     64
#define OUT_CAP	       (1024 * 1024) /* bytes of a job's output kept (the last ones) */
#define OUT_CHUNK      (64 * 1024)
#define OUT_READS      16    /* chunks read a refresh: a big output never freezes the keys */
#define SCAN_MAX       20000 /* jobs a name filter reads a refresh, at most */
#define COUNTS_FACTOR  10    /* a slow listing (counts, a name filter) takes a tenth of the time */
#define NSTATES	       (FERRY_FAILED + 1)
#define KEY_ESC	       27
#define KEY_CTRL_C     3

/* Set by SIGINT, SIGTERM, SIGHUP and SIGQUIT: leave the loop, restore the terminal. */
static volatile sig_atomic_t quit_signal;

struct row {
	ferry_job_id id;
	char name[NAME_MAX_SHOWN];
	enum ferry_job_status status;
	enum ferry_exit_status exit_status;
	int exit_value, signal;
	double submitted_at, started_at, ended_at;
};

enum sort_key { SORT_ID, SORT_NAME, SORT_STATE, SORT_SUBMITTED, SORT_RUNTIME, SORT_N };
static const char *const sort_names[SORT_N] = {"id", "name", "state", "submitted", "runtime"};

/* A job's stdout or stderr, the view Enter opens. */
struct out_view {
	ferry_job_id id;
	enum ferry_stream stream;
	char *buf;
	size_t len;
	uint64_t offset; /* of the next byte to read */
	int ended;
	int scroll; /* lines back from the end */
	char err[256];
};

struct top {
	struct ctx *c;
	double interval;
	struct row *rows; /* the page shown, sorted as asked */
	size_t nrows, cap;
	int more;		 /* jobs after the page */
	ferry_job_id scanned_to; /* a name filter's scan stopped after this id; 0: it did not */
	ferry_job_id after;	 /* the page: the jobs after this id */
	ferry_job_id *back;	 /* the afters of the pages before (PgUp) */
	size_t nback, backcap;	 /* of back */
	ferry_job_id sel_id;	 /* the selected job, kept across refreshes */
	size_t sel;
	int state; /* the state filter: -1 for any */
	char name[FILTER_MAX];
	enum sort_key sort;
	int reverse;
	size_t counts[NSTATES], total;
	int have_counts;
	double counts_next; /* when the counts are due */
	int confirm;	    /* 'k', 's' or 'r' waiting for y/n; 0: none */
	ferry_job_id confirm_id;
	int prompt; /* typing the name filter into input */
	char input[FILTER_MAX];
	char msg[320];
	struct out_view *out; /* non-NULL: showing a job's output */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	return (double)time(NULL);
}

static void on_signal(int sig)
{
	quit_signal = sig;
}

/* Without SA_RESTART: a wait for a key ends at once. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Ctrl-\: its default, a core dump, would leave the terminal in curses' modes */
	sigaction(SIGQUIT, &sa, NULL);
}

static void say(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct top *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* What is fetched */

/* The rows a page has room for: the screen less the title, header and status lines. */
static size_t page_rows(void)
{
	return LINES > 3 ? (size_t)(LINES - 3) : 1;
}

struct fill {
	struct top *t;
	size_t want;
	size_t scanned;	   /* jobs a name filter looked at */
	ferry_job_id last; /* the last of them */
};

static void copy_text(char *dst, size_t cap, const char *s)
{
	size_t i;

	/* one cell a byte: a control character would move the cursor */
	for (i = 0; s && s[i] && i + 1 < cap; i++)
		dst[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	dst[i] = '\0';
}

static int take_job(void *arg, const struct ferry_job_info *j)
{
	struct fill *f = arg;
	struct top *t = f->t;
	struct row *r;

	if (quit_signal)
		return 1;
	/* a bounded scan: the page shows what it found, PgDn searches on */
	if (t->name[0] && f->scanned++ == SCAN_MAX) {
		t->scanned_to = f->last;
		t->more = 1;
		return 1;
	}
	f->last = j->id;
	if (t->name[0] && (!j->name || !strstr(j->name, t->name)))
		return 0;
	if (t->nrows == f->want) {
		t->more = 1;
		return 1; /* the page is full: stop the listing */
	}
	r = &t->rows[t->nrows++];
	r->id = j->id;
	copy_text(r->name, sizeof(r->name), j->name && *j->name ? j->name : "-");
	r->status = j->status;
	r->exit_status = j->exit_status;
	r->exit_value = j->exit_value;
	r->signal = j->signal;
	r->submitted_at = j->submitted_at;
	r->started_at = j->started_at;
	r->ended_at = j->ended_at;
	return 0;
}

static double row_runtime(const struct row *r)
{
	if (r->started_at <= 0)
		return -1;
	return (r->ended_at > 0 ? r->ended_at : wall_s()) - r->started_at;
}

static int cmp_num(double a, double b)
{
	return a < b ? -1 : a > b;
}

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct row *a = pa, *b = pb;
	const struct top *t = arg;
	int d = 0;

	switch (t->sort) {
	case SORT_NAME:
		d = strcmp(a->name, b->name);
		break;
	case SORT_STATE:
		d = strcmp(ferry__cli_status_str(a->status), ferry__cli_status_str(b->status));
		break;
	case SORT_SUBMITTED:
		d = cmp_num(a->submitted_at, b->submitted_at);
		break;
	case SORT_RUNTIME:
		d = cmp_num(row_runtime(a), row_runtime(b));
		break;
	default:
		break;
	}
	if (!d)
		d = cmp_num((double)a->id, (double)b->id);
	return t->reverse ? -d : d;
}

/* The selection follows its job; gone, it stays at its place. */
static void keep_selection(struct top *t)
{
	for (size_t i = 0; i < t->nrows; i++) {
		if (t->rows[i].id == t->sel_id) {
			t->sel = i;
			return;
		}
	}
	if (t->sel >= t->nrows)
		t->sel = t->nrows ? t->nrows - 1 : 0;
	t->sel_id = t->nrows ? t->rows[t->sel].id : 0;
}

/* The page: one listing of the jobs after t->after, at most a page and one more. */
static int fetch_page(struct top *t)
{
	struct ferry_list_opts o;
	enum ferry_job_status st;
	struct fill f = {.t = t, .want = page_rows()};
	int rc;

	if (f.want > t->cap) {
		struct row *r = realloc(t->rows, f.want * sizeof(*r));
		if (!r)
			return FERRY_ENOMEM;
		t->rows = r;
		t->cap = f.want;
	}
	ferry_list_opts_init(&o);
	o.after = t->after;
	if (t->state >= 0) {
		st = (enum ferry_job_status)t->state;
		o.states = &st;
		o.nstates = 1;
	}
	/* a name filter is the client's: read on until the page is full */
	o.limit = t->name[0] ? 0 : f.want + 1;
	o.page = t->name[0] ? 1000 : f.want + 1;
	t->nrows = 0;
	t->more = 0;
	t->scanned_to = 0;
	rc = ferry_list_jobs(t->c->conn, &o, take_job, &f);
	if (rc < 0)
		return rc;
	qsort_r(t->rows, t->nrows, sizeof(*t->rows), cmp_rows, t);
	keep_selection(t);
	return 0;
}

/* Counts per state: an ids-only listing of each (a few bytes a job). */
static int fetch_counts(struct top *t)
{
	struct ferry_list_opts o;
	size_t counts[NSTATES], total = 0;
	double start = now_s(), cost;

	for (int s = 0; s < NSTATES; s++) {
		enum ferry_job_status st = (enum ferry_job_status)s;
		ferry_job_id *ids = NULL;
		int rc;

		ferry_list_opts_init(&o);
		o.states = &st;
		o.nstates = 1;
		rc = ferry_list_ids(t->c->conn, &o, &ids, &counts[s]);
		free(ids);
		if (rc < 0)
			return rc;
		total += counts[s];
	}
	memcpy(t->counts, counts, sizeof(counts));
	t->total = total;
	t->have_counts = 1;
	/* an ids listing a state costs the engine what it holds: ten times its cost apart */
	cost = COUNTS_FACTOR * (now_s() - start);
	t->counts_next = now_s() + (cost > t->interval ? cost : t->interval);
	return 0;
}

/* A refusal of the engine, or a lost link: said, and asked again at the next refresh. */
static void report_failure(struct top *t, const char *what, int rc)
{
	say(t, "cannot %s: %s", what, ferry__cli_api_msg(t->c, rc));
}

/* ------------------------------------------------------------------ */
/* A job's output */

static void out_append(struct out_view *o, const char *p, size_t n)
{
	if (n >= OUT_CAP) {
		p += n - OUT_CAP / 2;
		n = OUT_CAP / 2;
	}
	if (o->len + n > OUT_CAP) {
		/* keep the newest half, from a line's start */
		size_t drop = o->len - OUT_CAP / 2;
		char *nl = memchr(o->buf + drop, '\n', o->len - drop);
		if (nl)
			drop = (size_t)(nl + 1 - o->buf);
		memmove(o->buf, o->buf + drop, o->len - drop);
		o->len -= drop;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* What the job wrote since the last refresh, a few chunks at most. */
static void fetch_output(struct top *t)
{
	struct out_view *o = t->out;
	static char chunk[OUT_CHUNK];
	size_t got;
	int rc;

	for (int i = 0; i < OUT_READS; i++) {
		got = 0;
		rc = ferry_read_output(t->c->conn, o->id, o->stream, o->offset, chunk,
				       sizeof(chunk), &got, &o->ended);
		if (rc == FERRY_EEOF)
			return;
		if (rc < 0) {
			snprintf(o->err, sizeof(o->err),
				 "cannot read the output of job %" PRId64 ": %s", o->id,
				 ferry__cli_api_msg(t->c, rc));
			return;
		}
		o->err[0] = '\0';
		if (!got)
			return;
		out_append(o, chunk, got);
		o->offset += got;
	}
}

static int open_output(struct top *t, ferry_job_id id, enum ferry_stream stream)
{
	struct out_view *o = t->out;

	if (!o && !(o = calloc(1, sizeof(*o))))
		return FERRY_ENOMEM;
	if (!o->buf && !(o->buf = malloc(OUT_CAP))) {
		free(o);
		return FERRY_ENOMEM;
	}
	o->id = id;
	o->stream = stream;
	o->len = 0;
	o->offset = 0;
	o->ended = 0;
	o->scroll = 0;
	o->err[0] = '\0';
	t->out = o;
	return 0;
}

static void close_output(struct top *t)
{
	if (t->out)
		free(t->out->buf);
	free(t->out);
	t->out = NULL;
}

/* ------------------------------------------------------------------ */
/* Drawing */

static void fmt_duration(char *buf, size_t cap, double s)
{
	unsigned long long v = (unsigned long long)s;

	if (s < 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%llu:%02llu:%02llu", v / 3600, v / 60 % 60, v % 60);
}

static void fmt_time(char *buf, size_t cap, double at)
{
	time_t now = time(NULL), tt = (time_t)at;
	struct tm tm, today;

	if (at <= 0 || !localtime_r(&tt, &tm) || !localtime_r(&now, &today)) {
		snprintf(buf, cap, "-");
		return;
	}
	strftime(buf, cap,
		 tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year ? "%H:%M:%S"
									    : "%m-%d %H:%M",
		 &tm);
}

/*
 * Writes s on row y cut at the terminal's edge, however narrow: a longer
 * line would wrap onto the next row, and a full one moves the cursor
 * there, where clrtoeol() would blank that row (draw() erased it anyway).
 */
static void put_line(int y, const char *s)
{
	int n = COLS > 0 ? (int)strnlen(s, (size_t)COLS) : 0;

	if (n)
		mvaddnstr(y, 0, s, n);
	else
		move(y, 0);
	if (n < COLS)
		clrtoeol();
}

/* Appends to a line of cap bytes, cut where it is full (*n stays below cap). */
static void append(char *line, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *line, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n + 1 >= cap)
		return;
	va_start(ap, fmt);
	r = vsnprintf(line + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (r > 0)
		*n = *n + (size_t)r < cap ? *n + (size_t)r : cap - 1;
}

/* The columns but the name take this much; the name the rest of the width. */
#define FIXED_COLS (9 + 20 + 12 + 10 + 9)

static void draw_line(int y, const char *id, const char *name, const char *state,
		      const char *submitted, const char *runtime, const char *exit)
{
	char line[1024];
	int namew = COLS - FIXED_COLS - 1;

	if (namew < 4)
		namew = 4;
	if (namew > NAME_MAX_SHOWN)
		namew = NAME_MAX_SHOWN;
	snprintf(line, sizeof(line), "%8s %-*.*s %-19s %-11s %9s %-9s", id, namew, namew, name,
		 state, submitted, runtime, exit);
	put_line(y, line);
}

static void draw_row(const struct top *t, int y, const struct row *r, int selected)
{
	char id[24], sub[16], run[32], ex[24];

	snprintf(id, sizeof(id), "%" PRId64, r->id);
	fmt_time(sub, sizeof(sub), r->submitted_at);
	fmt_duration(run, sizeof(run), row_runtime(r));
	ferry__cli_exit_cell(ex, sizeof(ex), r->exit_status, r->exit_value, r->signal, 1);
	if (selected)
		attron(A_REVERSE);
	draw_line(y, id, r->name, ferry__cli_status_str(r->status), sub, run, ex);
	if (selected)
		attroff(A_REVERSE);
}

/* "ferry top: R  12 jobs  running 2  queued_active 3 ...  [state=S name=N sort=K]" */
static void draw_title(const struct top *t)
{
	char line[512];
	size_t n = 0;

	append(line, sizeof(line), &n, "ferry top: %s  ", t->c->resource);
	if (t->have_counts) {
		append(line, sizeof(line), &n, "%zu job%s", t->total, t->total == 1 ? "" : "s");
		for (int s = 0; s < NSTATES; s++)
			if (t->counts[s])
				append(line, sizeof(line), &n, "  %s %zu",
				       ferry__cli_status_str((enum ferry_job_status)s),
				       t->counts[s]);
	}
	put_line(0, line);
}

static void draw_status(const struct top *t)
{
	char line[512];

	if (t->prompt)
		snprintf(line, sizeof(line), "name contains: %s", t->input);
	else if (t->confirm)
		snprintf(line, sizeof(line), "%s job %" PRId64 "? (y/n)",
			 t->confirm == 'k'   ? "kill"
			 : t->confirm == 's' ? "stop"
					     : "restart",
			 t->confirm_id);
	else if (t->msg[0] || t->out)
		snprintf(line, sizeof(line), "%s", t->msg);
	else
		snprintf(line, sizeof(line),
			 "[state %s, name %s, sort %s%s]  f state  / name  o sort  Enter output  "
			 "k kill  s stop  r restart  q quit",
			 t->state < 0 ? "any"
				      : ferry__cli_status_str((enum ferry_job_status)t->state),
			 t->name[0] ? t->name : "*", sort_names[t->sort], t->reverse ? "-" : "+");
	attron(A_BOLD);
	put_line(LINES - 1, line);
	attroff(A_BOLD);
}

static void draw_table(const struct top *t)
{
	size_t i;

	draw_title(t);
	attron(A_REVERSE | A_BOLD);
	draw_line(1, "ID", "NAME", "STATE", "SUBMITTED", "RUNTIME", "EXIT");
	attroff(A_REVERSE | A_BOLD);
	for (i = 0; i < t->nrows && (int)i + 2 < LINES - 1; i++)
		draw_row(t, (int)i + 2, &t->rows[i], i == t->sel);
	if (t->scanned_to && (int)i + 2 < LINES - 1) {
		char line[128];
		snprintf(line, sizeof(line),
			 "(names searched up to job %" PRId64 ": PgDn searches on)", t->scanned_to);
		put_line((int)i + 2, line);
	} else if (!t->nrows) {
		put_line(2, t->after ? "(no more jobs: PgUp or Home)" : "(no jobs)");
	}
	draw_status(t);
}

static void draw_text_line(int y, const char *p, size_t n)
{
	size_t i;

	move(y, 0);
	for (i = 0; i < n && (int)i < COLS; i++)
		addch((unsigned char)p[i] < 0x20 ? '?' : (chtype)(unsigned char)p[i]);
	if ((int)i < COLS) /* as put_line() */
		clrtoeol();
}

/*
 * The last screenful of the output, t->out->scroll lines back from its
 * end, from the top of the view down.
 */
static void draw_output(const struct top *t)
{
	const struct out_view *o = t->out;
	int h = LINES - 2, skip = o->scroll, n = 0;
	size_t end = o->len, start;

	char title[256];

	snprintf(title, sizeof(title),
		 "job %" PRId64 " %s%s  (Tab: %s  Up/Down/PgUp/PgDn scroll  q back)", o->id,
		 o->stream == FERRY_STDOUT ? "stdout" : "stderr", o->ended ? ", ended" : "",
		 o->stream == FERRY_STDOUT ? "stderr" : "stdout");
	put_line(0, title);
	if (end && o->buf[end - 1] == '\n')
		end--;
	for (; skip > 0 && end > 0; skip--)
		while (end > 0 && o->buf[--end] != '\n')
			;
	/* back to the start of the first line shown: h lines before the end */
	for (start = end; n < h && start > 0; n++) {
		if (n)
			start--; /* onto the newline that ends the line before */
		while (start > 0 && o->buf[start - 1] != '\n')
			start--;
	}
	for (int y = 1; y <= h && start < end; y++) {
		const char *nl = memchr(o->buf + start, '\n', end - start);
		size_t stop = nl ? (size_t)(nl - o->buf) : end;
		draw_text_line(y, o->buf + start, stop - start);
		start = stop + 1;
	}
	if (o->err[0])
		put_line(1, o->err);
	draw_status(t);
}

static void draw(const struct top *t)
{
	erase();
	if (t->out)
		draw_output(t);
	else
		draw_table(t);
	refresh();
}

/* ------------------------------------------------------------------ */
/* Keys */

/* The next refresh: after the interval, or ten times what a name filter's scan took. */
static double refresh_data(struct top *t)
{
	double start = now_s(), cost;
	int rc = 0;

	if (t->out) {
		fetch_output(t);
	} else if ((rc = fetch_page(t)) < 0) {
		report_failure(t, "list the jobs", rc);
	}
	/* a page of rows takes milliseconds: only a name filter's scan is slow */
	cost = t->name[0] && !t->out ? COUNTS_FACTOR * (now_s() - start) : 0;
	if (!t->out && rc >= 0 && now_s() >= t->counts_next && (rc = fetch_counts(t)) < 0)
		report_failure(t, "count the jobs", rc);
	return now_s() + (cost > t->interval ? cost : t->interval);
}

/* A new filter or sort: the first page again. */
static void restart_listing(struct top *t)
{
	t->after = 0;
	t->nback = 0;
	t->sel = 0;
	t->sel_id = 0;
	t->counts_next = 0;
}

static int page_down(struct top *t)
{
	ferry_job_id last = t->scanned_to;

	if (!t->more)
		return 0;
	if (t->nback == t->backcap) {
		size_t cap = t->backcap ? 2 * t->backcap : 16;
		ferry_job_id *b = realloc(t->back, cap * sizeof(*b));
		if (!b) {
			say(t, "out of memory");
			return 0;
		}
		t->back = b;
		t->backcap = cap;
	}
	for (size_t i = 0; i < t->nrows; i++)
		if (t->rows[i].id > last)
			last = t->rows[i].id;
	t->back[t->nback++] = t->after;
	t->after = last;
	t->sel = 0;
	t->sel_id = 0;
	return 1;
}

static int page_up(struct top *t)
{
	if (!t->nback)
		return 0;
	t->after = t->back[--t->nback];
	t->sel_id = 0;
	return 1;
}

static void act(struct top *t, int key, ferry_job_id id)
{
	static const struct {
		int key;
		const char *done, *what;
		int (*fn)(ferry_conn *, ferry_job_id);
	} acts[] = {
	    {'k', "killed", "kill", ferry_kill},
	    {'s', "stopped", "stop", ferry_stop},
	    {'r', "restarted", "restart", ferry_restart},
	};
	size_t i = 0;
	int rc;

	while (acts[i].key != key)
		i++;
	rc = acts[i].fn(t->c->conn, id);
	if (rc < 0)
		say(t, "cannot %s job %" PRId64 ": %s", acts[i].what, id,
		    ferry__cli_api_msg(t->c, rc));
	else
		say(t, "job %" PRId64 " %s", id, acts[i].done);
}

/* Typing the name filter: Enter takes it, Esc leaves it as it was. */
static int key_prompt(struct top *t, int ch)
{
	size_t n = strlen(t->input);

	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		snprintf(t->name, sizeof(t->name), "%s", t->input);
		t->prompt = 0;
		restart_listing(t);
		return 1;
	}
	if (ch == KEY_ESC) {
		t->prompt = 0;
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (n)
			t->input[n - 1] = '\0';
	} else if (ch >= 0x20 && ch < 0x7f && n + 1 < sizeof(t->input)) {
		t->input[n] = (char)ch;
		t->input[n + 1] = '\0';
	}
	return 0;
}

static int key_output(struct top *t, int ch)
{
	struct out_view *o = t->out;
	int h = LINES - 2 > 1 ? LINES - 2 : 1;

	switch (ch) {
	case 'q':
	case KEY_ESC:
	case KEY_LEFT:
	case KEY_BACKSPACE:
		close_output(t);
		return 1;
	case '\t':
		return open_output(t, o->id,
				   o->stream == FERRY_STDOUT ? FERRY_STDERR : FERRY_STDOUT)
			   ? 0
			   : 1;
	case KEY_UP:
		o->scroll++;
		break;
	case KEY_DOWN:
		o->scroll -= o->scroll > 0;
		break;
	case KEY_PPAGE:
		o->scroll += h;
		break;
	case KEY_NPAGE:
		o->scroll = o->scroll > h ? o->scroll - h : 0;
		break;
	}
	return 0;
}

/* The state filter's next (dir 1) or previous (-1) value: any, then each state. */
static void cycle_state(struct top *t, int dir)
{
	t->state += dir;
	if (t->state >= NSTATES)
		t->state = -1;
	else if (t->state < -1)
		t->state = NSTATES - 1;
	restart_listing(t);
}

static int key_move(struct top *t, int ch)
{
	switch (ch) {
	case KEY_UP:
		if (t->sel > 0)
			t->sel--;
		else
			return page_up(t);
		break;
	case KEY_DOWN:
		if (t->sel + 1 < t->nrows)
			t->sel++;
		else
			return page_down(t);
		break;
	case KEY_NPAGE:
		return page_down(t);
	case KEY_PPAGE:
		return page_up(t);
	case KEY_HOME:
	case 'g':
		restart_listing(t);
		return 1;
	}
	if (t->nrows)
		t->sel_id = t->rows[t->sel].id;
	return 0;
}

/* A key in the table; 1: fetch again now, -1: quit. */
static int key_table(struct top *t, int ch)
{
	switch (ch) {
	case 'q':
		return -1;
	case 'k':
	case 's':
	case 'r':
		if (!t->nrows)
			return 0;
		t->confirm = ch;
		t->confirm_id = t->rows[t->sel].id;
		return 0;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (!t->nrows)
			return 0;
		if (open_output(t, t->rows[t->sel].id, FERRY_STDOUT) < 0) {
			say(t, "out of memory");
			return 0;
		}
		return 1;
	case 'f':
	case 'F':
		cycle_state(t, ch == 'f' ? 1 : -1);
		return 1;
	case '/':
		t->prompt = 1;
		snprintf(t->input, sizeof(t->input), "%s", t->name);
		return 0;
	case 'o':
		t->sort = (t->sort + 1) % SORT_N;
		break;
	case 'O':
		t->reverse = !t->reverse;
		break;
	default:
		return key_move(t, ch);
	}
	qsort_r(t->rows, t->nrows, sizeof(*t->rows), cmp_rows, t);
	keep_selection(t);
	return 0;
}

static int on_key(struct top *t, int ch)
{
	if (ch == KEY_CTRL_C)
		return -1;
	if (ch == KEY_RESIZE)
		return 1; /* as many rows as the new height */
	t->msg[0] = '\0';
	if (t->prompt)
		return key_prompt(t, ch);
	if (t->confirm) {
		int what = t->confirm;
		t->confirm = 0;
		if (ch != 'y' && ch != 'Y') {
			say(t, "not done");
			return 0;
		}
		act(t, what, t->confirm_id);
		t->counts_next = 0;
		return 1;
	}
	return t->out ? key_output(t, ch) : key_table(t, ch);
}

/* Waits for a key until the next refresh is due: no busy loop. */
static int run_loop(struct top *t)
{
	double next = 0;
	int ch, r, ms;

	while (!quit_signal) {
		if (now_s() >= next)
			next = refresh_data(t);
		draw(t);
		ms = (int)((next - now_s()) * 1000) + 1;
		timeout(ms > 0 ? ms : 0);
		ch = getch();
		if (ch == ERR)
			continue;
		r = on_key(t, ch);
		if (r < 0)
			break;
		if (r > 0)
			next = 0;
	}
	return CLI_OK;
}

static int top_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	double *interval = data;
	char *end;

	if (opt != 'i')
		return ferry__cli_usage_error(c);
	errno = 0;
	*interval = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(*interval) || *interval < 0.1 ||
	    *interval > 3600) {
		ferry__cli_bad_value(c, "--interval", arg, "expected seconds, 0.1 to 3600");
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

static SCREEN *start_screen(struct ctx *c)
{
	SCREEN *scr;

	setlocale(LC_ALL, "");
	catch_signals(); /* before newterm: ncurses then leaves them to us */
	if (!(scr = newterm(NULL, stdout, stdin))) {
		ferry__cli_errorf(c, "cannot start the terminal '%s'",
				  getenv("TERM") ? getenv("TERM") : "");
		return NULL;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	return scr;
}

int ferry__cli_cmd_top(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"interval", required_argument, NULL, 'i'},
	    {0},
	};
	struct top t = {.c = c, .interval = 1.0, .state = -1};
	SCREEN *scr;
	int rc;

	rc = ferry__cli_parse_opts(c, argc, argv, "hi:", opts, top_opt, &t.interval);
	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc == CLI_OK && c->json) {
		ferry__cli_errorf(c, "--json is not for top (try 'ferry jobs --json')");
		rc = ferry__cli_usage_error(c);
	}
	if (rc != CLI_OK)
		return rc;
	if (!isatty(0) || !isatty(1)) {
		ferry__cli_errorf(c, "top needs a terminal (standard input and output)");
		return CLI_ERR;
	}
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	if (!(scr = start_screen(c)))
		return CLI_ERR;
	rc = run_loop(&t);
	endwin();
	delscreen(scr);
	close_output(&t);
	free(t.rows);
	free(t.back);
	return rc;
}
