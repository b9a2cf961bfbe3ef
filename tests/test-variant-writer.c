/* ZpcidVariantWriter against GLib's own serializer: every value is written both ways and the
 * bytes must be equal, and in normal form. Random values of the shapes zpcid writes (and
 * some more), small and large enough for every size of framing offset. */
#include <glib.h>
#include <string.h>

#include "function.h"
#include "variant-writer.h"
#include "variant.h"

static guint
type_alignment(const GVariantType *type)
{
    const char *s = g_variant_type_peek_string(type);
    guint alignment = 1;

    switch (s[0]) {
    case 'b':
    case 'y':
    case 's':
    case 'o':
    case 'g':
        return 1;
    case 'n':
    case 'q':
        return 2;
    case 'i':
    case 'u':
    case 'h':
        return 4;
    case 'x':
    case 't':
    case 'd':
    case 'v':
        return 8;
    case 'a':
        return type_alignment(g_variant_type_element(type));
    default:
        for (const GVariantType *m = g_variant_type_first(type); m != NULL;
             m = g_variant_type_next(m))
            alignment = MAX(alignment, type_alignment(m));
        return alignment;
    }
}

static gboolean
type_is_fixed_size(const GVariantType *type)
{
    const char *s = g_variant_type_peek_string(type);

    if (strchr("bynqiuhxtd", s[0]) != NULL)
        return TRUE;
    if (s[0] == '(' || s[0] == '{') {
        for (const GVariantType *m = g_variant_type_first(type); m != NULL;
             m = g_variant_type_next(m)) {
            if (!type_is_fixed_size(m))
                return FALSE;
        }
        return TRUE;
    }
    return FALSE;
}

/* Walks @value with the writer: the shape a caller states by hand, derived from the type. */
static void
write_value(ZpcidVariantWriter *w, GVariant *value)
{
    const GVariantType *type = g_variant_get_type(value);
    gsize n = g_variant_is_container(value) ? g_variant_n_children(value) : 0;

    switch (g_variant_classify(value)) {
    case G_VARIANT_CLASS_BOOLEAN:
        zpcid_variant_writer_put_boolean(w, g_variant_get_boolean(value));
        return;
    case G_VARIANT_CLASS_INT32:
        zpcid_variant_writer_put_int32(w, g_variant_get_int32(value));
        return;
    case G_VARIANT_CLASS_UINT32:
        zpcid_variant_writer_put_uint32(w, g_variant_get_uint32(value));
        return;
    case G_VARIANT_CLASS_INT64:
        zpcid_variant_writer_put_int64(w, g_variant_get_int64(value));
        return;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
        zpcid_variant_writer_put_string(w, g_variant_get_string(value, NULL));
        return;
    case G_VARIANT_CLASS_VARIANT: {
        g_autoptr(GVariant) child = g_variant_get_variant(value);
        zpcid_variant_writer_open_variant(w);
        write_value(w, child);
        zpcid_variant_writer_close_variant(w, g_variant_get_type_string(child));
        return;
    }
    case G_VARIANT_CLASS_ARRAY: {
        gboolean fixed = type_is_fixed_size(g_variant_type_element(type));
        zpcid_variant_writer_open_array(w, type_alignment(type));
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
            write_value(w, child);
            if (!fixed)
                zpcid_variant_writer_mark(w);
        }
        zpcid_variant_writer_close(w);
        return;
    }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
        g_assert_false(type_is_fixed_size(type)); /* not supported, see the header */
        zpcid_variant_writer_open_tuple(w, type_alignment(type));
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
            write_value(w, child);
            if (i + 1 < n && !type_is_fixed_size(g_variant_get_type(child)))
                zpcid_variant_writer_mark(w);
        }
        zpcid_variant_writer_close(w);
        return;
    default:
        g_assert_not_reached();
    }
}

static void
assert_same_bytes(GVariant *reference)
{
    ZpcidVariantWriter *w = zpcid_variant_writer_new(0);
    g_autoptr(GVariant) written = NULL;
    g_autoptr(GVariant) untrusted = NULL;
    g_autoptr(GBytes) bytes = NULL;

    g_variant_ref_sink(reference);
    write_value(w, reference);
    written = g_variant_ref_sink(zpcid_variant_writer_end(w, g_variant_get_type(reference)));
    g_assert_cmpuint(g_variant_get_size(written), ==, g_variant_get_size(reference));
    g_assert_cmpmem(g_variant_get_data(written), g_variant_get_size(written),
                    g_variant_get_data(reference), g_variant_get_size(reference));
    /* Checked as if it came from outside: the writer's bytes are in normal form. */
    bytes = g_variant_get_data_as_bytes(written);
    untrusted =
        g_variant_ref_sink(g_variant_new_from_bytes(g_variant_get_type(written), bytes, FALSE));
    g_assert_true(g_variant_is_normal_form(untrusted));
    g_variant_unref(reference);
}

static char *
random_string(GRand *rand, guint max)
{
    guint len = (guint)g_rand_int_range(rand, 0, (gint32)max + 1);
    char *s = g_malloc(len + 1);

    for (guint i = 0; i < len; i++)
        s[i] = (char)g_rand_int_range(rand, 'a', 'z' + 1);
    s[len] = '\0';
    return s;
}

/* A random value of a random type from the kinds zpcid writes; @depth bounds nesting, @max_len
 * the strings and @max_n the arrays. */
