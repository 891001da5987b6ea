#!/usr/bin/env python3
# Sends N CMP requests, each the ir template IR with its extraCerts replaced
# by one distinct junk certificate (the DER of CERT with 16 bytes changed
# inside its padding), over one keep-alive connection to 127.0.0.1:PORT.
# Usage: junk_certs.py PORT IR CERT N    Prints "sent=N statuses=200:N ...".
import http.client, sys, collections

def tlv(buf, pos):
    """(tag, header_len, content_len) of the DER element at pos."""
    tag = buf[pos]
    l = buf[pos + 1]
    if l < 0x80:
        return tag, 2, l
    n = l & 0x7f
    return tag, 2 + n, int.from_bytes(buf[pos + 2:pos + 2 + n], 'big')

def enc(tag, content):
    n = len(content)
    if n < 0x80:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + content

port, ir_path, cert_path, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ir = open(ir_path, 'rb').read()
cert = bytearray(open(cert_path, 'rb').read())
# the PKIMessage's elements: header, body, [0] protection, [1] extraCerts
tag, hl, cl = tlv(ir, 0)
pos, parts = hl, []
while pos < hl + cl:
    t, h, c = tlv(ir, pos)
    parts.append((t, ir[pos:pos + h + c]))
    pos += h + c
keep = b''.join(p for t, p in parts if t != 0xa1)
pad = cert.find(b'a' * 64)
assert pad > 0, "no padding in the junk certificate"
conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
st = collections.Counter()
for i in range(count):
    cert[pad:pad + 16] = i.to_bytes(16, 'big')
    msg = enc(0x30, keep + enc(0xa1, enc(0x30, bytes(cert))))
    conn.request('POST', '/.well-known/cmp/p/3gpp', body=msg,
                 headers={'Content-Type': 'application/pkixcmp'})
    r = conn.getresponse()
    r.read()
    st[r.status] += 1
    if r.getheader('Connection', '').lower() == 'close':
        conn.close()
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
print('sent=%d size=%d statuses=%s' % (count, len(msg),
      ','.join('%d:%d' % kv for kv in sorted(st.items()))))
