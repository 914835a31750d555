// SPDX-License-Identifier: MIT
/*
 * UCX streams for the bridge (link.h). Single-threaded: every callback runs
 * inside ucx_progress() on the caller's thread. A link is freed only after its
 * endpoint was closed and every request on it completed, because the
 * callbacks point at it.
 */
#include "link.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *what, ucs_status_t st)
{
	snprintf(err, errlen, "%s: %s", what, ucs_status_string(st));
}

int ucx_open(struct ucx *u, char *err, size_t errlen)
{
	ucp_params_t p = { .field_mask = UCP_PARAM_FIELD_FEATURES,
			   .features = UCP_FEATURE_STREAM | UCP_FEATURE_WAKEUP };
	ucp_worker_params_t wp = { .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE |
						 UCP_WORKER_PARAM_FIELD_EVENTS,
				   .thread_mode = UCS_THREAD_MODE_SINGLE,
				   .events = UCP_WAKEUP_RX | UCP_WAKEUP_TX };
	ucp_config_t *cfg;
	ucs_status_t st;

	memset(u, 0, sizeof(*u));
	u->efd = -1;
	st = ucp_config_read(NULL, NULL, &cfg);
	if (st != UCS_OK) {
		set_err(err, errlen, "UCX configuration", st);
		return -1;
	}
	st = ucp_init(&p, cfg, &u->ctx);
	ucp_config_release(cfg);
	if (st != UCS_OK) {
		set_err(err, errlen, "UCX init", st);
		return -1;
	}
	st = ucp_worker_create(u->ctx, &wp, &u->worker);
	if (st == UCS_OK)
		st = ucp_worker_get_efd(u->worker, &u->efd);
	if (st != UCS_OK) {
		set_err(err, errlen, "UCX worker", st);
		ucx_close(u);
		return -1;
	}
	return 0;
}

void ucx_close(struct ucx *u)
{
	if (u->listener)
		ucp_listener_destroy(u->listener);
	if (u->worker)
		ucp_worker_destroy(u->worker);
	if (u->ctx)
		ucp_cleanup(u->ctx);
	memset(u, 0, sizeof(*u));
	u->efd = -1;
}

bool ucx_progress(struct ucx *u)
{
	for (int i = 0; i < UCX_PROGRESS_MAX; i++)
		if (!ucp_worker_progress(u->worker))
			return false;
	return true;
}

int ucx_arm(struct ucx *u)
{
	return ucp_worker_arm(u->worker) == UCS_ERR_BUSY ? 1 : 0;
}

static void on_ep_error(void *arg, ucp_ep_h ep, ucs_status_t status)
{
	struct link *l = arg;

	(void)ep;
	if (!l->failed) {
		l->failed = true;
		snprintf(l->why, sizeof(l->why), "%s", ucs_status_string(status));
	}
}

static struct link *link_new(struct ucx *u, size_t rx_cap)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	if (rxbuf_init(&l->rx, rx_cap) < 0) {
		free(l);
		return NULL;
	}
	l->u = u;
	return l;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

static ucs_status_t create_ep(struct link *l, ucp_ep_params_t *ep)
{
	ep->field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
	ep->err_mode = UCP_ERR_HANDLING_MODE_PEER;
	ep->err_handler.cb = on_ep_error;
	ep->err_handler.arg = l;
	return ucp_ep_create(l->u->worker, ep, &l->ep);
}

static void on_conn(ucp_conn_request_h req, void *arg)
{
	struct ucx *u = arg;
	ucp_conn_request_attr_t attr = { .field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR };
	ucp_ep_params_t ep = { .field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST, .conn_request = req };
	struct link *l = link_new(u, u->accept_rx_cap);

	if (!l) {
		ucp_listener_reject(u->listener, req);
		return;
	}
	if (ucp_conn_request_query(req, &attr) == UCS_OK)
		addr_text((const struct sockaddr *)&attr.client_address, l->addr, sizeof(l->addr));
	if (create_ep(l, &ep) != UCS_OK) {
		rxbuf_free(&l->rx);
		free(l);
		return;
	}
	u->on_accept(u->accept_arg, l);
}

int ucx_listen(struct ucx *u, const struct sockaddr *sa, socklen_t len, size_t rx_cap,
	       char *err, size_t errlen)
{
	ucp_listener_params_t lp = {
		.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.sockaddr = { .addr = sa, .addrlen = len },
		.conn_handler = { .cb = on_conn, .arg = u },
	};
	ucs_status_t st;
	char where[64];

	u->accept_rx_cap = rx_cap;
	st = ucp_listener_create(u->worker, &lp, &u->listener);
	if (st != UCS_OK) {
		addr_text(sa, where, sizeof(where));
		snprintf(err, errlen, "listen on %s: %s", where, ucs_status_string(st));
		return -1;
	}
	return 0;
}

