/*
 * shim.c - librelayshim.so, the LD_PRELOAD half of the shim.
 *
 *   LD_PRELOAD=librelayshim.so RELAY_HOST=h RELAY_PORT=p ./server
 *
 * bind()   of an AF_INET/AF_INET6 stream socket binds loopback instead
 *          (port 0), and remembers what the server asked for;
 * listen() starts a helper process (relayshim, see helper.c) that
 *          registers with the relay, and waits for its answer;
 * accept() returns, in place of the helper's "wake" connection to the
 *          loopback listener, a connection to the relay that the helper
 *          queued for it (wake.h explains the exchange);
 * getsockname() on the listener reports the address the server asked for,
 * getpeername() on an accepted socket the real client when it is known.
 *
 * The server keeps a genuine listening socket, so blocking accept loops,
 * poll/select/epoll (level, edge, EPOLLEXCLUSIVE), threads and pre-forked
 * workers all work unchanged: the kernel's accept queue hands each wake
 * to exactly one acceptor.  Everything else passes through untouched, and
 * errno is preserved on every pass-through path.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "flags.h"
#include "proto.h"
#include "wake.h"

/*
 * ThreadSanitizer.  A seqlock reader's copy races with a writer by
 * design and is thrown away unless the sequence number held still, and
 * shim_ino probes fd numbers that other threads of the server are
 * closing and reusing: TSan cannot know either, and would report them
 * on every run, burying real races.  Its runtime is told to look away
 * there (shim_racy_begin/end; a counter, so they nest).  GCC also warns
 * that TSan does not model atomic_thread_fence; it need not here: what
 * the fences order is only the ignored copies.
 */
#if defined(__SANITIZE_THREAD__)
#define SHIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHIM_TSAN 1
#endif
#endif
#ifdef SHIM_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define shim_racy_begin() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define shim_racy_end() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#else
#define shim_racy_begin() ((void)0)
#define shim_racy_end() ((void)0)
#endif

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_MAX_LISTENERS 256
#define SHIM_PEER_CHUNK 1024  /* slots of the peers table mapped at once */
#define SHIM_PEER_CHUNKS 4096 /* so fds below 4M can be faked */
#define SHIM_READ_TRIES 4     /* lock-free reads before taking the lock */
#define SHIM_WAKE_WAIT_MS 500 /* for a header, where DEFER_ACCEPT is off */
#define SHIM_HELPER_WAIT_MS 3000

extern char **environ;

/* Settings, read once in the constructor: servers such as nginx scrub
 * their environment before workers start, so a lazy getenv() would find
 * nothing there. */
static struct {
	int active;
	int debug;
	int ext;
	int pool;
	int fastopen;
	int timeout_ms;
	int heartbeat;
	unsigned want_port;
	char relay_host[256];
	char relay_port[16];
	char addr_file[512];
	char secret_file[512];
	char helper[1024];
	char ports[256]; /* RELAY_PORTS: only these requested ports */
	char self[1024]; /* this library's path, for exec continuity */
} shim_cfg;

/* Our settings as "NAME=value", put back into an exec'd environment
 * that lost them (see execve below). */
static const char *const shim_env_names[] = {"RELAY_HOST", "RELAY_PORT",
    "RELAY_ADDR_FILE", "RELAY_SECRET_FILE", "RELAY_PORTS", "RELAY_TIMEOUT",
    "RELAY_EXTENSIONS", "RELAY_POOL", "RELAY_PUBLIC_PORT", "RELAY_HEARTBEAT",
    "RELAY_FASTOPEN", "RELAYSHIM_DEBUG", "RELAYSHIM_HELPER", "LD_PRELOAD"};
#define SHIM_NENV (sizeof(shim_env_names) / sizeof(shim_env_names[0]))
static char *shim_env_saved[SHIM_NENV];

static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*real_execve)(const char *, char *const[], char *const[]);

/* A socket the shim bound to loopback in place of the asked address. */
struct shim_listener {
	int fd; /* its number here: still ours while it has our inode */
	uint64_t ino;
	struct sockaddr_storage asked;
	socklen_t asked_len;
	unsigned asked_port;
	unsigned local_port;
	int registered;
	char public[300];
	uint64_t hino;		       /* names the helper's socket */
	unsigned hport;		       /* ... with this loopback port */
	uint8_t token[WAKE_TOKEN_LEN]; /* what the helper's wakes carry */
	int qfd;		       /* the helper's queue, or -1 */
	uint64_t qino;		       /* its inode: the fd may be reused */
};

/* An accepted socket whose peer is the real client, not the relay. */
struct shim_peer {
	int fd;
	uint64_t ino;
	struct sockaddr_in6 peer; /* large enough for either family */
	socklen_t peer_len;	  /* 0: the relay does not say */
	unsigned asked_port;	  /* the local port to report, or 0 */
	int family;		  /* the listener's */
};

/* Its place in the table indexed by fd: <seq> is odd while <p> is being
 * written (see shim_peer_slot). */
struct shim_peer_slot {
	atomic_uint seq;
	struct shim_peer p;
};

/* What the accept hook needs to know of a listener taking wakes. */
struct shim_wake_info {
	int idx;
	uint64_t hino;
	unsigned hport; /* with hino, names the helper's socket */
	unsigned lport;
	unsigned asked_port;
	int family;
	uint8_t token[WAKE_TOKEN_LEN];
	int qfd;
	uint64_t qino;
};

/*
 * Re-entry.  Every hook is an async-signal-safe function (accept, bind,
 * listen, getsockname, getpeername, execve): a signal handler may call
 * one on a thread that is inside another, even halfway through changing
 * the registry.  A plain mutex deadlocks there.  A recursive one, or a
 * thread-local "inside the shim" flag that let the handler past the
 * lock, would have it read, or change, a table its own thread left
 * half-written (a listener being moved, the peers table being grown).
 * Blocking signals in every hook would be correct, but it is two system
 * calls per lock taken, and accept() took the lock twice: about 1 us
 * more per relayed client on a 25 us path.
 *
 * So the registry (the listeners and the failed adoptions) is a seqlock:
 *  - a writer (bind, listen, an adoption, a queue fetched anew: rare)
 *    blocks every signal, takes shim_lock, and keeps shim_seq odd while
 *    it writes.  No handler runs on a thread that is writing, so none
 *    sees its own thread's half-written table or waits for a lock its
 *    own thread holds;
 *  - a reader (accept, getsockname: often) takes no lock and makes no
 *    system call: it copies what it needs and checks that shim_seq did
 *    not move meanwhile, else copies again.  A handler that changed the
 *    registry under an interrupted reader just makes it copy again.
 *    While another thread writes, or after a few changed copies, it
 *    reads under the lock, with signals blocked as a writer does.
 * The peers table, written on every relayed accept(), is apart and
 * takes no lock at all (shim_peer_slot).
 */
static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint shim_seq;
/* What shim_lock_all changed in the calling thread, to be put back. */
struct shim_held {
	sigset_t mask;
	int cancel;
};
static struct shim_held shim_fork_held; /* the forking thread's */
static struct shim_listener shim_lst[SHIM_MAX_LISTENERS];
static size_t shim_nlst;
static _Atomic(struct shim_peer_slot *) shim_peer_chunks[SHIM_PEER_CHUNKS];
/* The fd MAP_ANONYMOUS wants; a variable, as cppcheck holds an mmap fd
 * must be >= 0. */
static int shim_anon_fd = -1;
static int shim_addr_file_written;
static int shim_registered_count;

/* A reader's progress: see shim_read_begin. */
struct shim_reading {
	unsigned seq;
	int tries;
	int locked;
	struct shim_held held;
};

static void
shim_log(const char *fmt, ...)
{
	char line[512];
	int saved = errno, n;
	va_list ap;

	n = snprintf(line, sizeof(line), "relayshim: ");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
	errno = saved;
}

static void *
shim_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL) {
		shim_log("cannot find the real %s(); aborting", name);
		abort();
	}
	return p;
}

static void
shim_env(const char *name, char *dst, size_t len)
{
	const char *v = getenv(name);

	if (v != NULL && strlen(v) < len)
		memcpy(dst, v, strlen(v) + 1);
}

