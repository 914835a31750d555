// SPDX-License-Identifier: MIT
/* bridge/config.c: lines, files, the checks of config_finish(), addresses. */
#include "tap.h"

#include "config.h"

#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int line(struct bridge_config *c, const char *l, const char *want_err)
{
	char err[256] = "";
	int ret = config_line(c, l, err, sizeof(err));

	if (!want_err)
		return ret == 0;
	if (ret == 0 || !strstr(err, want_err)) {
		tap_diag("'%s': got '%s'", l, err);
		return 0;
	}
	return 1;
}

/* Configurations whose lines are each valid, refused as a whole by config_finish(). */
static const struct {
	const char *lines, *err, *what;
} incomplete[] = {
	{ "name A\nregion r\nsecret-file s\npeer B accept", "no listen address",
	  "an accept peer needs a listen address" },
	{ "name A\nregion r\nsecret-file s\npeer B accept\nlisten 127.0.0.1:1\nchannel x Z",
	  "'Z', which is not configured", "a channel to an unknown peer" },
	{ "", "no name", "nothing configured" },
};

/* Feed @lines ('\n'-separated) to a fresh configuration: does config_finish() fail saying @want? */
static int finish_fails(const char *lines, const char *want)
{
	struct bridge_config c;
	char copy[512], err[512] = "";

	config_init(&c);
	snprintf(copy, sizeof(copy), "%s", lines);
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!line(&c, l, NULL))
			return 0;
	if (config_finish(&c, err, sizeof(err)) == 0 || !strstr(err, want)) {
		tap_diag("got '%s'", err);
		return 0;
	}
	return 1;
}

int main(void)
{
	struct bridge_config c;
	struct sockaddr_storage ss;
	socklen_t len;
	char err[512], path[] = "/tmp/test_bridge_config_XXXXXX";
	FILE *f;
	int fd;

	config_init(&c);
	tap_ok(line(&c, "  # only a comment", NULL) && line(&c, "", NULL), "comments and blank lines");
	tap_ok(line(&c, "name hostA  # trailing comment", NULL) && strcmp(c.name, "hostA") == 0, "name");
	tap_ok(line(&c, "region server:/run/x.sock", NULL), "region");
	tap_ok(line(&c, "secret-file /etc/k", NULL), "secret-file");
	tap_ok(line(&c, "listen 10.0.0.1:7100", NULL), "listen");
	tap_ok(line(&c, "peer B connect 10.0.0.2:7100", NULL) && c.peers[0].dial, "peer connect");
	tap_ok(line(&c, "peer C accept", NULL) && !c.peers[1].dial, "peer accept");
	tap_ok(line(&c, "channel ctl B", NULL) && c.channels[0].ring == CFG_DEFAULT_RING &&
	       c.channels[0].window == CFG_DEFAULT_WINDOW, "channel with defaults");
	tap_ok(line(&c, "channel bulk B ring 4M window 2M", NULL) && c.channels[1].ring == 4u << 20 &&
	       c.channels[1].window == 2u << 20, "channel with ring and window");
	tap_ok(line(&c, "keepalive-ms 500", NULL) && line(&c, "dead-ms 2000", NULL) &&
	       line(&c, "max-record 64K", NULL) && c.max_record == 65536, "timers and max-record");
	tap_ok(config_finish(&c, err, sizeof(err)) == 0 && c.channels[1].peer == 0, "a complete configuration");

	tap_ok(line(&c, "peer B accept", "given twice"), "a peer twice");
	tap_ok(line(&c, "channel ctl C", "given twice"), "a channel twice");
	tap_ok(line(&c, "channel x B ring 3000", "ring"), "ring below 4 KiB");
	tap_ok(line(&c, "channel x B ring 12K", "power of two"), "ring not a power of two");
	tap_ok(line(&c, "channel x B window", "usage"), "window without a value");
	tap_ok(line(&c, "channel x B colour red", "ring or window"), "unknown channel option");
	tap_ok(line(&c, "peer D connect", "usage"), "connect without an address");
	tap_ok(line(&c, "peer D dial 1.2.3.4:5", "usage"), "unknown peer mode");
	tap_ok(line(&c, "listen 10.0.0.1", "ADDR:PORT"), "address without port");
	tap_ok(line(&c, "listen 10.0.0.1:0", "ADDR:PORT"), "port 0");
	tap_ok(line(&c, "listen 10.0.0.1:65536", "ADDR:PORT"), "port 65536");
	tap_ok(line(&c, "listen example.org:80", "numeric"), "a host name");
	tap_ok(line(&c, "listen [::1]:7100", NULL), "an IPv6 address");
	tap_ok(line(&c, "dead-ms ten", "number"), "a word for a number");
	tap_ok(line(&c, "name", "one value"), "a keyword without its value");
	tap_ok(line(&c, "name a/b", "1 to 63"), "a bad name");
	tap_ok(line(&c, "colour blue", "unknown keyword"), "an unknown keyword");
	tap_ok(line(&c, "channel a b c d e f g h i", "too many words"), "too many words");

	for (size_t i = 0; i < sizeof(incomplete) / sizeof(incomplete[0]); i++)
		tap_ok(finish_fails(incomplete[i].lines, incomplete[i].err), "%s", incomplete[i].what);

	tap_ok(config_addr("127.0.0.1:80", &ss, &len, err, sizeof(err)) == 0 && ss.ss_family == AF_INET &&
	       len == sizeof(struct sockaddr_in), "config_addr IPv4");

	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fputs("name A\nregion r\n\nbogus 1\n", f);
	fclose(f);
	config_init(&c);
	tap_ok(config_file(&c, path, err, sizeof(err)) < 0 && strstr(err, ":4: unknown keyword"),
	       "a file's error names its line");
	unlink(path);
	return tap_done();
}
