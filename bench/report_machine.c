/* report_machine.c — the machine and build facts akbench records with every
 * run, so results from different machines and commits can be told apart. */
#include "report.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#endif

#include "akbench_gitrev.h" /* AK_GIT_REVISION, generated at build time */

#ifndef AK_BUILD_TYPE
#define AK_BUILD_TYPE "unknown"
#endif

static void strip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = 0;
}

/* First line of a small file, or "unknown". */
static void read_line(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "unknown");
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        strip(out);
    else
        snprintf(out, cap, "unknown");
    fclose(f);
}

/* "model name" on x86; other architectures name the CPU differently. */
static void cpu_model(char *out, size_t cap)
{
    static const char *const keys[] = { "model name", "Model", "Hardware", "cpu model", "cpu" };
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    int best = (int)(sizeof keys / sizeof keys[0]);
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        for (int k = 0; k < best; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(line, keys[k], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' || line[kl] == ':')) {
                char *v = colon + 1;
                while (*v == ' ' || *v == '\t')
                    v++;
                strip(v);
                if (*v) {
                    snprintf(out, cap, "%s", v);
                    best = k;
                }
                break;
            }
        }
        if (best == 0)
            break;
    }
    fclose(f);
}

void ak_machine_probe(ak_machine *m, int ncpu)
{
    memset(m, 0, sizeof *m);
    m->ncpu = ncpu;
    cpu_model(m->cpu_model, sizeof m->cpu_model);

    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%.40s %.64s %.40s", u.sysname, u.release, u.machine);
    else
        snprintf(m->kernel, sizeof m->kernel, "unknown");

#if defined(__clang__)
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __VERSION__);
#elif defined(__GNUC__)
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#else
    snprintf(m->compiler, sizeof m->compiler, "%s", __VERSION__);
#endif
    snprintf(m->build_type, sizeof m->build_type, "%s", AK_BUILD_TYPE[0] ? AK_BUILD_TYPE : "unknown");
    read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", m->clocksource,
              sizeof m->clocksource);

    m->membarrier_mask = -1;
#if defined(__linux__) && defined(__NR_membarrier) /* MEMBARRIER_CMD_* are enum constants, not macros */
    long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
    if (q >= 0) {
        m->membarrier_mask = (int)q;
        m->membarrier_private_expedited = (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0;
    }
#endif
    snprintf(m->git_revision, sizeof m->git_revision, "%s", AK_GIT_REVISION);

    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(m->date, sizeof m->date, "unknown");
#ifdef AK_HAVE_URCU
    m->have_urcu = true;
#endif
#ifdef AK_HAVE_CK
    m->have_ck = true;
#endif
}

int ak_mkdirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf || !buf[0]) {
        fprintf(stderr, "akbench: bad directory '%s'\n", dir);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "akbench: cannot create %s: %s\n", buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "akbench: %s is not a directory\n", dir);
        return -1;
    }
    return 0;
}
