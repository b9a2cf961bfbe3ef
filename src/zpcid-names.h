/* Every bus name, object path, interface, error name and polkit action of zpcid.
 * The daemon, the CLI, the hook and the tests include this header so that a
 * name is spelled in exactly one place. */
#pragma once

#define ZPCID_DBUS_NAME            "org.zpcid1"
#define ZPCID_DBUS_PATH            "/org/zpcid1"
#define ZPCID_DBUS_FUNCTIONS_PATH  "/org/zpcid1/functions"
#define ZPCID_DBUS_IFACE_MANAGER   "org.zpcid1.Manager"
#define ZPCID_DBUS_IFACE_FUNCTION  "org.zpcid1.Function"
#define ZPCID_DBUS_API_VERSION     1

#define ZPCID_DBUS_ERROR_PREFIX         "org.zpcid1.Error."
#define ZPCID_DBUS_ERROR_NOT_FOUND      ZPCID_DBUS_ERROR_PREFIX "NotFound"
#define ZPCID_DBUS_ERROR_INVALID_ARG    ZPCID_DBUS_ERROR_PREFIX "InvalidArgument"
#define ZPCID_DBUS_ERROR_BUSY           ZPCID_DBUS_ERROR_PREFIX "Busy"
#define ZPCID_DBUS_ERROR_NOT_READY      ZPCID_DBUS_ERROR_PREFIX "NotReady"
#define ZPCID_DBUS_ERROR_CONFLICT       ZPCID_DBUS_ERROR_PREFIX "Conflict"
#define ZPCID_DBUS_ERROR_NOT_AUTHORIZED ZPCID_DBUS_ERROR_PREFIX "NotAuthorized"
#define ZPCID_DBUS_ERROR_FAILED         ZPCID_DBUS_ERROR_PREFIX "Failed"
#define ZPCID_DBUS_ERROR_UNSUPPORTED    ZPCID_DBUS_ERROR_PREFIX "Unsupported"

#define ZPCID_POLKIT_ACTION_BIND           "org.zpcid1.bind"
#define ZPCID_POLKIT_ACTION_UNBIND         "org.zpcid1.unbind"
#define ZPCID_POLKIT_ACTION_MANAGE_DOMAINS "org.zpcid1.manage-domains"

/* Details of every polkit check, for admin rules (several functions: comma-separated). */
#define ZPCID_POLKIT_DETAIL_FID          "fid"          /* "0x00001822" */
#define ZPCID_POLKIT_DETAIL_UID          "uid"          /* "0x0001", "" when unknown */
#define ZPCID_POLKIT_DETAIL_ADDRESS      "address"      /* "0001:00:00.0", "" in standby */
#define ZPCID_POLKIT_DETAIL_PCI_ID       "pci-id"       /* "15b3:1016" (vendor:device) */
#define ZPCID_POLKIT_DETAIL_DOMAIN       "domain"       /* libvirt domain of domain actions */
#define ZPCID_POLKIT_DETAIL_ALLOW_GUARDS "allow-guards" /* guards overridden, e.g. "net" */

/* Keys of the a{sv} options of the D-Bus methods. */
#define ZPCID_OPTION_NO_USER_INTERACTION "auth.no_user_interaction" /* b, every method */
#define ZPCID_OPTION_DRY_RUN             "dry-run"                  /* b, Bind/Unbind */
#define ZPCID_OPTION_PERSISTENT          "persistent"               /* b, Bind/Unbind */
#define ZPCID_OPTION_TIMEOUT             "timeout"                  /* u ms, Bind/Unbind */
#define ZPCID_OPTION_ALLOW_GUARDS        "allow-guards"             /* as, Bind/Unbind */
#define ZPCID_OPTION_OWNER               "owner"                    /* s, Bind/Unbind */
#define ZPCID_OPTION_POLICY              "policy"                   /* s, domain XML */
#define ZPCID_OPTION_IDS                 "ids"                      /* a(uu), domain XML */
#define ZPCID_OPTION_INTERPRETATION      "interpretation"           /* s, domain XML */
#define ZPCID_OPTION_MANAGED             "managed"                  /* b, domain XML */
#define ZPCID_OPTION_MERGE               "merge"                    /* s, GetDomainXml */
#define ZPCID_OPTION_DOMAIN              "domain"                   /* s, GetDomainXml */
#define ZPCID_OPTION_NEW_DOMAIN          "new-domain"               /* s, GetDomainXml */
#define ZPCID_OPTION_LIVE                "live"                     /* b, Attach/Detach */
#define ZPCID_OPTION_CONFIG              "config"                   /* b, Attach/Detach */

/* The client's override of the bus address (tests, private buses). */
#define ZPCID_ENV_BUS_ADDRESS "ZPCID_BUS_ADDRESS"

/* The libvirt hook's override of ZPCID_DEFAULT_CONFIG_FILE (libvirt itself passes no
 * environment to hooks, so this is for tests and wrappers). */
#define ZPCID_ENV_CONFIG_FILE "ZPCID_CONFIG_FILE"
/* The Bind/Unbind "owner" the libvirt hook uses, followed by the domain's UUID. */
#define ZPCID_HOOK_OWNER_PREFIX "libvirt:"

/* zpcid-libvirt-helper (xml/zpcid-libvirt-helper.xml): zpcid's libvirt client, a program
 * next to zpcid, spoken to peer to peer over its file descriptor 3. */
#define ZPCID_LIBVIRT_HELPER_PROGRAM "zpcid-libvirt-helper"
#define ZPCID_LIBVIRT_HELPER_PATH    "/org/zpcid1/LibvirtHelper"
#define ZPCID_LIBVIRT_HELPER_IFACE   "org.zpcid1.LibvirtHelper"
#define ZPCID_LIBVIRT_HELPER_FD      3
/* How long zpcid keeps an unused helper, in ms (tests shorten it; default 10 s). */
#define ZPCID_ENV_LIBVIRT_HELPER_IDLE_MS "ZPCID_LIBVIRT_HELPER_IDLE_MS"

/* Namespace of zpcid's element inside a libvirt domain's <metadata>. */
#define ZPCID_LIBVIRT_METADATA_NS     "https://zpcid.org/xmlns/libvirt/1"
#define ZPCID_LIBVIRT_METADATA_PREFIX "zpcid"

/* Environment variable that points every kernel path at a fixture tree. */
#define ZPCID_ENV_HOST_ROOT "ZPCID_HOST_ROOT"

#define ZPCID_DEFAULT_CONFIG_FILE "/etc/zpcid/zpcid.conf"
#define ZPCID_DEFAULT_STATE_DIR   "/var/lib/zpcid"
#define ZPCID_DEFAULT_LIBVIRT_URI "qemu:///system"
