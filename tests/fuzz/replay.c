/*
 * replay.c - run fuzz inputs through a target without libFuzzer.
 *
 *	replay_NAME [-q] FILE|DIR ...
 *
 * Every regular file (directories are read one level deep, in name order,
 * dot files skipped) is loaded into a buffer of exactly its size, so
 * ASan sees a read one byte past the end, and fed to the target twice: a
 * target that keeps state between calls shows it on the second run.
 * Exits 0 after all inputs; a failed invariant aborts with the file name
 * already printed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int replay_quiet;

static int
replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t off = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	/* malloc(0) may return NULL; keep one byte, but pass size 0. */
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "replay: %s: short read\n", path);
			free(buf);
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	close(fd);
	if (!replay_quiet)
		printf("replay: %s (%zu bytes)\n", path, off);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, off);
	LLVMFuzzerTestOneInput(buf, off);
	free(buf);
	return 0;
}

static int
replay_skip(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* Returns the number of inputs run, or -1. */
static int
replay_path(const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, count = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path) == -1 ? -1 : 1;
	n = scandir(path, &names, replay_skip, alphasort);
	if (n == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];

		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		if (count != -1 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
			count = replay_file(file) == -1 ? -1 : count + 1;
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	int total = 0;

	if (argc > 1 && strcmp(argv[1], "-q") == 0) {
		replay_quiet = 1;
		argc--;
		argv++;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s [-q] FILE|DIR ...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		int n = replay_path(argv[i]);

		if (n == -1)
			return 1;
		total += n;
	}
	printf("replay: %d inputs, each run twice\n", total);
	return 0;
}
