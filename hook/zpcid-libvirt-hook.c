/* zpcid-libvirt-hook: libvirt's QEMU hook for zPCI passthrough (zpcid-libvirt-hook(8)).
 *
 * libvirt runs it as “<hook> <domain> <operation> <sub-operation> <extra>” with the domain
 * XML on stdin. On “prepare begin” it checks the host's readiness for the domain's zPCI
 * hostdevs and binds the unmanaged ones when configured to; on “release end” it gives back
 * exactly the functions it bound for this domain (recorded by zpcid with the Bind option
 * “owner”). Everything else passes through untouched. It never calls libvirt: libvirt waits
 * for the hook with the domain locked. */
#include <glib/gi18n-lib.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "hook-bus.h"
#include "hook-domain.h"
#include "i18n.h"
#include "zpcid-names.h"

/* Exit statuses (zpcid-libvirt-hook(8)). */
enum {
    HOOK_EXIT_OK = 0,
    HOOK_EXIT_REFUSED = 1, /* prepare: the start is refused; release: something failed */
    HOOK_EXIT_USAGE = 2,
};

typedef struct {
    const char *domain; /* the name libvirt passed */
    ZpcidConfig config;
    HookDomain *dom;
    GPtrArray *hostdevs; /* HookHostdev*, of dom: after keep_zpci_functions() the zPCI ones */
    gboolean interpretation_required; /* by the configuration or the domain's metadata */
    gboolean required_by_domain;      /* …by the domain's zpcid metadata */
} Hook;

static void
hook_clear(Hook *hook)
{
    zpcid_config_clear(&hook->config);
    g_clear_pointer(&hook->dom, hook_domain_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Hook, hook_clear)

/* Messages go to stderr as UTF-8 whatever the locale: libvirt runs hooks with LC_ALL=C and
 * puts their stderr into its error message verbatim. */
static void
say(const char *message)
{
    fputs(message, stderr);
    if (*message != '\0' && message[strlen(message) - 1] != '\n')
        fputc('\n', stderr);
}

/* Keeps the hostdevs zpcid knows as zPCI functions of this host. FALSE when zpcid could not
 * be asked. */
static gboolean
keep_zpci_functions(Hook *hook, HookBus *bus, GError **error)
{
    for (guint i = 0; i < hook->hostdevs->len;) {
        HookHostdev *h = g_ptr_array_index(hook->hostdevs, i);
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) reply =
            hook_bus_call(bus, "ResolveFunction", g_variant_new("(sa{sv})", h->address, NULL),
                          G_VARIANT_TYPE("(o)"), &local);

        if (reply != NULL) {
            i++;
            continue;
        }
        if (g_error_matches(local, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND) ||
            g_error_matches(local, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT)) {
            /* Not a zPCI function of this host: libvirt's business alone. */
            g_ptr_array_remove_index(hook->hostdevs, i);
            continue;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    return TRUE;
}

static char *
owner_of(Hook *hook)
{
    if (hook->dom->uuid != NULL && *hook->dom->uuid != '\0')
        return g_strconcat(ZPCID_HOOK_OWNER_PREFIX, hook->dom->uuid, NULL);
    /* libvirt always writes a <uuid>; a hand-made document may not have one. */
    return g_strconcat(ZPCID_HOOK_OWNER_PREFIX, "name:", hook->domain, NULL);
}

/* Bind/Unbind options of the hook. The domain guard is left to libvirt: asking libvirt which
 * domains use a function would wait for the very domain libvirt holds locked while it runs
 * this hook, and libvirt itself refuses a function another running domain uses. */
static GVariant *
bind_options(Hook *hook)
{
    GVariantBuilder b;
    g_autofree char *owner = owner_of(hook);
    const char *guards[] = {"domain", NULL};

    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_NO_USER_INTERACTION,
                          g_variant_new_boolean(TRUE));
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_OWNER, g_variant_new_string(owner));
    g_variant_builder_add(&b, "{sv}", ZPCID_OPTION_ALLOW_GUARDS, g_variant_new_strv(guards, -1));
    return g_variant_builder_end(&b);
}

static GVariant *
specs_of(GPtrArray *hostdevs, gboolean unmanaged_only)
{
    GVariantBuilder b;

    g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint i = 0; i < hostdevs->len; i++) {
        const HookHostdev *h = g_ptr_array_index(hostdevs, i);
        if (!unmanaged_only || !h->managed)
            g_variant_builder_add(&b, "s", h->address);
    }
    return g_variant_builder_end(&b);
}

