/*
 * fork_accept.c - a server that does what deadlocks careless preload
 * libraries, run under librelayshim.so by tests/e2e/shim_hostile.sh:
 *
 *   fork_accept N
 *
 * Listens on 127.0.0.1:0 (registered through the shim), then at once:
 *  - one thread blocks in accept() and serves N clients (a line in, the
 *    same line out), retrying on EINTR;
 *  - a thread interrupts it with SIGUSR1 (handler without SA_RESTART)
 *    every millisecond;
 *  - a thread calls getsockname()/getpeername() in a loop, so the
 *    shim's lock is often held;
 *  - a thread forks 200 times; each child calls the hooks (socket, bind,
 *    getsockname, listen on AF_UNIX) and exits, and must do so within
 *    2 s.
 * Prints "READY" once listening, then "forks=F served=S eintr=E" and
 * exits 0 when all N clients were served and every child exited.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FA_FORKS 200

static int fa_lfd;
static int fa_want;
static atomic_int fa_served;
static atomic_int fa_eintr;
static atomic_int fa_done;
static atomic_int fa_forks_ok;
static atomic_int fa_forks_hung;

static void
fa_on_usr1(int sig)
{
	(void)sig;
}

static void *
fa_acceptor(void *arg)
{
	(void)arg;
	while (atomic_load(&fa_served) < fa_want) {
		char buf[256];
		ssize_t n;
		int c = accept(fa_lfd, NULL, NULL);

		if (c == -1) {
			if (errno == EINTR)
				atomic_fetch_add(&fa_eintr, 1);
			else
				fprintf(stderr, "accept: %s\n",
				    strerror(errno));
			continue;
		}
		do {
			n = read(c, buf, sizeof(buf));
		} while (n == -1 && errno == EINTR);
		if (n > 0)
			(void)!write(c, buf, (size_t)n);
		close(c);
		atomic_fetch_add(&fa_served, 1);
	}
	return NULL;
}

static void *
fa_interrupter(void *arg)
{
	pthread_t target = *(pthread_t *)arg;
	struct timespec ms = {0, 1000000};

	while (!atomic_load(&fa_done)) {
		pthread_kill(target, SIGUSR1);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static void *
fa_locker(void *arg)
{
	(void)arg;
	while (!atomic_load(&fa_done)) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		(void)getsockname(fa_lfd, (struct sockaddr *)&ss, &len);
		len = sizeof(ss);
		(void)getpeername(fa_lfd, (struct sockaddr *)&ss, &len);
	}
	return NULL;
}

static void
fa_child(void)
{
	struct sockaddr_in sin;
	struct sockaddr_un sun;
	socklen_t len = sizeof(sin);
	int s;

	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)bind(s, (struct sockaddr *)&sin, sizeof(sin));
	(void)getsockname(s, (struct sockaddr *)&sin, &len);
	close(s);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	(void)bind(s, (struct sockaddr *)&sun, sizeof(sa_family_t));
	(void)listen(s, 1);
	close(s);
	_exit(0);
}

static void *
fa_forker(void *arg)
{
	(void)arg;
	for (int i = 0; i < FA_FORKS; i++) {
		int status, waited = 0;
		pid_t pid = fork();

		if (pid == 0)
			fa_child();
		if (pid == -1)
			continue;
		while (waitpid(pid, &status, WNOHANG) == 0) {
			struct timespec ms = {0, 1000000};

			if (++waited > 2000) {
				/* Deadlocked in the child: count it, kill it.
				 */
				atomic_fetch_add(&fa_forks_hung, 1);
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			nanosleep(&ms, NULL);
		}
		if (waited <= 2000)
			atomic_fetch_add(&fa_forks_ok, 1);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct sockaddr_in sin;
	pthread_t acc, intr, lock, fork_t;

	fa_want = argc > 1 ? atoi(argv[1]) : 20;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fa_on_usr1; /* no SA_RESTART: accept gets EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	fa_lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fa_lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fa_lfd, 64) == -1) {
		perror("listen");
		return 2;
	}
	printf("READY\n");
	fflush(stdout);
	pthread_create(&acc, NULL, fa_acceptor, NULL);
	pthread_create(&intr, NULL, fa_interrupter, &acc);
	pthread_create(&lock, NULL, fa_locker, NULL);
	pthread_create(&fork_t, NULL, fa_forker, NULL);
	pthread_join(fork_t, NULL);
	pthread_join(acc, NULL);
	atomic_store(&fa_done, 1);
	pthread_join(intr, NULL);
	pthread_join(lock, NULL);
	printf("forks=%d hung=%d served=%d eintr=%d\n",
	    atomic_load(&fa_forks_ok), atomic_load(&fa_forks_hung),
	    atomic_load(&fa_served), atomic_load(&fa_eintr));
	return atomic_load(&fa_forks_hung) == 0 &&
		atomic_load(&fa_served) == fa_want
	    ? 0
	    : 1;
}
