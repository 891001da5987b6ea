/*
 * CMP over HTTP (RFC 9811) for the device client: our own connect (fails
 * fast on "connection refused", bounded by the timeout) and OpenSSL's HTTP
 * client for the request/response on that socket.
 */
#include "cmpclient_local.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>

#define CMPCLIENT_CONTENT_TYPE "application/pkixcmp"
#define CMPCLIENT_MAX_RESPONSE (1024 * 1024)

/* Connects to host:port within |timeout| seconds (0 = system default).
 * Returns the connected blocking socket with send/receive timeouts set, or
 * -1 with a message in |err|. */
static int cmpclient_connect(const char *host, int port, int timeout,
                             char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, rc, last = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        socklen_t len = sizeof(last);
        int flags;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                last = errno;
                goto next;
            }
            pfd.fd = fd;
            pfd.events = POLLOUT;
            do {
                rc = poll(&pfd, 1, timeout > 0 ? timeout * 1000 : -1);
            } while (rc < 0 && errno == EINTR);
            if (rc == 0) {
                last = ETIMEDOUT;
                goto next;
            }
            if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &len) != 0
                || last != 0) {
                if (rc < 0)
                    last = errno;
                goto next;
            }
        }
        fcntl(fd, F_SETFL, flags);
        if (timeout > 0) {
            struct timeval tv = { timeout, 0 };

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        freeaddrinfo(res);
        return fd;
 next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port,
             strerror(last != 0 ? last : ECONNREFUSED));
    return -1;
}

OSSL_CMP_MSG *cmpclient_http_transfer(CMPCLIENT *c, const OSSL_CMP_MSG *req,
                                      int *connected, char *err, size_t errlen)
{
    BIO *sock = NULL, *reqmem = NULL, *rsp = NULL;
    OSSL_CMP_MSG *msg = NULL;
    char portstr[16];
    int fd;

    err[0] = '\0';
    *connected = 0;
    if ((fd = cmpclient_connect(c->host, c->port, c->msg_timeout, err, errlen)) < 0)
        return NULL;
    *connected = 1;
    if ((sock = BIO_new_socket(fd, BIO_CLOSE)) == NULL) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((reqmem = BIO_new(BIO_s_mem())) == NULL
        || i2d_OSSL_CMP_MSG_bio(reqmem, req) <= 0) {
        snprintf(err, errlen, "cannot encode the request");
        goto end;
    }
    snprintf(portstr, sizeof(portstr), "%d", c->port);
    rsp = OSSL_HTTP_transfer(NULL, c->host, portstr, c->path, 0, NULL, NULL,
                             sock, sock, NULL, NULL, 0, NULL,
                             CMPCLIENT_CONTENT_TYPE, reqmem,
                             CMPCLIENT_CONTENT_TYPE, 1, CMPCLIENT_MAX_RESPONSE,
                             c->msg_timeout, 0);
    if (rsp == NULL)
        goto end; /* reasons are in the OpenSSL error queue */
    if ((msg = d2i_OSSL_CMP_MSG_bio(rsp, NULL)) == NULL)
        snprintf(err, errlen, "the response is not a PKIMessage");
 end:
    BIO_free(rsp);
    BIO_free(reqmem);
    BIO_free_all(sock);
    return msg;
}
