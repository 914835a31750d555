// SPDX-License-Identifier: MIT
/*
 * ivshmem-server: hands QEMU ivshmem-doorbell devices and host peers the
 * shared memory and each other's eventfds (protocol version 0).
 *
 * This file: options (QEMU's contrib/ivshmem-server flags and defaults, plus
 * long options and extras), daemonizing, the pid file, signals, systemd.
 */
#define _GNU_SOURCE
#include "server.h"

#include "ivshmem/kpeer.h"
#include "ivshmem/protocol.h"
#include "ivshmem/region.h"
#include "ivshmem/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <stddef.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define DEFAULT_PID_FILE	"/var/run/ivshmem-server.pid"	/* with the default socket */
#define PID_FILE_DIR		"/var/run"
#define DEFAULT_SOCKET		"/tmp/ivshmem_socket"
#define DEFAULT_SHM_NAME	"ivshmem"
#define DEFAULT_SIZE		(4ull << 20)
#define DEFAULT_MAX_QUEUE	16384
#define MIN_SIZE		4096ull
#define KERNEL_PEER_NAME_MAX	31	/* IVSHMEM_HOST_NAME_LEN - 1 */

/*
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage, as all our tools. QEMU's
 * server exits 1 for both; a deliberate difference (docs/server.md).
 */
#define EXIT_USAGE 2

enum {
	OPT_MEMFD = 256, OPT_SOCKET_MODE, OPT_SOCKET_GROUP, OPT_SHM_MODE, OPT_SHM_GROUP,
	OPT_MAX_PEERS, OPT_MAX_QUEUE, OPT_LOG, OPT_VERSION, OPT_KEEP_SHM, OPT_KERNEL_PEER,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "foreground", no_argument, NULL, 'F' },
	{ "pid-file", required_argument, NULL, 'p' },
	{ "socket", required_argument, NULL, 'S' },
	{ "shm-name", required_argument, NULL, 'M' },
	{ "shm-dir", required_argument, NULL, 'm' },
	{ "memfd", no_argument, NULL, OPT_MEMFD },
	{ "keep-shm", no_argument, NULL, OPT_KEEP_SHM },
	{ "size", required_argument, NULL, 'l' },
	{ "vectors", required_argument, NULL, 'n' },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "socket-group", required_argument, NULL, OPT_SOCKET_GROUP },
	{ "shm-mode", required_argument, NULL, OPT_SHM_MODE },
	{ "shm-group", required_argument, NULL, OPT_SHM_GROUP },
	{ "max-peers", required_argument, NULL, OPT_MAX_PEERS },
	{ "max-queue", required_argument, NULL, OPT_MAX_QUEUE },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "kernel-peer", required_argument, NULL, OPT_KERNEL_PEER },
	{ 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: ivshmem-server [OPTION]...\n"
"Share memory and doorbells between QEMU ivshmem-doorbell devices and host peers\n"
"(ivshmem protocol version 0; a drop-in for QEMU's contrib/ivshmem-server).\n"
"\n"
"QEMU-compatible options:\n"
"  -h, --help              show this help and exit\n"
"  -v, --verbose           also log debug messages (greeting sizes, full sockets)\n"
"  -F, --foreground        do not daemonize (the default is to daemonize)\n"
"  -p, --pid-file PATH     pid file of the daemon, kept at exit (ignored with -F);\n"
"                          default " DEFAULT_PID_FILE " with the default socket,\n"
"                          else " PID_FILE_DIR "/ivshmem-server-SOCKET.pid (SOCKET: its\n"
"                          absolute path, '/' as '-', like systemd-escape --path)\n"
"  -S, --socket PATH       UNIX socket to listen on (default " DEFAULT_SOCKET ")\n"
"  -M, --shm-name NAME     POSIX shared memory object /dev/shm/NAME (default '" DEFAULT_SHM_NAME "');\n"
"                          removed at exit; an existing one is used only if it is ours\n"
"  -m, --shm-dir DIR       create an unlinked file in DIR instead (e.g. a hugetlbfs mount)\n"
"  -l, --size SIZE         shared memory size: bytes, or with a K/M/G/T/P/E suffix, with\n"
"                          decimals (1.5M) (default 4M); rounded up to a power of two,\n"
"                          which QEMU requires\n"
"  -n, --vectors N         interrupt vectors per peer, 0..%d (default 1)\n"
"\n"
"Extras:\n"
"      --memfd             back the memory with a sealed memfd (no peer can resize it)\n"
"      --keep-shm          leave /dev/shm/NAME behind at exit\n"
"      --socket-mode MODE  octal mode of the socket (default 0600)\n"
"      --socket-group GRP  group of the socket (name or number)\n"
"      --shm-mode MODE     octal mode of the shared memory (default 0600)\n"
"      --shm-group GRP     group of the shared memory\n"
"      --max-peers N       refuse clients beyond N peers (default and max 65536)\n"
"      --max-queue N       drop a client that falls N messages behind (default %d)\n"
"      --log stderr|syslog where to log (default: stderr in the foreground, syslog\n"
"                          when daemonized)\n"
"      --kernel-peer NAME  the host kernel joins as peer 0: attach the memory to\n"
"                          ivshmem_host.ko (/dev/ivshmem-host) under NAME, for host\n"
"                          modules; needs -n 1..%d, shmem memory (--memfd or -M)\n"
"      --version           print the version and exit\n"
"\n"
"Started by systemd socket activation, the socket passed in is used and -S only\n"
"names it in logs. Exit status: 0 after SIGTERM/SIGINT, 1 on failure, 2 on bad usage.\n",
		IVSHMEM_MAX_VECTORS, DEFAULT_MAX_QUEUE, IVSHMEM_KPEER_MAX_VECTORS);
}

