/*
 * lastwords.h - what an engine that stops on a fatal error says to its
 * clients and to the next engine: `ferryd.lastwords` in its state
 * directory (lastwords.c; docs/architecture.md, "Recovery").
 */
#ifndef FERRY_LASTWORDS_H
#define FERRY_LASTWORDS_H

#include <stddef.h>

/*
 * The engine's side. Opens (creates) the file and reserves its block, so
 * that the words can be written on a full disk: the descriptor (CLOEXEC),
 * or -1. *had: the last engine left words (it stopped on a fatal error).
 */
int ferry__last_words_open(const char *state_dir, int *had);
/* The engine listens: what the last one said is no longer news. */
void ferry__last_words_clear(int fd);
/* This engine (getpid()) stops: code (a FERRY_E* code) and why. */
void ferry__last_words_say(int fd, int code, const char *why);

/*
 * The client's side: 1 when the engine pid of the resource whose state
 * directory is state_dir left words (*code and why set), else 0.
 */
int ferry__last_words_read(const char *state_dir, long pid, int *code, char *why, size_t cap);

#endif
