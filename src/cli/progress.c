/*
 * progress.c - the progress bar of transfers on stderr (progress.h).
 *
 * One line, redrawn in place with a carriage return and "erase to the end
 * of the line", at most BAR_HZ times a second so that a fast local copy
 * does not spend its time on the terminal, and erased at the end so that
 * what follows (the server path, an error) starts on a clean line.
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util.h"

#define BAR_HZ	      10
#define BAR_MAX_WIDTH 40
#define BAR_MIN_WIDTH 10
#define LABEL_MAX     24
/* A rate measured over less than this swings too much to give a time left. */
#define RATE_MIN_S 0.25

static int columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static void human_bytes(char *buf, size_t len, double n)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;

	while (n >= 1024 && u + 1 < FERRY_ARRAY_SIZE(unit)) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", n, unit[u]);
}

static void time_left(char *buf, size_t len, double s)
{
	long t = (long)(s + 0.5);

	if (!(s >= 0) || s > 99 * 3600.0)
		snprintf(buf, len, "--:--");
	else if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/*
 * The label cut before its code point LABEL_MAX + 1 (so never inside a
 * character of valid UTF-8), control characters shown as '?'; cap bytes
 * bound what invalid UTF-8 can take.
 */
static void label_text(char *out, size_t cap, const char *label)
{
	size_t n = 0, chars = 0;

	for (; label && *label && n + 4 < cap; label++) {
		unsigned char ch = (unsigned char)*label;
		if ((ch & 0xC0) != 0x80 && ++chars > LABEL_MAX)
			break;
		out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (label && *label) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* "   430.1 MiB / 1.0 GiB    85.3 MiB/s  ETA 0:07   " */
static void stats_text(char *out, size_t cap, const struct ferry_bar *b, int64_t done,
		       int64_t total, double now)
{
	char d[32], t[32], r[32] = "--", eta[32];
	double elapsed = now - b->start, moved = (double)(done - b->start_done), rate = 0;

	human_bytes(d, sizeof(d), (double)done);
	human_bytes(t, sizeof(t), (double)total);
	if (elapsed >= RATE_MIN_S && moved > 0) {
		rate = moved / elapsed;
		human_bytes(r, sizeof(r), rate);
	}
	time_left(eta, sizeof(eta), rate > 0 ? (double)(total - done) / rate : -1);
	/* fixed widths keep the bar from changing length as the numbers do */
	snprintf(out, cap, "  %10s / %s  %10s/s  ETA %-7s", d, t, r, eta);
}

static void draw(struct ferry_bar *b, int64_t done, int64_t total, double now)
{
	char label[LABEL_MAX * 4 + 8], stats[160], line[512], bar[BAR_MAX_WIDTH + 1];
	int pct = (int)((double)done * 100 / (double)total), cols = columns() - 1;
	int head, width;

	label_text(label, sizeof(label), b->label);
	stats_text(stats, sizeof(stats), b, done, total, now);
	head = snprintf(line, sizeof(line), "\r%s%s%3d%%", label, *label ? " " : "", pct) - 1;
	width = cols - head - (int)strlen(stats) - 3;
	width = width > BAR_MAX_WIDTH ? BAR_MAX_WIDTH : width;
	if (width >= BAR_MIN_WIDTH) {
		int fill = (int)((double)width * (double)done / (double)total);
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '-', (size_t)(width - fill));
		bar[width] = '\0';
		snprintf(line + head + 1, sizeof(line) - (size_t)head - 1, " [%s]", bar);
	}
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s", stats);
	/* a narrow terminal would wrap the line, and the next \r would not undo it */
	if ((int)strlen(line) - 1 > cols && cols > 0)
		line[cols + 1] = '\0';
	snprintf(line + strlen(line), sizeof(line) - strlen(line), "\033[K");
	ferry__write_all(STDERR_FILENO, line, strlen(line));
	b->shown = 1;
	b->drawn = now;
}

static void on_progress(void *userdata, int64_t done, int64_t total)
{
	struct ferry_bar *b = userdata;
	double now = ferry__mono();

	if (!b->started) {
		b->started = 1;
		b->start = now;
		b->start_done = done;
	}
	/* the end is drawn whatever the rate: the checks after it may take a while */
	if (total < FERRY_BAR_MIN_BYTES ||
	    (b->shown && done < total && now - b->drawn < 1.0 / BAR_HZ))
		return;
	draw(b, done, total, now);
}

void ferry__bar_attach(struct ferry_bar *b, ferry_conn *conn)
{
	const char *term = getenv("TERM");

	if (!isatty(STDERR_FILENO) || (term && strcmp(term, "dumb") == 0))
		return;
	ferry_set_progress(conn, on_progress, b);
}

void ferry__bar_end(struct ferry_bar *b)
{
	static const char erase[] = "\r\033[K";

	if (b->shown)
		ferry__write_all(STDERR_FILENO, erase, sizeof(erase) - 1);
	b->shown = 0;
	b->started = 0;
}
