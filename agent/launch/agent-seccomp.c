/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent-seccomp.h"
#include "util.h"

typedef struct Profile {
        const char *name;
        const char *const *refused; /* system calls answered with EPERM; NULL-terminated */
} Profile;

/* An installer may write anywhere as root, but has no business changing the running
 * kernel, the clock, or other processes' memory. */
static const char *const installer_refused[] = {
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "reboot",
        "swapon",
        "swapoff",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
        "iopl",
        "ioperm",
        "acct",
        "open_by_handle_at",
        NULL,
};

static const Profile profiles[] = {
        { "none", NULL },
        { "installer", installer_refused },
};

static struct sock_fprog *built[ELEMENTSOF(profiles)];
static struct sock_fprog *noexec_built;

static const Profile *profile_find(const char *name, size_t *ret_index) {
        for (size_t i = 0; i < ELEMENTSOF(profiles); i++)
                if (streq(profiles[i].name, name)) {
                        if (ret_index)
                                *ret_index = i;
                        return &profiles[i];
                }
        return NULL;
}

bool seccomp_profile_known(const char *name) {
        return name && profile_find(name, NULL);
}

/* libseccomp 2.5 exports BPF only to an fd: export into a memfd and read it back. */
static int export_bpf(scmp_filter_ctx ctx, struct sock_fprog **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct sock_fprog *prog;
        size_t len;
        int r;

        fd = memfd_create("elevate-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        r = read_fd_full(fd, 1 << 20, &buf, &len);
        if (r < 0)
                return r;
        if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
                return -EBADMSG;
        prog = malloc(sizeof(*prog));
        if (!prog)
                return -ENOMEM;
        prog->len = (unsigned short) (len / sizeof(struct sock_filter));
        prog->filter = (struct sock_filter *) TAKE_PTR(buf);
        *ret = prog;
        return 0;
}

static int build(const Profile *p, struct sock_fprog **ret) {
        scmp_filter_ctx ctx;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        /* the same rules for every ABI this kernel runs (x86-64, x32, i386 on amd64):
         * otherwise int 0x80 would walk around the filter */
        (void) seccomp_arch_add(ctx, SCMP_ARCH_X86);
        (void) seccomp_arch_add(ctx, SCMP_ARCH_X32);
        /* the child installs the filter while still root: no NO_NEW_PRIVS needed, and
         * setting it would break setuid helpers an installer may call */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        for (size_t i = 0; r >= 0 && p->refused[i]; i++) {
                int nr = seccomp_syscall_resolve_name(p->refused[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture (iopl on arm64…) */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        }
        if (r >= 0)
                r = export_bpf(ctx, ret);
        seccomp_release(ctx);
        return r;
}

int seccomp_profile_get(const char *name, const struct sock_fprog **ret) {
        const Profile *p;
        size_t i;
        int r;

        p = profile_find(name ?: "none", &i);
        if (!p)
                return -ENOENT;
        if (!p->refused) {
                *ret = NULL;
                return 0;
        }
        if (!built[i]) {
                r = build(p, &built[i]);
                if (r < 0)
                        return r;
        }
        *ret = built[i];
        return 0;
}

int seccomp_noexec_get(const struct sock_fprog **ret) {
        scmp_filter_ctx ctx;
        int r;

        if (noexec_built) {
                *ret = noexec_built;
                return 0;
        }
        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        (void) seccomp_arch_add(ctx, SCMP_ARCH_X86);
        (void) seccomp_arch_add(ctx, SCMP_ARCH_X32);
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0);
        if (r >= 0)
                r = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execveat), 0);
        if (r >= 0)
                r = export_bpf(ctx, &noexec_built);
        seccomp_release(ctx);
        if (r < 0)
                return r;
        *ret = noexec_built;
        return 0;
}

void seccomp_profiles_free(void) {
        if (noexec_built)
                free(noexec_built->filter);
        free(noexec_built);
        noexec_built = NULL;
        for (size_t i = 0; i < ELEMENTSOF(built); i++) {
                if (built[i])
                        free(built[i]->filter);
                free(built[i]);
                built[i] = NULL;
        }
}