static void __attribute__((noreturn, format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ivshmem-server: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ivshmem-server --help'.\n");
	exit(EXIT_USAGE);
}

static mode_t parse_mode(const char *opt, const char *s)
{
	char *end;
	unsigned long m;

	errno = 0;
	m = strtoul(s, &end, 8);
	if (!*s || *end || errno || m > 0777)
		usage_error("%s: '%s' is not an octal mode (e.g. 0660)", opt, s);
	return (mode_t)m;
}

static gid_t parse_group(const char *opt, const char *s)
{
	struct group *g = getgrnam(s);
	uint64_t v;

	if (g)
		return g->gr_gid;
	if (ivshmem_parse_uint(s, (gid_t)-2, &v) == 0)
		return (gid_t)v;
	usage_error("%s: no group named '%s'", opt, s);
}

static unsigned int parse_count(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (ivshmem_parse_uint(s, max, &v) < 0 || v < min)
		usage_error("%s: '%s' must be a number from %llu to %llu", opt, s,
			    (unsigned long long)min, (unsigned long long)max);
	return (unsigned int)v;
}

/*
 * Sizes as QEMU's qemu_strtosz() reads them (its server's -l): decimal bytes
 * or 0x hex; or decimal with an optional fraction and one of B K M G T P E
 * (any case, powers of 1024): "1.5M" is 1572864 bytes, a fraction of a byte
 * rounds down. Also "KiB"/"KB" forms, as our other tools take them.
 */
static int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "BKMGTPE";
	unsigned __int128 v = 0, frac = 0, scale = 1;
	const char *p = s, *u;
	unsigned int shift;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return ivshmem_parse_uint(s, UINT64_MAX, out) == 0 ? 0 : -EINVAL;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned int)(*p - '0');
		if (v > UINT64_MAX)
			return -ERANGE;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (scale < (unsigned __int128)1000000000000000000ull) {
				frac = frac * 10 + (unsigned int)(*p - '0');
				scale *= 10;
			}
		}
	}
	u = !*p ? units : (*p & ~0x20) ? strchr(units, *p & ~0x20) : NULL;
	if (!u)
		return -EINVAL;
	shift = (unsigned int)(u - units) * 10;
	if (*p)
		p++;
	if (shift && (strcasecmp(p, "iB") == 0 || strcasecmp(p, "B") == 0))
		p += strlen(p);
	if (*p || (!shift && frac))
		return -EINVAL;	/* "1.5" alone: QEMU wants a unit with a fraction too */
	v = (v << shift) + ((frac << shift) / scale);
	if (v > UINT64_MAX)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

struct options {
	struct server_config cfg;
	const char *pid_file;
	bool pid_file_given, foreground, verbose, log_given, memfd_given, shm_given;
	enum log_target log;
};