static int
shim_env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? atoi(v) : def;
}

/* The helper binary: $RELAYSHIM_HELPER, else next to this library
 * (build/lib/../bin/relayshim, or lib/../bin when installed).  Never a
 * search of the server's PATH: whoever can write to any directory on it
 * would run code as the server's user on its first listen(). */
static void
shim_find_helper(void)
{
	static const char *const rel[] = {"/../bin/relayshim", "/relayshim"};
	Dl_info info;
	char dir[900];
	char *slash;

	shim_env("RELAYSHIM_HELPER", shim_cfg.helper, sizeof(shim_cfg.helper));
	if (dladdr((void *)shim_find_helper, &info) != 0 &&
	    info.dli_fname != NULL && info.dli_fname[0] == '/')
		snprintf(shim_cfg.self, sizeof(shim_cfg.self), "%s",
		    info.dli_fname);
	if (shim_cfg.helper[0] != '\0')
		return;
	if (dladdr((void *)shim_find_helper, &info) == 0 ||
	    info.dli_fname == NULL || strlen(info.dli_fname) >= sizeof(dir))
		return;
	memcpy(dir, info.dli_fname, strlen(info.dli_fname) + 1);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(shim_cfg.helper, sizeof(shim_cfg.helper), "%s%s", dir,
		    rel[i]);
		if (access(shim_cfg.helper, X_OK) == 0)
			return;
	}
	shim_cfg.helper[0] = '\0';
}

/*
 * shim_lock with every signal blocked: taken so, it is never wanted by
 * a handler on the thread holding it.  And with cancellation disabled:
 * a write section may reach a cancellation point (bind's reclaim opens
 * /proc/self/fd, closes a queue), and a thread cancelled there would
 * leave the lock held and shim_seq odd, so that every later accept(),
 * getsockname() or bind() of the process waited for ever, with every
 * signal blocked.  A pending cancel is acted upon at the thread's next
 * cancellation point, outside.
 */
static void
shim_lock_all(struct shim_held *h)
{
	sigset_t all;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &h->cancel);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &h->mask);
	pthread_mutex_lock(&shim_lock);
}

static void
shim_unlock_all(const struct shim_held *h)
{
	pthread_mutex_unlock(&shim_lock);
	pthread_sigmask(SIG_SETMASK, &h->mask, NULL);
	pthread_setcancelstate(h->cancel, NULL);
}

/* Changing the registry: shim_write_begin, the change, shim_write_end
 * with the same <old>.  Nothing in between may read the registry by
 * shim_read_begin (it would wait for this very writer). */
