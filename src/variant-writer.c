#include "variant-writer.h"

#include <string.h>

typedef enum {
    FRAME_ARRAY,
    FRAME_TUPLE,
    FRAME_VARIANT,
} FrameKind;

typedef struct {
    FrameKind kind;
    gsize start;      /* offset of the container's first byte in the buffer */
    guint first_mark; /* its marks are marks[first_mark..] */
} Frame;

struct _ZpcidVariantWriter {
    GByteArray *buffer;
    GArray *frames; /* Frame, innermost last */
    GArray *marks;  /* gsize: absolute end offsets of framed children */
};

ZpcidVariantWriter *
zpcid_variant_writer_new(gsize size_hint)
{
    ZpcidVariantWriter *writer = g_new0(ZpcidVariantWriter, 1);

    writer->buffer = g_byte_array_sized_new((guint)MIN(size_hint, G_MAXUINT));
    writer->frames = g_array_sized_new(FALSE, FALSE, sizeof(Frame), 8);
    writer->marks = g_array_sized_new(FALSE, FALSE, sizeof(gsize), 64);
    return writer;
}

void
zpcid_variant_writer_free(ZpcidVariantWriter *writer)
{
    if (writer == NULL)
        return;
    if (writer->buffer != NULL)
        g_byte_array_unref(writer->buffer);
    g_array_unref(writer->frames);
    g_array_unref(writer->marks);
    g_free(writer);
}

GVariant *
zpcid_variant_writer_end(ZpcidVariantWriter *writer, const GVariantType *type)
{
    g_autoptr(GBytes) bytes = NULL;

    g_return_val_if_fail(writer->frames->len == 0, NULL);
    bytes = g_byte_array_free_to_bytes(g_steal_pointer(&writer->buffer));
    zpcid_variant_writer_free(writer);
    /* Trusted: written in normal form (the unit tests compare with GLib's own bytes). */
    return g_variant_new_from_bytes(type, bytes, TRUE);
}

/* Padding is relative to the start of the buffer: every container starts aligned to its own
 * alignment, which is a multiple of its children's. */
static void
align(ZpcidVariantWriter *writer, guint alignment)
{
    guint len = writer->buffer->len;
    guint padded = (len + alignment - 1) & ~(alignment - 1);

    if (padded != len) {
        g_byte_array_set_size(writer->buffer, padded);
        memset(writer->buffer->data + len, 0, padded - len);
    }
}

static void
append(ZpcidVariantWriter *writer, const void *data, guint size, guint alignment)
{
    align(writer, alignment);
    g_byte_array_append(writer->buffer, data, size);
}

void
zpcid_variant_writer_put_boolean(ZpcidVariantWriter *writer, gboolean value)
{
    guint8 byte = value ? 1 : 0;
    append(writer, &byte, 1, 1);
}

void
zpcid_variant_writer_put_int32(ZpcidVariantWriter *writer, gint32 value)
{
    gint32 le = GINT32_TO_LE(value);
    append(writer, &le, sizeof(le), sizeof(le));
}

void
zpcid_variant_writer_put_uint32(ZpcidVariantWriter *writer, guint32 value)
{
    guint32 le = GUINT32_TO_LE(value);
    append(writer, &le, sizeof(le), sizeof(le));
}

void
zpcid_variant_writer_put_int64(ZpcidVariantWriter *writer, gint64 value)
{
    gint64 le = GINT64_TO_LE(value);
    append(writer, &le, sizeof(le), sizeof(le));
}

void
zpcid_variant_writer_put_string(ZpcidVariantWriter *writer, const char *value)
{
    append(writer, value, (guint)strlen(value) + 1, 1);
}

static void
open_frame(ZpcidVariantWriter *writer, FrameKind kind, guint alignment)
{
    Frame frame = {kind, 0, writer->marks->len};

    align(writer, alignment);
    frame.start = writer->buffer->len;
    g_array_append_val(writer->frames, frame);
}

void
zpcid_variant_writer_open_array(ZpcidVariantWriter *writer, guint alignment)
{
    open_frame(writer, FRAME_ARRAY, alignment);
}

void
zpcid_variant_writer_open_tuple(ZpcidVariantWriter *writer, guint alignment)
{
    open_frame(writer, FRAME_TUPLE, alignment);
}

void
zpcid_variant_writer_open_variant(ZpcidVariantWriter *writer)
{
    open_frame(writer, FRAME_VARIANT, 8);
}

void
zpcid_variant_writer_mark(ZpcidVariantWriter *writer)
{
    gsize end = writer->buffer->len;
    g_array_append_val(writer->marks, end);
}

/* The smallest offset size that can address the whole container, offsets included (GLib's
 * gvs_calculate_total_size() makes the same choice, and readers derive it from the size). */
static guint
offset_size(gsize body, guint n_offsets)
{
    if (body + n_offsets <= G_MAXUINT8)
        return 1;
    if (body + 2 * (gsize)n_offsets <= G_MAXUINT16)
        return 2;
    if (body + 4 * (gsize)n_offsets <= G_MAXUINT32)
        return 4;
    return 8;
}

static void
put_offset(ZpcidVariantWriter *writer, guint64 offset, guint size)
{
    guint8 le[8];

    for (guint i = 0; i < size; i++)
        le[i] = (guint8)(offset >> (8 * i));
    g_byte_array_append(writer->buffer, le, size);
}

void
zpcid_variant_writer_close(ZpcidVariantWriter *writer)
{
    Frame frame = g_array_index(writer->frames, Frame, writer->frames->len - 1);
    guint n = writer->marks->len - frame.first_mark;
    const gsize *marks = &g_array_index(writer->marks, gsize, frame.first_mark);

    g_return_if_fail(frame.kind != FRAME_VARIANT);
    if (n > 0) {
        guint size = offset_size(writer->buffer->len - frame.start, n);

        /* Arrays list their elements' ends in order, tuples their members' in reverse. */
        for (guint i = 0; i < n; i++) {
            gsize mark = marks[frame.kind == FRAME_ARRAY ? i : n - 1 - i];
            put_offset(writer, mark - frame.start, size);
        }
        g_array_set_size(writer->marks, frame.first_mark);
    }
    g_array_set_size(writer->frames, writer->frames->len - 1);
}

void
zpcid_variant_writer_close_variant(ZpcidVariantWriter *writer, const char *type_string)
{
    g_return_if_fail(writer->frames->len > 0 &&
                     g_array_index(writer->frames, Frame, writer->frames->len - 1).kind ==
                         FRAME_VARIANT);
    /* The value, a NUL, then its type string without one. */
    g_byte_array_append(writer->buffer, (const guint8 *)"", 1);
    g_byte_array_append(writer->buffer, (const guint8 *)type_string, (guint)strlen(type_string));
    g_array_set_size(writer->frames, writer->frames->len - 1);
}
