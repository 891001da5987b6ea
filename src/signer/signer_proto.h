/*
 * The signer protocol: the frames the network process and the signer process
 * (which alone holds the CA and CMP signer keys) exchange over a socketpair.
 * Encoding and strict decoding only, no I/O; every length is checked against
 * the frame and a fixed bound before it is used.
 *
 * A frame is a 4-octet big-endian length N (5 <= N <= SIGNER_MAX_FRAME)
 * followed by N octets: a type octet, a 4-octet request id, then the
 * fields of the type (integers big-endian, strings and blobs as a 2-octet
 * length and the bytes; a SIGN request's data runs to the end of the frame):
 *
 *   LOOKUP  keyref, md               "which key id signs for keyref/md?"
 *   SIGN    key_id(4), data...       "sign data (digest-and-sign)"
 *   SIGN_PAIR key_id(4), key2_id(4), off(4), olen(4), tbs_len(4), tbs,
 *           msg...                   "sign the TBSCertificate tbs with
 *                                    key_id into a Certificate, put it in
 *                                    place of the element at [off,
 *                                    off+olen) of msg (DER lengths
 *                                    rewritten) and sign that with key2_id"
 *   KEY     key_id(4), flags(1), md, pub (SPKI DER), alg (AlgorithmId DER)
 *   SIG     sig                      the signature
 *   SIG_PAIR sig, sig2               the certificate's, the message's
 *   READY   (nothing)                the signer has loaded its keys
 *   ERROR   code(1), msg             a refusal (never key material)
 */
#ifndef CMPCA_SIGNER_PROTO_H
#define CMPCA_SIGNER_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Octets of the length prefix. */
#define SIGNER_HDR_LEN 4
/* Smallest frame body: type + request id. */
#define SIGNER_MIN_FRAME 5
/* Largest frame body: a SIGN request carries a whole TBSCertList. */
#define SIGNER_MAX_FRAME (64u << 20)
/* Bounds of the fields. */
#define SIGNER_MAX_KEYREF 4096
#define SIGNER_MAX_MD 32
#define SIGNER_MAX_PUB 4096
#define SIGNER_MAX_ALG 512
#define SIGNER_MAX_SIG 2048
#define SIGNER_MAX_MSG 1024
/* Largest reply the network process accepts (a KEY frame, all maxed). */
#define SIGNER_MAX_REPLY 16384

/* Frame types. */
enum signer_type {
    SIGNER_T_LOOKUP = 1,
    SIGNER_T_SIGN = 2,
    SIGNER_T_SIGN_PAIR = 3,
    SIGNER_T_KEY = 0x81,
    SIGNER_T_SIG = 0x82,
    SIGNER_T_READY = 0x83,
    SIGNER_T_ERROR = 0x84,
    SIGNER_T_SIG_PAIR = 0x85
};

/* ERROR codes. */
enum signer_code {
    SIGNER_E_MALFORMED = 1,  /* the request did not decode */
    SIGNER_E_UNKNOWN_KEY,    /* no key loaded for that id / keyref */
    SIGNER_E_SIGN,           /* the key could not sign */
    SIGNER_E_CONFIG,         /* start-up: the configuration is invalid */
    SIGNER_E_AUTH,           /* start-up: a key is unusable (passphrase,
                              * PIN, file, token) */
    SIGNER_E_START,          /* start-up: any other failure */
    SIGNER_E_STORE           /* start-up: the store cannot be opened */
};

/* KEY flags. */
#define SIGNER_F_PKCS11 0x01

/* One decoded (or to be encoded) frame. Pointers borrow from the buffer
 * given to signer_frame_decode(); strings are not NUL-terminated and hold
 * no NUL octet. Only the fields of |type| are meaningful. */
struct signer_frame {
    uint8_t type;
    uint32_t id;
    uint32_t key_id;                /* SIGN, SIGN_PAIR, KEY */
    uint32_t key2_id;               /* SIGN_PAIR: the message's key */
    uint32_t off, olen;             /* SIGN_PAIR: the placeholder in data2 */
    uint8_t flags;                  /* KEY */
    uint8_t code;                   /* ERROR */
    const char *keyref;             /* LOOKUP */
    size_t keyref_len;
    const char *md;                 /* LOOKUP, KEY ("" = default / none) */
    size_t md_len;
    const uint8_t *data;            /* SIGN: the bytes to sign; SIG: sig;
                                     * SIGN_PAIR: tbs; SIG_PAIR: sig */
    size_t data_len;
    const uint8_t *data2;           /* SIGN_PAIR: msg; SIG_PAIR: sig2 */
    size_t data2_len;
    const uint8_t *pub;             /* KEY: SubjectPublicKeyInfo DER */
    size_t pub_len;
    const uint8_t *alg;             /* KEY: AlgorithmIdentifier DER */
    size_t alg_len;
    const char *msg;                /* ERROR */
    size_t msg_len;
};

/* Reads the length prefix |hdr| into *len. Returns 1 if it lies within
 * SIGNER_MIN_FRAME..|max| (|max| at most SIGNER_MAX_FRAME), else 0. */
int signer_frame_len(const uint8_t hdr[SIGNER_HDR_LEN], size_t max,
                     size_t *len);

/* Decodes the frame body |body| of |len| octets (after the prefix) into
 * |f|: a known type, every field within its bound, nothing left over.
 * Returns 1 or 0 (|f| zeroed). */
int signer_frame_decode(const uint8_t *body, size_t len,
                        struct signer_frame *f);

/* Returns the encoded size of |f| with its prefix, or 0 if a field is out
 * of bounds or the type unknown. */
size_t signer_frame_size(const struct signer_frame *f);

/* Encodes |f| with its length prefix into |buf| of |buflen| octets and
 * sets *outlen. Returns 1, or 0 if it does not fit or is out of bounds. */
int signer_frame_encode(const struct signer_frame *f, uint8_t *buf,
                        size_t buflen, size_t *outlen);

#endif