static void
shim_write_begin(struct shim_held *old)
{
	shim_lock_all(old);
	atomic_store_explicit(&shim_seq,
	    atomic_load_explicit(&shim_seq, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void
shim_write_end(const struct shim_held *old)
{
	atomic_store_explicit(&shim_seq,
	    atomic_load_explicit(&shim_seq, memory_order_relaxed) + 1,
	    memory_order_release);
	shim_unlock_all(old);
}

/*
 * Reading the registry:
 *
 *	shim_read_begin(&rd);
 *	do {
 *		copy what is needed into locals, nothing else
 *	} while (shim_read_again(&rd));
 *
 * A copy may be torn by a concurrent writer; it is then made again, so
 * it must only copy, and index the tables within their bounds whatever
 * it reads.
 */
static void
shim_read_begin(struct shim_reading *rd)
{
	rd->tries = 0;
	rd->locked = 0;
	rd->seq = atomic_load_explicit(&shim_seq, memory_order_acquire);
	if (rd->seq & 1) {
		shim_lock_all(&rd->held);
		rd->locked = 1;
	} else {
		shim_racy_begin();
	}
}

static int
shim_read_again(struct shim_reading *rd)
{
	unsigned now;

	if (rd->locked) {
		shim_unlock_all(&rd->held);
		return 0;
	}
	atomic_thread_fence(memory_order_acquire);
	now = atomic_load_explicit(&shim_seq, memory_order_acquire);
	shim_racy_end();
	if (now == rd->seq)
		return 0;
	if ((now & 1) || ++rd->tries >= SHIM_READ_TRIES) {
		shim_lock_all(&rd->held);
		rd->locked = 1;
	} else {
		shim_racy_begin();
	}
	rd->seq = now;
	return 1;
}

/*
 * The slot of the peers table for <fd>, or NULL; <create>: map its
 * chunk if it has none.  Chunks are mapped as needed and never moved or
 * freed, so a reader (a signal handler, maybe) can hold a slot while
 * another thread adds a chunk; mmap, unlike malloc, is safe in a
 * handler.  A socket numbered above the table is not faked: its server
 * sees the relay's address.
 */
static struct shim_peer_slot *
shim_peer_slot(int fd, int create)
{
	size_t c = (size_t)fd / SHIM_PEER_CHUNK;
	size_t size = SHIM_PEER_CHUNK * sizeof(struct shim_peer_slot);
	_Atomic(struct shim_peer_slot *) *chunk;
	struct shim_peer_slot *t, *none = NULL;

	if (fd < 0 || c >= SHIM_PEER_CHUNKS)
		return NULL;
	chunk = &shim_peer_chunks[c];
	t = atomic_load_explicit(chunk, memory_order_acquire);
	if (t == NULL && create) {
		t = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, shim_anon_fd, 0);
		if (t == MAP_FAILED)
			return NULL;
		if (!atomic_compare_exchange_strong_explicit(chunk, &none, t,
			memory_order_acq_rel, memory_order_acquire)) {
			munmap(t, size); /* another thread mapped it first */
			t = none;
		}
	}
	return t == NULL ? NULL : &t[(size_t)fd % SHIM_PEER_CHUNK];
}

/*
 * Take slot <s>, last seen at even <seq>, for writing.  A slot is
 * written by the accept() that received its fd, before the server has
 * the number, or cleared by a getpeername() that found it stale; only
 * a server asking about an fd it has not got could make them meet, and
 * then one of the two just does not write.  Never a wait: the other may
 * be the code a signal handler interrupted.
 */
static int
shim_peer_claim(struct shim_peer_slot *s, unsigned seq)
{
	if ((seq & 1) ||
	    !atomic_compare_exchange_strong_explicit(&s->seq, &seq, seq + 1,
		memory_order_acquire, memory_order_relaxed))
		return 0;
	atomic_thread_fence(memory_order_release);
	return 1;
}

static void
shim_peer_release(struct shim_peer_slot *s, unsigned seq)
{
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

/* Copy slot <s> to *out, with the sequence number it had in *seq.
 * Returns 0 if it is being written: its fd is not the server's yet. */
static int
shim_peer_read(struct shim_peer_slot *s, struct shim_peer *out, unsigned *seq)
{
	for (int i = 0; i < SHIM_READ_TRIES; i++) {
		*seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (*seq & 1)
			return 0;
		shim_racy_begin();
		*out = s->p;
		shim_racy_end();
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->seq, memory_order_relaxed) == *seq)
			return 1;
	}
	return 0;
}

/*
 * A fork from another thread must not leave the registry lock held, nor
 * a slot that a thread the child does not have was writing: forgotten,
 * it would keep its fd from ever being faked again.  Signals stay
 * blocked from prepare to release: a handler in the forking thread
 * could otherwise want the lock that thread holds.
 */
static void
shim_atfork_prepare(void)
{
	struct shim_held old;

	shim_lock_all(&old);
	shim_fork_held = old;
}

static void
shim_atfork_parent(void)
{
	shim_unlock_all(&shim_fork_held);
}

static void
shim_atfork_child(void)
{
	for (size_t c = 0; c < SHIM_PEER_CHUNKS; c++) {
		struct shim_peer_slot *t =
		    atomic_load_explicit(&shim_peer_chunks[c],
			memory_order_relaxed);

		for (size_t i = 0; t != NULL && i < SHIM_PEER_CHUNK; i++) {
			unsigned seq = atomic_load_explicit(&t[i].seq,
			    memory_order_relaxed);

			if (seq & 1) {
				t[i].p.peer_len = 0;
				t[i].p.asked_port = 0;
				atomic_store_explicit(&t[i].seq, seq + 1,
				    memory_order_relaxed);
			}
		}
	}
	shim_unlock_all(&shim_fork_held);
}

static void
shim_do_init(void)
{
	int saved = errno;

	real_bind = shim_sym("bind");
	real_listen = shim_sym("listen");
	real_accept = shim_sym("accept");
	real_accept4 = shim_sym("accept4");
	real_getsockname = shim_sym("getsockname");
	real_getpeername = shim_sym("getpeername");
	real_execve = shim_sym("execve");
	for (size_t i = 0; i < SHIM_NENV; i++) {
		const char *v = getenv(shim_env_names[i]);

		if (v != NULL &&
		    asprintf(&shim_env_saved[i], "%s=%s", shim_env_names[i],
			v) == -1)
			shim_env_saved[i] = NULL;
	}
	shim_env("RELAY_HOST", shim_cfg.relay_host,
	    sizeof(shim_cfg.relay_host));
	snprintf(shim_cfg.relay_port, sizeof(shim_cfg.relay_port), "8080");
	shim_env("RELAY_PORT", shim_cfg.relay_port,
	    sizeof(shim_cfg.relay_port));
	shim_env("RELAY_ADDR_FILE", shim_cfg.addr_file,
	    sizeof(shim_cfg.addr_file));
	shim_env("RELAY_SECRET_FILE", shim_cfg.secret_file,
	    sizeof(shim_cfg.secret_file));
	shim_env("RELAY_PORTS", shim_cfg.ports, sizeof(shim_cfg.ports));
	/* Clamped first: in milliseconds, with listen()'s margin added, a
	 * large value would overflow. */
	shim_cfg.timeout_ms = shim_env_int("RELAY_TIMEOUT", 5);
	if (shim_cfg.timeout_ms <= 0)
		shim_cfg.timeout_ms = 5;
	if (shim_cfg.timeout_ms > 3600)
		shim_cfg.timeout_ms = 3600;
	shim_cfg.timeout_ms *= 1000;
	shim_cfg.ext = shim_env_int("RELAY_EXTENSIONS", 1);
	shim_cfg.pool = shim_env_int("RELAY_POOL", 2);
	shim_cfg.fastopen = shim_env_int("RELAY_FASTOPEN", 1);
	shim_cfg.want_port = (unsigned)shim_env_int("RELAY_PUBLIC_PORT", 0);
	shim_cfg.heartbeat = shim_env_int("RELAY_HEARTBEAT", 10);
	shim_cfg.debug = shim_env_int("RELAYSHIM_DEBUG", 0);
	shim_find_helper();
	shim_cfg.active = shim_cfg.relay_host[0] != '\0';
	pthread_atfork(shim_atfork_prepare, shim_atfork_parent,
	    shim_atfork_child);
	errno = saved;
}

static void
shim_init(void)
{
	pthread_once(&shim_once, shim_do_init);
}

__attribute__((constructor)) static void
shim_constructor(void)
{
	shim_init();
}

/* The inode of socket <fd>, or 0.  A probe: the number may be closed
 * or reused by another thread meanwhile, which callers allow for. */
static uint64_t
shim_ino(int fd)
{
	struct stat st;
	int r;

	shim_racy_begin();
	r = fstat(fd, &st);
	shim_racy_end();
	if (r == -1 || !S_ISSOCK(st.st_mode))
		return 0;
	return (uint64_t)st.st_ino;
}

static unsigned
shim_port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* Index of the listener with inode <ino>, or -1.  In a read or write
 * section. */
static int
shim_find(uint64_t ino)
{
	for (size_t i = 0; i < shim_nlst; i++)
		if (shim_lst[i].ino == ino)
			return (int)i;
	return -1;
}

/*
 * The first fd of this process (from /proc/self/fd) for which <match>
 * holds, or -1.  getdents64 into the stack, not opendir: a bind() from
 * a signal handler gets here, and the code it interrupted may hold
 * malloc's lock.
 */
static int
shim_find_fd(int (*match)(int fd, uint64_t ino, void *arg), void *arg)
{
	_Alignas(struct dirent64) char buf[2048];
	int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int found = -1;
	ssize_t n;

	if (dfd == -1)
		return -1;
	while (found == -1 && (n = getdents64(dfd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; found == -1 && off < n;) {
			struct dirent64 *e = (struct dirent64 *)(buf + off);
			int fd = atoi(e->d_name);
			uint64_t ino;

			off += e->d_reclen;
			if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
			    fd == dfd || (ino = shim_ino(fd)) == 0)
				continue;
			if (match(fd, ino, arg))
				found = fd;
		}
	}
	close(dfd);
	return found;
}

static int
shim_is_ino(int fd, uint64_t ino, void *arg)
{
	(void)fd;
	return ino == *(const uint64_t *)arg;
}

/*
 * Forget the listeners this process no longer has (closed, maybe re-
 * created on a reload), closing their queue unless a live sibling shares
 * it; so a long-lived server neither leaks a descriptor per closed
 * listener nor fills the table.  A listener merely moved to another
 * number (dup2) is kept under its new one.  In a write section.
 */
static void
shim_reclaim_locked(void)
{
	for (size_t i = 0; i < shim_nlst;) {
		struct shim_listener *l = &shim_lst[i];
		int fd, shared = 0;

		if (shim_ino(l->fd) == l->ino) {
			i++;
			continue;
		}
		fd = shim_find_fd(shim_is_ino, &l->ino);
		if (fd != -1) {
			l->fd = fd;
			i++;
			continue;
		}
		for (size_t j = 0; j < shim_nlst; j++)
			if (j != i && shim_lst[j].qfd == l->qfd &&
			    shim_lst[j].qino == l->qino)
				shared = 1;
		if (l->qfd != -1 && !shared && shim_ino(l->qfd) == l->qino)
			close(l->qfd);
		shim_lst[i] = shim_lst[--shim_nlst];
	}
}

/* Copy <src> to the caller's (addr, addrlen) the way the kernel does:
 * truncate to *addrlen, report the full length. */
static void
shim_copy_addr(struct sockaddr *addr, socklen_t *addrlen,
    const struct sockaddr_storage *src, socklen_t len)
{
	if (addr == NULL || addrlen == NULL)
		return;
	memcpy(addr, src, *addrlen < len ? *addrlen : len);
	*addrlen = len;
}

/*
 * Express <peer> in <family>: v4-mapped for an IPv6 listener.  An IPv6
 * address cannot be told to an IPv4 listener (its server sized buffers
 * and parsers for IPv4): it becomes 0.0.0.0, "unknown", with its port;
 * never 127.0.0.1, which servers trust.  That happens where the relay is
 * reached over IPv6 and the client's own address is not known.
 */
static socklen_t
shim_to_family(struct sockaddr_storage *peer, int family)
{
	if (family == AF_INET6 && peer->ss_family == AF_INET) {
		struct sockaddr_in v4 = *(struct sockaddr_in *)peer;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)peer;

		memset(v6, 0, sizeof(*v6));
		v6->sin6_family = AF_INET6;
		v6->sin6_port = v4.sin_port;
		v6->sin6_addr.s6_addr[10] = 0xff;
		v6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
	} else if (family == AF_INET && peer->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)peer)->sin6_addr)) {
		struct sockaddr_in6 v6 = *(struct sockaddr_in6 *)peer;
		struct sockaddr_in *v4 = (struct sockaddr_in *)peer;

		memset(v4, 0, sizeof(*v4));
		v4->sin_family = AF_INET;
		v4->sin_port = v6.sin6_port;
		memcpy(&v4->sin_addr, &v6.sin6_addr.s6_addr[12], 4);
	} else if (family == AF_INET && peer->ss_family == AF_INET6) {
		in_port_t port = ((struct sockaddr_in6 *)peer)->sin6_port;
		struct sockaddr_in *v4 = (struct sockaddr_in *)peer;

		memset(v4, 0, sizeof(*v4));
		v4->sin_family = AF_INET;
		v4->sin_port = port;
		v4->sin_addr.s_addr = htonl(INADDR_ANY);
	}
	return peer->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in);
}

static int
shim_is_stream(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_STREAM;
}

