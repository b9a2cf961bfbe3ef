/* Test hooks of the binder; not for the daemon. */
#pragma once

#include "binder.h"
#include "journal.h"

G_BEGIN_DECLS

/* Called in the worker thread right before (@after FALSE) and right after (TRUE) every
 * kernel write, after the journal has announced it; the crash test kills itself here. */
typedef void (*ZpcidBinderStepHook)(guint32 fid, const char *step, gboolean after,
                                    gpointer user_data);
void zpcid_binder_set_step_hook(ZpcidBinder *self, ZpcidBinderStepHook hook, gpointer user_data);

ZpcidJournal *zpcid_binder_get_journal(ZpcidBinder *self);

/* First retry delay of reapply_persistent (default 1000 ms), so that tests run quickly. */
void zpcid_binder_set_retry_base_ms(ZpcidBinder *self, guint ms);

/* How long the check after drivers_probe/bind waits for the driver link (default 1000 ms,
 * capped by the step timeout). */
void zpcid_binder_set_verify_grace_ms(ZpcidBinder *self, guint ms);

G_END_DECLS
