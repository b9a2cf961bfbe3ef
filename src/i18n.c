/* One place for gettext's set-up so that every program honours the same locale directory. */
#include "i18n.h"

#include <glib.h>
#include <glib/gi18n-lib.h>
#include <locale.h>

void
zpcid_i18n_init(void)
{
    const char *dir = g_getenv(ZPCID_ENV_LOCALEDIR);

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, dir != NULL && *dir != '\0' ? dir : LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);
}