static int
shim_bind_loopback(int fd, int family, unsigned port)
{
	if (family == AF_INET) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons((uint16_t)port);
		return real_bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6;
		int zero = 0;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_loopback;
		sin6.sin6_port = htons((uint16_t)port);
		if (real_bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0)
			return 0;
		if (errno != EADDRNOTAVAIL)
			return -1;
		/* No ::1 on this host: the v4 loopback, v4-mapped. */
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
		sin6.sin6_addr = in6addr_any;
		sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
		sin6.sin6_addr.s6_addr[12] = 127;
		sin6.sin6_addr.s6_addr[15] = 1;
		return real_bind(fd, (struct sockaddr *)&sin6, sizeof(sin6));
	}
}

SHIM_EXPORT int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct shim_listener l;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	unsigned share_port = 0;
	int saved = errno, r, full, reuseport = 0;
	socklen_t rlen = sizeof(reuseport);
	struct shim_held old;

	shim_init();
	if (!shim_cfg.active || addr == NULL ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
	    len < (addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6)) ||
	    len > sizeof(struct sockaddr_storage) || !shim_is_stream(fd) ||
	    !flags_port_listed(shim_cfg.ports, shim_port_of(addr))) {
		errno = saved;
		return real_bind(fd, addr, len);
	}
	memset(&l, 0, sizeof(l));
	l.fd = fd;
	l.ino = shim_ino(fd);
	l.hino = l.ino;
	l.qfd = -1;
	memcpy(&l.asked, addr, len);
	/* The family's size, as the kernel would report it, not whatever
	 * length the server passed (sizeof(struct sockaddr_storage), say). */
	l.asked_len = addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6);
	l.asked_port = shim_port_of(addr);

	/* SO_REUSEPORT siblings (nginx "reuseport") share one loopback port
	 * and so one registration.  Only they: sockets that bind one port
	 * on several addresses (asyncio's start_server with a host list)
	 * are all bound before any listens, which SO_REUSEADDR allows on a
	 * shared loopback port, but then all but the first listen() fail. */
	if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, &rlen) == -1)
		reuseport = 0;
	shim_write_begin(&old);
	shim_reclaim_locked();
	full = shim_nlst == SHIM_MAX_LISTENERS && shim_find(l.ino) == -1;
	for (size_t i = 0; i < shim_nlst && l.asked_port != 0 && reuseport; i++)
		if (shim_lst[i].asked_port == l.asked_port &&
		    shim_lst[i].asked.ss_family == addr->sa_family)
			share_port = shim_lst[i].local_port;
	shim_write_end(&old);
	/* Binding the loopback without a record would leave a server that
	 * nobody can reach, and binding the asked address would expose it. */
	if (full) {
		shim_log("more than %d relayed listeners open; bind() of port "
			 "%u refused",
		    SHIM_MAX_LISTENERS, l.asked_port);
		errno = ENOBUFS;
		return -1;
	}
	r = -1;
	if (share_port != 0)
		r = shim_bind_loopback(fd, addr->sa_family, share_port);
	if (r == -1)
		r = shim_bind_loopback(fd, addr->sa_family, 0);
	if (r == -1)
		return -1;
	if (real_getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		l.local_port = shim_port_of((struct sockaddr *)&local);
	l.hport = l.local_port;

	shim_write_begin(&old);
	r = shim_find(l.ino);
	if (r == -1 && shim_nlst < SHIM_MAX_LISTENERS)
		r = (int)shim_nlst++;
	if (r == -1) {
		/* Full: forget the oldest socket that never listened. */
		for (size_t i = 0; i < shim_nlst; i++)
			if (!shim_lst[i].registered) {
				r = (int)i;
				break;
			}
	}
	if (r != -1)
		shim_lst[r] = l;
	shim_write_end(&old);
	if (shim_cfg.debug)
		shim_log("bind fd %d: asked port %u, bound loopback port %u",
		    fd, l.asked_port, l.local_port);
	errno = saved;
	return 0;
}

static void
shim_format_asked(char *out, size_t len, const struct shim_listener *l)
{
	struct sockaddr_storage a = l->asked;

	if (l->asked_port == 0) {
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port =
			    htons((uint16_t)l->local_port);
		else
			((struct sockaddr_in6 *)&a)->sin6_port =
			    htons((uint16_t)l->local_port);
	}
	if (proto_addr_format(out, len, (struct sockaddr *)&a) == -1)
		snprintf(out, len, "?");
}

static void
shim_write_addr_file(const char *public)
{
	FILE *f;

	if (shim_cfg.addr_file[0] == '\0')
		return;
	f = fopen(shim_cfg.addr_file, shim_addr_file_written ? "ae" : "we");
	if (f == NULL) {
		shim_log("cannot write %s: %s", shim_cfg.addr_file,
		    strerror(errno));
		return;
	}
	fprintf(f, "%s\n", public);
	fclose(f);
	shim_addr_file_written = 1;
}

/*
 * Start the helper for listener <l> bound at loopback port <lport> and
 * wait for its verdict.  Returns 0 and fills l->public, or -1 with errno
 * set and the reason printed.
 */
