/* The D-Bus methods of org.zpcid1.Manager and org.zpcid1.Function. Every handler checks its
 * arguments first (cheap, no side effects), then asks for authorization, then does the work
 * off the main loop, and replies once the function properties show the result. */
#include "service-private.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "domxml.h"
#include "error.h"
#include "variant.h"
#include "virt.h"
#include "zpcid-names.h"

/* ---- errors and options ---- */

/* Every error leaves under org.zpcid1.Error.*, whatever part of the code raised it. */
static void
return_error(GDBusMethodInvocation *invocation, const GError *error)
{
    const char *name = ZPCID_DBUS_ERROR_FAILED;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        /* Only the shutdown cancels (service.c); work it stopped explains itself (Bind and
         * Unbind), so this is a call stopped before it began, e.g. in its authorization. */
        g_dbus_method_invocation_return_dbus_error(
            invocation, name,
            _("zpcid is stopping, so the request was not carried out; nothing was changed."));
        return;
    }
    if (error->domain == ZPCID_ERROR)
        name = zpcid_error_dbus_name((ZpcidError)error->code);
    g_dbus_method_invocation_return_dbus_error(invocation, name, error->message);
}

typedef struct {
    const char *key;
    const char *type;
} OptionSpec;

static const OptionSpec no_options[] = {{NULL, NULL}};

static const OptionSpec xml_options[] = {
    {ZPCID_OPTION_POLICY, "s"},
    {ZPCID_OPTION_IDS, "a(uu)"},
    {ZPCID_OPTION_INTERPRETATION, "s"},
    {ZPCID_OPTION_MANAGED, "b"},
    {NULL, NULL},
};

static const OptionSpec domain_xml_options[] = {
    {ZPCID_OPTION_POLICY, "s"},         {ZPCID_OPTION_IDS, "a(uu)"},
    {ZPCID_OPTION_INTERPRETATION, "s"}, {ZPCID_OPTION_MANAGED, "b"},
    {ZPCID_OPTION_MERGE, "s"},          {ZPCID_OPTION_DOMAIN, "s"},
    {ZPCID_OPTION_NEW_DOMAIN, "s"},     {NULL, NULL},
};

static const OptionSpec attach_options[] = {
    {ZPCID_OPTION_POLICY, "s"},
    {ZPCID_OPTION_IDS, "a(uu)"},
    {ZPCID_OPTION_INTERPRETATION, "s"},
    {ZPCID_OPTION_MANAGED, "b"},
    {ZPCID_OPTION_LIVE, "b"},
    {ZPCID_OPTION_CONFIG, "b"},
    {NULL, NULL},
};

static const OptionSpec detach_options[] = {
    {ZPCID_OPTION_LIVE, "b"},
    {ZPCID_OPTION_CONFIG, "b"},
    {NULL, NULL},
};

/* Refuses unknown keys and wrong types. With @known NULL, keys outside "auth." are left to a
 * later parser (the binder's). */
static gboolean
check_options(GDBusMethodInvocation *invocation, GVariant *options, const OptionSpec *known,
              gboolean *allow_interaction, GError **error)
{
    const char *method = g_dbus_method_invocation_get_method_name(invocation);
    GVariantIter iter;
    const char *key;
    GVariant *value;

    *allow_interaction = TRUE;
    g_variant_iter_init(&iter, options);
    while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        const char *type = NULL;

        if (g_str_equal(key, ZPCID_OPTION_NO_USER_INTERACTION))
            type = "b";
        for (guint i = 0; known != NULL && type == NULL && known[i].key != NULL; i++) {
            if (g_str_equal(key, known[i].key))
                type = known[i].type;
        }
        if (type == NULL) {
            g_autofree char *quoted = NULL;

            if (known == NULL && !g_str_has_prefix(key, "auth."))
                continue;
            quoted = zpcid_error_quote(key);
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The method “%s” has no option “%s”."), method, quoted);
            return FALSE;
        }
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE(type))) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The option “%s” of the method “%s” takes a value of type “%s”, not "
                          "“%s”."),
                        key, method, type, g_variant_get_type_string(v));
            return FALSE;
        }
        if (g_str_equal(key, ZPCID_OPTION_NO_USER_INTERACTION))
            *allow_interaction = !g_variant_get_boolean(v);
    }
    return TRUE;
}

/* Names no libvirt domain can have are refused before libvirt is asked: libvirt itself
 * refuses "/" and new lines in names, and its QEMU driver keeps files named after the domain,
 * so a name never exceeds a file name (255 bytes). */
#define DOMAIN_NAME_MAX 255

static gboolean
check_domain_name(const char *name, GError **error)
{
    g_autofree char *quoted = NULL;
    gboolean ok = *name != '\0' && strlen(name) <= DOMAIN_NAME_MAX &&
                  g_utf8_validate(name, -1, NULL) && strchr(name, '/') == NULL;

    for (const char *p = name; ok && *p != '\0'; p++)
        ok = !g_ascii_iscntrl(*p);
    if (ok)
        return TRUE;
    if (*name == '\0') {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("A domain name must not be empty."));
        return FALSE;
    }
    quoted = zpcid_error_quote(name);
    g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                _("“%s” cannot be the name of a libvirt domain: names are at most %d bytes of "
                  "UTF-8 without “/” or control characters."),
                quoted, DOMAIN_NAME_MAX);
    return FALSE;
}

