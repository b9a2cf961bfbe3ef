/* The D-Bus object of one zPCI function: org.zpcid1.Function with its properties kept as
 * one cached a{sv}, so that GetManagedObjects hands out the cache instead of rebuilding 30
 * properties per function per call. */
#pragma once

#include "zpcid-dbus-generated.h"

G_BEGIN_DECLS

#define ZPCID_TYPE_FUNCTION_OBJECT (zpcid_function_object_get_type())
G_DECLARE_FINAL_TYPE(ZpcidFunctionObject, zpcid_function_object, ZPCID, FUNCTION_OBJECT,
                     ZpcidDBusFunctionSkeleton)

ZpcidFunctionObject *zpcid_function_object_new(guint32 fid);
guint32 zpcid_function_object_get_fid(ZpcidFunctionObject *self);
/* "/org/zpcid1/functions/00001822". */
const char *zpcid_function_object_get_path(ZpcidFunctionObject *self);

/* Takes every property from @properties (the a{sv} of zpcid_function_to_variant(), may be
 * floating). Properties that changed are announced in one PropertiesChanged per main-loop
 * iteration (the generated skeleton batches them in an idle). */
void zpcid_function_object_update(ZpcidFunctionObject *self, GVariant *properties);

G_END_DECLS