static int
shim_register(struct shim_listener *l, int fd, int backlog)
{
	static const int sigs_default[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE,
	    SIGCHLD, SIGUSR1, SIGUSR2, SIGQUIT, SIGALRM};
	struct wake_conf wc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defs;
	static char arg_fd[] = "-shim-fd", arg_3[] = "3";
	static char env_path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
	char *argv[] = {shim_cfg.helper, arg_fd, arg_3, NULL};
	char *envp[] = {env_path, NULL};
	char reply[256], asked[80];
	struct pollfd pfd;
	pid_t pid;
	ssize_t n;
	int sv[2], r, status, err = 0;

	memset(&wc, 0, sizeof(wc));
	snprintf(wc.relay_host, sizeof(wc.relay_host), "%s",
	    shim_cfg.relay_host);
	snprintf(wc.relay_port, sizeof(wc.relay_port), "%s",
	    shim_cfg.relay_port);
	snprintf(wc.secret_file, sizeof(wc.secret_file), "%s",
	    shim_cfg.secret_file);
	shim_format_asked(asked, sizeof(asked), l);
	snprintf(wc.asked_str, sizeof(wc.asked_str), "%s", asked);
	wc.asked = l->asked;
	wc.asked_len = l->asked_len;
	/* Where the listener really is: ::1, or 127.0.0.1 v4-mapped on a
	 * host without ::1 (shim_bind_loopback). */
	{
		socklen_t wl = sizeof(wc.listener);

		if (real_getsockname(fd, (struct sockaddr *)&wc.listener,
			&wl) == -1) {
			shim_log("cannot register %s: %s", asked,
			    strerror(errno));
			return -1;
		}
	}
	wc.listener_ino = l->ino;
	/* RELAY_PUBLIC_PORT names one port: the first listener's. */
	wc.want_port = shim_registered_count == 0 ? shim_cfg.want_port : 0;
	wc.timeout_ms = shim_cfg.timeout_ms;
	wc.ext = shim_cfg.ext;
	wc.debug = shim_cfg.debug;
	wc.pool = shim_cfg.pool;
	wc.fastopen = shim_cfg.fastopen;
	wc.backlog = backlog;
	wc.heartbeat = shim_cfg.heartbeat;
	if (getentropy(wc.token, sizeof(wc.token)) == -1) {
		shim_log("no randomness: %s", strerror(errno));
		return -1;
	}
	memcpy(l->token, wc.token, WAKE_TOKEN_LEN);

	if (shim_cfg.helper[0] == '\0') {
		shim_log("cannot register %s with relay %s:%s: no relayshim "
			 "beside %s (set RELAYSHIM_HELPER)",
		    asked, shim_cfg.relay_host, shim_cfg.relay_port,
		    shim_cfg.self[0] != '\0' ? shim_cfg.self : "the library");
		errno = ENOENT;
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		err = errno;
		shim_log("cannot start the helper: %s", strerror(err));
		errno = err;
		return -1;
	}
	/* Clean signal state, its own session, fd 3 = our channel; the
	 * helper closes every other inherited fd itself. */
	sigemptyset(&none);
	sigemptyset(&defs);
	for (size_t i = 0; i < sizeof(sigs_default) / sizeof(sigs_default[0]);
	     i++)
		sigaddset(&defs, sigs_default[i]);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defs);
	posix_spawnattr_setflags(&attr,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
		POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	/* The helper logs to the server's stderr, even one the server made
	 * close-on-exec (node does): dup2 onto itself clears FD_CLOEXEC. */
	if (fcntl(STDERR_FILENO, F_GETFD) != -1)
		posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO,
		    STDERR_FILENO);
	/*
	 * Spawn from a clone that has no exit signal and never execs (exec
	 * would reset its exit signal to SIGCHLD): the server gets no
	 * SIGCHLD for it, and waitpid(-1) without __WALL never returns it,
	 * so a server that reaps every child (from a handler, a signal
	 * thread or a waitpid loop) never sees one it did not create.  The
	 * clone is a copy of a process whose other threads may hold any
	 * lock: it only calls posix_spawn (no allocation, no locks) and
	 * _exit.
	 */
	pid = (pid_t)syscall(SYS_clone, 0UL, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		pid_t helper;

		_exit(posix_spawn(&helper, shim_cfg.helper, &fa, &attr, argv,
		    envp));
	}
	r = pid == -1 ? errno : 0;
	while (pid != -1 && waitpid(pid, &status, __WCLONE) == -1) {
		if (errno != EINTR) {
			r = errno;
			break;
		}
	}
	if (r == 0 && WIFEXITED(status))
		r = WEXITSTATUS(status);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (r != 0) {
		close(sv[0]);
		shim_log("cannot run the helper %s: %s", shim_cfg.helper,
		    strerror(r));
		errno = r;
		return -1;
	}
	if (send(sv[0], &wc, sizeof(wc), MSG_NOSIGNAL) != (ssize_t)sizeof(wc))
		err = errno ? errno : EPIPE;
	if (err != 0) {
		close(sv[0]);
		shim_log("the helper %s did not start", shim_cfg.helper);
		errno = err;
		return -1;
	}
	pfd.fd = sv[0];
	pfd.events = POLLIN;
	do {
		r = poll(&pfd, 1, shim_cfg.timeout_ms + SHIM_HELPER_WAIT_MS);
	} while (r == -1 && errno == EINTR);
	n = r == 1 ? fdpass_recv(sv[0], reply, sizeof(reply) - 1, &l->qfd, 1)
		   : -1;
	close(sv[0]);
	if (n <= 0) {
		shim_log("cannot register %s with relay %s:%s: no answer from "
			 "the helper",
		    asked, shim_cfg.relay_host, shim_cfg.relay_port);
		errno = ETIMEDOUT;
		return -1;
	}
	reply[n] = '\0';
	if (strncmp(reply, "OK ", 3) == 0 && l->qfd == -1) {
		shim_log("cannot register %s: the helper %s did not hand over "
			 "its queue (a helper of another version?)",
		    asked, shim_cfg.helper);
		errno = EPROTO;
		return -1;
	}
	if (strncmp(reply, "OK ", 3) != 0) {
		/* "ERR <errno> <reason>" */
		char *reason = NULL;

		err = (int)strtol(reply + 4, &reason, 10);
		while (reason != NULL && *reason == ' ')
			reason++;
		shim_log("cannot register %s with relay %s:%s: %s", asked,
		    shim_cfg.relay_host, shim_cfg.relay_port,
		    reason && *reason ? reason : "unknown error");
		if (l->qfd != -1)
			close(l->qfd);
		l->qfd = -1;
		errno = err > 0 ? err : ECONNREFUSED;
		return -1;
	}
	if (strcmp(reply + 3, "-") == 0) {
		snprintf(l->public, sizeof(l->public), "%s:?",
		    shim_cfg.relay_host);
		shim_log("%s -> %s (public port in the relay's log: it speaks "
			 "only the original protocol)",
		    asked, shim_cfg.relay_host);
	} else {
		snprintf(l->public, sizeof(l->public), "%s", reply + 3);
		shim_log("%s -> %s", asked, l->public);
		shim_write_addr_file(l->public);
	}
	l->qino = shim_ino(l->qfd);
	shim_registered_count++;
	return 0;
}

/*
 * A connection to the helper named by <lport> and <hino>, sending <req>;
 * -1 if there is none of ours.  Non-blocking: a helper whose backlog is
 * full must not hang the server's accept() or getsockname().
 */
static int
shim_helper_send(unsigned lport, uint64_t hino, const struct wake_req *req)
{
	struct sockaddr_un sun;
	socklen_t len = wake_sock_addr(&sun, lport, hino);
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int s =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (s == -1)
		return -1;
	/* The name is public: only a helper of our user or root is ours
	 * (anyone could bind the name of one that died). */
	if (connect(s, (struct sockaddr *)&sun, len) == 0 &&
	    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 &&
	    (cred.uid == geteuid() || cred.uid == 0) &&
	    send(s, req, sizeof(*req), MSG_NOSIGNAL) == (ssize_t)sizeof(*req))
		return s;
	close(s);
	return -1;
}

/*
 * Listener <fd>, record <l>, shares another's helper: tell the helper,
 * which then wakes this one once the other is closed.  Best effort.
 */
static void
shim_tell_sibling(const struct shim_listener *l, int fd)
{
	struct wake_req req;
	socklen_t len = sizeof(req.addr);
	int s;

	memset(&req, 0, sizeof(req));
	req.kind = WAKE_REQ_SIBLING;
	req.ino = l->ino;
	if (real_getsockname(fd, (struct sockaddr *)&req.addr, &len) == -1)
		return;
	s = shim_helper_send(l->hport, l->hino, &req);
	if (s != -1)
		close(s);
}

SHIM_EXPORT int
listen(int fd, int backlog)
{
	struct shim_listener l;
	uint64_t ino;
	int saved = errno, idx, one = 1;
	struct shim_held old;

	shim_init();
	if (real_listen(fd, backlog) == -1)
		return -1;
	if (!shim_cfg.active)
		return 0;
	ino = shim_ino(fd);
	shim_write_begin(&old);
	idx = shim_find(ino);
	if (idx == -1 || shim_lst[idx].registered) {
		/* Not ours, or listen() again (nginx does, on reload). */
		shim_write_end(&old);
		errno = saved;
		return 0;
	}
	/* Readiness then means the wake header is there: accept() never
	 * waits on it.  Siblings too: the kernel spreads wakes over them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	/* A v4 and a v6 listener on one port share one public port, with
	 * a listener still open: a closed one's helper is on its way out. */
	for (size_t i = 0; i < shim_nlst; i++) {
		if ((int)i != idx && shim_lst[i].registered &&
		    shim_lst[i].asked_port != 0 &&
		    shim_lst[i].asked_port == shim_lst[idx].asked_port &&
		    shim_ino(shim_lst[i].fd) == shim_lst[i].ino) {
			shim_lst[idx].registered = 2;
			memcpy(shim_lst[idx].public, shim_lst[i].public,
			    sizeof(shim_lst[idx].public));
			/* A SO_REUSEPORT sibling gets some of the wakes. */
			shim_lst[idx].hino = shim_lst[i].hino;
			shim_lst[idx].hport = shim_lst[i].hport;
			memcpy(shim_lst[idx].token, shim_lst[i].token,
			    WAKE_TOKEN_LEN);
			shim_lst[idx].qfd = shim_lst[i].qfd;
			shim_lst[idx].qino = shim_lst[i].qino;
			l = shim_lst[idx];
			shim_write_end(&old);
			shim_tell_sibling(&l, fd);
			errno = saved;
			return 0;
		}
	}
	l = shim_lst[idx];
	shim_write_end(&old);

	if (shim_register(&l, fd, backlog) == -1)
		return -1;
	shim_write_begin(&old);
	idx = shim_find(ino);
	if (idx != -1) {
		shim_lst[idx].registered = 1;
		memcpy(shim_lst[idx].public, l.public, sizeof(l.public));
		memcpy(shim_lst[idx].token, l.token, WAKE_TOKEN_LEN);
		shim_lst[idx].qfd = l.qfd;
		shim_lst[idx].qino = l.qino;
	} else if (l.qfd != -1) {
		close(l.qfd);
	}
	shim_write_end(&old);
	errno = saved;
	return 0;
}