static void parse_args(int argc, char **argv, struct options *o)
{
	struct server_config *cfg = &o->cfg;
	int c;

	while ((c = getopt_long(argc, argv, "hvFp:S:m:M:l:n:", long_opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'v':
			o->verbose = true;
			break;
		case 'F':
			o->foreground = true;
			break;
		case 'p':
			o->pid_file = optarg;
			o->pid_file_given = true;
			break;
		case 'S':
			cfg->socket_path = optarg;
			break;
		case 'M':
			/* As in QEMU's server (and shm_open()), the last of -M and -m wins. */
			cfg->shm_kind = SHM_POSIX;
			/* "/name" is the POSIX spelling of the same object. */
			cfg->shm_path = optarg + strspn(optarg, "/");
			o->shm_given = true;
			break;
		case 'm':
			cfg->shm_kind = SHM_DIR;
			cfg->shm_path = optarg;
			o->shm_given = true;
			break;
		case OPT_MEMFD:
			o->memfd_given = true;
			break;
		case OPT_KEEP_SHM:
			cfg->keep_shm = true;
			break;
		case 'l': {
			int err = parse_size(optarg, &cfg->shm_size);

			if (err == -ERANGE)
				usage_error("-l: size '%s' is too large", optarg);
			if (err < 0)
				usage_error("-l: '%s' is not a size (e.g. 4096, 0x1000, 64K, 1.5M, 1G)",
					    optarg);
			break;
		}
		case 'n':
			cfg->vectors = parse_count("-n", optarg, 0, IVSHMEM_MAX_VECTORS);
			break;
		case OPT_SOCKET_MODE:
			cfg->socket_mode = parse_mode("--socket-mode", optarg);
			break;
		case OPT_SOCKET_GROUP:
			cfg->socket_group = parse_group("--socket-group", optarg);
			break;
		case OPT_SHM_MODE:
			cfg->shm_mode = parse_mode("--shm-mode", optarg);
			break;
		case OPT_SHM_GROUP:
			cfg->shm_group = parse_group("--shm-group", optarg);
			break;
		case OPT_MAX_PEERS:
			cfg->max_peers = parse_count("--max-peers", optarg, 1,
						     IVSHMEM_MAX_PEER_ID + 1);
			break;
		case OPT_MAX_QUEUE:
			cfg->max_queue = parse_count("--max-queue", optarg, 16, 1u << 24);
			break;
		case OPT_LOG:
			if (strcmp(optarg, "stderr") == 0)
				o->log = LOG_TO_STDERR;
			else if (strcmp(optarg, "syslog") == 0)
				o->log = LOG_TO_SYSLOG;
			else
				usage_error("--log: '%s' is neither stderr nor syslog", optarg);
			o->log_given = true;
			break;
		case OPT_KERNEL_PEER:
			if (!*optarg || strlen(optarg) > KERNEL_PEER_NAME_MAX)
				usage_error("--kernel-peer: '%s' must be 1 to %d bytes", optarg,
					    KERNEL_PEER_NAME_MAX);
			cfg->kernel_peer = optarg;
			break;
		case OPT_VERSION:
			printf("ivshmem-server %s (protocol version %d, socket activation: %s)\n",
			       IVSHMEM_VERSION, IVSHMEM_PROTOCOL_VERSION,
#ifdef HAVE_LIBSYSTEMD
			       "yes"
#else
			       "no (built without libsystemd)"
#endif
			       );
			exit(0);
		default:
			fprintf(stderr, "Try 'ivshmem-server --help'.\n");
			exit(EXIT_USAGE);
		}
	}
	/* QEMU's server ignores operands; so do we, but say so. */
	for (int i = optind; i < argc; i++)
		fprintf(stderr, "ivshmem-server: warning: ignoring argument '%s' (options only)\n",
			argv[i]);
	if (o->memfd_given && o->shm_given)
		usage_error("--memfd cannot be combined with -M or -m: choose one backing");
	if (o->memfd_given)
		cfg->shm_kind = SHM_MEMFD;
	if (cfg->shm_kind == SHM_POSIX && (!*cfg->shm_path || strchr(cfg->shm_path, '/')))
		usage_error("-M: '%s' is not a POSIX shm name (a leading '/' is fine, no other)",
			    cfg->shm_path);
	if (cfg->shm_size < MIN_SIZE)
		usage_error("-l: %llu bytes is too small (at least %llu)",
			    (unsigned long long)cfg->shm_size, MIN_SIZE);
	if (cfg->kernel_peer && (cfg->vectors < 1 || cfg->vectors > IVSHMEM_KPEER_MAX_VECTORS))
		usage_error("--kernel-peer needs -n from 1 to %d (ivshmem_host.ko's limit), not %u",
			    IVSHMEM_KPEER_MAX_VECTORS, cfg->vectors);
	if (!o->log_given)
		o->log = o->foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG;
}

/*
 * Fork twice and detach. The original process exits only once the daemon
 * reports (through a pipe) that it is ready, 0 then, 1 if the daemon failed
 * first; until then the daemon's stderr is still the caller's, so start-up
 * errors reach the terminal. Paths were made absolute before: it chdir()s to /.
 */
static int daemonize(int *ready_fd)
{
	int pipefd[2];
	pid_t pid;
	char ok;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(pipefd[1]);
		_exit(read(pipefd[0], &ok, 1) == 1 ? 0 : 1);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -1;
	*ready_fd = pipefd[1];
	return 0;
}

/* Ready: tell the waiting parent, then let go of its terminal. */
static void detach(int *ready_fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (write(*ready_fd, "", 1) != 1)
		log_msg(LOG_WARNING, "cannot tell the parent we are ready");
	close(*ready_fd);
	*ready_fd = -1;
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
}

/* @path made absolute against the working directory now (NULL: out of memory). */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	char *abs;

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return NULL;
	return abs;
}

