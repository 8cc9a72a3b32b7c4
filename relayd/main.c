/*
 * main.c - relayd: command line, the control listener, signals.
 *
 * Flags follow Go's flag package, as the original did: "-port N",
 * "-port=N", "--port N" and "--port=N" are the same; the README's
 * positional "relayd N" is accepted too.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "flags.h"
#include "log.h"
#include "net.h"
#include "relayd.h"
#include "stats.h"

#define MAIN_BACKLOG 511

struct relayd_conf conf = {
    .port = 8080,
    .max_regs = 1024,
    .max_regs_ip = 64,
    .max_sessions = 4096,
    .max_queue = 128,
    .data_timeout = 10.0,
    .hello_timeout = 10.0,
    .port_min = 1024,
    .port_max = 65535,
    .fastopen = 256,
};
struct relayd_stats stats;

static int main_ctl_fd = -1;
static ev_io main_ctl_io;
static struct accept_pause main_pause;
static char main_user[64];
static char main_stats_addr[300];
static int main_syslog;

static int opt_help, opt_version, opt_verbose, opt_quiet;
static char opt_range[64];

static const struct flag main_flags[] = {
    {"port", FLAG_UINT, &conf.port, 65535, "N",
	"control port servers register on (default 8080; 0 picks one)"},
    {"bind", FLAG_STR, conf.bind, sizeof(conf.bind), "ADDR",
	"address to bind every port to (default: all, dual-stack)"},
    {"max-regs", FLAG_UINT, &conf.max_regs, 1000000, "N",
	"registrations in all (default 1024)"},
    {"max-regs-per-ip", FLAG_UINT, &conf.max_regs_ip, 1000000, "N",
	"registrations per server address (default 64)"},
    {"max-clients", FLAG_UINT, &conf.max_sessions, 1000000, "N",
	"open and waiting clients per registration (default 4096)"},
    {"max-queue", FLAG_UINT, &conf.max_queue, 100000, "N",
	"clients waiting for a data connection per registration "
	"(default 128)"},
    {"data-timeout", FLAG_DOUBLE, &conf.data_timeout, 0, "SEC",
	"wait this long for a data connection, then drop the client "
	"(default 10)"},
    {"hello-timeout", FLAG_DOUBLE, &conf.hello_timeout, 0, "SEC",
	"extension handshakes must finish within this (default 10)"},
    {"idle-timeout", FLAG_DOUBLE, &conf.idle_timeout, 1, "SEC",
	"close a session with no bytes either way for this long "
	"(default 0: never)"},
    {"threads", FLAG_UINT, &conf.workers, RELAYD_MAX_WORKERS, "N",
	"worker threads, one event loop each (default: one per CPU)"},
    {"secret-file", FLAG_STR, conf.secret_file, sizeof(conf.secret_file),
	"FILE", "require servers to prove this shared secret (extension)"},
    {"port-range", FLAG_STR, opt_range, sizeof(opt_range), "LO-HI",
	"public ports a registration may ask for (default 1024-65535)"},
    {"stats", FLAG_STR, main_stats_addr, sizeof(main_stats_addr), "ADDR",
	"serve Prometheus metrics on host:port or a UNIX socket path"},
    {"user", FLAG_STR, main_user, sizeof(main_user), "USER",
	"drop privileges to USER after binding the control port"},
    {"nosplice", FLAG_BOOL, &conf.no_splice, 0, NULL,
	"copy through user space instead of splice(2)"},
    {"fastopen", FLAG_UINT, &conf.fastopen, 65535, "N",
	"TCP Fast Open SYNs pending per listener, 0: off (default 256)"},
    {"syslog", FLAG_BOOL, &main_syslog, 0, NULL, "log to syslog, not stderr"},
    {"v", FLAG_BOOL, &opt_verbose, 0, NULL, "verbose: log every session"},
    {"q", FLAG_BOOL, &opt_quiet, 0, NULL, "quiet: warnings and errors only"},
    {"t", FLAG_BOOL, &conf.check_only, 0, NULL,
	"check the flags and the secret file, then exit"},
    {"version", FLAG_BOOL, &opt_version, 0, NULL, "print the version"},
    {"h", FLAG_BOOL, &opt_help, 0, NULL, "show this help"},
    {"help", FLAG_BOOL, &opt_help, 0, NULL, NULL},
};

#define MAIN_NFLAGS (sizeof(main_flags) / sizeof(main_flags[0]))

static void
main_usage(FILE *f, const char *argv0)
{
	fprintf(f, "Usage: %s [flags] [port]\n", argv0);
	fprintf(f,
	    "Relay TCP clients to servers that register from behind "
	    "NAT.\n\nFlags (\"-flag value\", \"-flag=value\" and "
	    "\"--flag\" all work):\n");
	flags_usage(f, main_flags, MAIN_NFLAGS);
	fprintf(f, "\nSee relayd(8).\n");
}

/* Returns 0, or 2 after printing the error (Go's flag exits 2 too).  The
 * README's "relayd N" sets the port. */
