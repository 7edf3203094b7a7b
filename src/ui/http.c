/*
 * http.c - the HTTP server of `ferry ui` (GNU libmicrohttpd) and the
 * checks every request passes before anything else (docs/architecture.md,
 * "ferry ui"): a Host of this server's own (no DNS rebinding: see
 * name_server()), the
 * session cookie that the token in the printed URL gave (the token opens
 * the page once; it never travels again), and for a POST, which alone
 * changes anything, the page's CSRF token and an Origin of its own. No
 * request reaches a shell: the handlers call libferry and nothing else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ui.h"
#include "util.h"

#define SECRET_BYTES 32		   /* of the token, the session cookie and the CSRF token */
#define BODY_MAX     (1024 * 1024) /* the largest POST body taken */
#define CONN_MAX     64		   /* connections at once (a thread each) */
#define IDLE_S	     120	   /* an idle connection is closed after it */
/* An event stream says "tick" at least this often: the page then asks again for its jobs */
#define EVENT_WAIT_S 1.0
#define HOSTS_MAX    40 /* Host headers taken: the loopback names, the hostname, addresses */

struct ui_http {
	struct MHD_Daemon *d;
	struct ui_state *st;
	unsigned port;
	char token[2 * SECRET_BYTES + 1];
	atomic_int spent; /* the token opened its session: it opens no other */
	char session[2 * SECRET_BYTES + 1];
	char csrf[2 * SECRET_BYTES + 1];
	char cookie[32];	    /* the cookie's name: one a port, so that two servers differ */
	char hosts[HOSTS_MAX][128]; /* the Host headers taken ("name:port") */
	size_t nhosts;
	char *url;
	char *remote_url; /* bound to a wildcard: the URL with this host's name */
	char *index;	  /* the page, with the CSRF token in */
	size_t index_len;
};

/* What one request gathered across the handler's calls. */
struct req {
	int checked;
	int too_big; /* the body went over BODY_MAX: the rest is read and dropped */
	char *body;
	size_t len;
};

