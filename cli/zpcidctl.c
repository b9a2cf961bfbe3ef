/* zpcidctl: the command-line client of zpcid. */
#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdio.h>

#include "cli-output.h"
#include "cli-source.h"
#include "error.h"

/* Exit codes (documented in zpcidctl(1)). */
enum {
    EXIT_READY = 0,
    EXIT_NOT_READY = 1,
    EXIT_USAGE = 2,
};

typedef struct {
    const char *name;
    const char *args;
    const char *summary;
    int (*run)(CliContext *ctx, int argc, char **argv);
} Command;

static char *opt_verdict = NULL;

static int
fail(CliContext *ctx, const GError *error)
{
    cli_print_error(error, ctx->json);
    return EXIT_USAGE;
}

static int
usage_error(CliContext *ctx, const char *message)
{
    g_autoptr(GError) error = g_error_new_literal(ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                                                  message);
    return fail(ctx, error);
}

static int
run_check(CliContext *ctx, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) report = NULL;
    const char *verdict;
    const char *required = opt_verdict != NULL ? opt_verdict : "interpretation";

    if (argc > 1)
        return usage_error(ctx, _("The command “check” takes no arguments."));
    if (!g_str_equal(required, "passthrough") && !g_str_equal(required, "interpretation"))
        return usage_error(ctx, _("The option --verdict takes “passthrough” or “interpretation”."));
    report = cli_source_check(ctx, &error);
    if (report == NULL)
        return fail(ctx, error);
    cli_print_report(report, ctx->json);
    g_variant_get(report, "(&s@a(sssss))", &verdict, NULL);
    return cli_verdict_satisfies(verdict, required) ? EXIT_READY : EXIT_NOT_READY;
}

static int
run_list(CliContext *ctx, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) list = NULL;

    if (argc > 1)
        return usage_error(ctx, _("The command “list” takes no arguments."));
    list = cli_source_list(ctx, &error);
    if (list == NULL)
        return fail(ctx, error);
    cli_print_function_list(list, ctx->json);
    return EXIT_READY;
}

static int
run_show(CliContext *ctx, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) function = NULL;

    if (argc != 2)
        return usage_error(ctx, _("The command “show” takes exactly one function."));
    function = cli_source_show(ctx, argv[1], &error);
    if (function == NULL)
        return fail(ctx, error);
    cli_print_function(function, ctx->json);
    return EXIT_READY;
}

static const Command commands[] = {
    {"check", "", N_("Tell whether this host can pass zPCI functions through"), run_check},
    {"list", "", N_("List the zPCI functions of this host"), run_list},
    {"show", "SPEC", N_("Show one function (FID, PCI address or uid:UID)"), run_show},
};

static char *
commands_help(void)
{
    GString *s = g_string_new(_("Commands:"));

    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        g_string_append_printf(s, "\n  %-8s %-6s %s", commands[i].name, commands[i].args,
                               _(commands[i].summary));
    return g_string_free(s, FALSE);
}

int
main(int argc, char **argv)
{
    CliContext ctx = {0};
    gboolean opt_json = FALSE;
    gboolean opt_version = FALSE;
    g_autofree char *opt_host_root = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) options = NULL;
    g_autofree char *help = NULL;
    const Command *command = NULL;
    GOptionEntry entries[] = {
        {"host-root", 0, 0, G_OPTION_ARG_FILENAME, &opt_host_root,
         N_("Read the host tree in DIR directly instead of asking the daemon"), N_("DIR")},
        {"json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_("Print JSON only, errors included"),
         NULL},
        {"verdict", 0, 0, G_OPTION_ARG_STRING, &opt_verdict,
         N_("What check requires: passthrough or interpretation (default)"), N_("VERDICT")},
        {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version"), NULL},
        {NULL},
    };
    int status;

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    options = g_option_context_new(_("COMMAND [ARGUMENTS…]"));
    g_option_context_add_main_entries(options, entries, GETTEXT_PACKAGE);
    g_option_context_set_translation_domain(options, GETTEXT_PACKAGE);
    help = commands_help();
    g_option_context_set_description(options, help);
    /* Options may follow the command, as in “zpcidctl check --json”. */
    g_option_context_set_strict_posix(options, FALSE);
    if (!g_option_context_parse(options, &argc, &argv, &error)) {
        ctx.json = opt_json;
        return fail(&ctx, error);
    }
    ctx.json = opt_json;
    if (opt_version) {
        printf("zpcidctl %s\n", ZPCID_VERSION);
        return EXIT_READY;
    }
    if (argc < 2)
        return usage_error(&ctx, _("No command given; see “zpcidctl --help”."));
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (g_str_equal(argv[1], commands[i].name))
            command = &commands[i];
    }
    if (command == NULL) {
        g_autofree char *message = g_strdup_printf(_("Unknown command “%s”; see “zpcidctl --help”."),
                                                   argv[1]);
        return usage_error(&ctx, message);
    }

    ctx.host_root = g_steal_pointer(&opt_host_root);
    if (!cli_source_open(&ctx, &error)) {
        status = fail(&ctx, error);
        cli_source_close(&ctx);
        return status;
    }
    status = command->run(&ctx, argc - 1, argv + 1);
    cli_source_close(&ctx);
    return status;
}