/*
 * Listeners that looked like ours (loopback, TCP_DEFER_ACCEPT) but had
 * no helper: an nginx "deferred" listener RELAY_PORTS leaves out, say.
 * Asking again costs a connect() and a read of /proc/net/unix, on every
 * accept() and getsockname(): once a second per listener is enough (a
 * helper can appear later, after an exec).
 */
#define SHIM_NOADOPT_SLOTS 8
static struct {
	uint64_t ino;
	struct timespec at;
} shim_noadopt[SHIM_NOADOPT_SLOTS];
static unsigned shim_noadopt_next;

static int
shim_adopt_failed_lately(uint64_t ino)
{
	struct shim_reading rd;
	struct timespec now;
	int lately;

	clock_gettime(CLOCK_MONOTONIC, &now);
	shim_read_begin(&rd);
	do {
		lately = 0;
		for (unsigned i = 0; i < SHIM_NOADOPT_SLOTS; i++)
			if (shim_noadopt[i].ino == ino &&
			    (now.tv_sec - shim_noadopt[i].at.tv_sec) *
					1000000000LL +
				    (now.tv_nsec - shim_noadopt[i].at.tv_nsec) <
				1000000000LL)
				lately = 1;
	} while (shim_read_again(&rd));
	return lately;
}

static void
shim_adopt_failed(uint64_t ino)
{
	struct shim_held old;
	unsigned i;

	shim_write_begin(&old);
	for (i = 0; i < SHIM_NOADOPT_SLOTS; i++)
		if (shim_noadopt[i].ino == ino)
			break;
	if (i == SHIM_NOADOPT_SLOTS)
		i = shim_noadopt_next++ % SHIM_NOADOPT_SLOTS;
	shim_noadopt[i].ino = ino;
	clock_gettime(CLOCK_MONOTONIC, &shim_noadopt[i].at);
	shim_write_end(&old);
}

/*
 * A listener the shim set up before an exec (nginx's binary upgrade,
 * sshd's re-exec) is bound to loopback and has TCP_DEFER_ACCEPT on, our
 * mark: any other loopback listener (RELAY_PORTS left it out) must not
 * wait for a wake header that never comes.  Fills the loopback port and
 * the family.
 */
static int
shim_loopback_listener(int fd, unsigned *lport, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int defer = 0;

	len = sizeof(defer);
	if (getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) == -1 ||
	    defer == 0)
		return 0;
	len = sizeof(ss);
	if (real_getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET &&
	    ((struct sockaddr_in *)&ss)->sin_addr.s_addr ==
		htonl(INADDR_LOOPBACK)) {
		*lport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		*family = AF_INET;
		return 1;
	}
	if (ss.ss_family == AF_INET6 &&
	    (IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr) ||
		(IN6_IS_ADDR_V4MAPPED(
		     &((struct sockaddr_in6 *)&ss)->sin6_addr) &&
		    ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[12] ==
			127))) {
		*lport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		*family = AF_INET6;
		return 1;
	}
	return 0;
}

/*
 * Ask the helper of the listener on loopback port <lport> (its socket
 * named by <hino>) what the server asked for; to the server's user the
 * answer also carries the token and the queue (*qfd, or -1).
 */
static int
shim_attach(unsigned lport, uint64_t hino, struct wake_resp *resp, int *qfd)
{
	struct wake_req req;
	struct pollfd pfd;
	int s, r = -1;

	*qfd = -1;
	memset(resp, 0, sizeof(*resp));
	memset(&req, 0, sizeof(req));
	req.kind = WAKE_REQ_ATTACH;
	s = shim_helper_send(lport, hino, &req);
	if (s == -1)
		return -1;
	pfd.fd = s;
	pfd.events = POLLIN;
	do {
		r = poll(&pfd, 1, SHIM_HELPER_WAIT_MS);
	} while (r == -1 && errno == EINTR);
	r = r == 1 &&
		fdpass_recv(s, resp, sizeof(*resp), qfd, 1) ==
		    (ssize_t)sizeof(*resp)
	    ? 0
	    : -1;
	close(s);
	if (r == -1 && *qfd != -1) {
		close(*qfd);
		*qfd = -1;
	}
	return r;
}

/*
 * The helper socket of another listener on loopback port <lport>, not
 * named by <skip>: SO_REUSEPORT siblings share the first one's helper,
 * whose name carries that sibling's inode, which a sibling inherited
 * across an exec cannot know.  Returns its inode part, or 0.
 */
static uint64_t
shim_helper_by_port(unsigned lport, uint64_t skip)
{
	char buf[2048], line[512], want[64];
	uint64_t found = 0;
	size_t wlen, llen = 0;
	ssize_t n;
	int f;

	wlen = (size_t)snprintf(want, sizeof(want), "@relayshim.%u.", lport);
	/* read(), not stdio: no allocation (see shim_find_fd). */
	f = open("/proc/net/unix", O_RDONLY | O_CLOEXEC);
	if (f == -1)
		return 0;
	while (found == 0 &&
	    ((n = read(f, buf, sizeof(buf))) > 0 ||
		(n == -1 && errno == EINTR)))
		for (ssize_t i = 0; found == 0 && i < n; i++) {
			char *name, *end;
			unsigned long long ino;

			if (buf[i] != '\n') {
				if (llen < sizeof(line) - 1)
					line[llen++] = buf[i];
				continue;
			}
			line[llen] = '\0';
			llen = 0;
			name = strstr(line, want);
			if (name == NULL)
				continue;
			ino = strtoull(name + wlen, &end, 16);
			if (end != name + wlen && *end == '\0' && ino != 0 &&
			    ino != skip)
				found = ino;
		}
	close(f);
	return found;
}

/*
 * An inherited listener (the registry was lost with an exec): its helper
 * still knows what address the server asked for.  Adopt it.  Returns its
 * registry index, or -1.
 */
