/* Writes GVariant's serialized form (GVariant specification, "Serialisation") straight into
 * one buffer. zpcid builds a function's a{sv} and the GetManagedObjects reply often, and at
 * 4096 functions the reply holds ~600,000 values: GVariantBuilder would first make a tree of
 * as many small GVariants and then serialize it; this writes the bytes once and keeps no
 * tree, so that the daemon can keep the model alone and write the properties when asked.
 *
 * The caller states the shape: containers are opened with their alignment, and where a
 * framing offset belongs (after each element of an array of variable-size elements, after
 * each variable-size member but the last of a tuple or dict entry) it calls _mark(). Fixed-
 * size tuples (which need trailing padding) are not supported: zpcid has none. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _ZpcidVariantWriter ZpcidVariantWriter;

ZpcidVariantWriter *zpcid_variant_writer_new(gsize size_hint);
void zpcid_variant_writer_free(ZpcidVariantWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZpcidVariantWriter, zpcid_variant_writer_free)

/* The one value written, as a floating GVariant of @type; frees @writer. Every container
 * must be closed. */
GVariant *zpcid_variant_writer_end(ZpcidVariantWriter *writer, const GVariantType *type);

void zpcid_variant_writer_put_boolean(ZpcidVariantWriter *writer, gboolean value);
void zpcid_variant_writer_put_int32(ZpcidVariantWriter *writer, gint32 value);
void zpcid_variant_writer_put_uint32(ZpcidVariantWriter *writer, guint32 value);
void zpcid_variant_writer_put_int64(ZpcidVariantWriter *writer, gint64 value);
/* Types s, o and g; @value must be valid UTF-8 without NUL (and a valid path for o). */
void zpcid_variant_writer_put_string(ZpcidVariantWriter *writer, const char *value);

/* @alignment: the element's (array) or the largest member's (tuple, dict entry). */
void zpcid_variant_writer_open_array(ZpcidVariantWriter *writer, guint alignment);
void zpcid_variant_writer_open_tuple(ZpcidVariantWriter *writer, guint alignment);
void zpcid_variant_writer_mark(ZpcidVariantWriter *writer);
void zpcid_variant_writer_close(ZpcidVariantWriter *writer);

/* A variant: open, write its value, close with the value's type string. */
void zpcid_variant_writer_open_variant(ZpcidVariantWriter *writer);
void zpcid_variant_writer_close_variant(ZpcidVariantWriter *writer, const char *type_string);

G_END_DECLS