/* Equal strings, in a time that does not tell where they differ. */
static int secret_eq(const char *a, const char *b)
{
	size_t n = strlen(b);
	unsigned char d = 0;

	if (!a || strlen(a) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static void common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'; form-action 'self'");
}

/* Queues body (taken: freed by MHD) with status and type. */
static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status, const char *type,
				char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rc;

	if (!resp)
		return MHD_NO;
	common_headers(resp);
	if (type)
		MHD_add_response_header(resp, "Content-Type", type);
	rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result refuse(struct MHD_Connection *c, unsigned status, const char *why)
{
	return send_buf(c, status, "text/plain; charset=utf-8", (char *)why, strlen(why),
			MHD_RESPMEM_PERSISTENT);
}

/*
 * ?token=: the page once, then a cookie for the rest, and the URL without
 * it. Once only: the URL may have been seen on the way (the browser's
 * command line, a terminal's scrollback), and a token taken again would
 * give whoever saw it a session of their own. A browser that holds the
 * cookie already is sent on to the page.
 */
static enum MHD_Result open_session(struct ui_http *h, struct MHD_Connection *c, const char *tok)
{
	struct MHD_Response *resp;
	char cookie[256];
	enum MHD_Result rc;
	int has_session =
	    secret_eq(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, h->cookie), h->session);

	if (!has_session && !secret_eq(tok, h->token))
		return refuse(c, 403, "forbidden: wrong token\n");
	if (!has_session && atomic_exchange(&h->spent, 1))
		return refuse(c, 403,
			      "forbidden: this token opened a session already; run `ferry ui` "
			      "again for another\n");
	resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	common_headers(resp);
	snprintf(cookie, sizeof(cookie), "%s=%s; HttpOnly; SameSite=Strict; Path=/", h->cookie,
		 h->session);
	MHD_add_response_header(resp, "Set-Cookie", cookie);
	MHD_add_response_header(resp, "Location", "/");
	rc = MHD_queue_response(c, 303, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* The checks of every request, the token's too: why it is refused (and *status), or NULL. */
static const char *refusal(struct ui_http *h, struct MHD_Connection *c, const char *method,
			   unsigned *status)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *csrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Ferry-CSRF");
	int host_ok = 0;

	*status = 403;
	/* a host name is case-insensitive (RFC 3986), and so is a hex digit of IPv6 */
	for (size_t i = 0; host && i < h->nhosts; i++)
		host_ok |= !strcasecmp(host, h->hosts[i]);
	if (!host_ok)
		return "forbidden: not a Host of this server\n";
	if (!strcmp(method, "POST")) {
		if (!secret_eq(csrf, h->csrf))
			return "forbidden: no valid X-Ferry-CSRF header\n";
		if (origin && (strncmp(origin, "http://", 7) != 0 || strcmp(origin + 7, host) != 0))
			return "forbidden: a request from another origin\n";
		return NULL;
	}
	if (strcmp(method, "GET") != 0) {
		*status = 405;
		return "method not allowed\n";
	}
	return NULL;
}

static const char *get_arg(void *ctx, const char *key)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct ui_reply *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (!resp) {
		free(r->body);
		free(r->next_offset);
		return MHD_NO;
	}
	common_headers(resp);
	MHD_add_response_header(resp, "Content-Type", r->type);
	if (r->next_offset)
		MHD_add_response_header(resp, "X-Next-Offset", r->next_offset);
	if (r->ended)
		MHD_add_response_header(resp, "X-Ended", "1");
	free(r->next_offset);
	rc = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* ---- the event stream ---- */

struct stream {
	struct ui_state *st;
	uint64_t generation;
	char *text; /* what is left to send of the last event */
	size_t off;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t n;
	int quit = 0;

	if (!s->text) {
		s->off = 0;
		s->text = ferry__ui_next_event(s->st, &s->generation, EVENT_WAIT_S, &quit);
		if (quit)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (!s->text)
			s->text = strdup("event: tick\ndata: {}\n\n");
		if (!s->text)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	n = strlen(s->text + s->off);
	n = n < max ? n : max;
	memcpy(buf, s->text + s->off, n);
	s->off += n;
	if (!s->text[s->off]) {
		free(s->text);
		s->text = NULL;
	}
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	free(s->text);
	free(s);
}

static enum MHD_Result send_events(struct ui_http *h, struct MHD_Connection *c)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result rc;

	if (!s)
		return MHD_NO;
	s->st = h->st;
	resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
	if (!resp) {
		free(s);
		return MHD_NO;
	}
	common_headers(resp);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	rc = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* ---- routing ---- */

static enum MHD_Result get(struct ui_http *h, struct MHD_Connection *c, const char *url)
{
	struct ui_reply r = {0};

	if (!strcmp(url, "/"))
		return send_buf(c, 200, "text/html; charset=utf-8", h->index, h->index_len,
				MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/events"))
		return send_events(h, c);
	for (size_t i = 0; i < ferry__ui_nassets; i++)
		if (!strcmp(url, ferry__ui_assets[i].path) && strcmp(url, "/index.html") != 0)
			return send_buf(c, 200, ferry__ui_assets[i].type,
					(char *)ferry__ui_assets[i].data, ferry__ui_assets[i].len,
					MHD_RESPMEM_PERSISTENT);
	if (ferry__ui_api_get(h->st, url, get_arg, c, &r) < 0)
		return refuse(c, 404, "not found\n");
	return send_reply(c, &r);
}

/*
 * Gathers a POST's body: done once all came. One too large is still read
 * to its end, and dropped: a server that closes with unread bytes resets
 * the connection, and the client would never read the 413.
 */
static enum MHD_Result gather(struct req *q, const char *data, size_t *size, int *done)
{
	char *p;

	*done = *size == 0;
	if (*done || q->too_big) {
		*size = 0;
		return MHD_YES;
	}
	if (q->len + *size > BODY_MAX) {
		q->too_big = 1;
		*size = 0;
		return MHD_YES;
	}
	p = realloc(q->body, q->len + *size + 1);
	if (!p)
		return MHD_NO;
	memcpy(p + q->len, data, *size);
	q->body = p;
	q->len += *size;
	*size = 0;
	return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **con_cls)
{
	struct ui_http *h = cls;
	struct req *q = *con_cls;
	struct ui_reply r = {0};
	const char *why, *tok;
	enum MHD_Result rc;
	unsigned status;
	int done;

	if (!q) {
		q = calloc(1, sizeof(*q));
		*con_cls = q;
		if (!q)
			return MHD_NO;
		why = refusal(h, c, method, &status);
		if (why)
			return refuse(c, status, why);
		tok = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
		if (!strcmp(method, "GET") && !strcmp(url, "/") && tok)
			return open_session(h, c, tok);
		if (!secret_eq(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, h->cookie),
			       h->session))
			return refuse(c, 403,
				      "forbidden: open the URL with the token that "
				      "`ferry ui` printed\n");
		q->checked = 1;
		if (!strcmp(method, "GET"))
			return get(h, c, url);
		return MHD_YES; /* a POST: its body comes in the next calls */
	}
	if (!q->checked) { /* answered already (refused): the rest of the body goes unread */
		*size = 0;
		return MHD_YES;
	}
	rc = gather(q, data, size, &done);
	if (rc != MHD_YES || !done)
		return rc;
	if (q->too_big)
		return refuse(c, 413, "request too large\n");
	if (ferry__ui_api_post(h->st, url, q->body ? q->body : "", q->len, &r) < 0)
		return refuse(c, 404, "not found\n");
	return send_reply(c, &r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	if (q)
		free(q->body);
	free(q);
	*con_cls = NULL;
}

/* ---- start and stop ---- */

int ferry__ui_is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return -1;
}

/* The socket address of bind (numeric) and port: its length, or 0 for no address. */
static socklen_t sock_addr(const char *bind, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
	}
	return 0;
}

/* index.html with its "{{csrf}}" replaced by the CSRF token. */
static int make_index(struct ui_http *h)
{
	static const char mark[] = "{{csrf}}";
	const struct ui_asset *a = NULL;
	const char *at;

	for (size_t i = 0; i < ferry__ui_nassets; i++)
		if (!strcmp(ferry__ui_assets[i].path, "/index.html"))
			a = &ferry__ui_assets[i];
	at = a ? memmem(a->data, a->len, mark, strlen(mark)) : NULL;
	if (!at)
		return -1;
	h->index = ferry__asprintf(
	    "%.*s%s%.*s", (int)(at - (const char *)a->data), a->data, h->csrf,
	    (int)(a->len - (size_t)(at - (const char *)a->data) - strlen(mark)), at + strlen(mark));
	h->index_len = h->index ? strlen(h->index) : 0;
	return h->index ? 0 : -1;
}

/* Takes "name:port" (an IPv6 address in brackets) as a Host header; full: ignored. */
static void take_host(struct ui_http *h, const char *name)
{
	int v6 = strchr(name, ':') != NULL;

	if (h->nhosts == HOSTS_MAX || !*name)
		return;
	snprintf(h->hosts[h->nhosts], sizeof(h->hosts[0]), v6 ? "[%s]:%u" : "%s:%u", name, h->port);
	for (size_t i = 0; i < h->nhosts; i++)
		if (!strcasecmp(h->hosts[i], h->hosts[h->nhosts]))
			return;
	h->nhosts++;
}

/*
 * Bound to a wildcard: every address of this host's interfaces of family
 * af, as another host reaches it (an address is no name a DNS-rebinding
 * page can have).
 */
static void take_addresses(struct ui_http *h, int af)
{
	struct ifaddrs *all = NULL;
	char text[INET6_ADDRSTRLEN];

	if (getifaddrs(&all) < 0)
		return;
	for (struct ifaddrs *i = all; i; i = i->ifa_next) {
		const void *a = NULL;

		if (!i->ifa_addr || i->ifa_addr->sa_family != af)
			continue;
		if (af == AF_INET)
			a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
		else if (!IN6_IS_ADDR_LINKLOCAL(
			     &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr))
			a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
		if (a && inet_ntop(af, a, text, sizeof(text)))
			take_host(h, text);
	}
	freeifaddrs(all);
}

/*
 * The Host headers taken and the URLs printed, once the port is known:
 * 127.0.0.1 and localhost; the address bound; and when that is not
 * loopback, this host's name (gethostname), and for a wildcard every
 * address of its interfaces. Any other name is refused: a DNS-rebinding
 * page's requests carry a name of its own.
 */
static int name_server(struct ui_http *h, const char *bind, int v6)
{
	char host[128], me[256] = "";
	int wildcard = !strcmp(bind, "0.0.0.0") || !strcmp(bind, "::");

	take_host(h, "127.0.0.1");
	take_host(h, "localhost");
	take_host(h, bind);
	if (ferry__ui_is_loopback(bind) == 0 && gethostname(me, sizeof(me) - 1) == 0)
		take_host(h, me);
	if (wildcard)
		take_addresses(h, v6 ? AF_INET6 : AF_INET);
	snprintf(h->cookie, sizeof(h->cookie), "ferry_ui_%u", h->port);
	/* a wildcard is no address to connect to: this host's own loopback one is */
	snprintf(host, sizeof(host), v6 ? "[%s]:%u" : "%s:%u",
		 wildcard ? (v6 ? "::1" : "127.0.0.1") : bind, h->port);
	if (v6 && wildcard)
		take_host(h, "::1");
	h->url = ferry__asprintf("http://%s/?token=%s", host, h->token);
	if (wildcard && me[0])
		h->remote_url = ferry__asprintf("http://%s:%u/?token=%s", me, h->port, h->token);
	return h->url && (!wildcard || !me[0] || h->remote_url) ? 0 : -1;
}

static int secrets(struct ui_http *h)
{
	return ferry__random_hex(h->token, SECRET_BYTES) < 0 ||
		       ferry__random_hex(h->session, SECRET_BYTES) < 0 ||
		       ferry__random_hex(h->csrf, SECRET_BYTES) < 0
		   ? -1
		   : 0;
}

int ferry__ui_http_start(const struct ui_http_opts *o, struct ui_http **out, char *err,
			 size_t errlen)
{
	const char *bind = o->bind ? o->bind : "127.0.0.1";
	struct ui_http *h = calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	socklen_t sl = sock_addr(bind, o->port, &ss);
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;

	*out = NULL;
	if (!h)
		return ferry__fail(err, errlen, -1, "out of memory");
	h->st = o->st;
	if (!sl) {
		free(h);
		return ferry__fail(err, errlen, -1, "'%s' is no IPv4 or IPv6 address", bind);
	}
	if (secrets(h) < 0 || make_index(h) < 0) {
		ferry__ui_http_stop(h);
		return ferry__fail(err, errlen, -1, "cannot make the page's secrets");
	}
	h->d = MHD_start_daemon(flags | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL,
				NULL, handle, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_S,
				MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
	info = h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!h->d || !info) {
		ferry__ui_http_stop(h);
		return ferry__fail(err, errlen, -1, "cannot listen on '%s' port %u: %s", bind,
				   o->port, o->port ? "in use or not allowed" : "no port free");
	}
	h->port = info->port;
	if (name_server(h, bind, ss.ss_family == AF_INET6) < 0) {
		ferry__ui_http_stop(h);
		return ferry__fail(err, errlen, -1, "out of memory");
	}
	*out = h;
	return 0;
}

const char *ferry__ui_http_url(const struct ui_http *h)
{
	return h->url;
}

const char *ferry__ui_http_remote_url(const struct ui_http *h)
{
	return h->remote_url;
}

void ferry__ui_http_stop(struct ui_http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h->url);
	free(h->remote_url);
	free(h->index);
	free(h);
}
