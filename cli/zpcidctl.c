/* zpcidctl: the command-line client of zpcid. */
#include <glib/gi18n-lib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli-monitor.h"
#include "cli-output.h"
#include "cli-source.h"
#include "error.h"
#include "i18n.h"
#include "zpcid-names.h"

/* Exit codes (documented in zpcidctl(1)). */
enum {
    EXIT_READY = 0,
    EXIT_NOT_READY = 1,
    EXIT_USAGE = 2,
};

/* Which option groups a command accepts. */
enum {
    OPTS_NONE = 0,
    OPTS_VERDICT = 1 << 0,
    OPTS_BIND = 1 << 1,
    OPTS_XML = 1 << 2,
    OPTS_MERGE = 1 << 3,
    OPTS_AFFECT = 1 << 4,
};

typedef struct {
    const char *name;
    const char *args;
    const char *summary;
    int (*run)(CliContext *ctx, int argc, char **argv);
    gboolean needs_daemon;
    guint options;
} Command;

static char *opt_verdict = NULL;
static gboolean opt_dry_run = FALSE;
static gboolean opt_persistent = FALSE;
static char **opt_allow_guards = NULL;
static char *opt_owner = NULL;
static gint opt_timeout = 0;
static char *opt_merge = NULL;
static char *opt_domain = NULL;
static char *opt_new_domain = NULL;
static char *opt_policy = NULL;
static char *opt_interpretation = NULL;
static gboolean opt_unmanaged = FALSE;
static gboolean opt_live = FALSE;
static gboolean opt_config = FALSE;

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

static void
print_bind_result(GVariant *functions, gboolean unbind)
{
    GVariantIter iter;
    GVariant *f;

    g_variant_iter_init(&iter, functions);
    while ((f = g_variant_iter_next_value(&iter)) != NULL) {
        guint32 fid = 0;
        const char *address = "", *driver = "";

        g_variant_lookup(f, "Fid", "u", &fid);
        g_variant_lookup(f, "Address", "&s", &address);
        g_variant_lookup(f, "Driver", "&s", &driver);
        if (opt_dry_run && !unbind)
            printf(_("The function “0x%08x” (%s) would be bound to vfio-pci; nothing was "
                     "changed.\n"),
                   fid, address);
        else if (opt_dry_run)
            printf(_("The function “0x%08x” (%s) would be given back to its host driver; "
                     "nothing was changed.\n"),
                   fid, address);
        else if (*driver == '\0')
            printf(_("The function “0x%08x” (%s) has no driver now.\n"), fid, address);
        else
            printf(_("The function “0x%08x” (%s) is bound to “%s”.\n"), fid, address, driver);
        g_variant_unref(f);
    }
}

static int
run_bind_common(CliContext *ctx, int argc, char **argv, gboolean unbind)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) functions = NULL;
    GVariantBuilder options;

    if (argc < 2)
        return usage_error(ctx, unbind ? _("The command “unbind” needs at least one function.")
                                       : _("The command “bind” needs at least one function."));
    g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
    if (opt_dry_run)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_DRY_RUN, g_variant_new_boolean(TRUE));
    if (opt_persistent)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_PERSISTENT,
                              g_variant_new_boolean(TRUE));
    if (opt_allow_guards != NULL)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_ALLOW_GUARDS,
                              g_variant_new_strv((const char *const *)opt_allow_guards, -1));
    if (opt_owner != NULL)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string(opt_owner));
    if (opt_timeout > 0)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_TIMEOUT,
                              g_variant_new_uint32((guint32)opt_timeout));
    functions = cli_source_bind(ctx, (const char *const *)argv + 1,
                                g_variant_builder_end(&options), unbind, &error);
    if (functions == NULL)
        return fail(ctx, error);
    if (ctx->json)
        cli_print_function_list(functions, TRUE);
    else
        print_bind_result(functions, unbind);
    return EXIT_READY;
}

static int
run_bind(CliContext *ctx, int argc, char **argv)
{
    return run_bind_common(ctx, argc, argv, FALSE);
}

static int
run_unbind(CliContext *ctx, int argc, char **argv)
{
    return run_bind_common(ctx, argc, argv, TRUE);
}

static void
add_xml_options(GVariantBuilder *options)
{
    if (opt_policy != NULL)
        g_variant_builder_add(options, "{sv}", ZPCID_OPTION_POLICY,
                              g_variant_new_string(opt_policy));
    if (opt_interpretation != NULL)
        g_variant_builder_add(options, "{sv}", ZPCID_OPTION_INTERPRETATION,
                              g_variant_new_string(opt_interpretation));
    if (opt_unmanaged)
        g_variant_builder_add(options, "{sv}", ZPCID_OPTION_MANAGED, g_variant_new_boolean(FALSE));
}