static int
shim_adopt(int fd, uint64_t ino)
{
	struct shim_listener l;
	struct wake_resp resp;
	unsigned lport;
	uint64_t hino = ino;
	int family, qfd, idx = -1;
	struct shim_held old;

	if (!shim_loopback_listener(fd, &lport, &family))
		return -1;
	if (shim_attach(lport, ino, &resp, &qfd) == -1 &&
	    ((hino = shim_helper_by_port(lport, ino)) == 0 ||
		shim_attach(lport, hino, &resp, &qfd) == -1))
		return -1;
	if (resp.status != 0 || resp.asked_len == 0 ||
	    resp.asked_len > sizeof(resp.asked)) {
		if (qfd != -1)
			close(qfd);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	l.fd = fd;
	l.ino = ino;
	l.hino = hino;
	l.asked = resp.asked;
	l.asked_len = resp.asked_len;
	l.asked_port = shim_port_of((struct sockaddr *)&resp.asked);
	l.local_port = lport;
	l.hport = lport;
	l.registered = 3;
	memcpy(l.token, resp.token, WAKE_TOKEN_LEN);
	l.qfd = qfd;
	l.qino = qfd != -1 ? shim_ino(qfd) : 0;
	shim_write_begin(&old);
	idx = shim_find(ino);
	if (idx != -1 && shim_lst[idx].registered > 0) {
		/* Another thread adopted it meanwhile: keep that queue. */
		shim_write_end(&old);
		if (qfd != -1)
			close(qfd);
		return idx;
	}
	if (idx == -1 && shim_nlst < SHIM_MAX_LISTENERS)
		idx = (int)shim_nlst++;
	if (idx != -1)
		shim_lst[idx] = l;
	shim_write_end(&old);
	if (idx == -1 && qfd != -1)
		close(qfd);
	if (shim_cfg.debug)
		shim_log("adopted inherited listener fd %d (loopback port %u)",
		    fd, lport);
	return idx;
}

/*
 * Is <fd> a listener whose connections may be wakes?  Ours by inode, or
 * one inherited across an exec (adopted, or at least marked as ours:
 * then w->idx is -1 and its wakes cannot be taken).
 */
/* Copy the record of listener <ino> to *l: its index, or -1 if there is
 * none.  The one read of the registry by inode. */
static int
shim_listener_get(uint64_t ino, struct shim_listener *l)
{
	struct shim_reading rd;
	int idx;

	shim_read_begin(&rd);
	do {
		idx = shim_find(ino);
		if (idx != -1)
			*l = shim_lst[idx];
	} while (shim_read_again(&rd));
	return idx;
}

static int
shim_wake_listener(int fd, uint64_t ino, struct shim_wake_info *w)
{
	struct shim_listener l;
	int idx, ours;

	if (ino == 0)
		return 0;
	idx = shim_listener_get(ino, &l);
	ours = idx != -1 && l.registered > 0;
	if (ours) {
		w->idx = idx;
		w->hino = l.hino;
		w->hport = l.hport;
		w->lport = l.local_port;
		w->family = l.asked.ss_family;
		w->asked_port = l.asked_port;
		memcpy(w->token, l.token, WAKE_TOKEN_LEN);
		w->qfd = l.qfd;
		w->qino = l.qino;
	}
	if (ours)
		return 1;
	if (idx != -1)
		return 0;
	if (!shim_adopt_failed_lately(ino)) {
		if (shim_adopt(fd, ino) != -1)
			return shim_wake_listener(fd, ino, w);
		shim_adopt_failed(ino);
	}
	memset(w, 0, sizeof(*w));
	w->idx = -1;
	w->qfd = -1;
	return shim_loopback_listener(fd, &w->lport, &w->family);
}

/*
 * The queue of listener <w>, checked to be still ours: a server may
 * close any fd it did not open (daemons do) and get its number again.
 * Fetched anew from the helper when lost.  Returns the fd or -1.
 */
static int
shim_queue(uint64_t lino, struct shim_wake_info *w)
{
	struct wake_resp resp;
	struct shim_held old;
	int qfd;

	if (w->qfd != -1 && shim_ino(w->qfd) == w->qino)
		return w->qfd;
	shim_write_begin(&old);
	if (shim_lst[w->idx].ino == lino && shim_lst[w->idx].qfd == w->qfd)
		shim_lst[w->idx].qfd = -1; /* not ours now: never close it */
	shim_write_end(&old);
	if (shim_attach(w->hport, w->hino, &resp, &qfd) == -1 || qfd == -1)
		return -1;
	w->qfd = -1;
	shim_write_begin(&old);
	if (shim_lst[w->idx].ino == lino) {
		if (shim_lst[w->idx].qfd == -1) {
			shim_lst[w->idx].qfd = qfd;
			shim_lst[w->idx].qino = shim_ino(qfd);
			qfd = -1;
		}
		/* Ours, or the copy of a thread that was quicker. */
		w->qfd = shim_lst[w->idx].qfd;
		w->qino = shim_lst[w->idx].qino;
	}
	shim_write_end(&old);
	if (qfd != -1)
		close(qfd);
	return w->qfd;
}

static void
shim_remember_peer(int fd, uint64_t ino, const struct sockaddr_storage *peer,
    socklen_t plen, unsigned asked_port, int family)
{
	struct shim_peer_slot *s = shim_peer_slot(fd, 1);
	struct shim_peer *p;
	unsigned seq;

	if (s == NULL)
		return;
	seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if (!shim_peer_claim(s, seq))
		return;
	p = &s->p;
	p->fd = fd;
	p->ino = ino;
	p->peer_len = plen <= sizeof(p->peer) ? plen : 0;
	if (p->peer_len != 0)
		memcpy(&p->peer, peer, plen);
	p->asked_port = asked_port;
	p->family = family;
	shim_peer_release(s, seq);
}

/* The faked peer (<want_local> 0) or local address of an accepted
 * socket, if the table has one for <fd>.  Returns its length or 0. */
static socklen_t
shim_faked(int fd, int want_local, struct sockaddr_storage *out)
{
	struct shim_peer_slot *s = shim_peer_slot(fd, 0);
	struct shim_peer p;
	socklen_t len = 0;
	unsigned seq, port = 0;

	if (s == NULL || !shim_peer_read(s, &p, &seq) || p.fd != fd ||
	    (p.peer_len == 0 && p.asked_port == 0))
		return 0;
	if (p.ino != shim_ino(fd)) {
		/* The fd was closed and reused: forget it, unless it was
		 * written again meanwhile. */
		if (shim_peer_claim(s, seq)) {
			s->p.peer_len = 0;
			s->p.asked_port = 0;
			shim_peer_release(s, seq);
		}
		return 0;
	}
	if (want_local) {
		port = p.asked_port;
	} else if (p.peer_len != 0) {
		memcpy(out, &p.peer, p.peer_len);
		len = p.peer_len;
	}
	/* Locally the connection is to the port the server listens on, as
	 * nginx's $server_port and redis' laddr expect, not the ephemeral
	 * port of the relay connection. */
	if (port != 0) {
		len = sizeof(*out);
		if (real_getsockname(fd, (struct sockaddr *)out, &len) == -1)
			return 0;
		if (out->ss_family == AF_INET6)
			((struct sockaddr_in6 *)out)->sin6_port =
			    htons((uint16_t)port);
		else
			((struct sockaddr_in *)out)->sin_port =
			    htons((uint16_t)port);
		len = shim_to_family(out, p.family);
	}
	return len;
}

/*
 * A connection on listener <lfd> that may be a wake whose header is not
 * all there yet.  Our listeners have TCP_DEFER_ACCEPT, so a wake comes
 * whole and a short one is a local client, served at once (waiting would
 * stall an event-loop server for each).  A server may clear the option,
 * though (nginx does on a binary upgrade, having found it on inherited
 * sockets): then wait a little for the header, as accept() once always
 * did, and set the option again so later wakes come whole.  Returns
 * what the last peek returned.
 */
static ssize_t
shim_wake_wait(int lfd, int afd, struct wake_hdr *hdr)
{
	struct pollfd pfd = {afd, POLLIN, 0};
	int defer = 0, one = 1;
	socklen_t len = sizeof(defer);
	ssize_t n = -1;

	if (getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) ==
		-1 ||
	    defer != 0)
		return recv(afd, hdr, sizeof(*hdr), MSG_PEEK | MSG_DONTWAIT);
	(void)setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one));
	for (int waited = 0; waited <= SHIM_WAKE_WAIT_MS; waited += 50) {
		n = recv(afd, hdr, sizeof(*hdr), MSG_PEEK | MSG_DONTWAIT);
		if (n == (ssize_t)sizeof(*hdr) || n == 0 ||
		    (n == -1 && errno != EAGAIN && errno != EINTR) ||
		    (n > 0 &&
			memcmp(hdr, WAKE_MAGIC,
			    (size_t)n < 4 ? (size_t)n : 4) != 0))
			break;
		(void)poll(&pfd, 1, 50);
	}
	return n;
}

/*
 * <afd> was just accepted on listener <lino>, which takes wakes.
 * Returns 1 if it is not a wake (a plain local connection, left as it
 * is).  Otherwise closes the wake and returns 0 with the relayed
 * connection in *outfd (peer filled in), or -1 if there was none to take
 * (the caller accepts again).
 *
 * The wake is closed before the relayed connection is received: a
 * server at its fd limit got the wake with its last free descriptor, and
 * the relayed connection takes that one's place.
 */
