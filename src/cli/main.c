/*
 * cmpca entry point: global options, then dispatch to one subcommand.
 * Each subcommand lives in its own cmd_*.c file and is listed in cli_cmds.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/* Subcommands, in the order `cmpca --help` lists them. */
static const struct cli_cmd cli_cmds[] = {
    { "serve",   cli_serve,   "run the CMP server" },
    { "demo",    cli_demo,    "create a demo PKI and run the server on it" },
    { "vendor",  cli_vendor,  "register vendor (factory) CAs" },
    { "device",  cli_device,  "manage the device allow-list" },
    { "ra",      cli_ra,      "register RAs and the aliases they serve" },
    { "request", cli_request, "approve or reject requests held for approval" },
    { "audit",   cli_audit,   "list and verify the audit trail" },
    { "ca",      cli_ca,      "create, import and list CAs; CMP signers" },
    { "cert",    cli_cert,    "issue, list, show, export and revoke certificates" },
    { "crl",     cli_crl,     "generate a CA's CRL" },
    { "factory", cli_factory, "vendor factory: vendor CA, device credentials, allow-list" },
};

static const char *cli_config;

void cli_set_config_path(const char *path)
{
    cli_config = path;
}

const char *cli_config_path(void)
{
    const char *env;

    if (cli_config != NULL)
        return cli_config;
    env = getenv("CMPCA_CONFIG");
    return env != NULL && *env != '\0' ? env : "cmpca.conf";
}

static void cli_usage(FILE *fp)
{
    size_t i;

    fprintf(fp,
            "usage: cmpca [-c CONFIG] COMMAND [ARGS]\n"
            "\n"
            "A CMP (RFC 9810) certificate authority for 3GPP device enrollment.\n"
            "\n"
            "Commands:\n");
    for (i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++)
        fprintf(fp, "  %-10s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
    fprintf(fp,
            "\n"
            "Options:\n"
            "  -c, --config FILE  configuration file (default $CMPCA_CONFIG or ./cmpca.conf)\n"
            "  -h, --help         this help; `cmpca COMMAND --help` for a command\n"
            "  -V, --version      print the version\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config",  required_argument, NULL, 'c' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    size_t i;
    int c;

    /* '+' stops at the first non-option: the subcommand and its options. */
    while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli_config = optarg;
            break;
        case 'h':
            cli_usage(stdout);
            return CLI_OK;
        case 'V':
            printf("cmpca %s\n", CMPCA_VERSION);
            return CLI_OK;
        default:
            cli_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        cli_usage(stderr);
        return CLI_USAGE;
    }
    for (i = 0; i < sizeof(cli_cmds) / sizeof(cli_cmds[0]); i++) {
        if (strcmp(argv[optind], cli_cmds[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            int ret;

            optind = 0; /* full reset of getopt for the subcommand */
            ret = cli_cmds[i].fn(sub_argc, sub_argv);
            /* output that did not reach stdout (full disk, closed pipe)
             * is a failure, whatever the command thought */
            if ((fflush(stdout) != 0 || ferror(stdout)) && ret == CLI_OK) {
                fprintf(stderr, "cmpca: writing the output failed\n");
                ret = CLI_ERR;
            }
            return ret;
        }
    }
    fprintf(stderr, "cmpca: unknown command '%s' (see cmpca --help)\n",
            argv[optind]);
    return CLI_USAGE;
}