static int
run_xml(CliContext *ctx, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = NULL;
    GVariantBuilder options;

    if (argc < 2)
        return usage_error(ctx, _("The command “xml” needs at least one function."));
    if ((opt_merge != NULL) + (opt_domain != NULL) + (opt_new_domain != NULL) > 1)
        return usage_error(ctx, _("The options --merge, --domain and --new-domain exclude each "
                                  "other."));
    g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
    add_xml_options(&options);
    if (opt_merge != NULL) {
        g_autofree char *document = NULL;
        gsize len;

        if (!g_file_get_contents(opt_merge, &document, &len, &error)) {
            g_variant_builder_clear(&options);
            return fail(ctx, error);
        }
        if (!g_utf8_validate(document, (gssize)len, NULL)) {
            g_autofree char *message = g_strdup_printf(
                _("The file “%s” is not UTF-8 text, so it is no domain XML."), opt_merge);
            g_variant_builder_clear(&options);
            return usage_error(ctx, message);
        }
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_MERGE,
                              g_variant_new_string(document));
    }
    if (opt_domain != NULL)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_DOMAIN,
                              g_variant_new_string(opt_domain));
    if (opt_new_domain != NULL)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_NEW_DOMAIN,
                              g_variant_new_string(opt_new_domain));
    xml = cli_source_domain_xml(ctx, (const char *const *)argv + 1,
                                g_variant_builder_end(&options), &error);
    if (xml == NULL)
        return fail(ctx, error);
    if (ctx->json) {
        GVariantBuilder b;
        g_autoptr(GVariant) v = NULL;
        g_autofree char *text = NULL;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "xml", g_variant_new_string(xml));
        v = g_variant_ref_sink(g_variant_builder_end(&b));
        text = cli_variant_to_json(v);
        printf("%s\n", text);
    } else {
        fputs(xml, stdout);
        if (*xml != '\0' && xml[strlen(xml) - 1] != '\n')
            fputc('\n', stdout);
    }
    return EXIT_READY;
}

static int
run_domain_change(CliContext *ctx, int argc, char **argv, gboolean detach)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *list = NULL;
    GVariantBuilder options;

    if (argc < 3)
        return usage_error(ctx, detach ? _("The command “detach” needs a domain and at least one "
                                           "function.")
                                       : _("The command “attach” needs a domain and at least one "
                                           "function."));
    g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
    if (!detach)
        add_xml_options(&options);
    if (opt_live)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_LIVE, g_variant_new_boolean(TRUE));
    if (opt_config)
        g_variant_builder_add(&options, "{sv}", ZPCID_OPTION_CONFIG, g_variant_new_boolean(TRUE));
    if (opt_live != opt_config) {
        /* Naming one of them means "only this one". */
        g_variant_builder_add(&options, "{sv}", opt_live ? ZPCID_OPTION_CONFIG : ZPCID_OPTION_LIVE,
                              g_variant_new_boolean(FALSE));
    }
    if (!cli_source_attach(ctx, argv[1], (const char *const *)argv + 2,
                           g_variant_builder_end(&options), detach, &error))
        return fail(ctx, error);
    list = g_strjoinv(", ", argv + 2);
    if (ctx->json) {
        GVariantBuilder b;
        g_autoptr(GVariant) v = NULL;
        g_autofree char *text = NULL;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "domain", g_variant_new_string(argv[1]));
        g_variant_builder_add(&b, "{sv}", detach ? "detached" : "attached",
                              g_variant_new_strv((const char *const *)argv + 2, -1));
        v = g_variant_ref_sink(g_variant_builder_end(&b));
        text = cli_variant_to_json(v);
        printf("%s\n", text);
    } else if (detach) {
        printf(_("Detached %s from the domain “%s”.\n"), list, argv[1]);
    } else {
        printf(_("Attached %s to the domain “%s”.\n"), list, argv[1]);
    }
    return EXIT_READY;
}

static int
run_attach(CliContext *ctx, int argc, char **argv)
{
    return run_domain_change(ctx, argc, argv, FALSE);
}

static int
run_detach(CliContext *ctx, int argc, char **argv)
{
    return run_domain_change(ctx, argc, argv, TRUE);
}

