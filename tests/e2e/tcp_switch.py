#!/usr/bin/env python3
# A loopback TCP forwarder for the delayed-delivery e2e test: every new
# connection goes to the port named in TARGET_FILE at that moment, so one
# client's pollReq can reach another server process than its ir did.
# usage: tcp_switch.py PORT_FILE TARGET_FILE   (writes its port to PORT_FILE)
import socket, sys, threading

def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def serve(conn, target_file):
    try:
        port = int(open(target_file).read().strip())
        up = socket.create_connection(("127.0.0.1", port), timeout=10)
        up.settimeout(None)
    except (OSError, ValueError):
        conn.close()
        return
    threading.Thread(target=pipe, args=(conn, up), daemon=True).start()
    pipe(up, conn)

def main():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, sys.argv[2]), daemon=True).start()

main()