static const char *
lookup_string_option(GVariant *options, const char *key)
{
    const char *value = NULL;

    g_variant_lookup(options, key, "&s", &value);
    return value;
}

/* ---- functions ---- */

static GPtrArray *
resolve_specs(ZpcidService *self, const char *const *specs, GError **error)
{
    g_autoptr(GPtrArray) functions =
        g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_function_unref);

    if (specs == NULL || specs[0] == NULL) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("No function was given; name at least one by FID, uid:UID or PCI "
                              "address."));
        return NULL;
    }
    for (guint i = 0; specs[i] != NULL; i++) {
        ZpcidFunction *f = zpcid_inventory_resolve(self->inventory, specs[i], error);

        if (f == NULL)
            return NULL;
        for (guint j = 0; j < functions->len; j++) {
            const ZpcidFunction *other = g_ptr_array_index(functions, j);
            if (other->fid == f->fid) {
                g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The function “0x%08x” is named twice (“%s”)."), (guint32)f->fid,
                            specs[i]);
                zpcid_function_unref(f);
                return NULL;
            }
        }
        g_ptr_array_add(functions, f);
    }
    return g_steal_pointer(&functions);
}

/* “0x00001822”, “0x00001823” for messages. */
static char *
function_list(GPtrArray *functions)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < functions->len; i++) {
        const ZpcidFunction *f = g_ptr_array_index(functions, i);
        g_string_append_printf(s, "%s“0x%08x”", i > 0 ? ", " : "", (guint32)f->fid);
    }
    return g_string_free(s, FALSE);
}

static gboolean
check_changes_allowed(ZpcidService *self, GError **error)
{
    if (self->options.allow_changes)
        return TRUE;
    g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_UNSUPPORTED,
                        _("This zpcid runs on the session bus with the real host, where it never "
                          "changes devices or domains; give it a host tree with --host-root, or "
                          "run it on the system bus."));
    return FALSE;
}

static GHashTable *
auth_details(GPtrArray *functions, const char *domain, GVariant *options)
{
    GHashTable *details = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    g_autoptr(GString) fids = g_string_new(NULL);
    g_autoptr(GString) uids = g_string_new(NULL);
    g_autoptr(GString) addresses = g_string_new(NULL);
    g_autoptr(GString) ids = g_string_new(NULL);
    g_autofree const char **guards = NULL;

    for (guint i = 0; i < functions->len; i++) {
        const ZpcidFunction *f = g_ptr_array_index(functions, i);
        const char *sep = i > 0 ? "," : "";

        g_string_append_printf(fids, "%s0x%08x", sep, (guint32)f->fid);
        if (f->uid >= 0)
            g_string_append_printf(uids, "%s0x%04x", sep, (guint)f->uid);
        else
            g_string_append(uids, sep);
        g_string_append_printf(addresses, "%s%s", sep, f->address != NULL ? f->address : "");
        if (f->vendor_id >= 0 && f->device_id >= 0)
            g_string_append_printf(ids, "%s%04x:%04x", sep, (guint)f->vendor_id,
                                   (guint)f->device_id);
        else
            g_string_append(ids, sep);
    }
    g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_FID, g_strdup(fids->str));
    g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_UID, g_strdup(uids->str));
    g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_ADDRESS, g_strdup(addresses->str));
    g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_PCI_ID, g_strdup(ids->str));
    if (domain != NULL)
        g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_DOMAIN, g_strdup(domain));
    if (g_variant_lookup(options, ZPCID_OPTION_ALLOW_GUARDS, "^a&s", &guards))
        g_hash_table_insert(details, ZPCID_POLKIT_DETAIL_ALLOW_GUARDS,
                            g_strjoinv(",", (char **)guards));
    return details;
}

/* One method call in flight. */
typedef struct {
    ZpcidService *service;
    GDBusMethodInvocation *invocation;
    GPtrArray *functions; /* ZpcidFunction, as resolved */
    GArray *fids;         /* guint32, in request order */
    gboolean unbind;
    gboolean single; /* org.zpcid1.Function method: no return value */
    ZpcidBindOptions bind_options;
    char *domain;
    GVariant *options;
} Call;

static Call *
call_new(ZpcidService *self, GDBusMethodInvocation *invocation, GPtrArray *functions,
         GVariant *options)
{
    Call *call = g_new0(Call, 1);

    call->service = g_object_ref(self);
    call->invocation = g_object_ref(invocation);
    call->functions = g_ptr_array_ref(functions);
    call->options = g_variant_ref(options);
    call->fids = g_array_sized_new(FALSE, FALSE, sizeof(guint32), functions->len);
    for (guint i = 0; i < functions->len; i++) {
        const ZpcidFunction *f = g_ptr_array_index(functions, i);
        guint32 fid = (guint32)f->fid;
        g_array_append_val(call->fids, fid);
    }
    return call;
}

static void
call_free(Call *call)
{
    g_object_unref(call->service);
    g_object_unref(call->invocation);
    g_ptr_array_unref(call->functions);
    g_array_unref(call->fids);
    g_variant_unref(call->options);
    g_free(call->domain);
    g_free(call);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Call, call_free)

/* ---- Check, ResolveFunction ---- */

