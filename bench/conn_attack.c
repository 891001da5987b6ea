/*
 * A one-host connection-exhaustion attacker for tests and benchmarks: opens
 * N TCP connections to a loopback server from one source address and holds
 * them idle, or drips request headers or a body one byte at a time, for a
 * bounded time; optionally reconnects what the server closes.
 * Usage: conn_attack --port P [--bind ADDR] [--count N] [--mode idle|headers|body]
 *                    [--drip-ms MS] [--duration S] [--reconnect-ms MS]
 * Prints "RESULT opened=.. held=.. max_held=.. closed_by_server=.. failed=..".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ATK_MAX_CONNS 100000

enum atk_mode { ATK_IDLE, ATK_HEADERS, ATK_BODY };

struct atk_conn {
    int fd;                 /* -1 = not open */
    int connected;
    size_t sent;            /* bytes of the request sent */
    double next;            /* when to drip or reconnect next */
};

static const char atk_hdr[] =
    "POST /.well-known/cmp/p/3gpp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
static const char atk_body_hdr[] =
    "POST /.well-known/cmp/p/3gpp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "Content-Type: application/pkixcmp\r\nContent-Length: 60000\r\n\r\n";

static double atk_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts a non-blocking connect from |src| to |dst|; returns the fd or -1. */
static int atk_open(int ep, const struct sockaddr_in *src,
                    const struct sockaddr_in *dst, int idx)
{
    struct epoll_event ev;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0
        || (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0
            && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u32 = (uint32_t)idx;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "count", required_argument, NULL, 'n' },
        { "mode", required_argument, NULL, 'm' },
        { "drip-ms", required_argument, NULL, 'd' },
        { "duration", required_argument, NULL, 't' },
        { "reconnect-ms", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 }
    };
    struct sockaddr_in src, dst;
    struct rlimit rl;
    struct atk_conn *c;
    struct epoll_event evs[512];
    const char *bind_addr = "127.0.0.2", *req;
    enum atk_mode mode = ATK_IDLE;
    long count = 10000, i, opened = 0, held = 0, max_held = 0, closed = 0;
    long failed = 0;
    double duration = 10, drip = 1.0, reconnect = 0, t0, end, now;
    size_t req_len;
    int port = 0, ch, ep;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': port = atoi(optarg); break;
        case 'b': bind_addr = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'm':
            mode = strcmp(optarg, "headers") == 0 ? ATK_HEADERS
                 : strcmp(optarg, "body") == 0 ? ATK_BODY : ATK_IDLE;
            break;
        case 'd': drip = atof(optarg) / 1000; break;
        case 't': duration = atof(optarg); break;
        case 'r': reconnect = atof(optarg) / 1000; break;
        default:
            fprintf(stderr, "usage: conn_attack --port P [--bind ADDR] "
                    "[--count N] [--mode idle|headers|body] [--drip-ms MS] "
                    "[--duration S] [--reconnect-ms MS]\n");
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || count < 1 || count > ATK_MAX_CONNS
        || duration <= 0 || duration > 600 || drip <= 0) {
        fprintf(stderr, "conn_attack: bad arguments\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)count + 64 ? rl.rlim_max
                                                       : (rlim_t)count + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    if (inet_pton(AF_INET, bind_addr, &src.sin_addr) != 1) {
        fprintf(stderr, "conn_attack: bad --bind\n");
        return 2;
    }
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((unsigned short)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    req = mode == ATK_BODY ? atk_body_hdr : atk_hdr;
    req_len = strlen(req);
    if ((c = calloc((size_t)count, sizeof(*c))) == NULL
        || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return 1;
    t0 = atk_now();
    end = t0 + duration;
    for (i = 0; i < count; i++) {
        c[i].fd = atk_open(ep, &src, &dst, (int)i);
        if (c[i].fd < 0) {
            failed++;
            c[i].next = reconnect > 0 ? t0 + reconnect : end + 1;
        } else {
            opened++;
            c[i].next = t0 + drip;
        }
    }
    while ((now = atk_now()) < end) {
        int n = epoll_wait(ep, evs, 512, 50), k;

        for (k = 0; k < n; k++) {
            struct atk_conn *x = &c[evs[k].data.u32];
            char buf[4096];
            int err = 0;
            socklen_t el = sizeof(err);

            if (x->fd < 0)
                continue;
            if (!x->connected && (evs[k].events & EPOLLOUT)) {
                if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0
                    && err == 0) {
                    struct epoll_event ev;

                    x->connected = 1;
                    held++;
                    if (held > max_held)
                        max_held = held;
                    memset(&ev, 0, sizeof(ev));
                    ev.events = EPOLLIN | EPOLLRDHUP;
                    ev.data.u32 = evs[k].data.u32;
                    epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
                    /* the body mode sends its headers at once */
                    if (mode == ATK_BODY
                        && send(x->fd, req, req_len, MSG_NOSIGNAL) > 0)
                        x->sent = req_len;
                    continue;
                }
            }
            if ((evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                && (recv(x->fd, buf, sizeof(buf), 0) <= 0
                    || (evs[k].events & (EPOLLHUP | EPOLLERR)))) {
                /* the server closed it (or refused it) */
                if (x->connected)
                    held--;
                closed++;
                epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
                close(x->fd);
                x->fd = -1;
                x->connected = 0;
                x->sent = 0;
                x->next = reconnect > 0 ? now + reconnect : end + 1;
            }
        }
        now = atk_now();
        for (i = 0; i < count; i++) {
            struct atk_conn *x = &c[i];

            if (x->next > now)
                continue;
            if (x->fd < 0) {
                if ((x->fd = atk_open(ep, &src, &dst, (int)i)) >= 0)
                    opened++;
                else
                    failed++;
                x->next = x->fd >= 0 ? now + drip
                        : (reconnect > 0 ? now + reconnect : end + 1);
                continue;
            }
            x->next = now + drip;
            if (!x->connected || mode == ATK_IDLE)
                continue;
            /* one more byte of the headers (never the final CRLF) or body */
            if (mode == ATK_HEADERS && x->sent < req_len
                && send(x->fd, req + x->sent, 1, MSG_NOSIGNAL) == 1)
                x->sent++;
            else if (mode == ATK_BODY && send(x->fd, "x", 1, MSG_NOSIGNAL) == 1)
                x->sent++;
        }
    }
    printf("RESULT opened=%ld held=%ld max_held=%ld closed_by_server=%ld "
           "failed=%ld seconds=%.1f\n", opened, held, max_held, closed, failed,
           atk_now() - t0);
    for (i = 0; i < count; i++)
        if (c[i].fd >= 0)
            close(c[i].fd);
    free(c);
    close(ep);
    return 0;
}
