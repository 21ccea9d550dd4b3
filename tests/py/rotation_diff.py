"""Differential test: ringflush's rollover instants and rotated-file names
against this machine's CPython logging.handlers.TimedRotatingFileHandler.

Usage: TZ=<zone> python3 rotation_diff.py RINGFLUSH_BINARY ZONE UTC(0|1)

For every case the rollover instant comes from the handler's own
computeRollover(), and the name from its suffix with doRollover's rule (the
period start `rollover - interval`, shifted an hour when DST differs between
then and the rollover). Where a DST change falls between the start and a
midnight or weekly rollover, CPython before 3.13 does not correct the
instant; there the test uses the 3.13 rule (the rollover lands on the local
wall-clock time) and counts the case separately.
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
CASES = [(w, None) for w in ["S", "M", "H", "D"]] + [
    (w, at) for w in ["MIDNIGHT", "W0", "W2", "W6"] for at in [None, "09:30"]
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

def wall_clock_rule(h, start, rollover, at):
    """3.13: the rollover is at the local rotate time on the day CPython picks."""
    rotate = dt.time(9, 30) if at else dt.time(0, 0)
    got = dt.datetime.fromtimestamp(rollover, zone)
    best = None
    for delta in (-1, 0, 1):
        cand = dt.datetime.combine(got.date() + dt.timedelta(days=delta), rotate, tzinfo=zone)
        ts = int(cand.timestamp())
        if abs(ts - rollover) <= 3600 and (best is None or abs(ts - rollover) < abs(best - rollover)):
            best = ts
    return best

tmp = tempfile.mkdtemp()
agree = by_313_rule = 0
failures = []
for when, at in CASES:
    at_time = dt.time(9, 30) if at else None
    h = logging.handlers.TimedRotatingFileHandler(
        os.path.join(tmp, "x.log"), when=when, interval=1, utc=utc, atTime=at_time, delay=True)
    expected = {}
    for s in starts:
        r = h.computeRollover(s)
        aligned = when == "MIDNIGHT" or when.startswith("W")
        crosses_dst = (not utc and aligned
                       and time.localtime(s).tm_isdst != time.localtime(r).tm_isdst)
        if crosses_dst and sys.version_info < (3, 13):
            r = wall_clock_rule(h, s, r, at)
            by_313_rule += 1
        else:
            agree += 1
        expected[s] = (r, suffix_for(h, r))
    cmd = [binary, "rollover", "--when", when, "--from", ",".join(map(str, starts))]
    if at:
        cmd += ["--at-time", at]
    if utc:
        cmd.append("--utc")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        s, r, suffix = line.split()
        s, r = int(s), int(r)
        if expected[s] != (r, suffix):
            failures.append(f"{zone_name} utc={utc} when={when} at={at} from={s} "
                            f"({dt.datetime.fromtimestamp(s, zone)}): ringflush {r} {suffix}, "
                            f"python {expected[s][0]} {expected[s][1]}")

for f in failures[:20]:
    print("MISMATCH", f)
print(f"{zone_name} utc={utc}: {agree} cases agree with CPython {sys.version.split()[0]}, "
      f"{by_313_rule} DST-crossing cases checked by the 3.13 wall-clock rule, "
      f"{len(failures)} mismatches")
sys.exit(1 if failures else 0)