static int
main_parse(int argc, char **argv)
{
	char err[256];
	int unknown;

	if (flags_parse(main_flags, MAIN_NFLAGS, &main_flags[0], argc, argv,
		err, sizeof(err), &unknown) == -1) {
		if (unknown) {
			fprintf(stderr, "%s\n", err);
			main_usage(stderr, argv[0]);
		} else {
			fprintf(stderr, "%s: %s\n", argv[0], err);
		}
		return 2;
	}
	if (opt_range[0] != '\0') {
		const char *dash = strchr(opt_range, '-');
		unsigned lo = 0, hi = 0;

		if (dash == NULL ||
		    flags_parse_port(opt_range, (size_t)(dash - opt_range),
			&lo) == -1 ||
		    flags_parse_port(dash + 1, strlen(dash + 1), &hi) == -1 ||
		    lo == 0 || lo > hi) {
			fprintf(stderr, "%s: -port-range wants LO-HI, got %s\n",
			    argv[0], opt_range);
			return 2;
		}
		conf.port_min = lo;
		conf.port_max = hi;
	}
	return 0;
}

static void
main_ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	for (int n = 0; n < 64; n++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char addr[NET_ADDR_LEN];
		int fd;

		fd = accept4(w->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (net_accept_is_temporary(errno))
				continue;
			atomic_fetch_add(&stats.err_accept, 1);
			log_warn("accept on control port");
			/* Out of fds or memory: pause instead of spinning. */
			accept_pause_start(loop, &main_pause);
			return;
		}
		if (reg_limits_admit(&ss) == -1) {
			atomic_fetch_add(&stats.err_limit, 1);
			proto_addr_format(addr, sizeof(addr),
			    (struct sockaddr *)&ss);
			log_warnx("registration limit reached; refusing %s",
			    addr);
			close(fd);
			continue;
		}
		if (worker_hand_off(fd, &ss) == -1) {
			log_warnx("out of memory handing off a registration");
			reg_limits_release(&ss);
			close(fd);
		}
	}
}