/* The failing checks of a Check() report, one sentence (and remedy) per line. */
static void
append_failed_checks(GString *out, GVariant *results)
{
    GVariantIter iter;
    const char *id, *status, *summary, *detail, *remedy;

    g_variant_iter_init(&iter, results);
    while (g_variant_iter_next(&iter, "(&s&s&s&s&s)", &id, &status, &summary, &detail, &remedy)) {
        if (!g_str_equal(status, "fail"))
            continue;
        g_string_append_c(out, '\n');
        g_string_append_printf(out, _("The check “%s” failed: %s"), id, summary);
        if (*remedy != '\0') {
            g_string_append_c(out, ' ');
            g_string_append_printf(out, _("What to do: %s"), remedy);
        }
    }
}

/* zpcid could not be asked. Refuse only when something had to be done or checked. */
static int
prepare_unreachable(Hook *hook, const GError *error)
{
    g_autofree char *message = NULL;
    guint unmanaged = hook_domain_count_unmanaged(hook->hostdevs);

    if (hook->interpretation_required || (hook->config.hook_bind_unmanaged && unmanaged > 0)) {
        message = g_strdup_printf(
            hook->interpretation_required
                ? _("zpcid refuses to start the domain “%s”: it requires zPCI interpretation, "
                    "which only zpcid can check, and zpcid could not be asked: %s Start zpcid "
                    "(“systemctl start zpcid”) and try again.")
                : _("zpcid refuses to start the domain “%s”: its unmanaged PCI functions must "
                    "be bound to vfio-pci first, and zpcid could not be asked: %s Start zpcid "
                    "(“systemctl start zpcid”), or bind them with “zpcidctl bind”, and try "
                    "again."),
            hook->domain, error->message);
        say(message);
        return HOOK_EXIT_REFUSED;
    }
    message = g_strdup_printf(_("zpcid did not check the PCI functions of the domain “%s”: %s "
                                "libvirt checks vfio-pci itself."),
                              hook->domain, error->message);
    say(message);
    return HOOK_EXIT_OK;
}

static int
prepare(Hook *hook, HookBus *bus)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) report = NULL;
    g_autoptr(GVariant) results = NULL;
    const char *verdict;

    if (!hook_bus_connect(bus, &error) || !keep_zpci_functions(hook, bus, &error))
        return prepare_unreachable(hook, error);
    if (hook->hostdevs->len == 0)
        return HOOK_EXIT_OK;

    report = hook_bus_call(bus, "Check", g_variant_new("(a{sv})", NULL),
                           G_VARIANT_TYPE("(sa(sssss))"), &error);
    if (report == NULL)
        return prepare_unreachable(hook, error);
    g_variant_get(report, "(&s@a(sssss))", &verdict, &results);
    if (g_str_equal(verdict, "none") ||
        (hook->interpretation_required && !g_str_equal(verdict, "interpretation"))) {
        g_autoptr(GString) message = g_string_new(NULL);

        if (g_str_equal(verdict, "none"))
            g_string_append_printf(message,
                                   _("zpcid refuses to start the domain “%s”: this host cannot "
                                     "pass zPCI functions through to KVM guests."),
                                   hook->domain);
        else if (hook->required_by_domain)
            g_string_append_printf(message,
                                   _("zpcid refuses to start the domain “%s”: its zpcid "
                                     "metadata requires zPCI interpretation, but this host "
                                     "offers only “%s”."),
                                   hook->domain, verdict);
        else
            g_string_append_printf(message,
                                   _("zpcid refuses to start the domain “%s”: "
                                     "“require-interpretation” is set in zpcid.conf, but this "
                                     "host offers only “%s”."),
                                   hook->domain, verdict);
        append_failed_checks(message, results);
        say(message->str);
        return HOOK_EXIT_REFUSED;
    }

    if (hook->config.hook_bind_unmanaged && hook_domain_count_unmanaged(hook->hostdevs) > 0) {
        g_autoptr(GVariant) bound = hook_bus_call(
            bus, "Bind",
            g_variant_new("(@as@a{sv})", specs_of(hook->hostdevs, TRUE), bind_options(hook)),
            G_VARIANT_TYPE("(ao)"), &error);

        if (bound == NULL) {
            g_autofree char *message = g_strdup_printf(
                _("zpcid refuses to start the domain “%s”: its unmanaged PCI functions could "
                  "not be bound to vfio-pci: %s"),
                hook->domain, error->message);
            say(message);
            return HOOK_EXIT_REFUSED;
        }
    }
    return HOOK_EXIT_OK;
}