static int
run_monitor(CliContext *ctx, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int status;

    if (argc > 1)
        return usage_error(ctx, _("The command “monitor” takes no arguments."));
    status = cli_monitor_run(ctx, &error);
    if (error != NULL)
        return fail(ctx, error);
    return status;
}

static const Command commands[] = {
    {"check", "", N_("Tell whether this host can pass zPCI functions through"), run_check, FALSE,
     OPTS_VERDICT},
    {"list", "", N_("List the zPCI functions of this host"), run_list, FALSE, OPTS_NONE},
    {"show", "SPEC", N_("Show one function (FID, PCI address or uid:UID)"), run_show, FALSE,
     OPTS_NONE},
    {"bind", "SPEC…", N_("Pass functions through: bind them to vfio-pci"), run_bind, TRUE,
     OPTS_BIND},
    {"unbind", "SPEC…", N_("Give functions back to their host drivers"), run_unbind, TRUE,
     OPTS_BIND},
    {"xml", "SPEC…", N_("Write libvirt XML for the functions"), run_xml, TRUE,
     OPTS_XML | OPTS_MERGE},
    {"attach", "DOMAIN SPEC…", N_("Attach the functions to a libvirt domain"), run_attach, TRUE,
     OPTS_XML | OPTS_AFFECT},
    {"detach", "DOMAIN SPEC…", N_("Detach the functions from a libvirt domain"), run_detach, TRUE,
     OPTS_AFFECT},
    {"monitor", "", N_("Print object and property changes as they happen"), run_monitor, TRUE,
     OPTS_NONE},
};

static char *
commands_help(void)
{
    GString *s = g_string_new(_("Commands:"));

    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++) {
        /* Padded by characters: "…" is three bytes. */
        glong pad = 14 - g_utf8_strlen(commands[i].args, -1);
        g_string_append_printf(s, "\n  %-8s %s%*s%s", commands[i].name, commands[i].args,
                               (int)MAX(pad, 1), "", _(commands[i].summary));
    }
    g_string_append_printf(s, "\n\n%s",
                           _("Without --host-root, zpcidctl asks the zpcid daemon on the system "
                             "bus (or at --bus-address, or $ZPCID_BUS_ADDRESS)."));
    return g_string_free(s, FALSE);
}