/*
 * The daemon's pid file when -p is not given: QEMU's default for QEMU's
 * default socket, else one per socket, so two daemons never share one.
 */
static char *default_pid_file(const char *socket_abs)
{
	char *out, *q;

	if (strcmp(socket_abs, DEFAULT_SOCKET) == 0)
		return strdup(DEFAULT_PID_FILE);
	out = malloc(sizeof(PID_FILE_DIR "/ivshmem-server-.pid") + 4 * strlen(socket_abs));
	if (!out)
		return NULL;
	q = out + sprintf(out, PID_FILE_DIR "/ivshmem-server-");
	/* systemd-escape --path: drop the leading '/', '/' -> '-', others as \xNN. */
	for (const char *start = socket_abs + strspn(socket_abs, "/"), *p = start; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '/')
			*q++ = '-';
		else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '_' || (ch == '.' && p != start))
			*q++ = (char)ch;
		else
			q += sprintf(q, "\\x%02x", ch);
	}
	strcpy(q, ".pid");
	return out;
}

static int write_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (fd < 0 || write(fd, buf, (size_t)len) != len) {
		log_msg(LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * The kernel refuses to pass more fds than RLIMIT_NOFILE that are sent and
 * not yet read (per user): use all the hard limit allows.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_msg(LOG_DEBUG, "RLIMIT_NOFILE raised from %llu to %llu",
				(unsigned long long)was, (unsigned long long)rl.rlim_max);
	}
}

/* Socket activation: 1 and the fd if systemd passed one, 0 if not, -1 on error. */
static int systemd_socket(int *fd, const char **name)
{
#ifdef HAVE_LIBSYSTEMD
	static struct sockaddr_un addr;
	socklen_t len = sizeof(addr);
	int n = sd_listen_fds(1);

	if (n <= 0)
		return 0;
	if (n > 1) {
		log_msg(LOG_ERR, "systemd passed %d sockets; expected exactly one", n);
		return -1;
	}
	*fd = SD_LISTEN_FDS_START;
	if (sd_is_socket_unix(*fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
		log_msg(LOG_ERR, "the socket systemd passed is not a listening AF_UNIX stream "
			"socket (ListenStream= in the .socket unit)");
		return -1;
	}
	fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);
	fcntl(*fd, F_SETFD, FD_CLOEXEC);
	/* Log the real path, not -S's default. */
	if (getsockname(*fd, (struct sockaddr *)&addr, &len) == 0 && addr.sun_path[0])
		*name = addr.sun_path;
	return 1;
#else
	(void)fd;
	(void)name;
	return 0;
#endif
}