static gboolean
handle_check(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation, GVariant *options,
             ZpcidService *self)
{
    g_autoptr(GError) error = NULL;
    const ZpcidReport *report;
    gboolean interactive;

    if (!check_options(invocation, options, no_options, &interactive, &error)) {
        return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    report = zpcid_service_get_readiness(self);
    /* The Passthrough/InterpretationReady properties go out before the reply that agrees. */
    g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(self->manager));
    g_dbus_method_invocation_return_value(invocation, zpcid_report_to_variant(report));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_resolve_function(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation,
                        const char *spec, GVariant *options, ZpcidService *self)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidFunction) f = NULL;
    g_autofree char *path = NULL;
    gboolean interactive;

    if (!check_options(invocation, options, no_options, &interactive, &error) ||
        (f = zpcid_inventory_resolve(self->inventory, spec, &error)) == NULL) {
        return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    path = zpcid_function_tree_path((guint32)f->fid);
    zpcid_dbus_manager_complete_resolve_function(manager, invocation, path);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- Bind, Unbind ---- */

static void
on_bind_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(Call) call = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidBindReport) report = NULL;
    g_autofree char *list = function_list(call->functions);
    const char *sender = g_dbus_method_invocation_get_sender(call->invocation);
    GVariantBuilder paths;

    report = call->unbind ? zpcid_binder_unbind_finish(ZPCID_BINDER(source), result, &error)
                          : zpcid_binder_bind_finish(ZPCID_BINDER(source), result, &error);
    if (report == NULL) {
        g_message("%s of %s for %s failed: %s", call->unbind ? "Unbind" : "Bind", list, sender,
                  error->message);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            /* Only the shutdown cancels (service.c): the transaction was rolled back. */
            g_clear_error(&error);
            g_set_error(&error, ZPCID_ERROR, ZPCID_ERROR_FAILED,
                        _("zpcid is stopping, so the request for %s was rolled back; every "
                          "function is as it was before."),
                        list);
        }
        return_error(call->invocation, error);
        return;
    }
    for (guint i = 0; i < report->functions->len; i++) {
        const ZpcidBindFunctionResult *r = g_ptr_array_index(report->functions, i);
        if (r->outcome == ZPCID_BIND_OUTCOME_CHANGED)
            g_message("%s moved the function 0x%08x from “%s” to “%s”.", sender, r->fid,
                      r->driver_before != NULL ? r->driver_before : "(none)",
                      r->driver_after != NULL ? r->driver_after : "(none)");
    }
    for (guint i = 0; i < report->warnings->len; i++)
        g_message("%s", (const char *)g_ptr_array_index(report->warnings, i));
    if (call->single) {
        g_dbus_method_invocation_return_value(call->invocation, NULL);
        return;
    }
    /* The report, not the request: Unbind with an owner leaves other owners' functions out. */
    g_variant_builder_init(&paths, G_VARIANT_TYPE_OBJECT_PATH_ARRAY);
    for (guint i = 0; i < report->functions->len; i++) {
        const ZpcidBindFunctionResult *r = g_ptr_array_index(report->functions, i);
        g_autofree char *path = zpcid_function_tree_path(r->fid);
        g_variant_builder_add(&paths, "o", path);
    }
    g_dbus_method_invocation_return_value(call->invocation, g_variant_new("(ao)", &paths));
}

static void
on_bind_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Call *call = user_data;
    ZpcidService *self = call->service;
    g_autoptr(GError) error = NULL;

    if (!zpcid_auth_check_finish(ZPCID_AUTH(source), result, &error)) {
        return_error(call->invocation, error);
        call_free(call);
        return;
    }
    if (call->unbind)
        zpcid_binder_unbind_async(self->binder, (const guint32 *)call->fids->data, call->fids->len,
                                  &call->bind_options, self->cancellable, on_bind_done, call);
    else
        zpcid_binder_bind_async(self->binder, (const guint32 *)call->fids->data, call->fids->len,
                                &call->bind_options, self->cancellable, on_bind_done, call);
}

static void
start_bind(ZpcidService *self, GDBusMethodInvocation *invocation, GPtrArray *functions,
           GVariant *options, gboolean unbind, gboolean single)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) details = NULL;
    g_autofree char *list = NULL;
    g_autofree char *denied = NULL;
    ZpcidBindOptions bind_options = ZPCID_BIND_OPTIONS_INIT;
    gboolean interactive;
    Call *call;

    if (!check_options(invocation, options, NULL, &interactive, &error) ||
        !zpcid_bind_options_from_variant(options, &bind_options, &error) ||
        !check_changes_allowed(self, &error)) {
        return_error(invocation, error);
        return;
    }
    list = function_list(functions);
    denied = unbind ? g_strdup_printf(g_dngettext(GETTEXT_PACKAGE,
                                                  "You are not authorized to give the function "
                                                  "%s back to its host driver.",
                                                  "You are not authorized to give the functions "
                                                  "%s back to their host drivers.",
                                                  functions->len),
                                      list)
                    : g_strdup_printf(g_dngettext(GETTEXT_PACKAGE,
                                                  "You are not authorized to bind the function %s "
                                                  "to vfio-pci.",
                                                  "You are not authorized to bind the functions %s "
                                                  "to vfio-pci.",
                                                  functions->len),
                                      list);
    call = call_new(self, invocation, functions, options);
    call->unbind = unbind;
    call->single = single;
    call->bind_options = bind_options;
    details = auth_details(functions, NULL, options);
    zpcid_auth_check_async(self->auth, invocation,
                           unbind ? ZPCID_POLKIT_ACTION_UNBIND : ZPCID_POLKIT_ACTION_BIND, details,
                           interactive, denied, self->cancellable, on_bind_authorized, call);
}

