"""Differential test: ringflush's rollover instants, rotated-file names and
retention against the running CPython's
logging.handlers.TimedRotatingFileHandler.

Usage: TZ=<zone> python3 rotation_diff.py RINGFLUSH_BINARY ZONE UTC(0|1)

For every case (when x interval x atTime x start time) the rollover instant
comes from the handler's own computeRollover(), and the name from its suffix
with doRollover's rule (the period start `rollover - interval`, shifted an
hour when DST differs between then and the rollover). Where a DST change
falls between the start and a midnight or weekly rollover, CPython before
3.13 does not correct the instant; there the test uses the 3.13 rule (the
rollover lands on the local wall-clock time) and counts the case separately;
run by CPython 3.13 itself, every case is CPython's own answer.

Retention: for each when and backupCount, a directory of rotated names and
decoys; the files ringflush would delete must be getFilesToDelete()'s.

Every case must be compared: a binary that prints nothing, or skips a
start time, fails the test.
"""
import datetime as dt
import logging.handlers
import os
import subprocess
import sys
import tempfile
import time
from zoneinfo import ZoneInfo

binary, zone_name, utc = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
zone = dt.timezone.utc if utc else ZoneInfo(zone_name)
os.environ["TZ"] = "UTC" if utc else zone_name
time.tzset()

DATES = ["2024-03-06", "2024-03-09", "2024-03-10", "2024-03-30", "2024-03-31",
         "2024-10-26", "2024-10-27", "2024-11-02", "2024-11-03", "2024-12-31", "2024-02-29"]
TIMES = ["00:17:33", "01:30:07", "09:29:59", "09:30:01", "12:00:01", "23:59:58"]
CASES = [(w, n, None) for w in ["S", "M", "H", "D"] for n in [1, 3]] + [
    # 02:30 falls in the hour skipped when DST starts in both local zones:
    # that is where CPython's `result - 3600` check decides.
    (w, n, at) for w in ["MIDNIGHT", "W0", "W2", "W6"] for n in [1, 2]
    for at in [None, "09:30", "02:30"]
]

starts = []
for d in DATES:
    for t in TIMES:
        local = dt.datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=zone)
        starts.append(int(local.timestamp()))

def suffix_for(h, rollover):
    then = rollover - h.interval
    conv = time.gmtime if utc else time.localtime
    tt = conv(then)
    if not utc:
        dst_now, dst_then = time.localtime(rollover).tm_isdst, tt.tm_isdst
        if dst_now != dst_then:
            tt = time.localtime(then + (3600 if dst_now else -3600))
    return time.strftime(h.suffix, tt)

def rollover_313(h, current):
    """CPython 3.13's computeRollover (Lib/logging/handlers.py), for older
    interpreters: the interval of midnight and weekly rollovers, and the DST
    correction of the instant."""
    result = current + h.interval
    if h.when == "MIDNIGHT" or h.when.startswith("W"):
        t = time.gmtime(current) if h.utc else time.localtime(current)
        current_day = t[6]
        rotate_ts = 86400 if h.atTime is None else (
            (h.atTime.hour * 60 + h.atTime.minute) * 60 + h.atTime.second)
        r = rotate_ts - ((t[3] * 60 + t[4]) * 60 + t[5])
        if r <= 0:
            r += 86400
            current_day = (current_day + 1) % 7
        result = current + r
        if h.when.startswith("W"):
            day = current_day
            if day != h.dayOfWeek:
                days = h.dayOfWeek - day if day < h.dayOfWeek else 6 - day + h.dayOfWeek + 1
                result += days * 86400
            result += h.interval - 86400 * 7
        else:
            result += h.interval - 86400
        if not h.utc:
            dst_now, dst_then = t[-1], time.localtime(result)[-1]
            if dst_now != dst_then:
                if not dst_now:
                    addend = 0 if not time.localtime(result - 3600)[-1] else -3600
                else:
                    addend = 3600
                result += addend
    return result


