/* Message catalogue set-up shared by zpcid, zpcidctl and the libvirt hook. */
#pragma once

/* The environment variable that points the catalogues at another directory: the tests use the
 * build tree's po/ so that translations are checked before they are installed. */
#define ZPCID_ENV_LOCALEDIR "ZPCID_LOCALEDIR"

/* Sets the locale from the environment and binds the "zpcid" text domain (UTF-8). */
void zpcid_i18n_init(void);