static gboolean
handle_bind_specs(GDBusMethodInvocation *invocation, const char *const *specs, GVariant *options,
                  ZpcidService *self, gboolean unbind)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) functions = NULL;
    ZpcidBindOptions bind_options = ZPCID_BIND_OPTIONS_INIT;
    gboolean interactive;

    /* Options before specs: a typo in an option is the clearer error. */
    if (!check_options(invocation, options, NULL, &interactive, &error) ||
        !zpcid_bind_options_from_variant(options, &bind_options, &error) ||
        (functions = resolve_specs(self, specs, &error)) == NULL) {
        return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    start_bind(self, invocation, functions, options, unbind, FALSE);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_bind(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation, const char *const *specs,
            GVariant *options, ZpcidService *self)
{
    return handle_bind_specs(invocation, specs, options, self, FALSE);
}

static gboolean
handle_unbind(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation,
              const char *const *specs, GVariant *options, ZpcidService *self)
{
    return handle_bind_specs(invocation, specs, options, self, TRUE);
}

/* ---- libvirt XML ---- */

/* A ZpcidDomxmlRequest with the storage it points into. */
typedef struct {
    ZpcidDomxmlRequest request;
    GArray *functions; /* ZpcidDomxmlFunction */
    GArray *ids;       /* ZpcidZpciIds */
    char *check;
    char *summary;
    char *remedy;
    /* What the job does with it. */
    char *domain;
    char *merge;
    char *new_domain;
    gboolean live;
    gboolean config;
    gboolean affect_given;
} XmlJob;

static void
xml_job_free(XmlJob *job)
{
    g_array_unref(job->functions);
    g_array_unref(job->ids);
    g_free(job->check);
    g_free(job->summary);
    g_free(job->remedy);
    g_free(job->domain);
    g_free(job->merge);
    g_free(job->new_domain);
    g_free(job);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XmlJob, xml_job_free)

static gboolean
host_has_uid_checking(ZpcidService *self)
{
    const ZpcidCheck *check = zpcid_report_find(self->report, "uid-checking");
    return check != NULL && check->status == ZPCID_CHECK_PASS;
}

/* What zpcid knows about the host, in the form the XML writer needs. @for_detach: only the
 * source addresses matter (libvirt matches hostdevs by source). */
static XmlJob *
xml_job_new(ZpcidService *self, GPtrArray *functions, GVariant *options, gboolean for_detach,
            GError **error)
{
    g_autoptr(XmlJob) job = g_new0(XmlJob, 1);
    const char *policy = lookup_string_option(options, ZPCID_OPTION_POLICY);
    const char *interpretation = lookup_string_option(options, ZPCID_OPTION_INTERPRETATION);
    g_autoptr(GVariant) ids =
        g_variant_lookup_value(options, ZPCID_OPTION_IDS, G_VARIANT_TYPE("a(uu)"));
    gboolean managed = TRUE;
    gboolean all_checking = TRUE;
    gboolean host_checking = host_has_uid_checking(self);
    const ZpcidCheck *failure;

    g_variant_lookup(options, ZPCID_OPTION_MANAGED, "b", &managed);
    job->functions = g_array_new(FALSE, TRUE, sizeof(ZpcidDomxmlFunction));
    job->ids = g_array_new(FALSE, TRUE, sizeof(ZpcidZpciIds));
    for (guint i = 0; i < functions->len; i++) {
        const ZpcidFunction *f = g_ptr_array_index(functions, i);
        ZpcidDomxmlFunction fn = {0};

        if (f->address == NULL) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_READY,
                        _("The function “0x%08x” is in standby and has no PCI address; configure "
                          "it before passing it through."),
                        (guint32)f->fid);
            return NULL;
        }
        if (!zpcid_pci_address_parse(f->address, &fn.address, error))
            return NULL;
        fn.fid = (guint32)f->fid;
        fn.uid_known = f->uid > 0;
        fn.uid = fn.uid_known ? (guint32)f->uid : 0;
        fn.uid_checking = host_checking || f->uid_is_unique == 1;
        fn.managed = managed;
        all_checking = all_checking && fn.uid_checking;
        g_array_append_val(job->functions, fn);
    }

    if (for_detach) {
        job->request.policy = ZPCID_ZPCI_POLICY_AUTO;
    } else if (policy != NULL) {
        if (!zpcid_zpci_policy_from_string(policy, &job->request.policy, error))
            return NULL;
    } else {
        /* Mirroring the host's ids is what a guest should see whenever the host allows it. */
        job->request.policy = all_checking ? ZPCID_ZPCI_POLICY_MIRROR : ZPCID_ZPCI_POLICY_AUTO;
    }
    if (job->request.policy == ZPCID_ZPCI_POLICY_EXPLICIT) {
        gsize n = ids != NULL ? g_variant_n_children(ids) : 0;
        GVariantIter iter;
        ZpcidZpciIds pair;

        if (n != functions->len) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                        _("The policy “explicit” needs one (uid, fid) pair per function in the "
                          "option “ids”: %zu given for %u functions."),
                        n, functions->len);
            return NULL;
        }
        g_variant_iter_init(&iter, ids);
        while (g_variant_iter_next(&iter, "(uu)", &pair.uid, &pair.fid))
            g_array_append_val(job->ids, pair);
    } else if (ids != NULL) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The option “ids” is used only with the policy “explicit”."));
        return NULL;
    }
    if (for_detach) {
        job->request.interpretation = ZPCID_INTERPRETATION_OFF;
    } else if (interpretation != NULL) {
        if (!zpcid_interpretation_from_string(interpretation, &job->request.interpretation, error))
            return NULL;
    } else {
        job->request.interpretation = ZPCID_INTERPRETATION_PREFERRED;
    }

    failure = zpcid_report_first_failure(self->report, ZPCID_AFFECTS_INTERPRETATION);
    job->request.verdict.ok = self->report->interpretation;
    if (failure != NULL) {
        job->check = g_strdup(failure->id);
        job->summary = g_strdup(failure->summary);
        job->remedy = g_strdup(failure->remedy);
    }
    job->request.verdict.check = job->check;
    job->request.verdict.summary = job->summary;
    job->request.verdict.remedy = job->remedy;
    job->request.functions = (const ZpcidDomxmlFunction *)job->functions->data;
    job->request.n_functions = job->functions->len;
    job->request.explicit_ids = (const ZpcidZpciIds *)job->ids->data;

    job->live = FALSE;
    job->config = FALSE;
    if (g_variant_lookup(options, ZPCID_OPTION_LIVE, "b", &job->live))
        job->affect_given = TRUE;
    if (g_variant_lookup(options, ZPCID_OPTION_CONFIG, "b", &job->config))
        job->affect_given = TRUE;
    if (job->affect_given && !job->live && !job->config) {
        g_set_error_literal(error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("With “live” and “config” both false nothing would be changed; leave "
                              "both out for the default."));
        return NULL;
    }
    return g_steal_pointer(&job);
}

