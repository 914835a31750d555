// SPDX-License-Identifier: MIT
/*
 * UCX (Debian libucx-dev): UCP tag send/receive between two workers, each
 * with its own context (as two processes would have), restricted to the
 * shared-memory transports posix, sysv and cma (UCX_TLS=posix,sysv,cma:
 * eager messages through a shared FIFO, rendezvous through
 * process_vm_readv). Both sides poll with ucp_worker_progress(), like our
 * polling ring; the payload goes from the sender's buffer into the
 * receiver's (UCX does the copies).
 *
 * Throughput: the sender keeps at most 64 messages in flight, counted
 * through a shared counter the receiver bumps (a credit, as the ring's cons
 * index), so UCX's unexpected-message queue cannot grow without bound.
 */
#define _GNU_SOURCE
#include "../bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ucp/api/ucp.h>

#include "ivshmem/ring.h"

#define WINDOW 64
#define TAG_AB 1
#define TAG_BA 2

static struct side {
	ucp_context_h ctx;
	ucp_worker_h worker;
	ucp_ep_h ep;		/* to the other side */
} side[2];
static bool ready_ucx;

static int side_init(struct side *s)
{
	ucp_params_t params = { .field_mask = UCP_PARAM_FIELD_FEATURES, .features = UCP_FEATURE_TAG };
	ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
				   .thread_mode = UCS_THREAD_MODE_SINGLE };
	ucp_config_t *cfg;
	ucs_status_t st;

	if (ucp_config_read(NULL, NULL, &cfg) != UCS_OK)
		return -1;
	st = ucp_config_modify(cfg, "TLS", "posix,sysv,cma");
	if (st == UCS_OK)
		st = ucp_init(&params, cfg, &s->ctx);
	ucp_config_release(cfg);
	if (st != UCS_OK)
		return -1;
	if (ucp_worker_create(s->ctx, &wp, &s->worker) != UCS_OK) {
		ucp_cleanup(s->ctx);
		s->ctx = NULL;
		return -1;
	}
	return 0;
}

static int connect_to(struct side *s, const struct side *peer)
{
	ucp_address_t *addr;
	size_t len;
	ucp_ep_params_t ep = { .field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS };
	ucs_status_t st;

	if (ucp_worker_get_address(peer->worker, &addr, &len) != UCS_OK)
		return -1;
	ep.address = addr;
	st = ucp_ep_create(s->worker, &ep, &s->ep);
	ucp_worker_release_address(peer->worker, addr);
	return st == UCS_OK ? 0 : -1;
}

/* Drive @req (from a _nbx call) to completion; NULL means it completed at once. */
static int wait_req(ucp_worker_h w, void *req)
{
	ucs_status_t st;

	if (req == NULL)
		return 0;
	if (UCS_PTR_IS_ERR(req))
		return -1;
	while ((st = ucp_request_check_status(req)) == UCS_INPROGRESS)
		ucp_worker_progress(w);
	ucp_request_free(req);
	return st == UCS_OK ? 0 : -1;
}

static void must(int ok, const char *what)
{
	if (ok < 0) {
		fprintf(stderr, "ivshmem-bench: ucx: %s failed\n", what);
		exit(1);
	}
}

static void send_msg(struct side *s, const void *buf, size_t size, ucp_tag_t tag)
{
	ucp_request_param_t p = { .op_attr_mask = 0 };

	must(wait_req(s->worker, ucp_tag_send_nbx(s->ep, buf, size, tag, &p)), "send");
}

static void recv_msg(struct side *s, void *buf, size_t size, ucp_tag_t tag)
{
	ucp_request_param_t p = { .op_attr_mask = 0 };

	must(wait_req(s->worker, ucp_tag_recv_nbx(s->worker, buf, size, tag, ~(ucp_tag_t)0, &p)),
	     "receive");
}

struct ucx_pair {
	size_t size;
	uint64_t count, ns;
	uint64_t *rtt;
	uint8_t *src, *dst_a, *dst_b;
	struct windows win;
	volatile int ready;
	_Alignas(64) volatile uint64_t received;
	volatile int done[2];	/* side i finished its loop */
};

/*
 * A side that finished must keep its worker progressing until the other one
 * has finished too: a rendezvous send completes only when the receiver's
 * acknowledgement goes out, which may need the receiver's progress.
 */
static void linger(struct ucx_pair *p, int self)
{
	__atomic_store_n(&p->done[self], 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&p->done[!self], __ATOMIC_ACQUIRE))
		ucp_worker_progress(side[self].worker);
}

