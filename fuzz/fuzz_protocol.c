// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the client side of the ivshmem-server protocol: the
 * incremental receiver (ivshmem_msg_recv) and the validating state machine
 * (ivshmem_client_proto_feed), the code a host peer runs on whatever a
 * server sends.
 *
 * Input: a sequence of chunks, each a header byte (bits 0-3: length 1..16
 * bytes, bit 7: attach an fd) followed by that many payload bytes. Each chunk
 * is one sendmsg on a socketpair, so splits, merges and fds in odd places are
 * all reachable. Afterwards no fd may have leaked.
 */
#define _GNU_SOURCE
#include "ivshmem/protocol.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_chunk(int sock, const uint8_t *data, size_t len, bool with_fd)
{
	union { char space[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
	struct iovec iov = { (void *)data, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fd = -1;
	ssize_t n;

	if (with_fd) {
		struct cmsghdr *c;

		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.space;
		msg.msg_controllen = sizeof(control.space);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ivshmem_client_proto proto;
	struct ivshmem_msg_reader rd;
	int sv[2], before, after;

	before = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(before);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	ivshmem_client_proto_init(&proto);
	ivshmem_msg_reader_init(&rd);

	/* At most 64 chunks per input: the socket buffer holds them all. */
	for (int chunks = 0; size > 1 && chunks < 64; chunks++) {
		size_t len = (size_t)(data[0] & 0x0f) + 1;
		bool with_fd = data[0] & 0x80;

		data++;
		size--;
		if (len > size)
			len = size;
		if (send_chunk(sv[0], data, len, with_fd) < 0)
			break;
		data += len;
		size -= len;
	}
	close(sv[0]);

	for (;;) {
		int64_t value;
		uint16_t peer;
		int fd, ret = ivshmem_msg_recv(sv[1], &rd, &value, &fd);

		if (ret <= 0)
			break;
		ret = ivshmem_client_proto_feed(&proto, value, fd, &peer);
		if (ret < 0)
			break;
		if (ret == IVSHMEM_CEV_PEER_VECTOR && !ivshmem_client_proto_peer(&proto, peer))
			abort();	/* a peer that just got an eventfd must be known */
		if (proto.own.nfds > IVSHMEM_MAX_VECTORS)
			abort();
	}
	ivshmem_msg_reader_reset(&rd);
	ivshmem_client_proto_free(&proto);
	close(sv[1]);

	/* The lowest free fd is back where it was: nothing received was leaked. */
	after = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(after);
	if (after != before)
		abort();
	return 0;
}
