/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Sealing and hashing a large user-owned program against reading and hashing it alone,
 * and the hash cache for a program trusted in place.
 *
 *   bench-seal [-f FILE] [-s MIB] [-r ROUNDS] [-o OWNER_UID] [-p PROGRAM] [-k]
 *
 * FILE (default /var/tmp/elevate-bench/program.bin, MIB default 1024) is created once
 * with pseudo-random content, owned by OWNER_UID (default 1001, elevate-test-alice's),
 * mode 0755; -k keeps it afterwards. Each round, interleaved:
 *   read+hash  pread 1 MiB chunks (the agent's chunk size) and SHA-256 them (libcrypto EVP
 *              through common/hash.c, as the agent does): the floor for any sealed copy;
 *   seal+hash  binary_prepare() with force_copy: reopen, inspect, copy into a memfd while
 *              hashing, seal, verify the seals: what the agent does for such a program.
 * The page cache holds the file throughout (it is read once first), so both measure
 * memory and CPU, not the disk. A pause before each seal lets the VM return the memory
 * the previous copy freed, as it would be between two real requests.
 *
 * Cache: binary_prepare() of PROGRAM (default /usr/bin/true, trusted in place) with a
 * fresh cache (miss: inspect + lease + hash) and then again (hit: inspect + lease).
 *
 * Records (bench-util.h):
 *   seal mib=M rounds=R readhash_gbs= seal_gbs= ratio= ... readhash_cpu_s_per_gib= seal_cpu_s_per_gib=
 *     (medians; ratio of medians; CPU = user+system of all our threads, per GiB)
 *   cache program=P rounds=R size= miss_us= hit_us= hits= misses=   (medians)
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-binary.h"
#include "bench-util.h"
#include "hash.h"
#include "macro.h"

#define CHUNK ((size_t) 1 << 20)

/* CPU seconds of this process, all threads (the copy has a writer thread) */
static double cpu_s(void) {
        struct rusage ru;

        (void) getrusage(RUSAGE_SELF, &ru);
        return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
#define MAX_ROUNDS 64

static bool has_elf_magic(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char head[4];

        return fd >= 0 && pread(fd, head, 4, 0) == 4 && memcmp(head, "\177ELF", 4) == 0;
}

static int create_file(const char *path, uint64_t size, uid_t owner, bool *ret_made_dir) {
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        uint64_t seed = 1;
        char *slash;

        if (!dir || !buf)
                return -ENOMEM;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size == size && st.st_uid == owner &&
            has_elf_magic(path))
                return 0;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) >= 0)
                        *ret_made_dir = true;
                else if (errno != EEXIST)
                        return -errno;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0755);
        if (fd < 0)
                return -errno;
        for (uint64_t off = 0; off < size; off += CHUNK) {
                size_t n = (size_t) MIN((uint64_t) CHUNK, size - off);

                bench_fill_random(buf, n, &seed);
                /* an ELF header, or the agent refuses to run it at all */
                if (off == 0 && n >= 4)
                        memcpy(buf, "\177ELF", 4);
                if (write(fd, buf, n) != (ssize_t) n)
                        return errno ? -errno : -EIO;
        }
        /* user-owned: never trusted in place, so the agent must copy it */
        if (fchown(fd, owner, owner) < 0 || fchmod(fd, 0755) < 0)
                return -errno;
        return 0;
}

/* Removes the file and, if we made it, its directory. */
static void remove_file(const char *path, bool made_dir) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;

        (void) unlink(path);
        if (made_dir && slash && slash != dir) {
                *slash = '\0';
                (void) rmdir(dir);
        }
}

/* The floor: read and hash, nothing else. Returns GB/s. */
static double read_hash(const char *path, uint64_t size) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        _cleanup_free_ uint8_t *buf = malloc(CHUNK);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t out[SHA256_LEN];
        uint64_t t0 = bench_now_ns(), off = 0;

        if (!buf || fd < 0 || sha256_new(&h) < 0)
                exit(1);
        for (;;) {
                ssize_t k = pread(fd, buf, CHUNK, (off_t) off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                (void) sha256_update(h, buf, (size_t) k);
                off += (uint64_t) k;
        }
        (void) sha256_final(h, out);
        if (off != size) {
                fprintf(stderr, "bench-seal: read %llu bytes, expected %llu\n", (unsigned long long) off,
                        (unsigned long long) size);
                exit(1);
        }
        return (double) size / ((double) (bench_now_ns() - t0));
}

/* What the agent does with a user's program; returns GB/s (or µs if ret_us). */
static double prepare(const char *path, bool force_copy, BinaryCache *cache, Binary **ret) {
        BinaryOptions o = {
                .max_copy_size = UINT64_C(8) << 30,
                .tmpfile_dir_fd = -1,
                .want_exec = true,
                .force_copy = force_copy,
        };
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *err = NULL;
        uint64_t t0;
        int r;

        if (fd < 0) {
                fprintf(stderr, "bench-seal: cannot open %s: %m\n", path);
                exit(1);
        }
        t0 = bench_now_ns();
        r = binary_prepare(fd, &o, cache, ret, &err);
        if (r < 0) {
                fprintf(stderr, "bench-seal: binary_prepare(%s): %s\n", path, err ? err : strerror(-r));
                exit(1);
        }
        return (double) (bench_now_ns() - t0);
}

