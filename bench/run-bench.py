#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""zpcid's benchmark suite (issue #6): every cost as a ratio to a floor measured in the same run.

    run-bench.py --source SRC --build BUILD [--out DIR] [--sizes 64,512,4096] [--repeat N]
                 [--only inventory,dbus,bind,peer,s390x] [--skip ...]

Only the D-Bus part at two sizes, say (the table then has the D-Bus rows only):

    run-bench.py --source . --build build --only dbus --sizes 64,4096 --out /tmp/report

Prints a table (median, min and max over the repeated runs, the ratio to the floor, the
target, pass/miss) and writes DIR/report.json, DIR/report.md and DIR/inventory.png
(gnuplot). Host trees are generated once per size under BUILD/bench/hosts. Nothing here
touches the real /sys: the daemon and zpcidctl run with --host-root, and driverctl runs in a
private mount namespace with the generated tree bound over /sys.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Generated hosts: a tenth of the PFs carry VFs, a few functions are in standby; mkhost.py
# mixes RoCE, NVMe, ISM, virtio and unclassified functions on native drivers, vfio-pci and
# none, with netdevs and disks.
MKHOST_ARGS = ['--seed', '1', '--vfs-per-pf', '3', '--standby', '4']
HOST_STAMP = 'bench-host-v1'


PARTS = ('inventory', 'dbus', 'bind', 'peer', 's390x')


def log(msg):
    print('bench: ' + msg, file=sys.stderr, flush=True)