static void
log_warnings(GPtrArray *warnings)
{
    for (guint i = 0; warnings != NULL && i < warnings->len; i++)
        g_info("%s", (const char *)g_ptr_array_index(warnings, i));
}

/* The hostdevs one after the other, each a complete element. */
static char *
join_hostdevs(GPtrArray *hostdevs)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < hostdevs->len; i++) {
        const char *xml = g_ptr_array_index(hostdevs, i);
        g_string_append(s, xml);
        if (s->len > 0 && s->str[s->len - 1] != '\n')
            g_string_append_c(s, '\n');
    }
    return g_string_free(s, FALSE);
}

/* Builds the XML that needs no libvirt: fragments, merge into a given document, new domain. */
static char *
build_xml(XmlJob *job, const char *domain_xml, GError **error)
{
    g_autoptr(ZpcidDomxmlResult) result = NULL;

    if (domain_xml != NULL) {
        result = zpcid_domxml_merge(&job->request, domain_xml, error);
    } else if (job->new_domain != NULL) {
        ZpcidDomxmlDomainParams params = {.name = job->new_domain};
        result = zpcid_domxml_new_domain(&job->request, &params, error);
    } else {
        result = zpcid_domxml_build_hostdevs(&job->request, NULL, error);
    }
    if (result == NULL)
        return NULL;
    log_warnings(result->warnings);
    if (result->xml != NULL)
        return g_strdup(result->xml);
    return join_hostdevs(result->hostdevs);
}

typedef struct {
    Call *call;
    XmlJob *job;
} XmlCall;

static void
xml_call_free(XmlCall *xc)
{
    if (xc->call != NULL)
        call_free(xc->call);
    if (xc->job != NULL)
        xml_job_free(xc->job);
    g_free(xc);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(XmlCall, xml_call_free)

static gpointer
fetch_domain_job(ZpcidLibvirtClient *client, gpointer data, GError **error)
{
    const char *name = data;
    /* The persistent definition: what the domain gets at its next start. */
    return zpcid_libvirt_client_get_domain_xml(client, name, TRUE, error);
}

static void
on_domain_fetched(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(XmlCall) xc = user_data;
    g_autoptr(GError) error = NULL;
    g_autofree char *domain_xml = zpcid_domains_run_finish(ZPCID_DOMAINS(source), result, &error);
    g_autofree char *xml = NULL;

    if (domain_xml == NULL || (xml = build_xml(xc->job, domain_xml, &error)) == NULL) {
        return_error(xc->call->invocation, error);
        return;
    }
    g_dbus_method_invocation_return_value(xc->call->invocation, g_variant_new("(s)", xml));
}

static void
on_domain_xml_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
    XmlCall *xc = user_data;
    g_autoptr(GError) error = NULL;

    if (!zpcid_auth_check_finish(ZPCID_AUTH(source), result, &error)) {
        return_error(xc->call->invocation, error);
        xml_call_free(xc);
        return;
    }
    zpcid_domains_run_async(xc->call->service->domains, fetch_domain_job, g_strdup(xc->job->domain),
                            g_free, g_free, on_domain_fetched, xc);
}

