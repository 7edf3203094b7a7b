/*
 * fuzz_config.c - libFuzzer target for the ferry.conf parser.
 *
 * The input, made NUL-terminated, is parsed with ferry__cfg_parse() as
 * the text of a configuration file, then released. On success the result
 * must satisfy what the parser promises (valid, distinct section names;
 * values in range); on failure the message must name the file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, detail ? detail : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferry_cfg cfg;
	char err[1024] = "";
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (ferry__cfg_parse("fuzz.conf", text, &cfg, err, sizeof(err)) == 0) {
		if (cfg.nres < 0 || (cfg.nres > 0 && !cfg.res))
			die("inconsistent result", NULL);
		for (int i = 0; i < cfg.nres; i++) {
			const struct ferry_resource_cfg *r = &cfg.res[i];
			if (!r->name || !ferry__valid_resource_name(r->name))
				die("invalid section name accepted", r->name);
			for (int k = 0; k < i; k++)
				if (!strcmp(cfg.res[k].name, r->name))
					die("section listed twice", r->name);
			if (r->slots < 0 || r->slots > 100000)
				die("slots out of range", r->name);
			if (r->port < 0 || r->port > 65535)
				die("port out of range", r->name);
			if (r->poll_interval != 0 &&
			    !(r->poll_interval >= 0.1 && r->poll_interval <= 3600))
				die("poll_interval out of range", r->name);
			if (r->scheduler && strcmp(r->scheduler, "local") &&
			    strcmp(r->scheduler, "slurm") && strcmp(r->scheduler, "drmaa"))
				die("unknown scheduler accepted", r->scheduler);
		}
		ferry__cfg_release(&cfg);
	} else {
		if (strncmp(err, "fuzz.conf", 9) != 0)
			die("error message does not name the file", err);
		if (cfg.nres != 0 || cfg.res)
			die("failed parse left a configuration behind", err);
	}
	free(text);
	return 0;
}