def run(argv, env=None, timeout=600, capture=True):
    res = subprocess.run(argv, env=env, timeout=timeout, text=True,
                         stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise SystemExit('bench: %s failed (%d):\n%s' % (' '.join(argv), res.returncode,
                                                          res.stderr[-4000:]))
    return res.stdout


def clean_env():
    env = dict(os.environ)
    for var in ('LD_PRELOAD', 'ZPCID_SIMKERNEL_ROOT', 'DBUS_SESSION_BUS_ADDRESS',
                'DBUS_SYSTEM_BUS_ADDRESS', 'ZPCID_HOST_ROOT', 'ZPCID_BUS_ADDRESS'):
        env.pop(var, None)
    env['LC_ALL'] = 'C.UTF-8'
    return env


def make_host(args, n):
    root = os.path.join(args.build, 'bench', 'hosts', 'h%d' % n)
    stamp = root + '.stamp'
    mkhost = os.path.join(args.source, 'tests', 'tools', 'mkhost.py')
    want = '%s %s %d %s' % (HOST_STAMP, os.path.getmtime(mkhost), n, ' '.join(MKHOST_ARGS))
    if os.path.exists(stamp) and open(stamp).read() == want:
        return root
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.dirname(root), exist_ok=True)
    log('generating a host with %d functions' % n)
    run([sys.executable, mkhost, root, '--functions', str(n),
         '--pf-with-vfs', str(max(1, n // 16))] + MKHOST_ARGS, env=clean_env())
    with open(stamp, 'w') as f:
        f.write(want)
    return root


def stats(samples):
    return {'median': statistics.median(samples), 'min': min(samples), 'max': max(samples),
            'n': len(samples)}


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p))]


def exe(args, *parts):
    return os.path.join(args.build, *parts)


# ---- measurements ----

def bench_inventory(args, hosts):
    """zpcid's scan against bench-floor replaying exactly the accesses the scan made."""
    out = {}
    for n, root in hosts.items():
        trace = os.path.join(args.work, 'trace-%d.txt' % n)
        with open(trace, 'w') as f:
            subprocess.run([exe(args, 'bench', 'bench-scan'), 'trace', root], stdout=f,
                           check=True, env=clean_env())
        counts = {}
        with open(trace) as f:
            for line in f:
                counts[line[0]] = counts.get(line[0], 0) + 1
        scan, floor = [], []
        # Interleaved, so that the load of other processes hits both alike; one warm-up each.
        for i in range(args.repeat + 1):
            s = json.loads(run([exe(args, 'bench', 'bench-scan'), 'time', root, '1'],
                               env=clean_env()))[0]
            fl = json.loads(run([exe(args, 'bench', 'bench-floor'), root, trace, '1'],
                                env=clean_env()))[0]
            if i > 0:
                scan.append(s)
                floor.append(fl)
        ratios = [a / b for a, b in zip(scan, floor)]
        out[n] = {'zpcid': stats(scan), 'floor': stats(floor), 'ratio': statistics.median(ratios),
                  'accesses': counts}
        log('inventory %d: zpcid %.1f ms, floor %.1f ms, ratio %.2f' % (
            n, out[n]['zpcid']['median'] * 1e3, out[n]['floor']['median'] * 1e3, out[n]['ratio']))
    return out


class Bus:
    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix='bus-', dir=args.work)
        conf = os.path.join(self.dir, 'bus.conf')
        with open(conf, 'w') as f:
            f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"'
                    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                    '<busconfig><type>session</type><listen>unix:dir=%s</listen>'
                    '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
                    '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n' % self.dir)
        self.proc = subprocess.Popen(['dbus-daemon', '--config-file=' + conf, '--nofork',
                                      '--print-address=1'], stdout=subprocess.PIPE, text=True,
                                     stderr=subprocess.DEVNULL, env=clean_env())
        self.address = self.proc.stdout.readline().strip()

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def bench_dbus(args, hosts):
    out = {}
    for n, root in hosts.items():
        runs = []
        for i in range(args.dbus_repeat):
            bus = Bus(args)
            work = tempfile.mkdtemp(prefix='dbus-%d-' % n, dir=args.work)
            try:
                runs.append(json.loads(run([exe(args, 'bench', 'bench-dbus'), bus.address,
                                            exe(args, 'daemon', 'zpcid'), root, work,
                                            str(args.calls)], env=clean_env())))
            finally:
                bus.close()
        merged = {}
        for key in ('ping', 'check', 'get', 'resolve', 'gmo', 'event'):
            samples = [x for r in runs for x in r[key]]
            merged[key] = {'p50': percentile(samples, 0.5), 'p99': percentile(samples, 0.99),
                           **stats(samples)}
        for key in ('startup', 'startup_first_answer', 'rss_kib', 'rss_anon_kib',
                    'rss_file_kib', 'rss_helper_kib', 'gmo_first', 'gmo_daemon_cpu',
                    'gmo_client_cpu'):
            merged[key] = stats([r[key] for r in runs])
        # bench-gmo (sd-bus) is built only with libsystemd; bench-dbus gives null without it.
        sd = [r['gmo_sdbus'] for r in runs if r.get('gmo_sdbus')]
        if sd:
            samples = [x for r in sd for x in r['samples']]
            merged['gmo_sdbus'] = {
                'p50': percentile(samples, 0.5), 'p99': percentile(samples, 0.99),
                **stats(samples), 'daemon_cpu': stats([r['daemon_cpu'] for r in sd]),
                'bus_cpu': stats([r['bus_cpu'] for r in sd]),
                'client_cpu': stats([r['client_cpu'] for r in sd]),
                'objects': sd[-1]['objects'], 'interfaces': sd[-1]['interfaces'],
                'properties': sd[-1]['properties']}
        out[n] = merged
        log('dbus %d: startup %.0f ms (first answer %.0f ms), RSS %.1f MiB (anon %.1f), GMO '
            '%s (GDBus client %.0f ms), event %.2f ms, ping %.3f ms, check %.3f ms' % (
                n, merged['startup']['median'] * 1e3,
                merged['startup_first_answer']['median'] * 1e3,
                merged['rss_kib']['median'] / 1024, merged['rss_anon_kib']['median'] / 1024,
                '%.0f ms (sd-bus client; %d objects, %d properties)' % (
                    merged['gmo_sdbus']['median'] * 1e3, merged['gmo_sdbus']['objects'],
                    merged['gmo_sdbus']['properties']) if sd else 'not measured with sd-bus',
                merged['gmo']['median'] * 1e3, merged['event']['p50'] * 1e3,
                merged['ping']['p50'] * 1e3, merged['check']['p50'] * 1e3))
    return out


def bench_bind(args):
    env = clean_env()
    env['LD_PRELOAD'] = exe(args, 'tests', 'simkernel', 'libzpcid-simkernel.so')
    env['MKHOST'] = os.path.join(args.source, 'tests', 'tools', 'mkhost.py')
    text = run([exe(args, 'bench', 'bench-bind'), '64', '100', str(args.bind_repeat)], env=env)
    data = json.loads(text.strip().splitlines()[-1])
    speedups = [s / p for s, p in zip(data['serial'], data['parallel'])]
    res = {'serial': stats(data['serial']), 'parallel': stats(data['parallel']),
           'speedup': stats(speedups)}
    log('bind: serial %.2f s, parallel %.2f s, speed-up %.1fx' % (
        res['serial']['median'], res['parallel']['median'], res['speedup']['median']))
    return res


