// SPDX-License-Identifier: MIT
/*
 * ivshmem-bridge: carries named channels of a local region to the channels
 * of the same name on other hosts' bridges over UCX (docs/multihost.md,
 * docs/ivshmem-bridge.8). This file: options, start-up, signals and the one
 * event loop, which sleeps in poll() on UCX's event fd, the channels' fds and
 * a signal pipe, and never spins while idle.
 */
#define _GNU_SOURCE
#include "bridge.h"

#include "ivshmem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define RX_MIN (256u << 10)

static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t stop_signal;

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void log_msg(struct bridge *b, bool debug, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (debug && !b->verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ivshmem-bridge[%s]: %s\n", b->cfg.name, line);
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = 1;

	stop_signal = sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a wake-up is already pending. */
	}
	errno = saved;
}

/* ---- options ---------------------------------------------------------------------------- */

static const char usage_text[] =
	"Usage: ivshmem-bridge [OPTION]...\n"
	"Carry named channels of a local ivshmem region to the same-named channels on other\n"
	"hosts' bridges over UCX (docs/multihost.md).\n"
	"\n"
	"  -c, --config FILE        read the configuration file (lines 'keyword value...')\n"
	"  -n, --name NAME          this bridge's name, as the remote bridges know it\n"
	"  -r, --region TARGET      the local region: server:SOCKET or a file\n"
	"  -s, --secret-file PATH   the shared secret (mode 0600 or stricter; >= 16 bytes)\n"
	"  -l, --listen ADDR:PORT   accept remote bridges here (numeric IPv4, or [IPv6]:PORT)\n"
	"  -p, --peer NAME=ADDR:PORT  dial the remote bridge NAME at ADDR:PORT\n"
	"  -p, --peer NAME          accept the remote bridge NAME (it dials us)\n"
	"  -C, --channel NAME@PEER  carry channel NAME to the bridge PEER\n"
	"      --keepalive-ms N     send a PING after N ms without sending (1000)\n"
	"      --dead-ms N          drop a link that received nothing for N ms (3000)\n"
	"      --max-record SIZE    the largest record accepted from a remote (1M)\n"
	"      --check              check the configuration, print it and exit\n"
	"  -v, --verbose            also log debug messages\n"
	"  -h, --help               show this help and exit\n"
	"  -V, --version            show the version and exit\n"
	"\n"
	"Flags are applied after the configuration file. UCX picks its transport from UCX_TLS\n"
	"and UCX_NET_DEVICES (e.g. UCX_TLS=tcp UCX_NET_DEVICES=eth1).\n"
	"Exit status: 0 stopped by SIGTERM/SIGINT (or --check passed), 1 failed at run time,\n"
	"2 bad flags or configuration.\n";

enum { OPT_KEEPALIVE = 256, OPT_DEAD, OPT_MAX_RECORD, OPT_CHECK };

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "name", required_argument, NULL, 'n' },
	{ "region", required_argument, NULL, 'r' },
	{ "secret-file", required_argument, NULL, 's' },
	{ "listen", required_argument, NULL, 'l' },
	{ "peer", required_argument, NULL, 'p' },
	{ "channel", required_argument, NULL, 'C' },
	{ "keepalive-ms", required_argument, NULL, OPT_KEEPALIVE },
	{ "dead-ms", required_argument, NULL, OPT_DEAD },
	{ "max-record", required_argument, NULL, OPT_MAX_RECORD },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};
static const char short_opts[] = "c:n:r:s:l:p:C:vhV";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ivshmem-bridge: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ivshmem-bridge --help'.\n");
	return EXIT_USAGE;
}

/* A flag as a configuration line: one rule for both. */
static int flag_line(int opt, const char *arg, char *line, size_t len)
{
	const char *sep;

	switch (opt) {
	case 'n':
		return snprintf(line, len, "name %s", arg);
	case 'r':
		return snprintf(line, len, "region %s", arg);
	case 's':
		return snprintf(line, len, "secret-file %s", arg);
	case 'l':
		return snprintf(line, len, "listen %s", arg);
	case OPT_KEEPALIVE:
		return snprintf(line, len, "keepalive-ms %s", arg);
	case OPT_DEAD:
		return snprintf(line, len, "dead-ms %s", arg);
	case OPT_MAX_RECORD:
		return snprintf(line, len, "max-record %s", arg);
	case 'p':
		sep = strchr(arg, '=');
		if (!sep)
			return snprintf(line, len, "peer %s accept", arg);
		return snprintf(line, len, "peer %.*s connect %s", (int)(sep - arg), arg, sep + 1);
	case 'C':
		sep = strchr(arg, '@');
		if (!sep)
			return -1;
		return snprintf(line, len, "channel %.*s %s", (int)(sep - arg), arg, sep + 1);
	}
	return -1;
}