tmp = tempfile.mkdtemp()
agree = by_313_rule = compared = 0
failures = []
for when, interval, at in CASES:
    at_time = dt.time.fromisoformat(at) if at else None
    h = logging.handlers.TimedRotatingFileHandler(
        os.path.join(tmp, "x.log"), when=when, interval=interval, utc=utc, atTime=at_time,
        delay=True)
    expected = {}
    for s in starts:
        r = h.computeRollover(s)
        aligned = when == "MIDNIGHT" or when.startswith("W")
        if aligned and sys.version_info < (3, 13):
            own = r
            r = rollover_313(h, s)
            if r != own:
                by_313_rule += 1
            else:
                agree += 1
        else:
            agree += 1
        expected[s] = (r, suffix_for(h, r))
    cmd = [binary, "rollover", "--when", when, "--interval", str(interval),
           "--from", ",".join(map(str, starts))]
    if at:
        cmd += ["--at-time", at]
    if utc:
        cmd.append("--utc")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seen = set()
    for line in out.splitlines():
        s, r, suffix = line.split()
        s, r = int(s), int(r)
        seen.add(s)
        compared += 1
        if expected.get(s) != (r, suffix):
            failures.append(f"{zone_name} utc={utc} when={when} interval={interval} at={at} "
                            f"from={s} ({dt.datetime.fromtimestamp(s, zone)}): ringflush {r} "
                            f"{suffix}, python {expected.get(s)}")
    missing = set(expected) - seen
    if missing:
        failures.append(f"when={when} interval={interval} at={at}: ringflush printed nothing "
                        f"for {len(missing)} of {len(expected)} start times")

cases = len(CASES) * len(starts)
assert agree + by_313_rule == cases


def retention_cases():
    """(when, backupCount, names): rotated names CPython and ringflush both
    produce, in shuffled order, plus decoys neither counts as a backup."""
    import random
    rng = random.Random(7)
    for when in ["S", "M", "H", "D", "MIDNIGHT", "W3"]:
        h = logging.handlers.TimedRotatingFileHandler(
            os.path.join(tmp, "x.log"), when=when, utc=utc, delay=True)
        names = sorted({"app.log." + time.strftime(h.suffix, time.gmtime(s - 3600 * k))
                        for s in starts[::7] for k in (0, 1, 30)})
        first = names[0][len("app.log."):]
        decoys = ["app.log", "app.log.notes", "other.log." + first, "app.log." + first + "x",
                  "app.log.x" + first, "app.log." + first.replace("-", "_", 1), "app.log..1"]
        all_names = names + decoys
        rng.shuffle(all_names)
        for keep in [0, 1, 3, len(names) - 1, len(names), len(names) + 5]:
            yield when, keep, all_names


retention_failures = retention_compared = 0
for when, keep, names in retention_cases():
    d = tempfile.mkdtemp(dir=tmp)
    for n in names:
        open(os.path.join(d, n), "w").close()
    base = os.path.join(d, "app.log")
    h = logging.handlers.TimedRotatingFileHandler(base, when=when, utc=utc, backupCount=keep,
                                                  delay=True)
    python = sorted(h.getFilesToDelete()) if keep > 0 else []
    cmd = [binary, "retention", "--when", when, "--backup-count", str(keep), "--file", base]
    if utc:
        cmd.append("--utc")
    ours = sorted(subprocess.run(cmd, check=True, capture_output=True, text=True)
                  .stdout.splitlines())
    retention_compared += 1
    if ours != python:
        retention_failures += 1
        failures.append(f"retention when={when} backupCount={keep}: ringflush deletes "
                        f"{[os.path.basename(p) for p in ours]}, python "
                        f"{[os.path.basename(p) for p in python]}")

for f in failures[:20]:
    print("MISMATCH", f)
print(f"{zone_name} utc={utc}: {compared} of {cases} cases compared, {agree} against CPython "
      f"{sys.version.split()[0]}'s own computeRollover and {by_313_rule} where it differs from "
      f"3.13's against a copy of 3.13's; {retention_compared} retention cases; "
      f"{len(failures)} mismatches")
sys.exit(1 if failures or compared != cases else 0)