def bench_peer(args, root):
    """zpcidctl list on the tree against driverctl list-devices with the tree over /sys."""
    driverctl = shutil.which('driverctl') or '/usr/sbin/driverctl'
    unshare = shutil.which('unshare')
    if not os.path.exists(driverctl) or unshare is None:
        return {'skipped': 'driverctl or unshare is not installed'}
    sys_dir = os.path.join(root, 'sys')
    # unshare(1) makes the new namespace's mounts private: the bind mount is never seen
    # outside, and driverctl list-devices only reads.
    inner = 'mount --bind "$1" /sys && exec "$2" list-devices'
    peer_cmd = [unshare, '--mount', '--propagation', 'private', 'sh', '-c', inner, 'sh',
                sys_dir, driverctl]
    ctl_cmd = [exe(args, 'cli', 'zpcidctl'), '--host-root', root, 'list']
    ours, theirs = [], []
    lines = {}
    for i in range(args.peer_repeat):
        for name, cmd, acc in (('zpcidctl', ctl_cmd, ours), ('driverctl', peer_cmd, theirs)):
            t0 = time.monotonic()
            text = run(cmd, env=clean_env())
            acc.append(time.monotonic() - t0)
            lines[name] = len(text.splitlines())
    res = {'zpcidctl': stats(ours), 'driverctl': stats(theirs), 'lines': lines,
           'speedup': statistics.median(theirs) / statistics.median(ours)}
    log('peer: zpcidctl %.2f s, driverctl %.2f s, %.1fx' % (
        res['zpcidctl']['median'], res['driverctl']['median'], res['speedup']))
    return res