static int
release_failed(Hook *hook, const GError *error)
{
    g_autofree char *message = g_strdup_printf(
        _("zpcid could not give the PCI functions of the domain “%s” back to their host "
          "drivers: %s Give them back with “zpcidctl unbind”."),
        hook->domain, error->message);

    say(message);
    return HOOK_EXIT_REFUSED;
}

static int
release(Hook *hook, HookBus *bus)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) given_back = NULL;

    if (!hook_bus_connect(bus, &error) || !keep_zpci_functions(hook, bus, &error))
        return release_failed(hook, error);
    if (hook->hostdevs->len == 0)
        return HOOK_EXIT_OK;
    /* Only what this hook bound for this domain: Unbind skips other owners' functions. */
    given_back = hook_bus_call(
        bus, "Unbind",
        g_variant_new("(@as@a{sv})", specs_of(hook->hostdevs, FALSE), bind_options(hook)),
        G_VARIANT_TYPE("(ao)"), &error);
    if (given_back == NULL)
        return release_failed(hook, error);
    return HOOK_EXIT_OK;
}

int
main(int argc, char **argv)
{
    g_auto(Hook) hook = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) config_error = NULL;
    g_autoptr(HookBus) bus = NULL;
    g_autofree char *stop_message = NULL;
    const char *config_path = g_getenv(ZPCID_ENV_CONFIG_FILE);
    gboolean is_prepare, is_release;
    int status;

    zpcid_i18n_init();

    if (argc < 4) {
        say(_("Usage: zpcid-libvirt-hook DOMAIN OPERATION SUB-OPERATION [EXTRA], with the "
              "domain XML on standard input; libvirt runs it from /etc/libvirt/hooks/qemu.d/."));
        return HOOK_EXIT_USAGE;
    }
    hook.domain = argv[1];
    is_prepare = g_str_equal(argv[2], "prepare") && g_str_equal(argv[3], "begin");
    is_release = g_str_equal(argv[2], "release") && g_str_equal(argv[3], "end");
    if (!is_prepare && !is_release) {
        /* Nothing to print: for migrate and restore, empty output means “XML unchanged”. */
        hook_domain_drain_stdin();
        return HOOK_EXIT_OK;
    }

    zpcid_config_init(&hook.config);
    if (!zpcid_config_load(&hook.config,
                           config_path != NULL ? config_path : ZPCID_DEFAULT_CONFIG_FILE,
                           config_path != NULL, NULL, &config_error)) {
        /* Judged once the domain is known: a domain without PCI hostdevs does not care. */
        zpcid_config_clear(&hook.config);
        zpcid_config_init(&hook.config);
    }

    /* The budget covers everything from here on, reading the XML included. */
    stop_message = g_strdup_printf(is_prepare ? _("zpcid refuses to start the domain “%s”: the "
                                                  "hook ran out of time.")
                                              : _("zpcid's hook ran out of time giving back the "
                                                  "PCI functions of the domain “%s”."),
                                   hook.domain);
    bus = hook_bus_new(hook.config.hook_timeout_ms, HOOK_EXIT_REFUSED, stop_message);
    hook.dom = hook_domain_read_stdin(&error);
    if (hook.dom == NULL) {
        g_autofree char *message = g_strdup_printf(
            is_prepare ? _("zpcid refuses to start the domain “%s”: the domain XML on standard "
                           "input could not be read: %s")
                       : _("zpcid cannot give back the PCI functions of the domain “%s”: the "
                           "domain XML on standard input could not be read: %s"),
            hook.domain, error->message);
        say(message);
        return HOOK_EXIT_REFUSED;
    }
    /* Trimmed to the zPCI functions once zpcid has been asked. */
    hook.hostdevs = hook.dom->hostdevs;
    hook.required_by_domain = hook.dom->interpretation_required;
    hook.interpretation_required =
        hook.config.hook_require_interpretation || hook.required_by_domain;
    /* No PCI hostdev at all: zpcid is not asked. */
    if (hook.hostdevs->len == 0)
        return HOOK_EXIT_OK;
    if (config_error != NULL) {
        g_autofree char *message = g_strdup_printf(
            is_prepare ? _("zpcid refuses to start the domain “%s”: its configuration could not "
                           "be read, and it might forbid the start: %s")
                       : _("zpcid's configuration could not be read; the hook gives back the "
                           "PCI functions of the domain “%s” with the defaults: %s"),
            hook.domain, config_error->message);
        say(message);
        if (is_prepare)
            return HOOK_EXIT_REFUSED;
    }
    status = is_prepare ? prepare(&hook, bus) : release(&hook, bus);
    return status;
}
