/* SPDX-License-Identifier: MIT */
/*
 * The UCX side of the bridge: one UCP context and worker (single-threaded,
 * with a pollable event fd), a listener, and links, each one UCP stream
 * endpoint with a bounded receive buffer and owned send buffers. Nothing here
 * knows the frame format; proto.c reads link->rx (rxbuf_front(), rxbuf_take())
 * and writes with link_send().
 *
 * Reused by the hostile test peer (tests/host/bridge_fake.c).
 */
#ifndef BRIDGE_LINK_H
#define BRIDGE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ucp/api/ucp.h>

#include "rxbuf.h"

struct link;

struct ucx {
	ucp_context_h ctx;
	ucp_worker_h worker;
	ucp_listener_h listener;
	int efd;			/* readable when the worker has events (after ucx_arm) */
	/* Called (from ucx_progress) with a link for every accepted connection. */
	void (*on_accept)(void *arg, struct link *l);
	void *accept_arg;
	size_t accept_rx_cap;
};

struct link {
	struct ucx *u;
	ucp_ep_h ep;
	bool failed;			/* UCX reported the endpoint failed: why says how */
	char why[128];
	char addr[64];			/* the remote's address, for log lines */
	struct rxbuf rx;		/* received bytes, not yet read by the caller */
	bool rx_posted;			/* a receive into rx.data + rx.used is outstanding */
	uint64_t rx_total;		/* bytes received, ever (liveness) */
	int tx_reqs;			/* sends in flight */
	size_t tx_bytes;
	bool closing;			/* link_close() was called: freed by link_reap() */
	void *close_req;
};

/* Context and worker with STREAM and WAKEUP; UCX_* environment applies. 0 or -1 + @err. */
int ucx_open(struct ucx *u, char *err, size_t errlen);
void ucx_close(struct ucx *u);
/* Listen on @sa; accepted links get @rx_cap bytes of receive buffer. 0 or -1 + @err. */
int ucx_listen(struct ucx *u, const struct sockaddr *sa, socklen_t len, size_t rx_cap,
	       char *err, size_t errlen);
/*
 * Progress until idle, or UCX_PROGRESS_MAX times: true when it stopped at that
 * bound (events are still coming: call again soon). A remote that sends without
 * pause must not keep the caller from its own frames, sends and timers.
 */
#define UCX_PROGRESS_MAX	64
bool ucx_progress(struct ucx *u);
/* Arm the event fd before sleeping: 0 armed, 1 events are pending (progress again). */
int ucx_arm(struct ucx *u);

/* Connect to @sa (the connection completes in the background). NULL + @err on failure. */
struct link *link_dial(struct ucx *u, const struct sockaddr *sa, socklen_t len, size_t rx_cap,
		       char *err, size_t errlen);
/* Send @len bytes of @buf, which the link owns from now on (freed when sent). 0 or -1. */
int link_send(struct link *l, void *buf, size_t len);
/*
 * Keep a receive posted into the free end of rx (call after reading). @need:
 * the unread bytes the caller waits for (the frame it has begun), 0 when it
 * stopped with whole frames left (rxbuf_make_room()).
 */
void link_pump(struct link *l, size_t need);
/* Start closing (forcefully: what was not sent is dropped); link_reap() frees it. */
void link_close(struct link *l);
/* Free a closing link once UCX released it: true when freed. */
bool link_reap(struct link *l);

#endif
