#!/usr/bin/env python3
"""Installs the build into a temporary DESTDIR (meson install --destdir) and checks the tree:
programs, the systemd unit, D-Bus activation and bus policy, the translated polkit policy, the
libvirt hook and its qemu.d link, manual pages, message catalogues, bash completion, the example
configuration and the API reference. Usage: check-install.py SOURCE_ROOT BUILD_ROOT"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

src, build = sys.argv[1], sys.argv[2]
results = []


def check(ok, what, detail=""):
    results.append((bool(ok), what, detail))
    return ok


def options():
    out = subprocess.run(["meson", "introspect", "--buildoptions", build], check=True,
                         capture_output=True, text=True).stdout
    opts = {o["name"]: o["value"] for o in json.loads(out)}
    prefix = opts["prefix"]
    return {k: os.path.join(prefix, opts[k]) for k in
            ("bindir", "libexecdir", "sysconfdir", "datadir", "mandir", "localedir")} | {
            "prefix": prefix}


def installed_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield os.path.join(dirpath, name)


def find(root, suffix):
    return [p for p in installed_files(root) if p.endswith(suffix)]


def main():
    dirs = options()
    with tempfile.TemporaryDirectory(prefix="zpcid-destdir-") as dest:
        run = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
                              "--destdir", dest], capture_output=True, text=True)
        if not check(run.returncode == 0, "meson install --destdir succeeds",
                     run.stdout + run.stderr):
            return report()

        def path(key, *rest):
            return dest + os.path.join(dirs[key], *rest)

        prefix_root = dest + dirs["prefix"]
        sysconf_root = dest + dirs["sysconfdir"]
        # The unit goes where systemd's pkg-config file says, which may be outside the prefix.
        stray = [p for p in installed_files(dest)
                 if not p.startswith((prefix_root + "/", sysconf_root + "/"))
                 and not p.endswith("/systemd/system/zpcid.service")]
        check(not stray, "every file is installed below the prefix or sysconfdir",
              "\n".join(stray))

        # zpcid starts zpcid-libvirt-helper from its own directory.
        for key, name in (("bindir", "zpcidctl"), ("libexecdir", "zpcid"),
                          ("libexecdir", "zpcid-libvirt-hook"),
                          ("libexecdir", "zpcid-libvirt-helper")):
            p = path(key, name)
            check(os.path.isfile(p) and os.access(p, os.X_OK),
                  f"{name} is an executable in {dirs[key]}", p)

        link = path("sysconfdir", "libvirt", "hooks", "qemu.d", "zpcid")
        target = os.path.join(dirs["libexecdir"], "zpcid-libvirt-hook")
        check(os.path.islink(link) and os.readlink(link) == target,
              f"libvirt's hooks/qemu.d/zpcid links to {target}",
              os.readlink(link) if os.path.islink(link) else "missing")

        daemon = os.path.join(dirs["libexecdir"], "zpcid")
        units = find(dest, "/systemd/system/zpcid.service")
        check(len(units) == 1 and f"ExecStart={daemon} --system" in open(units[0]).read(),
              "the systemd unit is installed and starts the installed zpcid", str(units))
        activation = path("datadir", "dbus-1", "system-services", "org.zpcid1.service")
        check(os.path.isfile(activation) and f"Exec={daemon} --system" in open(activation).read()
              and "SystemdService=zpcid.service" in open(activation).read(),
              "D-Bus activation goes through zpcid.service", activation)
        bus_policy = path("datadir", "dbus-1", "system.d", "org.zpcid1.conf")
        check(os.path.isfile(bus_policy) and 'own="org.zpcid1"' in open(bus_policy).read(),
              "the bus policy lets root own org.zpcid1", bus_policy)
        api = path("datadir", "dbus-1", "interfaces", "org.zpcid1.xml")
        check(os.path.isfile(api), "the D-Bus interface XML is installed", api)

        policy = path("datadir", "polkit-1", "actions", "org.zpcid1.policy")
        lang_key = "{http://www.w3.org/XML/1998/namespace}lang"
        try:
            actions = ET.parse(policy).getroot().findall("action")
            untranslated = [f"{a.get('id')}/{tag}" for a in actions
                            for tag in ("description", "message")
                            if not [e for e in a.findall(tag) if e.get(lang_key) == "de"]]
            check(len(actions) == 3 and not untranslated,
                  "the polkit policy has German descriptions and messages for its 3 actions",
                  ", ".join(untranslated))
        except (OSError, ET.ParseError) as e:
            check(False, "the polkit policy is installed and well-formed", str(e))

        pages = sorted(n for n in os.listdir(os.path.join(src, "docs", "man"))
                       if n[-2:-1] == "." and n[-1] in "12345678")
        missing = [n for n in pages if not os.path.isfile(path("mandir", "man" + n[-1], n))]
        check(pages and not missing, f"every manual page of docs/man is installed ({len(pages)})",
              ", ".join(missing))
        check("zpcid-libvirt-hook.8" in pages, "the hook's manual page zpcid-libvirt-hook(8) exists",
              "docs/man/zpcid-libvirt-hook.8 is missing")

        langs = open(os.path.join(src, "po", "LINGUAS")).read().split()
        missing = [l for l in langs
                   if not os.path.isfile(path("localedir", l, "LC_MESSAGES", "zpcid.mo"))]
        check(langs and not missing, f"message catalogues are installed for {' '.join(langs)}",
              ", ".join(missing))

        check(len(find(dest, "/bash-completion/completions/zpcidctl")) == 1,
              "bash completion for zpcidctl is installed")
        check(os.path.isfile(path("sysconfdir", "zpcid", "zpcid.conf")),
              "the example zpcid.conf is installed")
        docs = [n for n in os.listdir(path("datadir", "doc", "zpcid"))] \
            if os.path.isdir(path("datadir", "doc", "zpcid")) else []
        check({"zpcid-dbus-org.zpcid1.Manager.rst", "zpcid-dbus-org.zpcid1.Function.rst"} <=
              set(docs), "the D-Bus API reference is installed in the doc directory",
              ", ".join(docs))

        # The installed client with the installed catalogue: what a German admin sees.
        env = dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="de",
                   ZPCID_LOCALEDIR=path("localedir"))
        out = subprocess.run([path("bindir", "zpcidctl"), "--host-root",
                              os.path.join(src, "tests", "data", "hosts", "z13-lpar"), "check"],
                             capture_output=True, text=True, env=env)
        check(out.returncode == 1 and "Durchreichung:" in out.stdout,
              "the installed zpcidctl speaks German with the installed catalogue",
              out.stdout[-400:] + out.stderr)
    return report()


def report():
    print(f"1..{len(results)}")
    for i, (ok, what, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {what}")
        if not ok and detail:
            print("\n".join("# " + line for line in detail.splitlines()[:20]))
    return 0 if all(ok for ok, _, _ in results) else 1


sys.exit(main())