/* The first option given that @command does not take, or NULL. */
static const char *
misplaced_option(const Command *command)
{
    const struct {
        guint group;
        const char *name;
        gboolean set;
    } opts[] = {
        {OPTS_VERDICT, "--verdict", opt_verdict != NULL},
        {OPTS_BIND, "--dry-run", opt_dry_run},
        {OPTS_BIND, "--persistent", opt_persistent},
        {OPTS_BIND, "--allow-guard", opt_allow_guards != NULL},
        {OPTS_BIND, "--owner", opt_owner != NULL},
        {OPTS_BIND, "--timeout", opt_timeout != 0},
        {OPTS_MERGE, "--merge", opt_merge != NULL},
        {OPTS_MERGE, "--domain", opt_domain != NULL},
        {OPTS_MERGE, "--new-domain", opt_new_domain != NULL},
        {OPTS_XML, "--policy", opt_policy != NULL},
        {OPTS_XML, "--interpretation", opt_interpretation != NULL},
        {OPTS_XML, "--unmanaged", opt_unmanaged},
        {OPTS_AFFECT, "--live", opt_live},
        {OPTS_AFFECT, "--config", opt_config},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(opts); i++) {
        if (opts[i].set && (command->options & opts[i].group) == 0)
            return opts[i].name;
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    CliContext ctx = {0};
    gboolean opt_json = FALSE;
    gboolean opt_version = FALSE;
    gboolean opt_no_interaction = FALSE;
    g_autofree char *opt_host_root = NULL;
    g_autofree char *opt_bus_address = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) options = NULL;
    g_autofree char *help = NULL;
    const Command *command = NULL;
    const char *misplaced;
    GOptionEntry entries[] = {
        {"host-root", 0, 0, G_OPTION_ARG_FILENAME, &opt_host_root,
         N_("Read the host tree in DIR directly instead of asking the daemon"), N_("DIR")},
        {"bus-address", 0, 0, G_OPTION_ARG_STRING, &opt_bus_address,
         N_("Ask the daemon on the bus at ADDRESS instead of the system bus"), N_("ADDRESS")},
        {"json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_("Print JSON only, errors included"),
         NULL},
        {"no-user-interaction", 0, 0, G_OPTION_ARG_NONE, &opt_no_interaction,
         N_("Fail instead of asking for a password"), NULL},
        {"verdict", 0, 0, G_OPTION_ARG_STRING, &opt_verdict,
         N_("What check requires: passthrough or interpretation (default)"), N_("VERDICT")},
        {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, N_("Print the version"), NULL},
        {NULL},
    };
    GOptionEntry bind_entries[] = {
        {"dry-run", 0, 0, G_OPTION_ARG_NONE, &opt_dry_run,
         N_("Check everything and change nothing"), NULL},
        {"persistent", 0, 0, G_OPTION_ARG_NONE, &opt_persistent,
         N_("Bind again whenever zpcid starts"), NULL},
        {"allow-guard", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_allow_guards,
         N_("Override a guard: net, block, sriov or domain (repeatable)"), N_("GUARD")},
        {"owner", 0, 0, G_OPTION_ARG_STRING, &opt_owner,
         N_("Bind for OWNER; unbind only what was bound for OWNER"), N_("OWNER")},
        {"timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout,
         N_("Milliseconds each kernel step may take"), N_("MS")},
        {NULL},
    };
    GOptionEntry xml_entries[] = {
        {"merge", 0, 0, G_OPTION_ARG_FILENAME, &opt_merge,
         N_("Insert the devices into the domain XML in FILE"), N_("FILE")},
        {"domain", 0, 0, G_OPTION_ARG_STRING, &opt_domain,
         N_("Insert the devices into the definition of the libvirt domain NAME"), N_("NAME")},
        {"new-domain", 0, 0, G_OPTION_ARG_STRING, &opt_new_domain,
         N_("Write a new minimal s390x domain NAME with the devices"), N_("NAME")},
        {"policy", 0, 0, G_OPTION_ARG_STRING, &opt_policy,
         N_("Guest uid and fid: mirror, auto or explicit"), N_("POLICY")},
        {"interpretation", 0, 0, G_OPTION_ARG_STRING, &opt_interpretation,
         N_("zPCI interpretation: required, preferred (default) or off"), N_("MODE")},
        {"unmanaged", 0, 0, G_OPTION_ARG_NONE, &opt_unmanaged,
         N_("Write managed='no': libvirt does not bind the function itself"), NULL},
        {"live", 0, 0, G_OPTION_ARG_NONE, &opt_live,
         N_("Attach or detach: change the running domain only"), NULL},
        {"config", 0, 0, G_OPTION_ARG_NONE, &opt_config,
         N_("Attach or detach: change the persistent definition only"), NULL},
        {NULL},
    };
    GOptionGroup *group;
    int status;

    zpcid_i18n_init();
    /* monitor prints as things happen, also into a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    options = g_option_context_new(_("COMMAND [ARGUMENTS…]"));
    g_option_context_add_main_entries(options, entries, GETTEXT_PACKAGE);
    group = g_option_group_new("bind", _("Options of bind and unbind:"),
                               _("Show the options of bind and unbind"), NULL, NULL);
    g_option_group_add_entries(group, bind_entries);
    g_option_group_set_translation_domain(group, GETTEXT_PACKAGE);
    g_option_context_add_group(options, group);
    group = g_option_group_new("xml", _("Options of xml, attach and detach:"),
                               _("Show the options of xml, attach and detach"), NULL, NULL);
    g_option_group_add_entries(group, xml_entries);
    g_option_group_set_translation_domain(group, GETTEXT_PACKAGE);
    g_option_context_add_group(options, group);
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
    ctx.allow_interaction = !opt_no_interaction;
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
    misplaced = misplaced_option(command);
    if (misplaced != NULL) {
        g_autofree char *message = g_strdup_printf(_("The command “%s” does not take the option "
                                                     "%s."),
                                                   command->name, misplaced);
        return usage_error(&ctx, message);
    }
    if (command->needs_daemon && opt_host_root != NULL) {
        g_autofree char *message = g_strdup_printf(_("The command “%s” needs the zpcid daemon; "
                                                     "leave out --host-root."),
                                                   command->name);
        return usage_error(&ctx, message);
    }

    ctx.host_root = g_steal_pointer(&opt_host_root);
    if (opt_bus_address != NULL)
        ctx.bus_address = g_steal_pointer(&opt_bus_address);
    else if (g_getenv(ZPCID_ENV_BUS_ADDRESS) != NULL)
        ctx.bus_address = g_strdup(g_getenv(ZPCID_ENV_BUS_ADDRESS));
    if (!cli_source_open(&ctx, &error)) {
        status = fail(&ctx, error);
        cli_source_close(&ctx);
        return status;
    }
    status = command->run(&ctx, argc - 1, argv + 1);
    cli_source_close(&ctx);
    return status;
}
