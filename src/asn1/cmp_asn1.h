/*
 * CMP message structures (RFC 9810 Appendix F, pvno 2 and 3) as OpenSSL ASN.1
 * templates. Types only: decoding policy, limits and semantics live in
 * src/cmp/. OpenSSL's exported items are reused where they fit (X509,
 * X509_NAME, GENERAL_NAME, X509_ALGOR, OSSL_CRMF_MSGS, OSSL_CRMF_CERTTEMPLATE,
 * OSSL_CRMF_CERTID, X509_REQ, X509_CRL, X509_EXTENSION).
 */
#ifndef CMPCA_ASN1_CMP_H
#define CMPCA_ASN1_CMP_H

#include <openssl/asn1.h>
#include <openssl/crmf.h>
#include <openssl/safestack.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* PKIBody CHOICE alternatives: the context tag numbers of RFC 9810. */
enum cmp_body_type {
    CMP_BODY_IR = 0, CMP_BODY_IP = 1, CMP_BODY_CR = 2, CMP_BODY_CP = 3,
    CMP_BODY_P10CR = 4, CMP_BODY_POPDECC = 5, CMP_BODY_POPDECR = 6,
    CMP_BODY_KUR = 7, CMP_BODY_KUP = 8, CMP_BODY_KRR = 9, CMP_BODY_KRP = 10,
    CMP_BODY_RR = 11, CMP_BODY_RP = 12, CMP_BODY_CCR = 13, CMP_BODY_CCP = 14,
    CMP_BODY_CKUANN = 15, CMP_BODY_CANN = 16, CMP_BODY_RANN = 17,
    CMP_BODY_CRLANN = 18, CMP_BODY_PKICONF = 19, CMP_BODY_NESTED = 20,
    CMP_BODY_GENM = 21, CMP_BODY_GENP = 22, CMP_BODY_ERROR = 23,
    CMP_BODY_CERTCONF = 24, CMP_BODY_POLLREQ = 25, CMP_BODY_POLLREP = 26,
    CMP_BODY_TYPE_MAX = 26
};

/* PKIStatus values. */
enum cmp_status {
    CMP_STATUS_ACCEPTED = 0, CMP_STATUS_GRANTED_WITH_MODS = 1,
    CMP_STATUS_REJECTION = 2, CMP_STATUS_WAITING = 3,
    CMP_STATUS_REVOCATION_WARNING = 4, CMP_STATUS_REVOCATION_NOTIFICATION = 5,
    CMP_STATUS_KEY_UPDATE_WARNING = 6
};

typedef struct cmp_itav_st {               /* InfoTypeAndValue */
    ASN1_OBJECT *infoType;
    ASN1_TYPE *infoValue;                  /* OPTIONAL, decoded on demand */
} CMP_ITAV;
DEFINE_STACK_OF(CMP_ITAV)

typedef struct cmp_hdr_st {                /* PKIHeader */
    ASN1_INTEGER *pvno;
    GENERAL_NAME *sender;
    GENERAL_NAME *recipient;
    ASN1_GENERALIZEDTIME *messageTime;     /* [0] */
    X509_ALGOR *protectionAlg;             /* [1] */
    ASN1_OCTET_STRING *senderKID;          /* [2] */
    ASN1_OCTET_STRING *recipKID;           /* [3] */
    ASN1_OCTET_STRING *transactionID;      /* [4] */
    ASN1_OCTET_STRING *senderNonce;        /* [5] */
    ASN1_OCTET_STRING *recipNonce;         /* [6] */
    STACK_OF(ASN1_UTF8STRING) *freeText;   /* [7] */
    STACK_OF(CMP_ITAV) *generalInfo;       /* [8] */
} CMP_HDR;

typedef struct cmp_pkisi_st {              /* PKIStatusInfo */
    ASN1_INTEGER *status;
    STACK_OF(ASN1_UTF8STRING) *statusString;
    ASN1_BIT_STRING *failInfo;
} CMP_PKISI;
DEFINE_STACK_OF(CMP_PKISI)

typedef struct cmp_certorenccert_st {      /* CertOrEncCert */
    int type;                              /* 0 certificate, 1 encryptedCert */
    union {
        ASN1_TYPE *certificate;            /* CMPCertificate kept as encoded
                                            * (V_ASN1_SEQUENCE): a server
                                            * sends its DER as issued, a
                                            * reader decodes it on demand */
        ASN1_TYPE *encryptedCert;
    } value;
} CMP_CERTORENCCERT;

typedef struct cmp_certkeypair_st {        /* CertifiedKeyPair */
    CMP_CERTORENCCERT *certOrEncCert;
    ASN1_TYPE *privateKey;                 /* [0] EncryptedKey */
    OSSL_CRMF_PKIPUBLICATIONINFO *publicationInfo; /* [1] */
} CMP_CERTKEYPAIR;

typedef struct cmp_certresp_st {           /* CertResponse */
    ASN1_INTEGER *certReqId;
    CMP_PKISI *status;
    CMP_CERTKEYPAIR *certifiedKeyPair;
    ASN1_OCTET_STRING *rspInfo;
} CMP_CERTRESP;
DEFINE_STACK_OF(CMP_CERTRESP)

