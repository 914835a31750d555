// SPDX-License-Identifier: MIT
/*
 * ivshmem-bridge: carries named channels of a local region to the channels
 * of the same name on other hosts' bridges over UCX (docs/multihost.md,
 * docs/ivshmem-bridge.8). This file: start-up, signals and the one
 * event loop, which sleeps in poll() on UCX's event fd, the channels' fds and
 * a signal pipe, and never spins while idle.
 */
#define _GNU_SOURCE
#include "bridge.h"

#include "ivshmem/region.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/*
 * One turn of everything, each part bounded (ucx_progress(), RX_BATCH per link,
 * TX_BATCH per channel), so that no link or channel holds up the others' sends
 * and keepalives: a bridge silent for dead-ms is dropped by its remote.
 */
static void one_pass(struct bridge *b)
{
	if (ucx_progress(&b->ucx))
		b->busy = true;
	for (int i = 0; i < b->nconns; i++)
		conn_service(b, b->conns[i]);
	dial_peers(b);
	for (int i = 0; i < b->nchans; i++)
		chan_service(b, &b->chans[i]);
	for (int i = 0; i < b->nconns; i++)
		conn_flush(b, b->conns[i]);
	if (ucx_progress(&b->ucx))
		b->busy = true;
	reap(b);
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
	poll(pfd, (nfds_t)n, timeout);
	while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
		;
}

static bool sends_in_flight(struct bridge *b)
{
	for (int i = 0; i < b->nconns; i++)
		if (!b->conns[i]->dead && b->conns[i]->link->tx_reqs > 0)
			return true;
	return false;
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
	/* Give the RESETs up to 200 ms to leave, then close every link. */
	end = now_ns() + 200000000LL;
	while (now_ns() < end && sends_in_flight(b)) {
		if (!ucx_progress(&b->ucx))
			usleep(1000);
	}
	for (int i = 0; i < b->nconns; i++)
		if (!b->conns[i]->dead)
			link_close(b->conns[i]->link), b->conns[i]->dead = true;
	end = now_ns() + 1000000000LL;
	while (b->nconns && now_ns() < end) {
		if (!ucx_progress(&b->ucx))
			usleep(1000);
		reap(b);
	}
}

int main(int argc, char **argv)
{
	static struct bridge bridge;
	struct bridge *b = &bridge;
	bool check = false;
	int ret = options_parse(b, argc, argv, &check);

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
