/*
 * Revoking every valid certificate that matches a filter in the caller's
 * write transaction (device and vendor decommissioning), with an audit row
 * each and a new CRL for every CA concerned.
 */
#include "cli/cli.h"

#include "ca/ca.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_REVOKE_MAX_CAS 32

int cli_revoke_matching(const struct conf *conf, STORE *st, STORE_TX *tx,
                        const struct store_cert_filter *filter, int reason,
                        long *count)
{
    struct store_cert_filter f = *filter;
    struct store_cert **v = NULL;
    struct store_ca *rec = NULL;
    CA *cas[CLI_REVOKE_MAX_CAS];
    size_t n = 0, i, k, ncas = 0;
    char err[512];
    enum store_rc rc;
    enum ca_revoke_rc rrc;
    int ret = CLI_ERR;

    *count = 0;
    f.status = STORE_CERT_VALID;
    f.skip_der = 1;
    f.limit = 0;
    if ((rc = store_cert_list(tx, &f, &v, &n)) != STORE_OK)
        return cli_dberr("revoke", "list", tx, rc);
    for (i = 0; i < n; i++) {
        CA *ca = NULL;

        for (k = 0; k < ncas; k++)
            if (ca_get_id(cas[k]) == v[i]->ca_id)
                ca = cas[k];
        if (ca == NULL) {
            if (ncas == CLI_REVOKE_MAX_CAS) {
                fprintf(stderr, "cmpca: certificates of more than %d CAs\n",
                        CLI_REVOKE_MAX_CAS);
                goto end;
            }
            if ((rc = store_ca_get(tx, v[i]->ca_id, &rec)) != STORE_OK) {
                ret = cli_dberr("revoke", "CA", tx, rc);
                goto end;
            }
            ret = cli_ca_load(conf, st, rec->name, NULL, 0, &ca);
            store_ca_free(rec);
            rec = NULL;
            if (ret != CLI_OK)
                goto end;
            ret = CLI_ERR;
            cas[ncas++] = ca;
        }
        rrc = ca_revoke(ca, tx, v[i]->id, reason, 0, cli_actor(), err,
                        sizeof(err));
        if (rrc == CA_REVOKE_ALREADY)
            continue;
        if (rrc != CA_REVOKE_OK) {
            fprintf(stderr, "cmpca: revoking certificate %lld: %s\n",
                    (long long)v[i]->id, err);
            goto end;
        }
        (*count)++;
    }
    for (k = 0; k < ncas; k++)
        if (!ca_crl_generate(cas[k], tx, 0, NULL, err, sizeof(err))) {
            fprintf(stderr, "cmpca: new CRL of CA %s: %s\n",
                    ca_get0_name(cas[k]), err);
            goto end;
        }
    ret = CLI_OK;
 end:
    for (k = 0; k < ncas; k++)
        ca_free(cas[k]);
    store_cert_list_free(v, n);
    return ret;
}