static GVariant *
random_value(GRand *rand, guint depth, guint max_len, guint max_n)
{
    guint kind = (guint)g_rand_int_range(rand, 0, depth > 0 ? 12 : 6);
    GVariantBuilder b;
    guint n = (guint)g_rand_int_range(rand, 0, (gint32)max_n + 1);

    switch (kind) {
    case 0:
        return g_variant_new_boolean(g_rand_boolean(rand));
    case 1:
        return g_variant_new_int32((gint32)g_rand_int(rand));
    case 2:
        return g_variant_new_uint32(g_rand_int(rand));
    case 3:
        return g_variant_new_int64((gint64)(((guint64)g_rand_int(rand) << 32) | g_rand_int(rand)));
    case 4:
    case 5: {
        g_autofree char *s = random_string(rand, max_len);
        return g_variant_new_string(s);
    }
    case 6:
        return g_variant_new_variant(random_value(rand, depth - 1, max_len, max_n));
    case 7: /* as */
        g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
        for (guint i = 0; i < n; i++) {
            g_autofree char *s = random_string(rand, max_len);
            g_variant_builder_add(&b, "s", s);
        }
        return g_variant_builder_end(&b);
    case 8: /* ax */
        g_variant_builder_init(&b, G_VARIANT_TYPE("ax"));
        for (guint i = 0; i < n; i++)
            g_variant_builder_add(&b, "x", (gint64)g_rand_int(rand) - G_MAXINT32);
        return g_variant_builder_end(&b);
    case 9: /* a(ss) */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ss)"));
        for (guint i = 0; i < n; i++) {
            g_autofree char *s1 = random_string(rand, max_len);
            g_autofree char *s2 = random_string(rand, max_len);
            g_variant_builder_add(&b, "(ss)", s1, s2);
        }
        return g_variant_builder_end(&b);
    case 10: /* a{sv} */
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        for (guint i = 0; i < n; i++) {
            g_autofree char *key = random_string(rand, max_len);
            g_variant_builder_add(&b, "{sv}", key, random_value(rand, depth - 1, max_len, max_n));
        }
        return g_variant_builder_end(&b);
    default: { /* (sv) with an object path: the shape of a GetManagedObjects entry */
        GVariant *members[2] = {g_variant_new_object_path("/org/zpcid1/functions/0000abcd"),
                                random_value(rand, depth - 1, max_len, max_n)};
        return g_variant_new_tuple(members, 2);
    }
    }
}

static void
test_random_small(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(1);

    for (guint i = 0; i < 3000; i++)
        assert_same_bytes(random_value(rand, 4, 12, 4));
}

/* Strings and arrays long enough for containers of more than 255 and 65535 bytes: framing
 * offsets of 2 and 4 bytes. */
static void
test_random_large(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(2);

    for (guint i = 0; i < 200; i++)
        assert_same_bytes(random_value(rand, 3, 400, 40));
}

static void
test_offset_size_edges(void)
{
    /* An as whose size crosses 255 (and 65535) one byte at a time around the edge. */
    for (guint len = 240; len < 270; len++) {
        g_autofree char *s = g_strnfill(len, 'x');
        const char *items[] = {s, "", NULL};
        assert_same_bytes(g_variant_new_strv(items, -1));
    }
    for (guint len = 65500; len < 65540; len += 3) {
        g_autofree char *s = g_strnfill(len, 'y');
        const char *items[] = {s, "z", NULL};
        assert_same_bytes(g_variant_new_strv(items, -1));
    }
    assert_same_bytes(g_variant_new_strv(NULL, 0));
}

/* The function's a{sv} as the daemon writes it equals GLib's serialization of the same value
 * (parsed back from its text form, so that GLib alone builds the reference). */
static void
test_function_properties(void)
{
    g_autoptr(ZpcidFunction) f = zpcid_function_new_standby(0x1822);
    const char *domains[] = {"guest-one", "guest-two", NULL};
    ZpcidFunctionExtra extra = {"mlx5_core", domains, TRUE, "libvirt:1234"};
    g_autoptr(GVariant) written = NULL;
    g_autoptr(GVariant) reference = NULL;
    g_autofree char *text = NULL;

    f->address = g_strdup("0001:00:00.0");
    f->uid = 0x22;
    f->pchid = 0x1c0;
    f->util_string = g_strdup("port 1");
    f->driver = g_strdup("vfio-pci");
    g_ptr_array_add(f->netdevs, g_strdup("eth1"));
    g_ptr_array_add(f->virtfns, g_strdup("0001:00:00.2"));
    g_ptr_array_add(f->errors, g_strdup("The file “uid” could not be read."));
    written = g_variant_ref_sink(zpcid_function_to_variant(f, &extra));
    text = g_variant_print(written, TRUE);
    reference = g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, NULL);
    g_assert_nonnull(reference);
    g_assert_cmpmem(g_variant_get_data(written), g_variant_get_size(written),
                    g_variant_get_data(reference), g_variant_get_size(reference));
    g_assert_cmpuint(g_variant_n_children(written), ==, 33);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/variant-writer/random-small", test_random_small);
    g_test_add_func("/variant-writer/random-large", test_random_large);
    g_test_add_func("/variant-writer/offset-size-edges", test_offset_size_edges);
    g_test_add_func("/variant-writer/function-properties", test_function_properties);
    return g_test_run();
}