def s390x_image(args):
    """The emulated IBM Z image of tests/s390x (this build's cache, else another build's),
    brought up to date with these sources first: tests/s390x/build-image.sh rebuilds zpcid
    incrementally and repacks the initramfs only when a binary changed, so the report never
    measures an older zpcid than the one it names."""
    import glob
    cands = [os.path.join(args.build, 'tests', 's390x', 'cache')]
    cands += sorted(glob.glob(os.path.join(args.source, 'build*', 'tests', 's390x', 'cache')))
    source = os.path.realpath(args.source)
    for c in cands:
        if not all(os.path.exists(os.path.join(c, f)) for f in ('vmlinuz', 'initrd.img',
                                                                'initrd.stamp')):
            continue
        try:
            with open(os.path.join(c, 'build-s390x.src')) as f:
                built_from = os.path.realpath(f.read().strip())
        except OSError:
            built_from = None
        if built_from != source:
            continue
        log('bringing the s390x image in %s up to date' % c)
        res = subprocess.run([os.path.join(args.source, 'tests', 's390x', 'build-image.sh'), c,
                              args.source], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        if res.returncode != 0:
            log('the s390x image could not be rebuilt:\n' + res.stderr[-2000:])
            return None
        return c
    return None


def bench_s390x(args, image, icount=False):
    """Boots the tests/s390x image with bench/s390x/90-bench-bind.sh appended to its initrd
    (a second cpio archive, which the kernel unpacks over the first): only that scenario runs.
    With @icount the guest's clock counts executed instructions (bench/s390x/qemu-icount)."""
    if image is None or shutil.which('qemu-system-s390x') is None:
        return {'skipped': 'no s390x image (meson test --suite s390x builds one) or no QEMU'}
    cache = os.path.join(args.build, 'bench', 's390x-icount' if icount else 's390x')
    stage = os.path.join(cache, 'stage')
    scen = os.path.join(stage, 'zpcid-test', 'scenarios')
    if os.path.exists(cache):
        shutil.rmtree(cache)
    os.makedirs(scen)
    shutil.copy(os.path.join(args.source, 'bench', 's390x', '90-bench-bind.sh'), scen)
    os.symlink(os.path.join(image, 'vmlinuz'), os.path.join(cache, 'vmlinuz'))
    names = subprocess.run(['find', '.', '-mindepth', '1'], cwd=stage, text=True, check=True,
                           stdout=subprocess.PIPE).stdout
    archive = subprocess.run(['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0'], cwd=stage,
                             input=names.encode(), check=True, stdout=subprocess.PIPE).stdout
    import gzip
    with open(os.path.join(cache, 'initrd.img'), 'wb') as out:
        with open(os.path.join(image, 'initrd.img'), 'rb') as base:
            shutil.copyfileobj(base, out)
        out.write(gzip.compress(archive, 1))
    env = clean_env()
    env['ZPCID_VM_TIMEOUT'] = '400'
    if icount:
        env['QEMU'] = os.path.join(args.source, 'bench', 's390x', 'qemu-icount')
    res = subprocess.run([os.path.join(args.source, 'tests', 's390x', 'run-vm.sh'), cache,
                          '--only', '90-bench-bind'], env=env, text=True, timeout=450,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ours, bare, cli = [], [], []
    # Each direction on its own: "zpcid-bind", "zpcid-unbind", "bare-bind", "bare-unbind".
    parts = {}
    n = 0
    for line in res.stdout.splitlines():
        f = line.split()
        if len(f) >= 11 and f[:2] == ['#', 'bench-s390x']:
            ours.append(float(f[4]))
            bare.append(float(f[6]))
            cli.append(float(f[8]))
            n = int(f[10])
            for k in range(11, len(f) - 1, 2):
                parts.setdefault(f[k], []).append(float(f[k + 1]))
    if res.returncode != 0 or not ours:
        return {'skipped': 'the VM run failed: ' + res.stdout[-1500:]}
    ratios = [a / b for a, b in zip(ours, bare)]
    out = {'zpcid': stats(ours), 'bare': stats(bare), 'cli_start': stats(cli), 'functions': n,
           'ratio': statistics.median(ratios), 'image': image,
           'ratio_without_cli_start': statistics.median(
               [(a - c) / b for a, b, c in zip(ours, bare, cli)]),
           'directions': {k: stats(v) for k, v in parts.items()}}
    log('s390x%s: zpcid %.2f s, bare %.2f s (%d functions), ratio %.2f, without starting '
        'zpcidctl %.2f; %s' % (' (icount)' if icount else '', out['zpcid']['median'], out['bare']['median'], n, out['ratio'],
                               out['ratio_without_cli_start'],
                               ', '.join('%s %.2f s' % (k, v['median'])
                                         for k, v in sorted(out['directions'].items()))))
    return out


# ---- report ----

def machine():
    info = {'kernel': platform.release(), 'cpus': os.cpu_count(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name') and 'cpu' not in info:
                info['cpu'] = line.split(':', 1)[1].strip()
            if line.startswith('flags'):
                info['virtual'] = 'hypervisor' in line.split()
                break
        info['load'] = open('/proc/loadavg').read().split()[:3]
        for line in open('/proc/meminfo'):
            if line.startswith('MemTotal'):
                info['memory_mib'] = int(line.split()[1]) // 1024
    except OSError:
        pass
    info['glib'] = subprocess.run(['pkg-config', '--modversion', 'glib-2.0'], text=True,
                                  stdout=subprocess.PIPE).stdout.strip()
    return info


def ms(x):
    return '%.1f ms' % (x * 1e3) if x >= 0.01 else '%.3f ms' % (x * 1e3)


def inventory_floor(res, n):
    inv = res.get('inventory')
    return inv[n]['floor']['median'] if inv else None


def dbus_rows(res, sizes):
    big = max(sizes)
    out = []
    for n in sizes:
        d = res['dbus'][n]
        e = d['event']
        out.append(('Event: uevent → PropertiesChanged, %d fns (p50; floor Ping)' % n,
                    ms(e['p50']), ms(e['min']), ms(e['max']), ms(d['ping']['p50']),
                    '%.1f×' % (e['p50'] / d['ping']['p50']), '≤ 10 ms' if n == big else 'info',
                    e['p50'] <= 0.010 if n == big else None))
    d = res['dbus'][big]
    for key, label in (('check', 'Check'), ('get', 'Properties.Get'),
                       ('resolve', 'ResolveFunction')):
        c = d[key]
        ratio = c['p50'] / d['ping']['p50']
        out.append(('D-Bus %s, %d fns (p50, p99 %s; floor Ping)' % (label, big, ms(c['p99'])),
                    ms(c['p50']), ms(c['min']), ms(c['max']), ms(d['ping']['p50']),
                    '%.2f×' % ratio, 'p50 ≤ 2× Ping', ratio <= 2.0))
    # The target is measured with the sd-bus client, which reads the whole reply in place;
    # GLib's client spends more on building GVariants of it than the daemon spends on the
    # call, and that cost depends on the client library, not on zpcid.
    g, gd = d.get('gmo_sdbus'), d['gmo']
    glib = 'GLib client incl. its GVariant decoding: %s, its CPU %s' % (
        ms(gd['median']), ms(d['gmo_client_cpu']['median']))
    if g:
        label = ('D-Bus GetManagedObjects, %d fns, sd-bus client reading all %d objects, %d '
                 'properties (CPU per call: zpcid %s, dbus-daemon %s, client %s; %s; floor '
                 'Ping)' % (big, g['objects'], g['properties'], ms(g['daemon_cpu']['median']),
                            ms(g['bus_cpu']['median']), ms(g['client_cpu']['median']), glib))
    else:
        g = gd
        label = ('D-Bus GetManagedObjects, %d fns (CPU per call: zpcid %s; %s; no sd-bus '
                 'client: bench-gmo needs libsystemd; floor Ping)' % (
                     big, ms(d['gmo_daemon_cpu']['median']), glib))
    out.append((label, ms(g['median']), ms(g['min']), ms(g['max']), ms(d['ping']['p50']),
                '%.0f×' % (g['median'] / d['ping']['p50']), '≤ 100 ms', g['median'] <= 0.100))
    base = res['dbus'][min(sizes)]['rss_kib']['median']
    for n in sizes:
        r = res['dbus'][n]
        out.append(('Daemon RSS idle, %d fns (anon %.1f MiB; floor: RSS at %d; libvirt helper '
                    '%.1f MiB more until 10 s after its last call)' % (
            n, r['rss_anon_kib']['median'] / 1024, min(sizes),
            r['rss_helper_kib']['median'] / 1024),
            '%.1f MiB' % (r['rss_kib']['median'] / 1024),
            '%.1f MiB' % (r['rss_kib']['min'] / 1024), '%.1f MiB' % (r['rss_kib']['max'] / 1024),
            '%.1f MiB' % (base / 1024), '%.2f×' % (r['rss_kib']['median'] / base),
            '≤ 16 MiB' if n == big else 'info',
            r['rss_kib']['median'] <= 16 * 1024 if n == big else None))
    for n in sizes:
        r = res['dbus'][n]
        fl = inventory_floor(res, n)
        for key, label, target in (
                ('startup', 'Startup to name acquired', '≤ 100 ms'),
                ('startup_first_answer', 'Startup to first answer (Check sent once the name '
                 'is owned)', 'info')):
            t = r[key]
            out.append(('%s, %d fns (floor: floor reader)' % (label, n), ms(t['median']),
                        ms(t['min']), ms(t['max']), ms(fl) if fl else '-',
                        '%.1f×' % (t['median'] / fl) if fl else '-', target,
                        t['median'] <= 0.100 if target != 'info' else None))
    return out


def rows(res, sizes):
    """(measure, zpcid median, min, max, floor, ratio, target, ok or None) of the parts
    that were run."""
    big = max(sizes)
    out = []
    for n in sizes if 'inventory' in res else []:
        inv = res['inventory'][n]
        out.append(('Cold inventory, %d fns (scan vs floor reader)' % n,
                    ms(inv['zpcid']['median']), ms(inv['zpcid']['min']), ms(inv['zpcid']['max']),
                    ms(inv['floor']['median']), '%.2f×' % inv['ratio'], '≤ 1.5×',
                    inv['ratio'] <= 1.5))
    if 'dbus' in res:
        out += dbus_rows(res, sizes)
    b = res.get('bind')
    if b:
        out.append(('Bulk bind, 64 fns, 100 ms unbind delay (parallel; floor serial)',
                    '%.2f s' % b['parallel']['median'], '%.2f s' % b['parallel']['min'],
                    '%.2f s' % b['parallel']['max'], '%.2f s' % b['serial']['median'],
                    '%.1f× faster' % b['speedup']['median'], '≥ 4×', b['speedup']['median'] >= 4))
    v = res.get('s390x')
    if v and 'skipped' not in v:
        out.append(('s390x VM (TCG): bind+unbind of all %d fns via zpcidctl vs bare sysfs loop, '
                    'zpcid stopped meanwhile (%.2f× without starting zpcidctl)' % (
                        v['functions'], v['ratio_without_cli_start']),
                    '%.2f s' % v['zpcid']['median'], '%.2f s' % v['zpcid']['min'],
                    '%.2f s' % v['zpcid']['max'], '%.2f s' % v['bare']['median'],
                    '%.2f×' % v['ratio'], '≤ 1.3×', v['ratio'] <= 1.3))
    elif not res.get('only') or 's390x' in res['only']:
        out.append(('s390x VM: bind/unbind every function vs bare sysfs loop (not run: %s)' % (
            (v or {}).get('skipped', 'skipped')[:80]), '-', '-', '-', '-', '-', '≤ 1.3×', None))
    v = res.get('s390x_icount')
    if v and 'skipped' not in v:
        out.append(('s390x VM (TCG with -icount: guest time counted in executed instructions, '
                    'not host time), the same rounds (%.2f× without starting zpcidctl)' % (
                        v['ratio_without_cli_start']),
                    '%.2f s' % v['zpcid']['median'], '%.2f s' % v['zpcid']['min'],
                    '%.2f s' % v['zpcid']['max'], '%.2f s' % v['bare']['median'],
                    '%.2f×' % v['ratio'], '≤ 1.3×', v['ratio'] <= 1.3))
    p = res.get('peer')
    if p and 'skipped' not in p:
        out.append(('Peer: zpcidctl list vs driverctl list-devices, %d fns' % big,
                     '%.3f s' % p['zpcidctl']['median'], '%.3f s' % p['zpcidctl']['min'],
                     '%.3f s' % p['zpcidctl']['max'], '%.3f s' % p['driverctl']['median'],
                     '%.1f× faster' % p['speedup'], '≥ 10×', p['speedup'] >= 10))
    return out


def verdict(ok):
    return {True: 'pass', False: 'MISS', None: '-'}[ok]


def table_md(rs):
    head = '| measure | zpcid median | min | max | floor | ratio | target | result |\n' \
           '|---|---|---|---|---|---|---|---|\n'
    return head + ''.join('| %s | %s | %s | %s | %s | %s | %s | %s |\n' % (r[:7] + (verdict(r[7]),))
                          for r in rs)


def table_text(rs):
    if not rs:
        return '(no table: nothing was measured)'
    cols = list(zip(*[r[:7] + (verdict(r[7]),) for r in rs]))
    names = ('measure', 'median', 'min', 'max', 'floor', 'ratio', 'target', 'result')
    widths = [max(len(names[i]), *(len(str(x)) for x in cols[i])) for i in range(len(names))]
    fmt = '  '.join('%%-%ds' % w for w in widths)
    lines = [fmt % names, fmt % tuple('-' * w for w in widths)]
    lines += [fmt % (r[:7] + (verdict(r[7]),)) for r in rs]
    return '\n'.join(lines)


def plot(args, res, sizes):
    gnuplot = shutil.which('gnuplot')
    if gnuplot is None:
        log('gnuplot is not installed; no plot')
        return None
    data = os.path.join(args.out, 'inventory.dat')
    with open(data, 'w') as f:
        f.write('# functions zpcid_ms floor_ms startup_ms first_answer_ms\n')
        for n in sizes:
            f.write('%d %.3f %.3f %.3f %.3f\n' % (
                n, res['inventory'][n]['zpcid']['median'] * 1e3,
                res['inventory'][n]['floor']['median'] * 1e3,
                res['dbus'][n]['startup']['median'] * 1e3,
                res['dbus'][n]['startup_first_answer']['median'] * 1e3))
    png = os.path.join(args.out, 'inventory.png')
    script = '''
set terminal pngcairo size 900,560 noenhanced font ",11"
set output "%s"
set title "Cold inventory: zpcid's scan vs the floor reader (same files)"
set xlabel "zPCI functions"
set ylabel "milliseconds (median)"
set logscale xy
set key left top
set grid
set xtics (64, 512, 4096)
plot "%s" using 1:2 with linespoints lw 2 title "zpcid scan", \\
     "" using 1:3 with linespoints lw 2 title "floor: minimal C reader", \\
     "" using 1:4 with linespoints lw 1 dt 2 title "daemon startup to name acquired", \\
     "" using 1:5 with linespoints lw 1 dt 3 title "daemon startup to first answer (Check)"
''' % (png, data)
    res_ = subprocess.run([gnuplot], input=script, text=True, stderr=subprocess.PIPE)
    if res_.returncode != 0:
        # pngcairo needs gnuplot-x11/qt; gnuplot-nox has the plain png terminal.
        script = script.replace('pngcairo size 900,560 noenhanced font ",11"',
                                'png size 900,560 noenhanced')
        subprocess.run([gnuplot], input=script, text=True, check=True)
    return png


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--source', required=True)
    p.add_argument('--build', required=True)
    p.add_argument('--out')
    p.add_argument('--sizes', default='64,512,4096',
                   help='functions of the generated hosts (default: %(default)s)')
    p.add_argument('--repeat', type=int, default=7, help='runs of each inventory measurement')
    p.add_argument('--dbus-repeat', type=int, default=3, help='daemon starts per size')
    p.add_argument('--calls', type=int, default=300, help='calls of each kind per daemon start')
    p.add_argument('--bind-repeat', type=int, default=3)
    p.add_argument('--peer-repeat', type=int, default=3)
    p.add_argument('--skip', default='', help='comma-separated parts not to run')
    p.add_argument('--only', default='',
                   help='comma-separated parts to run, of %s (default: all but --skip); e.g. '
                   '"--only dbus --sizes 64,4096"' % ','.join(PARTS))
    args = p.parse_args()
    args.source = os.path.abspath(args.source)
    args.build = os.path.abspath(args.build)
    args.out = os.path.abspath(args.out or os.path.join(args.build, 'bench', 'report'))
    sizes = [int(x) for x in args.sizes.split(',')]
    skip = set(filter(None, args.skip.split(',')))
    only = set(filter(None, args.only.split(',')))
    if not only <= set(PARTS) or not skip <= set(PARTS):
        p.error('parts are %s' % ','.join(PARTS))
    if only:
        skip |= set(PARTS) - only
    os.makedirs(args.out, exist_ok=True)
    start = time.monotonic()

    with tempfile.TemporaryDirectory(prefix='zpcid-bench-') as work:
        args.work = work
        hosts = {n: make_host(args, n) for n in sizes}
        res = {'machine': machine(), 'sizes': sizes, 'only': sorted(only)}
        if 'inventory' not in skip:
            res['inventory'] = bench_inventory(args, hosts)
        if 'dbus' not in skip:
            res['dbus'] = bench_dbus(args, hosts)
        if 'bind' not in skip:
            res['bind'] = bench_bind(args)
        if 'peer' not in skip:
            res['peer'] = bench_peer(args, hosts[max(sizes)])
        if 's390x' not in skip:
            image = s390x_image(args)
            res['s390x'] = bench_s390x(args, image)
            res['s390x_icount'] = bench_s390x(args, image, icount=True)
    res['seconds'] = time.monotonic() - start

    rs = rows(res, sizes)
    res['table'] = [{'measure': r[0], 'median': r[1], 'min': r[2], 'max': r[3], 'floor': r[4],
                     'ratio': r[5], 'target': r[6], 'result': verdict(r[7])} for r in rs]
    with open(os.path.join(args.out, 'report.json'), 'w') as f:
        json.dump(res, f, indent=1, sort_keys=True, default=str)
    png = plot(args, res, sizes) if 'inventory' in res and 'dbus' in res else None
    m = res['machine']
    md = ['Run %s on %s (%s CPUs%s, %s MiB), kernel %s, GLib %s; load average at the start '
          '%s; %.0f s in all.' % (m['date'], m.get('cpu', '?'), m['cpus'],
                                  ', virtual machine' if m.get('virtual') else '',
                                  m.get('memory_mib', '?'), m['kernel'], m['glib'],
                                  ' '.join(m.get('load', [])), res['seconds']),
          '', table_md(rs)]
    with open(os.path.join(args.out, 'report.md'), 'w') as f:
        f.write('\n'.join(md))
    print(table_text(rs))
    print('\nreport: %s/report.json, report.md%s (%.0f s)' % (
        args.out, ', inventory.png' if png else '', res['seconds']))
    missed = [r[0] for r in rs if r[7] is False]
    if missed:
        print('missed: ' + '; '.join(missed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