/* Returns -1 to go on, or an exit status. */
static int parse_options(struct bridge *b, int argc, char **argv, bool *check)
{
	char err[512], line[1200];
	int opt;

	config_init(&b->cfg);
	/* The file first, whatever its position: flags override it. */
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		if (opt == '?')
			return usage_error("bad option (see above)");
		if (opt == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (opt == 'V') {
			printf("ivshmem-bridge %s\n", IVSHMEM_VERSION);
			return 0;
		}
		if (opt == 'c' && config_file(&b->cfg, optarg, err, sizeof(err)) < 0)
			return usage_error("%s", err);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		if (opt == 'c')
			continue;
		if (opt == 'v') {
			b->verbose = true;
			continue;
		}
		if (opt == OPT_CHECK) {
			*check = true;
			continue;
		}
		if (flag_line(opt, optarg, line, sizeof(line)) < 0)
			return usage_error("--channel %s: NAME@PEER", optarg);
		if (config_line(&b->cfg, line, err, sizeof(err)) < 0)
			return usage_error("%s", err);
	}
	if (config_finish(&b->cfg, err, sizeof(err)) < 0)
		return usage_error("%s", err);
	b->secret_len = secret_load(b->cfg.secret_file, b->secret, sizeof(b->secret), err,
				    sizeof(err));
	if (b->secret_len < 0)
		return usage_error("%s", err);
	return -1;
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void on_accept(void *arg, struct link *l)
{
	struct bridge *b = arg;

	log_msg(b, true, "connection from %s", l->addr);
	conn_new(b, l, 'A', -1);
}

static int start(struct bridge *b)
{
	struct sigaction sa = { .sa_handler = on_signal };
	char err[512];
	size_t rx_cap;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	b->max_payload = b->cfg.max_record > FRAME_MIN_PAYLOAD ? b->cfg.max_record : FRAME_MIN_PAYLOAD;
	if (ivshmem_open(&b->region, b->cfg.region, NULL) < 0) {
		log_msg(b, false, "region %s: %s", b->cfg.region, ivshmem_errmsg());
		return -1;
	}
	if (ucx_open(&b->ucx, err, sizeof(err)) < 0) {
		log_msg(b, false, "%s", err);
		return -1;
	}
	b->ucx.on_accept = on_accept;
	b->ucx.accept_arg = b;
	rx_cap = FRAME_HDR + (size_t)b->max_payload;
	rx_cap = rx_cap < RX_MIN ? RX_MIN : rx_cap;
	if (b->cfg.listen[0]) {
		struct sockaddr_storage ss;
		socklen_t len;

		config_addr(b->cfg.listen, &ss, &len, err, sizeof(err));
		if (ucx_listen(&b->ucx, (struct sockaddr *)&ss, len, rx_cap, err, sizeof(err)) < 0) {
			log_msg(b, false, "%s", err);
			return -1;
		}
	}
	for (int i = 0; i < b->cfg.nchannels; i++)
		chan_init(b, &b->chans[i], &b->cfg.channels[i]);
	b->nchans = b->cfg.nchannels;
	log_msg(b, false, "started: region %s, %d channel%s, %d peer%s%s%s", b->cfg.region,
		b->nchans, b->nchans == 1 ? "" : "s", b->cfg.npeers, b->cfg.npeers == 1 ? "" : "s",
		b->cfg.listen[0] ? ", listening on " : "", b->cfg.listen);
	return 0;
}

static void dial_peers(struct bridge *b)
{
	int64_t now = now_ns();
	char err[256];

	for (int p = 0; p < b->cfg.npeers; p++) {
		struct sockaddr_storage ss;
		struct link *l;
		socklen_t len;
		bool pending = false;

		if (!b->cfg.peers[p].dial || b->peer_conn[p] || now < b->redial_at[p])
			continue;
		for (int i = 0; i < b->nconns; i++)
			pending |= b->conns[i]->peer == p && !b->conns[i]->dead;
		if (pending)
			continue;
		b->redial_at[p] = now + (int64_t)REDIAL_MS * 1000000;
		config_addr(b->cfg.peers[p].addr, &ss, &len, err, sizeof(err));
		l = link_dial(&b->ucx, (struct sockaddr *)&ss, len,
			      b->max_payload + FRAME_HDR < RX_MIN ? RX_MIN : b->max_payload + FRAME_HDR,
			      err, sizeof(err));
		if (!l) {
			log_msg(b, true, "peer %s: %s", b->cfg.peers[p].name, err);
			continue;
		}
		conn_new(b, l, 'D', p);
	}
}

static void reap(struct bridge *b)
{
	for (int i = 0; i < b->nconns;) {
		struct conn *c = b->conns[i];

		if (c->dead && link_reap(c->link)) {
			free(c);
			b->conns[i] = b->conns[--b->nconns];
			continue;
		}
		i++;
	}
}

int trace_on = -1;
void trace(const char *fmt, ...)
{
	static int64_t t0;
	va_list ap;
	char line[512];

	if (trace_on < 0)
		trace_on = getenv("BRIDGE_TRACE") != NULL;
	if (!trace_on)
		return;
	if (!t0)
		t0 = now_ns();
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "TRACE %d %.3f %s\n", (int)getpid(), (now_ns() - t0) / 1e6, line);
}

