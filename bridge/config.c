// SPDX-License-Identifier: MIT
/* Configuration lines and files (config.h). */
#include "config.h"

#include "ivshmem/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>

#define MAX_WORDS 8

void config_init(struct bridge_config *c)
{
	memset(c, 0, sizeof(*c));
	c->keepalive_ms = CFG_DEFAULT_KEEPALIVE_MS;
	c->dead_ms = CFG_DEFAULT_DEAD_MS;
	c->max_record = CFG_DEFAULT_MAX_RECORD;
}

static __attribute__((format(printf, 3, 4))) int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Split @line into words (at most MAX_WORDS) in @buf; '#' starts a comment. */
static int split(const char *line, char *buf, size_t buflen, char *words[MAX_WORDS + 1])
{
	int n = 0;
	char *p;

	snprintf(buf, buflen, "%s", line);
	p = strchr(buf, '#');
	if (p)
		*p = '\0';
	for (p = strtok(buf, " \t\r\n"); p; p = strtok(NULL, " \t\r\n")) {
		if (n == MAX_WORDS + 1)
			return -1;
		words[n++] = p;
	}
	return n;
}

static int copy(char *dst, size_t len, const char *src, const char *what, char *err, size_t errlen)
{
	if (strlen(src) >= len)
		return fail(err, errlen, "%s is too long (at most %zu characters)", what, len - 1);
	strcpy(dst, src);
	return 0;
}

static int name_arg(char *dst, const char *src, const char *what, char *err, size_t errlen)
{
	if (!frame_name_ok(src))
		return fail(err, errlen, "%s '%s': 1 to 63 of A-Z a-z 0-9 . _ -", what, src);
	strcpy(dst, src);
	return 0;
}

static int number(const char *s, uint64_t min, uint64_t max, bool size, uint32_t *out,
		  const char *what, char *err, size_t errlen)
{
	uint64_t v;
	int ret = size ? ivshmem_parse_size(s, &v) : ivshmem_parse_uint(s, UINT64_MAX, &v);

	if (ret < 0 || v < min || v > max)
		return fail(err, errlen, "%s '%s': a %s from %llu to %llu", what, s,
			    size ? "size" : "number", (unsigned long long)min,
			    (unsigned long long)max);
	*out = (uint32_t)v;
	return 0;
}

static int peer_line(struct bridge_config *c, char **w, int n, char *err, size_t errlen)
{
	struct cfg_peer *p;

	if (c->npeers == CFG_MAX_PEERS)
		return fail(err, errlen, "more than %d peers", CFG_MAX_PEERS);
	if (n < 3 || (strcmp(w[2], "connect") == 0 && n != 4) ||
	    (strcmp(w[2], "accept") == 0 && n != 3) ||
	    (strcmp(w[2], "connect") != 0 && strcmp(w[2], "accept") != 0))
		return fail(err, errlen, "usage: peer NAME connect ADDR:PORT | peer NAME accept");
	for (int i = 0; i < c->npeers; i++)
		if (strcmp(c->peers[i].name, w[1]) == 0)
			return fail(err, errlen, "peer '%s' is given twice", w[1]);
	p = &c->peers[c->npeers];
	memset(p, 0, sizeof(*p));
	if (name_arg(p->name, w[1], "peer name", err, errlen) < 0)
		return -1;
	p->dial = strcmp(w[2], "connect") == 0;
	if (p->dial) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (config_addr(w[3], &ss, &len, err, errlen) < 0)
			return -1;
		strcpy(p->addr, w[3]);
	}
	c->npeers++;
	return 0;
}

static int channel_line(struct bridge_config *c, char **w, int n, char *err, size_t errlen)
{
	struct cfg_channel *ch;

	if (c->nchannels == CFG_MAX_CHANNELS)
		return fail(err, errlen, "more than %d channels", CFG_MAX_CHANNELS);
	if (n < 3 || n % 2 == 0)
		return fail(err, errlen, "usage: channel NAME PEER [ring SIZE] [window SIZE]");
	for (int i = 0; i < c->nchannels; i++)
		if (strcmp(c->channels[i].name, w[1]) == 0)
			return fail(err, errlen, "channel '%s' is given twice (a channel goes to one "
				    "peer)", w[1]);
	ch = &c->channels[c->nchannels];
	memset(ch, 0, sizeof(*ch));
	ch->ring = CFG_DEFAULT_RING;
	ch->window = CFG_DEFAULT_WINDOW;
	if (name_arg(ch->name, w[1], "channel name", err, errlen) < 0 ||
	    name_arg(ch->peer_name, w[2], "peer name", err, errlen) < 0)
		return -1;
	for (int i = 3; i < n; i += 2) {
		uint32_t v = 0;	/* number() sets it on success; gcc -O3 cannot tell */

		if (strcmp(w[i], "ring") == 0) {
			if (number(w[i + 1], 4096, 1u << 30, true, &v, "ring", err, errlen) < 0)
				return -1;
			if (v & (v - 1))
				return fail(err, errlen, "ring '%s': a power of two", w[i + 1]);
			ch->ring = v;
		} else if (strcmp(w[i], "window") == 0) {
			if (number(w[i + 1], 4096, CFG_MAX_WINDOW, true, &v, "window", err,
				   errlen) < 0)
				return -1;
			ch->window = v;
		} else {
			return fail(err, errlen, "channel option '%s': ring or window", w[i]);
		}
	}
	c->nchannels++;
	return 0;
}