static gboolean
handle_get_domain_xml(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation,
                      const char *const *specs, GVariant *options, ZpcidService *self)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) functions = NULL;
    g_autoptr(XmlJob) job = NULL;
    g_autofree char *xml = NULL;
    const char *merge = lookup_string_option(options, ZPCID_OPTION_MERGE);
    const char *domain = lookup_string_option(options, ZPCID_OPTION_DOMAIN);
    const char *new_domain = lookup_string_option(options, ZPCID_OPTION_NEW_DOMAIN);
    gboolean interactive;

    if (!check_options(invocation, options, domain_xml_options, &interactive, &error))
        goto fail;
    if ((merge != NULL) + (domain != NULL) + (new_domain != NULL) > 1) {
        g_set_error_literal(&error, ZPCID_ERROR, ZPCID_ERROR_INVALID_ARGUMENT,
                            _("The options “merge”, “domain” and “new-domain” exclude each other; "
                              "give at most one."));
        goto fail;
    }
    if ((domain != NULL && !check_domain_name(domain, &error)) ||
        (new_domain != NULL && !check_domain_name(new_domain, &error)))
        goto fail;
    functions = resolve_specs(self, specs, &error);
    if (functions == NULL)
        goto fail;
    job = xml_job_new(self, functions, options, FALSE, &error);
    if (job == NULL)
        goto fail;
    job->new_domain = g_strdup(new_domain);

    if (domain != NULL) {
        /* Reading a domain's definition through root's libvirt connection is not for
         * everybody: it needs the same right as changing the domain. */
        XmlCall *xc = g_new0(XmlCall, 1);
        g_autoptr(GHashTable) details = auth_details(functions, domain, options);
        g_autofree char *denied = g_strdup_printf(
            _("You are not authorized to read the definition of the domain “%s”."), domain);

        job->domain = g_strdup(domain);
        xc->call = call_new(self, invocation, functions, options);
        xc->job = g_steal_pointer(&job);
        zpcid_auth_check_async(self->auth, invocation, ZPCID_POLKIT_ACTION_MANAGE_DOMAINS, details,
                               interactive, denied, self->cancellable, on_domain_xml_authorized,
                               xc);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    xml = build_xml(job, merge, &error);
    if (xml == NULL)
        goto fail;
    zpcid_dbus_manager_complete_get_domain_xml(manager, invocation, xml);
    return G_DBUS_METHOD_INVOCATION_HANDLED;

fail:
    return_error(invocation, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- AttachToDomain, DetachFromDomain ---- */

static ZpcidVirtAffect
job_affect(XmlJob *job, gboolean running)
{
    ZpcidVirtAffect affect = 0;

    if (!job->affect_given) {
        /* By default the definition, and the running guest too when there is one. */
        return ZPCID_VIRT_AFFECT_CONFIG | (running ? ZPCID_VIRT_AFFECT_LIVE : 0);
    }
    if (job->live)
        affect |= ZPCID_VIRT_AFFECT_LIVE;
    if (job->config)
        affect |= ZPCID_VIRT_AFFECT_CONFIG;
    return affect;
}

static gboolean
ids_equal(GArray *a, GArray *b)
{
    return a->len == b->len && memcmp(a->data, b->data, (gsize)a->len * sizeof(ZpcidZpciIds)) == 0;
}

static gpointer
attach_job(ZpcidLibvirtClient *client, gpointer data, GError **error)
{
    XmlJob *job = data;
    g_autofree char *metadata = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    ZpcidVirtAffect affect;
    gboolean running;
    guint attached = 0;

    if (!zpcid_libvirt_client_domain_is_running(client, job->domain, &running, error))
        return NULL;
    affect = job_affect(job, running);
    /* Ids are chosen around what the changed definition already has; when both change, the
     * ids must suit both, or the guest would see different ones after a restart. */
    for (guint pass = 0; pass < 2; pass++) {
        gboolean inactive = pass == 0;
        g_autofree char *domain_xml = NULL;
        g_autoptr(ZpcidDomxmlResult) planned = NULL;

        if ((affect & (inactive ? ZPCID_VIRT_AFFECT_CONFIG : ZPCID_VIRT_AFFECT_LIVE)) == 0)
            continue;
        domain_xml = zpcid_libvirt_client_get_domain_xml(client, job->domain, inactive, error);
        if (domain_xml == NULL)
            return NULL;
        planned = zpcid_domxml_build_hostdevs(&job->request, domain_xml, error);
        if (planned == NULL)
            return NULL;
        if (result != NULL && !ids_equal(result->ids, planned->ids)) {
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_CONFLICT,
                        _("The running domain “%s” and its definition would give the functions "
                          "different guest ids; attach with “live” or “config” alone, or choose "
                          "the ids with the policy “explicit”."),
                        job->domain);
            return NULL;
        }
        /* The definition's plan carries the metadata record that survives a restart. */
        if (result == NULL)
            result = g_steal_pointer(&planned);
    }
    /* Converted here only to fail before any device is attached: the helper
     * takes the record as planned and converts it itself. */
    metadata = zpcid_domxml_metadata_for_libvirt(result->metadata, error);
    if (metadata == NULL)
        return NULL;
    for (; attached < result->hostdevs->len; attached++) {
        if (!zpcid_libvirt_client_attach(
                client, job->domain, g_ptr_array_index(result->hostdevs, attached), affect, error))
            break;
    }
    if (attached == result->hostdevs->len &&
        zpcid_libvirt_client_set_metadata(client, job->domain, result->metadata, affect, error)) {
        log_warnings(result->warnings);
        return g_steal_pointer(&result);
    }
    /* All or nothing: take back what was attached before the failure. */
    while (attached-- > 0) {
        g_autoptr(GError) undo_error = NULL;
        if (!zpcid_libvirt_client_detach(client, job->domain,
                                         g_ptr_array_index(result->hostdevs, attached), affect,
                                         &undo_error))
            g_warning("A device attached to the domain “%s” could not be detached again: %s",
                      job->domain, undo_error->message);
    }
    return NULL;
}

static gpointer
detach_job(ZpcidLibvirtClient *client, gpointer data, GError **error)
{
    XmlJob *job = data;
    g_autofree char *domain_xml = NULL;
    g_autoptr(ZpcidDomxmlInfo) info = NULL;
    g_autoptr(ZpcidDomxmlResult) result = NULL;
    ZpcidVirtAffect affect;
    gboolean running;

    if (!zpcid_libvirt_client_domain_is_running(client, job->domain, &running, error))
        return NULL;
    affect = job_affect(job, running);
    domain_xml = zpcid_libvirt_client_get_domain_xml(
        client, job->domain, (affect & ZPCID_VIRT_AFFECT_CONFIG) != 0, error);
    if (domain_xml == NULL)
        return NULL;
    info = zpcid_domxml_inspect(domain_xml, error);
    if (info == NULL)
        return NULL;
    for (guint i = 0; i < job->functions->len; i++) {
        const ZpcidDomxmlFunction *fn = &g_array_index(job->functions, ZpcidDomxmlFunction, i);
        if (!zpcid_domxml_info_uses(info, &fn->address)) {
            g_autofree char *address = zpcid_pci_address_format(&fn->address);
            g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND,
                        _("The domain “%s” does not use the function “0x%08x” (%s)."), job->domain,
                        fn->fid, address);
            return NULL;
        }
    }
    /* libvirt finds a hostdev by its source address, so a fresh element names it. */
    result = zpcid_domxml_build_hostdevs(&job->request, NULL, error);
    if (result == NULL)
        return NULL;
    for (guint i = 0; i < result->hostdevs->len; i++) {
        if (!zpcid_libvirt_client_detach(client, job->domain,
                                         g_ptr_array_index(result->hostdevs, i), affect, error))
            return NULL;
    }
    return g_steal_pointer(&result);
}