static void one_pass(struct bridge *b)
{
	int64_t t[6];
	int n1, n2;

	t[0] = now_ns();
	n1 = ucx_progress(&b->ucx);
	t[1] = now_ns();
	for (int i = 0; i < b->nconns; i++)
		conn_service(b, b->conns[i]);
	dial_peers(b);
	t[2] = now_ns();
	for (int i = 0; i < b->nchans; i++)
		chan_service(b, &b->chans[i]);
	t[3] = now_ns();
	for (int i = 0; i < b->nconns; i++)
		conn_flush(b, b->conns[i]);
	t[4] = now_ns();
	n2 = ucx_progress(&b->ucx);
	reap(b);
	t[5] = now_ns();
	if (t[5] - t[0] > 50000000)
		trace("slow pass %.1f ms: progress %.1f (%d) service %.1f chan %.1f flush %.1f progress %.1f (%d)",
		      (t[5] - t[0]) / 1e6, (t[1] - t[0]) / 1e6, n1, (t[2] - t[1]) / 1e6, (t[3] - t[2]) / 1e6,
		      (t[4] - t[3]) / 1e6, (t[5] - t[4]) / 1e6, n2);
}

static int next_timeout_ms(struct bridge *b)
{
	int64_t now = now_ns(), next = now + 1000000000LL;

	for (int i = 0; i < b->nconns; i++) {
		int64_t t = b->conns[i]->dead ? now + 10000000 : conn_deadline(b, b->conns[i]);

		next = t < next ? t : next;
	}
	for (int p = 0; p < b->cfg.npeers; p++)
		if (b->cfg.peers[p].dial && !b->peer_conn[p] && b->redial_at[p] < next)
			next = b->redial_at[p];
	for (int i = 0; i < b->nchans; i++)
		if (!b->chans[i].ch && b->chans[i].reopen_at < next)
			next = b->chans[i].reopen_at;
	return next <= now ? 0 : (int)((next - now + 999999) / 1000000);
}

static void sleep_until_event(struct bridge *b)
{
	struct pollfd pfd[2 + CFG_MAX_CHANNELS];
	int n = 0, timeout = next_timeout_ms(b);
	char drain[16];

	if (timeout == 0 || ucx_arm(&b->ucx))
		return;
	pfd[n++] = (struct pollfd){ .fd = b->ucx.efd, .events = POLLIN };
	pfd[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
	for (int i = 0; i < b->nchans; i++)
		if (chan_wants_poll(&b->chans[i]))
			pfd[n++] = (struct pollfd){ .fd = ivshmem_channel_fd(b->chans[i].ch),
						    .events = POLLIN };
	{
		int64_t t0 = now_ns();
		int r = poll(pfd, (nfds_t)n, timeout);
		int64_t dt = now_ns() - t0;

		if (dt > 100000000 || (r == 0 && timeout >= 100))
			trace("slept %.1f ms of %d, poll=%d efd=%d", dt / 1e6, timeout, r, pfd[0].revents);
	}
	while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
		;
}

static void shutdown_bridge(struct bridge *b)
{
	int64_t end;

	log_msg(b, false, "stopping (signal %d)", (int)stop_signal);
	for (int i = 0; i < b->nchans; i++) {
		struct chan *s = &b->chans[i];

		log_msg(b, true, "channel %s: %llu records forwarded, %llu delivered", s->cfg->name,
			(unsigned long long)s->fwd_records, (unsigned long long)s->dlv_records);
		chan_shutdown(b, s);
	}
	for (int i = 0; i < b->nconns; i++)
		conn_flush(b, b->conns[i]);
	/* Give the RESETs a moment to leave, then close every link. */
	end = now_ns() + 200000000LL;
	while (now_ns() < end && ucx_progress(&b->ucx))
		;
	for (int i = 0; i < b->nconns; i++)
		if (!b->conns[i]->dead)
			link_close(b->conns[i]->link), b->conns[i]->dead = true;
	end = now_ns() + 1000000000LL;
	while (b->nconns && now_ns() < end) {
		ucx_progress(&b->ucx);
		reap(b);
	}
}

int main(int argc, char **argv)
{
	static struct bridge bridge;
	struct bridge *b = &bridge;
	bool check = false;
	int ret = parse_options(b, argc, argv, &check);

	if (ret >= 0)
		return ret;
	if (check) {
		config_print(&b->cfg, stdout);
		return 0;
	}
	if (start(b) < 0)
		return 1;
	while (!stop_signal) {
		b->busy = false;
		one_pass(b);
		if (!b->busy)
			sleep_until_event(b);
	}
	shutdown_bridge(b);
	for (int i = 0; i < b->nchans; i++)
		pending_free(&b->chans[i].pend);
	ucx_close(&b->ucx);
	ivshmem_close(b->region);
	return 0;
}
