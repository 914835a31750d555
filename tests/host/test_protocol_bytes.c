// SPDX-License-Identifier: MIT
/*
 * Protocol version 0 byte for byte: a raw socket client (no library) checks
 * every message the server sends and every fd attached, then the client-side
 * state machine and receiver reject each kind of violation.
 * argv[1]: the ivshmem-server binary.
 */
#include "server_helper.h"
#include "tap.h"

#include "ivshmem/protocol.h"
#include "ivshmem/region.h"

#include <sys/eventfd.h>
#include <sys/mman.h>

#define VECTORS 3

struct raw { int64_t value; int fd; size_t ctrl; uint8_t b[8]; int rc; };

static struct raw rx(int sock)
{
	struct raw m = { 0 };

	m.rc = th_raw_recv(sock, m.b, &m.fd, &m.ctrl, 3000);
	m.value = th_le64(m.b);
	return m;
}

static bool is_le(const uint8_t b[8], int64_t v)
{
	uint8_t want[8];

	for (int i = 0; i < 8; i++)
		want[i] = (uint8_t)((uint64_t)v >> (8 * i));
	return memcmp(b, want, 8) == 0;
}

static bool is_eventfd(int fd)
{
	char buf[128];

	return fd >= 0 && strcmp(th_fd_kind(fd, buf, sizeof(buf)), "anon_inode:[eventfd]") == 0;
}

/* Same eventfd object: a write on one is read back on the other. */
static bool same_eventfd(int a, int b)
{
	uint64_t one = 1, got = 0;

	if (write(a, &one, 8) != 8)
		return false;
	return read(b, &got, 8) == 8 && got == 1;
}

static bool nothing_pending(int sock)
{
	struct pollfd p = { sock, POLLIN, 0 };

	return poll(&p, 1, 100) == 0;
}