int config_line(struct bridge_config *c, const char *line, char *err, size_t errlen)
{
	char buf[1024], *w[MAX_WORDS + 1];
	int n = split(line, buf, sizeof(buf), w);

	if (n < 0)
		return fail(err, errlen, "too many words");
	if (n == 0)
		return 0;
	if (strcmp(w[0], "peer") == 0)
		return peer_line(c, w, n, err, errlen);
	if (strcmp(w[0], "channel") == 0)
		return channel_line(c, w, n, err, errlen);
	if (n != 2)
		return fail(err, errlen, "'%s' takes one value", w[0]);
	if (strcmp(w[0], "name") == 0)
		return name_arg(c->name, w[1], "name", err, errlen);
	if (strcmp(w[0], "region") == 0)
		return copy(c->region, sizeof(c->region), w[1], "region", err, errlen);
	if (strcmp(w[0], "secret-file") == 0)
		return copy(c->secret_file, sizeof(c->secret_file), w[1], "secret-file", err, errlen);
	if (strcmp(w[0], "listen") == 0) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (config_addr(w[1], &ss, &len, err, errlen) < 0)
			return -1;
		return copy(c->listen, sizeof(c->listen), w[1], "listen", err, errlen);
	}
	if (strcmp(w[0], "keepalive-ms") == 0)
		return number(w[1], 10, 60000, false, &c->keepalive_ms, w[0], err, errlen);
	if (strcmp(w[0], "dead-ms") == 0)
		return number(w[1], 20, 600000, false, &c->dead_ms, w[0], err, errlen);
	if (strcmp(w[0], "max-record") == 0)
		return number(w[1], 0, CFG_MAX_RECORD_LIMIT, true, &c->max_record, w[0], err,
			      errlen);
	return fail(err, errlen, "unknown keyword '%s' (name, region, secret-file, listen, peer, "
		    "channel, keepalive-ms, dead-ms, max-record)", w[0]);
}

int config_file(struct bridge_config *c, const char *path, char *err, size_t errlen)
{
	char line[1024], why[400];
	int lineno = 0, ret = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	while (ret == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			ret = fail(err, errlen, "%s:%d: line too long", path, lineno);
			break;
		}
		if (config_line(c, line, why, sizeof(why)) < 0)
			ret = fail(err, errlen, "%s:%d: %s", path, lineno, why);
	}
	fclose(f);
	return ret;
}

int config_finish(struct bridge_config *c, char *err, size_t errlen)
{
	bool accepts = false;

	if (!c->name[0])
		return fail(err, errlen, "no name (name NAME, or --name)");
	if (!c->region[0])
		return fail(err, errlen, "no region (region TARGET, or --region)");
	if (!c->secret_file[0])
		return fail(err, errlen, "no secret file (secret-file PATH, or --secret-file)");
	if (c->npeers == 0)
		return fail(err, errlen, "no peer (peer NAME connect ADDR:PORT | peer NAME accept)");
	if (c->keepalive_ms * 2 > c->dead_ms)
		return fail(err, errlen, "keepalive-ms %u must be at most half of dead-ms %u",
			    c->keepalive_ms, c->dead_ms);
	for (int i = 0; i < c->npeers; i++)
		accepts |= !c->peers[i].dial;
	if (accepts && !c->listen[0])
		return fail(err, errlen, "a peer is 'accept' but there is no listen address");
	for (int i = 0; i < c->nchannels; i++) {
		struct cfg_channel *ch = &c->channels[i];

		ch->peer = -1;
		for (int k = 0; k < c->npeers; k++)
			if (strcmp(c->peers[k].name, ch->peer_name) == 0)
				ch->peer = k;
		if (ch->peer < 0)
			return fail(err, errlen, "channel '%s' goes to peer '%s', which is not "
				    "configured", ch->name, ch->peer_name);
	}
	return 0;
}

int config_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
		size_t errlen)
{
	char host[CFG_ADDR_LEN];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!colon || ivshmem_parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return fail(err, errlen, "address '%s': ADDR:PORT with a numeric address and a "
			    "port from 1 to 65535", s);
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return fail(err, errlen, "address '%s' is too long", s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1) {
			a->sin6_family = AF_INET6;
			a->sin6_port = htons((uint16_t)port);
			*len = sizeof(*a);
			return 0;
		}
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
			a->sin_family = AF_INET;
			a->sin_port = htons((uint16_t)port);
			*len = sizeof(*a);
			return 0;
		}
	}
	return fail(err, errlen, "address '%s': not a numeric IPv4 address or [IPv6] address", s);
}

void config_print(const struct bridge_config *c, FILE *out)
{
	fprintf(out, "name %s\nregion %s\nsecret-file %s\n", c->name, c->region, c->secret_file);
	if (c->listen[0])
		fprintf(out, "listen %s\n", c->listen);
	for (int i = 0; i < c->npeers; i++)
		fprintf(out, "peer %s %s%s%s\n", c->peers[i].name, c->peers[i].dial ? "connect" : "accept",
			c->peers[i].dial ? " " : "", c->peers[i].addr);
	for (int i = 0; i < c->nchannels; i++)
		fprintf(out, "channel %s %s ring %llu window %llu\n", c->channels[i].name,
			c->channels[i].peer_name, (unsigned long long)c->channels[i].ring,
			(unsigned long long)c->channels[i].window);
	fprintf(out, "keepalive-ms %u\ndead-ms %u\nmax-record %u\n", c->keepalive_ms, c->dead_ms,
		c->max_record);
}