static void
main_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	log_info("relayd: signal %d, stopping", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* Uid and gid of <user>; 0, or -1 if there is no such user. */
static int
main_lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

static int
main_drop_privileges(const char *user)
{
	uid_t uid;
	gid_t gid;

	if (main_lookup_user(user, &uid, &gid) == -1) {
		log_warnx("unknown user %s", user);
		return -1;
	}
	if (setgroups(1, &gid) == -1 || setgid(gid) == -1 ||
	    setuid(uid) == -1) {
		log_warn("cannot drop privileges to %s", user);
		return -1;
	}
	if (uid != 0 && setuid(0) != -1) {
		log_warnx("privileges could be regained after dropping; "
			  "refusing to run");
		return -1;
	}
	return 0;
}

/* More sessions need more fds: take the hard limit we are given. */
static void
main_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct ev_loop *loop;
	ev_signal sig_term, sig_int, sig_hup;
	char err[NET_ERR_LEN];
	sigset_t block, old;
	int r;
	long ncpu;

	r = main_parse(argc, argv);
	if (r != 0)
		return r;
	if (opt_help) {
		main_usage(stdout, argv[0]);
		return 0;
	}
	if (opt_version) {
		printf("relayd %s\n", RELAY_VERSION);
		return 0;
	}
	log_init("relayd", main_syslog, 0);
	if (opt_verbose)
		log_set_level(LOG_LVL_DEBUG);
	else if (opt_quiet)
		log_set_level(LOG_LVL_WARN);
	if (conf.workers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		conf.workers = ncpu > 0 ? (unsigned)ncpu : 1;
		if (conf.workers > 16)
			conf.workers = 16;
	}
	if (conf.secret_file[0] != '\0' &&
	    auth_load_secret(conf.secret_file, conf.secret, sizeof(conf.secret),
		&conf.secret_len, err, sizeof(err)) == -1) {
		fprintf(stderr, "relayd: %s\n", err);
		return 1;
	}
	if (main_user[0] != '\0' &&
	    main_lookup_user(main_user, &(uid_t){0}, &(gid_t){0}) == -1) {
		fprintf(stderr, "relayd: unknown user %s\n", main_user);
		return 1;
	}
	if (main_stats_addr[0] != '\0' && stats_check(main_stats_addr) == -1)
		return 1;
	if (conf.check_only) {
		printf("relayd: configuration OK\n");
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	main_raise_nofile();
	main_ctl_fd =
	    net_listen(conf.bind, conf.port, MAIN_BACKLOG, err, sizeof(err));
	if (main_ctl_fd == -1) {
		fprintf(stderr, "relayd: %s\n", err);
		return 1;
	}
	net_fastopen(main_ctl_fd, conf.fastopen);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		/* "-bind 0.0.0.0" or "::" mean every interface too: then each
		 * registration's ports must not take the one address a
		 * server happened to reach us on. */
		if (getsockname(main_ctl_fd, (struct sockaddr *)&ss, &sl) == 0)
			conf.bind_any = (ss.ss_family == AF_INET6 &&
					    IN6_IS_ADDR_UNSPECIFIED(
						&((struct sockaddr_in6 *)&ss)
						     ->sin6_addr)) ||
			    (ss.ss_family == AF_INET &&
				((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
				    htonl(INADDR_ANY));
	}
	if (main_stats_addr[0] != '\0' && stats_listen(main_stats_addr) == -1)
		return 1;
	if (main_user[0] != '\0' && main_drop_privileges(main_user) == -1)
		return 1;

	/* Registration keys and challenges come from getrandom(2), which
	 * blocks until the kernel's pool is ready: wait for it here, once,
	 * rather than in a worker at boot, with its sessions stalled. */
	{
		unsigned char b;

		while (getrandom(&b, 1, 0) == -1 && errno == EINTR)
			;
	}

	/* Workers must not take the signals the main loop handles. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (worker_start_all(conf.workers) == -1)
		return 1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	loop = ev_default_loop(EVFLAG_AUTO);
	ev_io_init(&main_ctl_io, main_ctl_cb, main_ctl_fd, EV_READ);
	accept_pause_init(&main_pause, &main_ctl_io, NULL, NULL, NULL);
	ev_io_start(loop, &main_ctl_io);
	ev_signal_init(&sig_term, main_signal_cb, SIGTERM);
	ev_signal_init(&sig_int, main_signal_cb, SIGINT);
	/* The original died of SIGHUP (a closed terminal); relayd stops on
	 * it too, but cleanly: it has no configuration file to reload. */
	ev_signal_init(&sig_hup, main_signal_cb, SIGHUP);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_signal_start(loop, &sig_hup);
	stats_start(loop);

	/* The original's only stdout line; scripts wait for it. */
	fputs("Waiting for clients...\n", stdout);
	fflush(stdout);
	log_info("relayd %s: servers register on port %u%s%s (%u threads, "
		 "%s)",
	    RELAY_VERSION, net_local_port(main_ctl_fd),
	    conf.bind[0] ? " of " : "", conf.bind, conf.workers,
	    conf.secret_len ? "a shared secret is required to register"
			    : "no secret: any server may register, as the "
			      "original");

	ev_run(loop, 0);

	ev_io_stop(loop, &main_ctl_io);
	close(main_ctl_fd);
	worker_stop_all();
	stats_stop(loop);
	log_info("relayd: stopped");
	return 0;
}