typedef struct cmp_certrepmsg_st {         /* CertRepMessage */
    STACK_OF(X509) *caPubs;                /* [1] */
    STACK_OF(CMP_CERTRESP) *response;
} CMP_CERTREPMSG;

typedef struct cmp_certstatus_st {         /* CertStatus */
    ASN1_OCTET_STRING *certHash;
    ASN1_INTEGER *certReqId;
    CMP_PKISI *statusInfo;                 /* OPTIONAL */
    X509_ALGOR *hashAlg;                   /* [0], pvno 3 */
} CMP_CERTSTATUS;
DEFINE_STACK_OF(CMP_CERTSTATUS)

typedef struct cmp_revdetails_st {         /* RevDetails */
    OSSL_CRMF_CERTTEMPLATE *certDetails;
    STACK_OF(X509_EXTENSION) *crlEntryDetails;
} CMP_REVDETAILS;
DEFINE_STACK_OF(CMP_REVDETAILS)

typedef struct cmp_revrep_st {             /* RevRepContent */
    STACK_OF(CMP_PKISI) *status;
    STACK_OF(OSSL_CRMF_CERTID) *revCerts;  /* [0] */
    STACK_OF(X509_CRL) *crls;              /* [1] */
} CMP_REVREP;

typedef struct cmp_errormsg_st {           /* ErrorMsgContent */
    CMP_PKISI *pKIStatusInfo;
    ASN1_INTEGER *errorCode;
    STACK_OF(ASN1_UTF8STRING) *errorDetails;
} CMP_ERRORMSG;

typedef struct cmp_pollreq_st {            /* element of PollReqContent */
    ASN1_INTEGER *certReqId;
} CMP_POLLREQ;
DEFINE_STACK_OF(CMP_POLLREQ)

typedef struct cmp_pollrep_st {            /* element of PollRepContent */
    ASN1_INTEGER *certReqId;
    ASN1_INTEGER *checkAfter;
    STACK_OF(ASN1_UTF8STRING) *reason;
} CMP_POLLREP;
DEFINE_STACK_OF(CMP_POLLREP)

/* CRMF CertTemplate (RFC 4211 5), with the public key undecoded. */
typedef struct cmp_optvalidity_st {
    ASN1_TIME *notBefore;                  /* [0] */
    ASN1_TIME *notAfter;                   /* [1] */
} CMP_OPTVALIDITY;

typedef struct cmp_rawspki_st {           /* SubjectPublicKeyInfo, undecoded */
    X509_ALGOR *algorithm;
    ASN1_BIT_STRING *subjectPublicKey;
} CMP_RAWSPKI;

typedef struct cmp_certtemplate_st {
    ASN1_INTEGER *version;                 /* [0] */
    ASN1_INTEGER *serialNumber;            /* [1] */
    X509_ALGOR *signingAlg;                /* [2] */
    X509_NAME *issuer;                     /* [3] */
    CMP_OPTVALIDITY *validity;             /* [4] */
    X509_NAME *subject;                    /* [5] */
    CMP_RAWSPKI *publicKey;                /* [6], key not decoded */
    ASN1_BIT_STRING *issuerUID;            /* [7] */
    ASN1_BIT_STRING *subjectUID;           /* [8] */
    STACK_OF(X509_EXTENSION) *extensions;  /* [9] */
} CMP_CERTTEMPLATE;

/* CRMF CertReqMessages (RFC 4211) in cmpca's own types: the template's
 * public key stays undecoded (OpenSSL 3.0 spends ~100 us decoding a key),
 * and proof of possession is checked by cmpca (see ra_enroll.c).
 * cmp_crmf.h converts to and from OpenSSL's OSSL_CRMF_MSGS. */
typedef struct cmp_poposigningkey_st {     /* POPOSigningKey */
    STACK_OF(ASN1_TYPE) *poposkInput;      /* [0] IMPLICIT, kept raw */
    X509_ALGOR *algorithmIdentifier;
    ASN1_BIT_STRING *signature;
} CMP_POPOSIGNINGKEY;

typedef struct cmp_popo_st {               /* ProofOfPossession */
    int type;                              /* 0 raVerified, 1 signature,
                                            * 2 keyEncipherment, 3 keyAgreement */
    union {
        ASN1_NULL *raVerified;             /* [0] */
        CMP_POPOSIGNINGKEY *signature;     /* [1] */
        ASN1_TYPE *other;                  /* [2], [3]: POPOPrivKey */
    } value;
} CMP_POPO;

typedef struct cmp_certrequest_st {        /* CertRequest */
    ASN1_INTEGER *certReqId;
    CMP_CERTTEMPLATE *certTemplate;
    STACK_OF(CMP_ITAV) *controls;          /* AttributeTypeAndValue */
} CMP_CERTREQUEST;