static void test_wire(const char *server)
{
	struct test_server s;
	const char *extra[] = { "--memfd", "-l", "1M", "-n", "3", NULL };
	int a_own[VECTORS], b_own[VECTORS], b_in_a[VECTORS], a_in_b[VECTORS];
	struct raw m;
	int a, b, c;
	bool ok;

	th_make_dir(&s, "bytes");
	if (!tap_ok(th_start(&s, server, 0, extra) == 0, "server starts"))
		return;

	a = th_connect(s.sock);
	m = rx(a);
	tap_ok(m.rc == 1 && is_le(m.b, 0) && m.fd < 0 && m.ctrl == 0,
	       "A msg 1: version 0 as 8 LE bytes, no control data at all");
	m = rx(a);
	tap_ok(m.rc == 1 && is_le(m.b, 0) && m.fd < 0 && m.ctrl == 0, "A msg 2: ID 0, no fd");
	m = rx(a);
	tap_ok(m.rc == 1 && is_le(m.b, -1) && m.fd >= 0, "A msg 3: -1 (ff x8) with an fd");
	{
		struct stat st;
		char kind[128];

		tap_ok(fstat(m.fd, &st) == 0 && st.st_size == 1 << 20, "shm fd is 1 MiB");
		tap_ok(strncmp(th_fd_kind(m.fd, kind, sizeof(kind)), "/memfd:", 7) == 0,
		       "--memfd: shm fd is a memfd (%s)", kind);
		tap_is(fcntl(m.fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL,
		       "memfd sealed against shrink, grow and new seals");
		tap_ok(ftruncate(m.fd, 4096) < 0 && errno == EPERM,
		       "a peer cannot truncate the memory (EPERM)");
		void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);

		tap_ok(p != MAP_FAILED, "shm fd maps read-write");
		if (p != MAP_FAILED)
			munmap(p, 1 << 20);
		close(m.fd);
	}
	ok = true;
	for (int i = 0; i < VECTORS; i++) {
		m = rx(a);
		ok &= m.rc == 1 && is_le(m.b, 0) && is_eventfd(m.fd);
		a_own[i] = m.fd;
	}
	tap_ok(ok, "A msgs 4-6: own ID 0 with an eventfd each (vectors 0..2)");
	tap_ok(nothing_pending(a), "A: nothing more until someone joins");

	b = th_connect(s.sock);
	m = rx(b);
	tap_ok(m.rc == 1 && is_le(m.b, 0) && m.ctrl == 0, "B msg 1: version 0");
	m = rx(b);
	tap_ok(m.rc == 1 && is_le(m.b, 1) && m.ctrl == 0, "B msg 2: ID 1");
	m = rx(b);
	tap_ok(m.rc == 1 && is_le(m.b, -1) && m.fd >= 0, "B msg 3: -1 with the shm fd");
	close(m.fd);
	ok = true;
	for (int i = 0; i < VECTORS; i++) {
		m = rx(b);
		ok &= m.rc == 1 && is_le(m.b, 0) && is_eventfd(m.fd);
		a_in_b[i] = m.fd;
	}
	tap_ok(ok, "B msgs 4-6: existing peer 0, one eventfd per vector");
	ok = true;
	for (int i = 0; i < VECTORS; i++) {
		m = rx(b);
		ok &= m.rc == 1 && is_le(m.b, 1) && is_eventfd(m.fd);
		b_own[i] = m.fd;
	}
	tap_ok(ok, "B msgs 7-9: own ID 1 with its eventfds");
	ok = true;
	for (int i = 0; i < VECTORS; i++) {
		m = rx(a);
		ok &= m.rc == 1 && is_le(m.b, 1) && is_eventfd(m.fd);
		b_in_a[i] = m.fd;
	}
	tap_ok(ok, "A: 3 messages 'ID 1 + eventfd' announce B");
	ok = true;
	for (int i = 0; i < VECTORS; i++)
		ok &= same_eventfd(b_in_a[i], b_own[i]) && same_eventfd(a_in_b[i], a_own[i]);
	tap_ok(ok, "each vector's eventfd is the same object at the owner and the other peer");
	tap_ok(!same_eventfd(b_in_a[0], b_own[1]), "vectors are distinct eventfds");
	{
		uint64_t x = 0;

		tap_ok(read(b_own[0], &x, 8) == 8 && x == 1, "the ring went to vector 0 only");

		tap_ok(read(b_own[0], &x, 8) < 0 && errno == EAGAIN, "eventfds are non-blocking");
		tap_ok(fcntl(b_own[0], F_GETFD) & FD_CLOEXEC, "received fds are close-on-exec");
	}

	close(b);
	m = rx(a);
	tap_ok(m.rc == 1 && is_le(m.b, 1) && m.fd < 0 && m.ctrl == 0,
	       "A: leave notice is ID 1 without an fd or control data");
	c = th_connect(s.sock);
	rx(c);
	m = rx(c);
	tap_ok(m.rc == 1 && is_le(m.b, 2), "C gets ID 2: IDs are not reused right away");
	for (int i = 0; i < 1 + 2 * VECTORS; i++) {
		m = rx(c);
		if (m.fd >= 0)
			close(m.fd);
	}
	for (int i = 0; i < VECTORS; i++) {
		m = rx(a);
		if (m.fd >= 0)
			close(m.fd);
	}
	tap_ok(m.rc == 1 && is_le(m.b, 2), "A is told about C");
	tap_is(th_stop(&s), 0, "SIGTERM: exit status 0");
	m = rx(a);
	tap_ok(m.rc == 1 && is_le(m.b, 2) && m.fd < 0, "on SIGTERM A is told C left");
	m = rx(a);
	tap_is(m.rc, 0, "then A's connection is closed");
	m = rx(c);
	tap_ok(m.rc == 1 && is_le(m.b, 0) && m.fd < 0, "on SIGTERM C is told A left");
	tap_ok(!th_socket_ready(s.sock), "socket file removed on exit");
	for (int i = 0; i < VECTORS; i++) {
		close(a_own[i]);
		close(b_own[i]);
		close(a_in_b[i]);
		close(b_in_a[i]);
	}
	close(a);
	close(c);
	th_cleanup_dir(&s);
}