static void
on_domains_refreshed(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(XmlCall) xc = user_data;

    zpcid_domains_refresh_finish(ZPCID_DOMAINS(source), result);
    g_dbus_method_invocation_return_value(xc->call->invocation, NULL);
}

static void
on_domain_changed(GObject *source, GAsyncResult *result, gpointer user_data)
{
    XmlCall *xc = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(ZpcidDomxmlResult) done =
        zpcid_domains_run_finish(ZPCID_DOMAINS(source), result, &error);
    g_autofree char *list = function_list(xc->call->functions);
    const char *sender = g_dbus_method_invocation_get_sender(xc->call->invocation);
    gboolean attach = g_str_equal(g_dbus_method_invocation_get_method_name(xc->call->invocation),
                                  "AttachToDomain");

    if (done == NULL) {
        g_message("%s of %s %s the domain “%s” for %s failed: %s",
                  attach ? "Attaching" : "Detaching", list, attach ? "to" : "from", xc->job->domain,
                  sender, error->message);
        return_error(xc->call->invocation, error);
        xml_call_free(xc);
        return;
    }
    g_message("%s %s %s %s the domain “%s”.", sender, attach ? "attached" : "detached", list,
              attach ? "to" : "from", xc->job->domain);
    /* Reply once the Domains properties show the change. */
    zpcid_domains_refresh_async(ZPCID_DOMAINS(source), on_domains_refreshed, xc);
}

static void
on_domain_change_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
    XmlCall *xc = user_data;
    g_autoptr(GError) error = NULL;
    gboolean attach = g_str_equal(g_dbus_method_invocation_get_method_name(xc->call->invocation),
                                  "AttachToDomain");

    if (!zpcid_auth_check_finish(ZPCID_AUTH(source), result, &error)) {
        return_error(xc->call->invocation, error);
        xml_call_free(xc);
        return;
    }
    zpcid_domains_run_async(xc->call->service->domains, attach ? attach_job : detach_job, xc->job,
                            NULL, (GDestroyNotify)zpcid_domxml_result_free, on_domain_changed, xc);
}