/* Type=notify services: tell systemd we are ready (no-op without $NOTIFY_SOCKET). */
static void notify_ready(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "READY=1");
#else
	/* The protocol is one datagram to $NOTIFY_SOCKET; no library needed for it. */
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(addr.sun_path))
		return;
	strcpy(addr.sun_path, path);
	if (addr.sun_path[0] == '@')
		addr.sun_path[0] = '\0';	/* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&addr,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path))) < 0)
		log_msg(LOG_WARNING, "cannot notify systemd: %s", strerror(errno));
	close(fd);
#endif
}

static void format_size(char *buf, size_t len, uint64_t v)
{
	static const char units[] = "BKMGTPE";
	int u = 0;

	while (u < 6 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
	if (u == 0)
		buf[strlen(buf) - 1] = '\0';
}

int main(int argc, char **argv)
{
	struct options o = {
		.cfg = {
			.socket_path = DEFAULT_SOCKET,
			.socket_mode = 0600,
			.socket_group = (gid_t)-1,
			.shm_kind = SHM_POSIX,
			.shm_path = DEFAULT_SHM_NAME,
			.shm_mode = 0600,
			.shm_group = (gid_t)-1,
			.shm_size = DEFAULT_SIZE,
			.vectors = 1,
			.max_peers = IVSHMEM_MAX_PEER_ID + 1,
			.max_queue = DEFAULT_MAX_QUEUE,
			.listen_fd = -1,
		},
	};
	struct server_config *cfg = &o.cfg;
	int listen_fd = -1, shm_fd, signal_fd, ready_fd = -1, activated, ret, kernel_dev = -1;
	char *socket_abs = NULL, *pid_file = NULL;
	bool own_socket = false, started = false;
	uint64_t requested;
	sigset_t sigs;

	parse_args(argc, argv, &o);
	/* Startup errors go to stderr even for a daemon: it has not detached yet. */
	log_setup(LOG_TO_STDERR, o.verbose);

	requested = cfg->shm_size;
	cfg->shm_size = ivshmem_pow2_roundup(requested);
	if (cfg->shm_size == 0 || cfg->shm_size > (1ull << 62)) {
		log_msg(LOG_ERR, "size %llu is too large", (unsigned long long)requested);
		return EXIT_USAGE;
	}
	if (cfg->shm_size != requested) {
		char a[32], b[32];

		format_size(a, sizeof(a), requested);
		format_size(b, sizeof(b), cfg->shm_size);
		log_msg(LOG_NOTICE, "size %s rounded up to %s: QEMU needs a power of two", a, b);
	}
	if (o.foreground && o.pid_file_given)
		log_msg(LOG_NOTICE, "-p %s ignored: a pid file is written only when daemonized "
			"(as QEMU's server does)", o.pid_file);
	if (!o.foreground) {
		/* The daemon chdir()s to /: the paths it uses later must be absolute. */
		socket_abs = absolute(cfg->socket_path);
		pid_file = o.pid_file_given ? absolute(o.pid_file) :
			   socket_abs ? default_pid_file(socket_abs) : NULL;
		if (!socket_abs || !pid_file) {
			log_msg(LOG_ERR, "out of memory");
			return 1;
		}
	}
	raise_nofile();

	signal(SIGPIPE, SIG_IGN);	/* and every send uses MSG_NOSIGNAL */
	signal(SIGHUP, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	activated = systemd_socket(&listen_fd, &cfg->socket_path);
	if (activated < 0)
		return 1;
	shm_fd = shm_create(cfg);
	if (shm_fd < 0)
		return 1;
	if (!activated) {
		listen_fd = server_listen(cfg);
		if (listen_fd < 0) {
			ret = 1;
			goto out;
		}
		own_socket = true;
	}
	if (!o.foreground && daemonize(&ready_fd) < 0) {
		log_msg(LOG_ERR, "cannot daemonize: %s", strerror(errno));
		ret = 1;
		goto out;
	}
	if (pid_file && write_pid_file(pid_file) < 0) {
		ret = 1;
		goto out;
	}
	signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signal_fd < 0) {
		log_msg(LOG_ERR, "signalfd: %s", strerror(errno));
		ret = 1;
		goto out;
	}
	/* In the daemon (its locked memory is charged), still on the caller's stderr. */
	if (cfg->kernel_peer) {
		kernel_dev = ivshmem_kpeer_attach(cfg->kernel_peer, shm_fd, KERNEL_PEER_ID,
						  cfg->vectors, cfg->shm_kind == SHM_MEMFD);
		if (kernel_dev < 0) {
			log_msg(LOG_ERR, "%s", ivshmem_errmsg());
			close(signal_fd);
			ret = 1;
			goto out;
		}
	}
	if (ready_fd >= 0)
		detach(&ready_fd);
	log_setup(o.log, o.verbose);
	{
		char sz[32];

		format_size(sz, sizeof(sz), cfg->shm_size);
		log_msg(LOG_INFO, "listening on %s%s: %s of %s memory, %u vector%s", cfg->socket_path,
			activated ? " (from systemd)" : "", sz,
			cfg->shm_kind == SHM_MEMFD ? "sealed memfd" :
			cfg->shm_kind == SHM_DIR ? "unlinked file" : "POSIX shm",
			cfg->vectors, cfg->vectors == 1 ? "" : "s");
	}
	notify_ready();
	started = true;
	ret = server_run(cfg, listen_fd, shm_fd, signal_fd, kernel_dev);
	close(signal_fd);
out:
	/* The pid file stays, as QEMU's server leaves it. */
	if (own_socket)
		unlink(socket_abs ? socket_abs : cfg->socket_path);
	shm_release(cfg, shm_fd, started);
	close(listen_fd);
	close(shm_fd);
	log_msg(ret ? LOG_ERR : LOG_INFO, "exiting");
	free(socket_abs);
	free(pid_file);
	return ret;
}