typedef struct cmp_certreqmsg_st {         /* CertReqMsg */
    CMP_CERTREQUEST *certReq;
    CMP_POPO *popo;
    STACK_OF(CMP_ITAV) *regInfo;
} CMP_CERTREQMSG;
DEFINE_STACK_OF(CMP_CERTREQMSG)

struct cmp_msg_st;
typedef struct cmp_msg_st CMP_MSG;
DEFINE_STACK_OF(CMP_MSG)

typedef struct cmp_body_st {               /* PKIBody */
    int type;                              /* enum cmp_body_type */
    union {
        STACK_OF(CMP_CERTREQMSG) *ir, *cr, *kur, *krr, *ccr;
        CMP_CERTREPMSG *ip, *cp, *kup, *ccp;
        X509_REQ *p10cr;
        STACK_OF(CMP_REVDETAILS) *rr;
        CMP_REVREP *rp;
        ASN1_NULL *pkiconf;
        STACK_OF(CMP_MSG) *nested;
        STACK_OF(CMP_ITAV) *genm, *genp;
        CMP_ERRORMSG *error;
        STACK_OF(CMP_CERTSTATUS) *certConf;
        STACK_OF(CMP_POLLREQ) *pollReq;
        STACK_OF(CMP_POLLREP) *pollRep;
        ASN1_TYPE *other;                  /* bodies cmpca does not serve */
    } value;
} CMP_BODY;

struct cmp_msg_st {                        /* PKIMessage */
    CMP_HDR *header;
    CMP_BODY *body;
    ASN1_BIT_STRING *protection;           /* [0] */
    STACK_OF(X509) *extraCerts;            /* [1] */
};

typedef struct cmp_protpart_st {           /* ProtectedPart (borrowed fields) */
    CMP_HDR *header;
    CMP_BODY *body;
} CMP_PROTPART;

typedef struct cmp_pbmparam_st {           /* PBMParameter (RFC 4211 4.4) */
    ASN1_OCTET_STRING *salt;
    X509_ALGOR *owf;
    ASN1_INTEGER *iterationCount;
    X509_ALGOR *mac;
} CMP_PBMPARAM;

typedef struct cmp_pbmac1param_st {        /* PBMAC1-params (RFC 8018 A.5) */
    X509_ALGOR *keyDerivationFunc;
    X509_ALGOR *messageAuthScheme;
} CMP_PBMAC1PARAM;


/* SEQUENCE OF Certificate / CertificateList, for genp values (caCerts,
 * crls): use with ASN1_item_pack on a STACK_OF(X509) / STACK_OF(X509_CRL). */
DECLARE_ASN1_ITEM(CMP_CERTS)
DECLARE_ASN1_ITEM(CMP_CRLS)

DECLARE_ASN1_FUNCTIONS(CMP_RAWSPKI)
DECLARE_ASN1_FUNCTIONS(CMP_POPOSIGNINGKEY)
DECLARE_ASN1_FUNCTIONS(CMP_POPO)
DECLARE_ASN1_FUNCTIONS(CMP_CERTREQUEST)
DECLARE_ASN1_FUNCTIONS(CMP_CERTREQMSG)
DECLARE_ASN1_DUP_FUNCTION(CMP_CERTREQMSG)
/* CertReqMessages as one item (SEQUENCE OF CertReqMsg) */
DECLARE_ASN1_ITEM(CMP_CERTREQMSGS)
DECLARE_ASN1_FUNCTIONS(CMP_OPTVALIDITY)
DECLARE_ASN1_FUNCTIONS(CMP_CERTTEMPLATE)
DECLARE_ASN1_FUNCTIONS(CMP_ITAV)
DECLARE_ASN1_FUNCTIONS(CMP_HDR)
DECLARE_ASN1_FUNCTIONS(CMP_PKISI)
DECLARE_ASN1_FUNCTIONS(CMP_CERTORENCCERT)
DECLARE_ASN1_FUNCTIONS(CMP_CERTKEYPAIR)
DECLARE_ASN1_FUNCTIONS(CMP_CERTRESP)
DECLARE_ASN1_FUNCTIONS(CMP_CERTREPMSG)
DECLARE_ASN1_FUNCTIONS(CMP_CERTSTATUS)
DECLARE_ASN1_FUNCTIONS(CMP_REVDETAILS)
DECLARE_ASN1_FUNCTIONS(CMP_REVREP)
DECLARE_ASN1_FUNCTIONS(CMP_ERRORMSG)
DECLARE_ASN1_FUNCTIONS(CMP_POLLREQ)
DECLARE_ASN1_FUNCTIONS(CMP_POLLREP)
DECLARE_ASN1_FUNCTIONS(CMP_BODY)
DECLARE_ASN1_FUNCTIONS(CMP_MSG)
DECLARE_ASN1_DUP_FUNCTION(CMP_MSG)
DECLARE_ASN1_ITEM(CMP_PROTPART)
DECLARE_ASN1_FUNCTIONS(CMP_PBMPARAM)
DECLARE_ASN1_FUNCTIONS(CMP_PBMAC1PARAM)

#endif