static int
shim_take_wake(int lfd, int afd, uint64_t lino, struct shim_wake_info *w,
    int flags, struct sockaddr_storage *peer, socklen_t *peer_len, int *outfd)
{
	struct wake_hdr hdr;
	struct wake_msg m = {0};
	struct wake_ack ack;
	uint8_t diff = 0;
	ssize_t n;
	int q, rfd, faked;

	do
		n = recv(afd, &hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(hdr) &&
	    (n == -1 ? errno == EAGAIN
		     : n > 0 &&
			memcmp(&hdr, WAKE_MAGIC,
			    (size_t)n < 4 ? (size_t)n : 4) == 0))
		n = shim_wake_wait(lfd, afd, &hdr);
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr.magic, WAKE_MAGIC, 4) != 0)
		return 1;
	if (w->idx != -1)
		for (size_t i = 0; i < WAKE_TOKEN_LEN; i++)
			diff |= (uint8_t)(hdr.token[i] ^ w->token[i]);
	if (w->idx != -1 && diff != 0)
		return 1; /* not from the helper: someone local */
	/* The header stays unread: closing the wake resets it, and the
	 * helper, which closed first, keeps no TIME_WAIT either. */
	close(afd);
	if (w->idx == -1)
		return -1; /* a wake for a listener whose helper is gone */
	q = shim_queue(lino, w);
	if (q == -1 ||
	    fdpass_recv(q, &m, sizeof(m), &rfd, flags & SOCK_CLOEXEC) !=
		(ssize_t)sizeof(m)) {
		if (q != -1 && rfd != -1)
			close(rfd); /* not a message of ours */
		/* Another process took this wake's client: a repeated wake
		 * after a lost one. */
		if (shim_cfg.debug)
			shim_log("wake on port %u: no client queued", w->lport);
		return -1;
	}
	ack.id = m.id;
	(void)send(q, &ack, sizeof(ack), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (rfd == -1) {
		/* The kernel drops a passed fd that finds no free slot. */
		shim_log("a client on port %u was lost: no free file "
			 "descriptor to receive it",
		    w->lport);
		return -1;
	}
	/* The helper's sockets are non-blocking; the flag belongs to the
	 * connection, which is the server's alone now. */
	if (!(flags & SOCK_NONBLOCK))
		(void)fcntl(rfd, F_SETFL, 0);
	/* An IPv6 client cannot be told to an IPv4 listener: the server
	 * gets the relay's address, as without the extension, never a
	 * family its buffer was not sized for. */
	if (m.has_peer && w->family == AF_INET &&
	    m.peer.ss_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&m.peer)->sin6_addr))
		m.has_peer = 0;
	/* Faked for getpeername() too: the client's address, or the
	 * relay's where it is of the other family than the listener's. */
	faked = m.has_peer;
	if (m.has_peer) {
		*peer = m.peer;
	} else {
		*peer_len = sizeof(*peer);
		if (real_getpeername(rfd, (struct sockaddr *)peer, peer_len) ==
		    -1) {
			close(rfd);
			return -1;
		}
		faked = peer->ss_family != w->family;
	}
	*peer_len = shim_to_family(peer, w->family);
	shim_remember_peer(rfd, m.ino, peer, faked ? *peer_len : 0,
	    w->asked_port, w->family);
	*outfd = rfd;
	return 0;
}

static int
shim_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
    int four)
{
	struct shim_wake_info w;
	int entry_errno = errno;
	uint64_t lino;

	shim_init();
	/* The probes below may fail (TCP_DEFER_ACCEPT on an AF_UNIX
	 * listener): the caller must see the errno of accept alone. */
	lino = shim_ino(fd);
	if (!shim_cfg.active || !shim_wake_listener(fd, lino, &w)) {
		errno = entry_errno;
		return four ? real_accept4(fd, addr, addrlen, flags)
			    : real_accept(fd, addr, addrlen);
	}
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int afd, rfd = -1, saved, r;

		errno = entry_errno;
		afd = four
		    ? real_accept4(fd, (struct sockaddr *)&ss, &sl, flags)
		    : real_accept(fd, (struct sockaddr *)&ss, &sl);
		if (afd == -1)
			return -1;
		saved = errno;
		r = shim_take_wake(fd, afd, lino, &w, flags, &ss, &sl, &rfd);
		if (r == -1) {
			/* A lost client; a non-blocking listener reports
			 * EAGAIN from the real accept when nothing is left. */
			errno = saved;
			continue;
		}
		shim_copy_addr(addr, addrlen, &ss, sl);
		errno = saved;
		return r == 0 ? rfd : afd;
	}
}

SHIM_EXPORT int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	return shim_accept(fd, addr, addrlen, 0, 0);
}

SHIM_EXPORT int
accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	return shim_accept(fd, addr, addrlen, flags, 1);
}

SHIM_EXPORT int
getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct shim_listener l;
	struct sockaddr_storage a;
	socklen_t alen;
	int saved = errno, found;
	uint64_t ino;

	shim_init();
	if (!shim_cfg.active || addr == NULL || addrlen == NULL)
		return real_getsockname(fd, addr, addrlen);
	alen = shim_faked(fd, 1, &a);
	if (alen != 0) {
		shim_copy_addr(addr, addrlen, &a, alen);
		errno = saved;
		return 0;
	}
	ino = shim_ino(fd);
	found = ino != 0 && shim_listener_get(ino, &l) != -1;
	if (!found && ino != 0 && shim_adopt(fd, ino) != -1)
		found = shim_listener_get(ino, &l) != -1;
	if (!found) {
		errno = saved;
		return real_getsockname(fd, addr, addrlen);
	}
	a = l.asked;
	if (l.asked_port == 0) {
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port =
			    htons((uint16_t)l.local_port);
		else
			((struct sockaddr_in6 *)&a)->sin6_port =
			    htons((uint16_t)l.local_port);
	}
	shim_copy_addr(addr, addrlen, &a, l.asked_len);
	errno = saved;
	return 0;
}

SHIM_EXPORT int
getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage a, real;
	socklen_t alen = 0, rl = sizeof(real);
	int saved = errno;

	shim_init();
	if (shim_cfg.active && addr != NULL && addrlen != NULL)
		alen = shim_faked(fd, 0, &a);
	if (alen == 0) {
		errno = saved;
		return real_getpeername(fd, addr, addrlen);
	}
	/* The relayed connection must still be connected. */
	if (real_getpeername(fd, (struct sockaddr *)&real, &rl) == -1)
		return -1;
	shim_copy_addr(addr, addrlen, &a, alen);
	errno = saved;
	return 0;
}

/* Is <fd> (socket <ino>) a registered listener that survives exec? */
static int
shim_is_kept_listener(int fd, uint64_t ino, void *arg)
{
	struct shim_listener l;
	int fl = fcntl(fd, F_GETFD);

	(void)arg;
	if (fl == -1 || (fl & FD_CLOEXEC))
		return 0;
	return shim_listener_get(ino, &l) != -1 && l.registered > 0;
}

/* Does an fd that survives exec hold a listener the shim registered? */
static int
shim_listener_survives_exec(void)
{
	return shim_find_fd(shim_is_kept_listener, NULL) != -1;
}

static int
shim_env_has(char *const envp[], const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return 1;
	return 0;
}

/*
 * Exec continuity.  A server that execs itself with a listener it keeps
 * (nginx's binary upgrade, which also scrubs the environment to what its
 * "env" directives list) would lose the shim, then bind the real address
 * it asked for.  Only then, and only for a new image that keeps one of
 * our listeners, are LD_PRELOAD and our settings put back.
 */
SHIM_EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
	char **env, *mine = NULL;
	size_t n = 0, k;

	shim_init();
	if (!shim_cfg.active || shim_cfg.self[0] == '\0' ||
	    shim_env_has(envp, "LD_PRELOAD") || !shim_listener_survives_exec())
		return real_execve(path, argv, envp);
	while (envp != NULL && envp[n] != NULL)
		n++;
	env = calloc(n + SHIM_NENV + 2, sizeof(*env));
	if (env == NULL)
		return real_execve(path, argv, envp);
	for (k = 0; k < n; k++)
		env[k] = envp[k];
	/* The saved LD_PRELOAD (it may list a sanitizer runtime first) is
	 * among the names below; without it, this library alone. */
	if (shim_env_saved[SHIM_NENV - 1] == NULL &&
	    asprintf(&env[k], "LD_PRELOAD=%s", shim_cfg.self) != -1)
		mine = env[k++];
	for (size_t i = 0; i < SHIM_NENV; i++)
		if (shim_env_saved[i] != NULL &&
		    !shim_env_has(envp, shim_env_names[i]))
			env[k++] = shim_env_saved[i];
	env[k] = NULL;
	if (shim_cfg.debug)
		shim_log("exec %s keeps a relayed listener: preload kept",
		    path);
	{
		int r = real_execve(path, argv, env), err = errno;

		/* Still here: the exec failed; leave no trace. */
		free(mine);
		free(env);
		errno = err;
		return r;
	}
}
