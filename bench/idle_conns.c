/*
 * Opens N HTTP connections to a loopback server and holds them idle
 * (optionally after one GET PATH each, --request), reporting the server's RSS
 * and open descriptors (from /proc) before and with the connections open.
 * Usage: idle_conns --port P --server-pid PID [--count N] [--hold S]
 *                   [--request [--path P]]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IDLE_MAX_CONNS 100000

/* Number of open file descriptors of |pid| (its sockets among them). */
static long idle_fds(long pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long idle_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((fp = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(fp);
    return kb;
}

/* One GET on |fd|; returns 1 if a complete 2xx response came back. */
static int idle_request(int fd, const char *path, unsigned short port)
{
    char buf[4096];
    size_t have = 0;
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u"
                     "\r\n\r\n", path, port);
    char *eoh, *cl;
    long clen;

    if (write(fd, buf, (size_t)n) != n)
        return 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);

        if (r <= 0)
            return 0;
        have += (size_t)r;
        buf[have] = '\0';
        if ((eoh = strstr(buf, "\r\n\r\n")) == NULL) {
            if (have >= sizeof(buf) - 1)
                return 0;
            continue;
        }
        cl = strcasestr(buf, "\r\nContent-Length:");
        clen = cl != NULL && cl < eoh ? strtol(cl + 17, NULL, 10) : 0;
        if ((long)(have - (size_t)(eoh + 4 - buf)) >= clen)
            return strncmp(buf + 9, "2", 1) == 0;
        if (have >= sizeof(buf) - 1)
            return 0;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "server-pid", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'n' },
        { "hold", required_argument, NULL, 'H' },
        { "path", required_argument, NULL, 'P' },
        { "request", no_argument, NULL, 'R' },
        { NULL, 0, NULL, 0 }
    };
    struct sockaddr_in sa;
    struct rlimit rl;
    long pid = 0, count = 10000, i, open_ok = 0, rss0, rss1, fd0, fd1;
    double hold = 3;
    const char *path = "/health";
    int port = 0, c, *fds, one = 1, request = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 's': pid = atol(optarg); break;
        case 'n': count = atol(optarg); break;
        case 'H': hold = atof(optarg); break;
        case 'P': path = optarg; break;
        case 'R': request = 1; break;
        default:
            fprintf(stderr, "usage: idle_conns --port P --server-pid PID "
                    "[--count N] [--hold S] [--request [--path P]]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || pid <= 0 || count < 1
        || count > IDLE_MAX_CONNS || hold < 0 || hold > 60) {
        fprintf(stderr, "idle_conns: bad arguments\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ? rl.rlim_max
                                                       : (rlim_t)count + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((fds = calloc((size_t)count, sizeof(*fds))) == NULL)
        return 1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rss0 = idle_rss_kb(pid);
    fd0 = idle_fds(pid);
    for (i = 0; i < count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0) {
            fprintf(stderr, "idle_conns: socket %ld: %s\n", i, strerror(errno));
            break;
        }
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0
            || (request && !idle_request(fds[i], path, (unsigned short)port))) {
            fprintf(stderr, "idle_conns: connection %ld failed: %s\n", i,
                    strerror(errno));
            close(fds[i]);
            fds[i] = -1;
            break;
        }
        open_ok++;
    }
    usleep((useconds_t)(hold * 1e6 / 2));
    rss1 = idle_rss_kb(pid);
    fd1 = idle_fds(pid);
    usleep((useconds_t)(hold * 1e6 / 2));
    /* still served after idling? */
    if (open_ok > 0 && !idle_request(fds[open_ok - 1], path, (unsigned short)port))
        fprintf(stderr, "idle_conns: the last connection no longer answers\n");
    printf("idle_conns: %ld of %ld connections open and idle; server RSS "
           "%ld kB before, %ld kB with them (%.1f kB per connection); server "
           "fds %ld -> %ld\n", open_ok, count, rss0, rss1,
           open_ok > 0 ? (double)(rss1 - rss0) / (double)open_ok : 0.0, fd0, fd1);
    printf("RESULT conns=%ld rss0_kb=%ld rss1_kb=%ld per_conn_kb=%.2f server_fds=%ld\n",
           open_ok, rss0, rss1,
           open_ok > 0 ? (double)(rss1 - rss0) / (double)open_ok : 0.0, fd1);
    for (i = 0; i < open_ok; i++)
        close(fds[i]);
    free(fds);
    return open_ok == count ? 0 : 1;
}