struct link *link_dial(struct ucx *u, const struct sockaddr *sa, socklen_t len, size_t rx_cap,
		       char *err, size_t errlen)
{
	ucp_ep_params_t ep = { .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR,
			       .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
			       .sockaddr = { .addr = sa, .addrlen = len } };
	struct link *l = link_new(u, rx_cap);
	ucs_status_t st;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	addr_text(sa, l->addr, sizeof(l->addr));
	st = create_ep(l, &ep);
	if (st != UCS_OK) {
		snprintf(err, errlen, "connect to %s: %s", l->addr, ucs_status_string(st));
		rxbuf_free(&l->rx);
		free(l);
		return NULL;
	}
	return l;
}

struct send_ctx {
	struct link *l;
	void *buf;
	size_t len;
};

static void sent(struct send_ctx *s)
{
	s->l->tx_reqs--;
	s->l->tx_bytes -= s->len;
	free(s->buf);
	free(s);
}

static void on_sent(void *req, ucs_status_t status, void *user_data)
{
	struct send_ctx *s = user_data;

	if (status != UCS_OK && !s->l->failed) {
		s->l->failed = true;
		snprintf(s->l->why, sizeof(s->l->why), "send: %s", ucs_status_string(status));
	}
	sent(s);
	ucp_request_free(req);
}

int link_send(struct link *l, void *buf, size_t len)
{
	ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
						  UCP_OP_ATTR_FIELD_USER_DATA };
	struct send_ctx *s;
	ucs_status_ptr_t req;

	if (l->failed || l->closing || !(s = malloc(sizeof(*s)))) {
		free(buf);
		return -1;
	}
	*s = (struct send_ctx){ .l = l, .buf = buf, .len = len };
	l->tx_reqs++;
	l->tx_bytes += len;
	p.cb.send = on_sent;
	p.user_data = s;
	req = ucp_stream_send_nbx(l->ep, buf, len, &p);
	if (req == NULL) {
		sent(s);
		return 0;
	}
	if (UCS_PTR_IS_ERR(req)) {
		l->failed = true;
		snprintf(l->why, sizeof(l->why), "send: %s", ucs_status_string(UCS_PTR_STATUS(req)));
		sent(s);
		return -1;
	}
	return 0;
}

static void received(struct link *l, ucs_status_t status, size_t length)
{
	l->rx_posted = false;
	if (status != UCS_OK) {
		if (!l->failed && status != UCS_ERR_CANCELED) {
			l->failed = true;
			snprintf(l->why, sizeof(l->why), "receive: %s", ucs_status_string(status));
		}
		return;
	}
	/* Bytes land at rx.used: nothing moves rx.used while a receive is out. */
	l->rx.used += length;
	l->rx_total += length;
}

static void on_received(void *req, ucs_status_t status, size_t length, void *user_data)
{
	received(user_data, status, length);
	ucp_request_free(req);
}

void link_pump(struct link *l, size_t need)
{
	ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK |
						  UCP_OP_ATTR_FIELD_USER_DATA };
	ucs_status_ptr_t req;
	size_t length = 0, room;

	while (!l->rx_posted && !l->failed && !l->closing && (room = rxbuf_make_room(&l->rx, need))) {
		p.cb.recv_stream = on_received;
		p.user_data = l;
		l->rx_posted = true;
		req = ucp_stream_recv_nbx(l->ep, l->rx.data + l->rx.used, room, &length, &p);
		if (req == NULL) {
			received(l, UCS_OK, length);
			if (!length)
				break;
		} else if (UCS_PTR_IS_ERR(req)) {
			received(l, UCS_PTR_STATUS(req), 0);
			if (!l->failed) {
				l->failed = true;
				snprintf(l->why, sizeof(l->why), "receive: %s",
					 ucs_status_string(UCS_PTR_STATUS(req)));
			}
		}
	}
}

void link_close(struct link *l)
{
	ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
				  .flags = UCP_EP_CLOSE_FLAG_FORCE };

	if (l->closing)
		return;
	l->closing = true;
	l->close_req = ucp_ep_close_nbx(l->ep, &p);
	if (UCS_PTR_IS_ERR(l->close_req))
		l->close_req = NULL;
}

bool link_reap(struct link *l)
{
	if (!l->closing)
		return false;
	if (l->close_req) {
		if (ucp_request_check_status(l->close_req) == UCS_INPROGRESS)
			return false;
		ucp_request_free(l->close_req);
		l->close_req = NULL;
	}
	if (l->tx_reqs > 0 || l->rx_posted)
		return false;
	rxbuf_free(&l->rx);
	free(l);
	return true;
}