static gboolean
handle_domain_change(GDBusMethodInvocation *invocation, const char *domain,
                     const char *const *specs, GVariant *options, ZpcidService *self,
                     gboolean attach)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) functions = NULL;
    g_autoptr(GHashTable) details = NULL;
    g_autofree char *list = NULL;
    g_autofree char *denied = NULL;
    XmlJob *job;
    XmlCall *xc;
    gboolean interactive;

    if (!check_options(invocation, options, attach ? attach_options : detach_options, &interactive,
                       &error))
        goto fail;
    if (!check_domain_name(domain, &error))
        goto fail;
    functions = resolve_specs(self, specs, &error);
    if (functions == NULL)
        goto fail;
    job = xml_job_new(self, functions, options, !attach, &error);
    if (job == NULL)
        goto fail;
    if (!check_changes_allowed(self, &error)) {
        xml_job_free(job);
        goto fail;
    }
    job->domain = g_strdup(domain);
    list = function_list(functions);
    denied = g_strdup_printf(attach ? _("You are not authorized to attach %s to the domain “%s”.")
                                    : _("You are not authorized to detach %s from the domain "
                                        "“%s”."),
                             list, domain);
    xc = g_new0(XmlCall, 1);
    xc->call = call_new(self, invocation, functions, options);
    xc->job = job;
    details = auth_details(functions, domain, options);
    zpcid_auth_check_async(self->auth, invocation, ZPCID_POLKIT_ACTION_MANAGE_DOMAINS, details,
                           interactive, denied, self->cancellable, on_domain_change_authorized, xc);
    return G_DBUS_METHOD_INVOCATION_HANDLED;

fail:
    return_error(invocation, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_attach_to_domain(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation,
                        const char *domain, const char *const *specs, GVariant *options,
                        ZpcidService *self)
{
    return handle_domain_change(invocation, domain, specs, options, self, TRUE);
}

static gboolean
handle_detach_from_domain(ZpcidDBusManager *manager, GDBusMethodInvocation *invocation,
                          const char *domain, const char *const *specs, GVariant *options,
                          ZpcidService *self)
{
    return handle_domain_change(invocation, domain, specs, options, self, FALSE);
}

/* ---- org.zpcid1.Function ---- */

/* The function @fid as a one-element list, or NULL if it just went away. */
static GPtrArray *
fid_function(ZpcidService *self, guint32 fid, GError **error)
{
    ZpcidFunction *f = zpcid_inventory_lookup_fid(self->inventory, fid);
    GPtrArray *functions;

    if (f == NULL) {
        g_set_error(error, ZPCID_ERROR, ZPCID_ERROR_NOT_FOUND, _("The function “0x%08x” is gone."),
                    fid);
        return NULL;
    }
    functions = g_ptr_array_new_with_free_func((GDestroyNotify)zpcid_function_unref);
    g_ptr_array_add(functions, zpcid_function_ref(f));
    return functions;
}

static void
handle_function_bind(ZpcidService *self, guint32 fid, GDBusMethodInvocation *invocation,
                     GVariant *options, gboolean unbind)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) functions = fid_function(self, fid, &error);

    if (functions == NULL) {
        return_error(invocation, error);
        return;
    }
    start_bind(self, invocation, functions, options, unbind, TRUE);
}

static void
handle_get_hostdev_xml(ZpcidService *self, guint32 fid, GDBusMethodInvocation *invocation,
                       GVariant *options)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) functions = NULL;
    g_autoptr(XmlJob) job = NULL;
    g_autofree char *xml = NULL;
    gboolean interactive;

    if (!check_options(invocation, options, xml_options, &interactive, &error) ||
        (functions = fid_function(self, fid, &error)) == NULL ||
        (job = xml_job_new(self, functions, options, FALSE, &error)) == NULL ||
        (xml = build_xml(job, NULL, &error)) == NULL) {
        return_error(invocation, error);
        return;
    }
    g_dbus_method_invocation_return_value(invocation, g_variant_new("(s)", xml));
}

void
zpcid_service_function_method(guint32 fid, const char *method, GVariant *parameters,
                              GDBusMethodInvocation *invocation, gpointer user_data)
{
    ZpcidService *self = user_data;
    g_autoptr(GVariant) options = NULL;

    /* GDBus has checked the method and its signature against the introspection data: every
     * method of org.zpcid1.Function takes the options a{sv} alone. */
    g_variant_get(parameters, "(@a{sv})", &options);
    if (g_str_equal(method, "Bind"))
        handle_function_bind(self, fid, invocation, options, FALSE);
    else if (g_str_equal(method, "Unbind"))
        handle_function_bind(self, fid, invocation, options, TRUE);
    else if (g_str_equal(method, "GetHostdevXml"))
        handle_get_hostdev_xml(self, fid, invocation, options);
    else
        g_dbus_method_invocation_return_error(invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                              _("The method “%s” is not known."), method);
}

/* ---- wiring ---- */

void
zpcid_service_methods_init_manager(ZpcidService *self)
{
    GObject *m = G_OBJECT(self->manager);

    g_signal_connect_object(m, "handle-check", G_CALLBACK(handle_check), self, 0);
    g_signal_connect_object(m, "handle-resolve-function", G_CALLBACK(handle_resolve_function), self,
                            0);
    g_signal_connect_object(m, "handle-bind", G_CALLBACK(handle_bind), self, 0);
    g_signal_connect_object(m, "handle-unbind", G_CALLBACK(handle_unbind), self, 0);
    g_signal_connect_object(m, "handle-get-domain-xml", G_CALLBACK(handle_get_domain_xml), self, 0);
    g_signal_connect_object(m, "handle-attach-to-domain", G_CALLBACK(handle_attach_to_domain), self,
                            0);
    g_signal_connect_object(m, "handle-detach-from-domain", G_CALLBACK(handle_detach_from_domain),
                            self, 0);
}