/* Feed one message to a fresh state machine after the greeting; return the result. */
static int feed_after_greeting(int64_t value, bool with_fd)
{
	struct ivshmem_client_proto p;
	uint16_t peer;
	int ret;

	ivshmem_client_proto_init(&p);
	ivshmem_client_proto_feed(&p, 0, -1, &peer);
	ivshmem_client_proto_feed(&p, 7, -1, &peer);
	ivshmem_client_proto_feed(&p, -1, eventfd(0, EFD_CLOEXEC), &peer);
	ret = ivshmem_client_proto_feed(&p, value, with_fd ? eventfd(0, EFD_CLOEXEC) : -1, &peer);
	ivshmem_client_proto_free(&p);
	return ret;
}

static void test_state_machine(void)
{
	struct ivshmem_client_proto p;
	uint16_t peer = 0;
	int fds_before, ret;
	uint8_t b[8];

	ivshmem_msg_encode(b, -1);
	tap_ok(memcmp(b, "\xff\xff\xff\xff\xff\xff\xff\xff", 8) == 0, "encode -1");
	ivshmem_msg_encode(b, 0x0102030405060708);
	tap_ok(memcmp(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8) == 0, "encode is little-endian");
	tap_is(ivshmem_msg_decode(b), 0x0102030405060708, "decode inverts encode");

	fds_before = th_count_fds(getpid());
	ivshmem_client_proto_init(&p);
	tap_is(ivshmem_client_proto_feed(&p, 1, -1, &peer), -EPROTO, "version 1 rejected");
	tap_ok(strstr(ivshmem_errmsg(), "version") != NULL, "error names the version (%s)",
	       ivshmem_errmsg());
	ivshmem_client_proto_init(&p);
	tap_is(ivshmem_client_proto_feed(&p, 0, eventfd(0, 0), &peer), -EPROTO,
	       "version with an fd rejected");
	ivshmem_client_proto_init(&p);
	ivshmem_client_proto_feed(&p, 0, -1, &peer);
	tap_is(ivshmem_client_proto_feed(&p, 65536, -1, &peer), -EPROTO, "ID 65536 rejected");
	ivshmem_client_proto_init(&p);
	ivshmem_client_proto_feed(&p, 0, -1, &peer);
	ivshmem_client_proto_feed(&p, 3, -1, &peer);
	tap_is(ivshmem_client_proto_feed(&p, 3, eventfd(0, 0), &peer), -EPROTO,
	       "eventfd before the shm fd rejected");
	ivshmem_client_proto_init(&p);
	ivshmem_client_proto_feed(&p, 0, -1, &peer);
	ivshmem_client_proto_feed(&p, 3, -1, &peer);
	tap_is(ivshmem_client_proto_feed(&p, -1, -1, &peer), -EPROTO, "-1 without an fd rejected");

	tap_is(feed_after_greeting(-1, true), -EPROTO, "a second shm fd rejected");
	tap_is(feed_after_greeting(-2, false), -EPROTO, "negative ID rejected");
	tap_is(feed_after_greeting(70000, true), -EPROTO, "peer ID above 65535 rejected");
	tap_is(feed_after_greeting(7, false), -EPROTO, "'we left' notice rejected");
	tap_is(feed_after_greeting(7, true), IVSHMEM_CEV_OWN_VECTOR, "own eventfd accepted");
	tap_is(feed_after_greeting(9, true), IVSHMEM_CEV_PEER_VECTOR, "peer eventfd accepted");
	tap_is(feed_after_greeting(9, false), IVSHMEM_CEV_PEER_LEAVE, "leave accepted");

	ivshmem_client_proto_init(&p);
	ivshmem_client_proto_feed(&p, 0, -1, &peer);
	ivshmem_client_proto_feed(&p, 7, -1, &peer);
	ivshmem_client_proto_feed(&p, -1, eventfd(0, EFD_CLOEXEC), &peer);
	ret = 0;
	for (int i = 0; i < IVSHMEM_MAX_VECTORS && ret >= 0; i++)
		ret = ivshmem_client_proto_feed(&p, 9, eventfd(0, EFD_CLOEXEC), &peer);
	tap_ok(ret >= 0, "%d vectors for one peer accepted", IVSHMEM_MAX_VECTORS);
	tap_is(ivshmem_client_proto_feed(&p, 9, eventfd(0, EFD_CLOEXEC), &peer), -EPROTO,
	       "one more vector rejected");
	tap_is(ivshmem_client_proto_peer(&p, 9)->nfds, IVSHMEM_MAX_VECTORS, "peer keeps its fds");
	ivshmem_client_proto_free(&p);
	tap_is(th_count_fds(getpid()), fds_before, "no fd leaked by rejected messages");
}