static void bench_seal(const char *path, uint64_t size, int rounds) {
        double rh[MAX_ROUNDS], sh[MAX_ROUNDS], rc[MAX_ROUNDS], sc[MAX_ROUNDS], gib = (double) size / (1 << 30);
        BenchStats a, b, ca, cb;

        (void) read_hash(path, size); /* into the page cache */
        for (int i = 0; i < rounds; i++) {
                Binary *bin = NULL;
                double ns, c0;

                sleep(2);
                c0 = cpu_s();
                ns = prepare(path, true, NULL, &bin);
                sc[i] = (cpu_s() - c0) / gib;
                if (bin->in_place || bin->copied != size) {
                        fprintf(stderr, "bench-seal: expected a sealed copy of %llu bytes\n",
                                (unsigned long long) size);
                        exit(1);
                }
                binary_free(bin);
                sh[i] = (double) size / ns;
                c0 = cpu_s();
                rh[i] = read_hash(path, size);
                rc[i] = (cpu_s() - c0) / gib;
        }
        bench_stats(rh, (size_t) rounds, &a);
        bench_stats(sh, (size_t) rounds, &b);
        bench_stats(rc, (size_t) rounds, &ca);
        bench_stats(sc, (size_t) rounds, &cb);
        printf("seal mib=%llu rounds=%d readhash_gbs=%.3f seal_gbs=%.3f ratio=%.3f seal_min_gbs=%.3f "
               "seal_max_gbs=%.3f readhash_cpu_s_per_gib=%.3f seal_cpu_s_per_gib=%.3f\n",
               (unsigned long long) (size >> 20), rounds, a.median, b.median, b.median / a.median, b.min, b.max,
               ca.median, cb.median);
}

static void bench_cache(const char *program, int rounds) {
        double miss[MAX_ROUNDS * 4], hit[MAX_ROUNDS * 4];
        uint64_t hits = 0, misses = 0, size = 0;
        int n = MIN(rounds * 4, MAX_ROUNDS * 4);
        BenchStats a, b;

        for (int i = 0; i < n; i++) {
                _cleanup_(binary_cache_freep) BinaryCache *cache = NULL;
                Binary *bin = NULL;
                uint64_t h, m;

                if (binary_cache_new(64, &cache) < 0)
                        exit(1);
                miss[i] = prepare(program, false, cache, &bin) / 1e3;
                if (!bin->in_place) {
                        fprintf(stderr, "bench-seal: %s is not trusted in place: %s\n", program,
                                bin->not_in_place ? bin->not_in_place : "?");
                        exit(1);
                }
                size = (uint64_t) bin->st.st_size;
                binary_free(bin);
                hit[i] = prepare(program, false, cache, &bin) / 1e3;
                binary_free(bin);
                binary_cache_stats(cache, &h, &m);
                hits += h;
                misses += m;
        }
        bench_stats(miss, (size_t) n, &a);
        bench_stats(hit, (size_t) n, &b);
        printf("cache program=%s rounds=%d size=%llu miss_us=%.1f hit_us=%.1f hits=%llu misses=%llu\n", program, n,
               (unsigned long long) size, a.median, b.median, (unsigned long long) hits, (unsigned long long) misses);
}

int main(int argc, char *argv[]) {
        const char *path = "/var/tmp/elevate-bench/program.bin", *program = "/usr/bin/true";
        uint64_t size = UINT64_C(1024) << 20;
        uid_t owner = 1001;
        int rounds = 5, c, r;
        bool keep = false, made_dir = false;

        while ((c = getopt(argc, argv, "f:s:r:o:p:kh")) >= 0)
                switch (c) {
                case 'f':
                        path = optarg;
                        break;
                case 's':
                        size = (uint64_t) bench_parse_long(optarg, "-s", 1, 16384) << 20;
                        break;
                case 'r':
                        rounds = (int) bench_parse_long(optarg, "-r", 1, MAX_ROUNDS);
                        break;
                case 'o':
                        owner = (uid_t) bench_parse_long(optarg, "-o", 1, 1 << 30);
                        break;
                case 'p':
                        program = optarg;
                        break;
                case 'k':
                        keep = true;
                        break;
                default:
                        fprintf(stderr, "usage: bench-seal [-f FILE] [-s MIB] [-r ROUNDS] [-o OWNER_UID] "
                                        "[-p PROGRAM] [-k]\n");
                        return 2;
                }
        if (geteuid() != 0) {
                fprintf(stderr, "bench-seal: run as root (the agent's view: leases, other users' files)\n");
                return 77;
        }
        r = create_file(path, size, owner, &made_dir);
        if (r < 0) {
                fprintf(stderr, "bench-seal: cannot create %s: %s\n", path, strerror(-r));
                return 1;
        }
        bench_cache(program, rounds);
        bench_seal(path, size, rounds);
        if (!keep)
                remove_file(path, made_dir);
        return 0;
}