static void *ucx_tx(void *arg)
{
	struct ucx_pair *p = arg;
	struct side *s = &side[0];
	void *req[WINDOW] = { 0 };
	uint64_t seen = 0;

	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count; i++) {
		ucp_request_param_t rp = { .op_attr_mask = 0 };
		void **slot = &req[i % WINDOW];

		while (i - seen >= WINDOW) {
			seen = __atomic_load_n(&p->received, __ATOMIC_ACQUIRE);
			ucp_worker_progress(s->worker);
		}
		must(wait_req(s->worker, *slot), "send");
		*slot = ucp_tag_send_nbx(s->ep, p->src, p->size, TAG_AB, &rp);
		if (UCS_PTR_IS_ERR(*slot))
			must(-1, "send");
	}
	for (int k = 0; k < WINDOW; k++)
		must(wait_req(s->worker, req[k]), "send");
	linger(p, 0);
	return NULL;
}

static void *ucx_rx(void *arg)
{
	struct ucx_pair *p = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	win_start(&p->win, p->count);
	for (uint64_t i = 0; i < p->count; i++) {
		recv_msg(&side[1], p->dst_b, p->size, TAG_AB);
		__atomic_store_n(&p->received, i + 1, __ATOMIC_RELEASE);
		win_tick(&p->win, i);
	}
	p->ns = win_ns(&p->win, p->count);
	linger(p, 1);
	return NULL;
}

static void *ucx_ping(void *arg)
{
	struct ucx_pair *p = arg;

	wait_flag(&p->ready);
	for (uint64_t i = 0; i < p->count; i++) {
		uint64_t t0 = now_ns();

		send_msg(&side[0], p->src, p->size, TAG_AB);
		recv_msg(&side[0], p->dst_a, p->size, TAG_BA);
		if (p->rtt)
			p->rtt[i] = now_ns() - t0;
	}
	linger(p, 0);
	return NULL;
}

static void *ucx_pong(void *arg)
{
	struct ucx_pair *p = arg;

	pin(bench_cpu_b);
	__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; i < p->count; i++) {
		recv_msg(&side[1], p->dst_b, p->size, TAG_AB);
		send_msg(&side[1], p->dst_b, p->size, TAG_BA);
	}
	linger(p, 1);
	return NULL;
}

static void pair_run(struct ucx_pair *p, size_t size, uint64_t count, bool lat, bool record)
{
	memset(p, 0, sizeof(*p));
	p->size = size;
	p->count = count;
	p->src = xalloc(size + 1);
	p->dst_a = xalloc(size + 1);
	p->dst_b = xalloc(size + 1);
	if (lat && record)
		p->rtt = calloc(count, sizeof(uint64_t));
	if (lat)
		run_pair(ucx_ping, ucx_pong, p);
	else
		run_pair(ucx_tx, ucx_rx, p);
}

static void pair_done(struct ucx_pair *p)
{
	free(p->rtt);
	free(p->src);
	free(p->dst_a);
	free(p->dst_b);
}

int ucx_setup(void)
{
	struct ucx_pair p;

	if (side_init(&side[0]) < 0 || side_init(&side[1]) < 0 || connect_to(&side[0], &side[1]) < 0 ||
	    connect_to(&side[1], &side[0]) < 0) {
		fprintf(stderr, "ivshmem-bench: ucx: cannot set up shared-memory transports\n");
		ucx_teardown();
		return -1;
	}
	ready_ucx = true;
	/* Wire-up happens on first use: a few round trips of each size class, not measured. */
	pair_run(&p, 64, 100, true, false);
	pair_done(&p);
	pair_run(&p, 65536, 20, true, false);
	pair_done(&p);
	return 0;
}

void ucx_teardown(void)
{
	for (int i = 0; i < 2; i++) {
		struct side *s = &side[i];

		if (s->ep) {
			ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
						  .flags = UCP_EP_CLOSE_FLAG_FORCE };

			wait_req(s->worker, ucp_ep_close_nbx(s->ep, &p));
			s->ep = NULL;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (side[i].worker)
			ucp_worker_destroy(side[i].worker);
		if (side[i].ctx)
			ucp_cleanup(side[i].ctx);
		memset(&side[i], 0, sizeof(side[i]));
	}
	ready_ucx = false;
}

void ucx_tput(const struct contender *c, size_t size)
{
	struct ucx_pair p;
	uint64_t n = count_for(size, 5000000);

	pair_run(&p, size, n, false, true);
	bench_throughput(c->name, size, p.count, p.ns, -1);
	pair_done(&p);
}

void ucx_lat(const struct contender *c, size_t size)
{
	struct ucx_pair p;

	pair_run(&p, size, count_for(size, 200000), true, true);
	bench_latency(c->name, size, p.rtt, p.count);
	pair_done(&p);
}