static void test_receiver(void)
{
	int sv[2], fd, ret, fds_before = th_count_fds(getpid());
	struct ivshmem_msg_reader rd;
	uint8_t b[8];
	int64_t v;

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	ivshmem_msg_reader_init(&rd);
	ivshmem_msg_encode(b, 42);
	tap_ok(write(sv[0], b, 3) == 3, "send 3 bytes of a message");
	tap_is(ivshmem_msg_recv(sv[1], &rd, &v, &fd), 0, "incomplete message: 0 (wait)");
	tap_ok(write(sv[0], b + 3, 5) == 5, "send the rest");
	ret = ivshmem_msg_recv(sv[1], &rd, &v, &fd);
	tap_ok(ret == 1 && v == 42 && fd == -1, "split message reassembled");

	int e = eventfd(0, 0);

	tap_ok(ivshmem_msg_send(sv[0], 5, e, 0) == 8, "send a message with an fd");
	ret = ivshmem_msg_recv(sv[1], &rd, &v, &fd);
	tap_ok(ret == 1 && v == 5 && fd >= 0 && fd != e, "message with an fd received");
	close(fd);

	/*
	 * Violation: an fd attached to the middle of a message. (Only detectable
	 * when the reader has already consumed the bytes before it: recvmsg does
	 * not say where inside the bytes it returns an fd's data began.)
	 */
	tap_ok(write(sv[0], b, 2) == 2, "send 2 bytes");
	tap_is(ivshmem_msg_recv(sv[1], &rd, &v, &fd), 0, "reader takes them and waits");
	tap_ok(ivshmem_msg_send(sv[0], 5, e, 0) == 8, "then a message with an fd");
	ret = ivshmem_msg_recv(sv[1], &rd, &v, &fd);
	tap_is(ret, -EPROTO, "fd in the middle of a message: EPROTO");
	ivshmem_msg_reader_reset(&rd);
	close(sv[0]);
	close(sv[1]);

	/* Violation: two fds on one message. */
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	{
		union { char space[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr a; } ctl;
		struct iovec iov = { b, 8 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctl.space, .msg_controllen = sizeof(ctl.space) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		int two[2] = { e, e };

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(two));
		memcpy(CMSG_DATA(c), two, sizeof(two));
		tap_ok(sendmsg(sv[0], &msg, 0) == 8, "send a message with two fds");
	}
	ivshmem_msg_reader_init(&rd);
	tap_is(ivshmem_msg_recv(sv[1], &rd, &v, &fd), -EPROTO, "two fds on one message: EPROTO");
	close(sv[0]);
	tap_is(ivshmem_msg_recv(sv[1], &rd, &v, &fd), -ECONNRESET, "end of stream: ECONNRESET");
	close(sv[1]);
	close(e);
	tap_is(th_count_fds(getpid()), fds_before, "no fd leaked by the receiver");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s IVSHMEM_SERVER_BINARY\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	test_state_machine();
	test_receiver();
	test_wire(argv[1]);
	return tap_done();
}
