/*
 * progress.h - the progress bar of `ferry send`, `retrieve` and
 * `submit --in` on stderr: percentage, bytes, rate and time left.
 */
#ifndef FERRY_CLI_PROGRESS_H
#define FERRY_CLI_PROGRESS_H

#include <stdint.h>

#include "ferry.h"

/* Bars of transfers smaller than this would only flicker. */
#define FERRY_BAR_MIN_BYTES (4 << 20)

struct ferry_bar {
	const char *label; /* shown before the bar, e.g. the file's name (borrowed) */
	int shown;	   /* a line is on the terminal */
	int started;	   /* the transfer reported its first count */
	double start, drawn;
	int64_t start_done; /* bytes there at the start: a resume's are not in the rate */
};

/*
 * Makes conn's transfers draw b (zeroed, label set) when stderr is a
 * terminal whose TERM is not "dumb"; otherwise leaves conn as it is.
 * b must outlive the transfers.
 */
void ferry__bar_attach(struct ferry_bar *b, ferry_conn *conn);
/* Erases the bar if it is shown, and readies b for the next transfer. */
void ferry__bar_end(struct ferry_bar *b);

#endif
