"""Differential test: the flusher's formatting against the running CPython's
logging.Formatter.

Usage: TZ=<zone> python3 formatter_diff.py RINGFLUSH_BINARY

For every formatter case (format string in the `%`, `{` or `$` style,
datefmt, defaults) the script writes a set of records into a fresh segment
with the ringflush package's low-level writer
(`ringflush._native.Producer.write`, what RingHandler uses), runs the real
`ringflush` binary with the same --format/--style/--datefmt/--defaults
over it, stops it with SIGTERM (which drains everything committed) and
compares each record's text in the file with what
`logging.Formatter(fmt, datefmt, style, defaults=...).format(record)`
gives for a LogRecord with the same attributes (plus the FileHandler's
"\\n"). The record set covers levels, logger names, unicode, quotes and
control characters, multi-line messages, `extra` values of every JSON type,
`exc_text` and `stack_info`; the formatters every standard attribute,
widths, precisions, alignments, conversions and datefmts.

A record CPython cannot format with a case's formatter (KeyError,
TypeError, ValueError: Handler.handleError would drop it) is not written
for that case and is counted apart. `relativeCreated` counts from the
flusher's start, which the test cannot know beforehand: the cases that show
it print it first with repr(), the start is read back from the first line,
and every line (that field included) must then match exactly.

Formats CPython's validate=True refuses must be refused by the flusher too
(exit status 2, "invalid --format", no log file); names that are neither
record attributes nor in --defaults are refused by design.

Every case must be compared: a binary that writes nothing, or fewer
records than were written, fails the test.
"""
import importlib.util
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
os.environ.setdefault("TZ", "UTC")
time.tzset()


def load_producer():
    """ringflush._native.Producer; where this CPython has no ringflush
    installed (pyenv's 3.13), the machine's python3 has: its extension is
    built for the stable ABI and loads here too."""
    try:
        from ringflush._native import Producer
        return Producer
    except ImportError:
        pass
    found = subprocess.run(
        ["python3", "-c", "import ringflush._native as n; print(n.__file__)"],
        capture_output=True, text=True)
    if found.returncode != 0:
        print("ringflush is not installed for python3 (python3 -m pip install .): "
              + found.stderr.strip().splitlines()[-1] if found.stderr.strip() else "")
        sys.exit(3)
    path = found.stdout.strip()
    spec = importlib.util.spec_from_file_location("ringflush._native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Producer


Producer = load_producer()

# --- records ---------------------------------------------------------------

T0 = 1709720253_045678912  # 2024-03-06 10:17:33.045678912 UTC
TRACE = ("Traceback (most recent call last):\n"
         "  File \"/srv/app/db.py\", line 17, in query\n"
         "    raise ValueError(\"bad 'value'\")\n"
         "ValueError: bad 'value'")
STACK = ("Stack (most recent call last):\n"
         "  File \"/srv/app/main.py\", line 3, in <module>\n"
         "    main()")
EXTRA_ALL = {"request_id": "r-\u00fc1", "user": "o'neil", "count": 42, "ratio": 0.125,
             "flag": True, "none": None, "obj": {"a": 1, "b": [1, 2.5, None, "x\u00e9"]},
             "lst": [1, "two", 3.0, False, {"k": "v"}]}


def rec(msg, level=20, name="app.db", ns=T0, pathname="/srv/app/db.py", lineno=17,
        func="query", module="db", thread=140_000_000_000_123, thread_name="MainThread",
        process_name="MainProcess", task_name="", extra=None, exc_text=None, stack_info=None):
    return dict(msg=msg, level=level, name=name, ns=ns, pathname=pathname, lineno=lineno,
                func=func, module=module, thread=thread, thread_name=thread_name,
                process_name=process_name, task_name=task_name, extra=extra or {},
                exc_text=exc_text, stack_info=stack_info)


RECORDS = [
    rec("plain message"),
    rec("debug", level=10, name="root"),
    rec("warn", level=30, name="app.http.access"),
    rec("error", level=40, lineno=1),
    rec("critical", level=50, lineno=99999),
    rec("custom level", level=25),
    rec("notset", level=0),
    rec("unicode caf\u00e9 \u65e5\u672c \U0001f600 \u00a0nbsp \u200bzw", name="\u00fcn\u00efcode.\u65e5"),
    rec("quotes ' single"),
    rec('quotes " double'),
    rec("quotes ' and \" both"),
    rec("back\\slash tab\tcr\rbell\x07 del\x7f"),
    rec("multi\nline\nmessage"),
    rec("ends with newline\n"),
    rec(""),
    rec("x" * 300),
    rec("%s %d {0} {name} $name $$ 100%"),
    rec("  padded  "),
    rec("millis .125", ns=1709720253_125000000),
    rec("end of second", ns=1709720253_999999999),
    rec("whole second", ns=1709720253_000000000),
    rec("new year", ns=1704067199_999000000),
    rec("leap day", ns=1709208000_500000000),
    # Around Europe/Berlin's DST changes (the test also runs in that zone).
    rec("before spring forward", ns=1711846799_500000000),
    rec("after spring forward", ns=1711846800_250000000),
    rec("first 02:30", ns=1729989000_000000000),
    rec("second 02:30", ns=1729992600_000000000),
    rec("no module given", module="", pathname="/srv/pkg/tool.tar.gz"),
    rec("relative path", pathname="relative/x.py", module="x"),
    rec("hidden", pathname="/a/.hidden", module=""),
    rec("unknown file", pathname="(unknown file)", module="", func="(unknown function)", lineno=0),
    rec("names", thread=1, thread_name="worker-\u00fc", process_name="SpawnProcess-1",
        task_name="Task-7", func="<module>"),
    rec("with extras", extra=EXTRA_ALL),
    rec("request only", extra={"request_id": "abc"}),
    rec("other numbers", extra={"count": -7, "ratio": 1e16, "big": 2**70, "flag": False}),
    rec("odd floats", extra={"ratio": -0.0, "count": 0, "tiny": 1e-05, "nan": float("nan"),
                             "inf": float("-inf")}),
    rec("float repr boundaries", extra={"ratio": 1234567890123456.0, "tiny": 0.0001,
                                        "count": 10**38, "big": -(2**127)}),
    rec("strings of numbers", extra={"count": "12", "ratio": "x", "user": "\u00e9\u00e8"}),
    rec("failed", level=40, exc_text=TRACE),
    rec("failed with newline\n", level=40, exc_text=TRACE),
    rec("stack", stack_info=STACK),
    rec("both", level=50, exc_text=TRACE, stack_info=STACK, extra={"request_id": "both"}),
    rec("empty exc_text", exc_text=""),
]


def expected_record(r, start_ns):
    """The LogRecord logging would hand the formatter."""
    record = logging.LogRecord(r["name"], r["level"], r["pathname"], r["lineno"], r["msg"],
                               (), None, func=r["func"])
    ns = r["ns"]
    # CPython 3.13's LogRecord.__init__ from time.time_ns() (3.11 rounds
    # through the float: the flusher follows 3.13).
    record.created = ns / 1e9
    record.msecs = (ns % 1_000_000_000) // 1_000_000 + 0.0
    if record.msecs == 999.0 and int(record.created) != ns // 1_000_000_000:
        record.msecs = 0.0
    record.relativeCreated = (ns - start_ns) / 1e6 if start_ns is not None else 0.0
    if r["module"]:
        record.module = r["module"]
    record.thread = r["thread"]
    record.threadName = r["thread_name"]
    record.processName = r["process_name"]
    record.process = os.getpid()
    record.taskName = r["task_name"] or None  # 3.12+: None outside a task
    record.exc_text = r["exc_text"]
    record.stack_info = r["stack_info"]
    for k, v in r["extra"].items():
        setattr(record, k, v)
    return record


def extra_json(r):
    extra = dict(r["extra"])
    if r["exc_text"] is not None:
        extra["exc_text"] = r["exc_text"]
    if r["stack_info"] is not None:
        extra["stack_info"] = r["stack_info"]
    return json.dumps(extra, default=str).encode() if extra else b""


def write(producer, r):
    b = lambda s: s.encode("utf-8")
    producer.write(r["level"], b(r["name"]), b(r["msg"]), r["ns"], b(r["pathname"]), r["lineno"],
                   b(r["func"]), b(r["module"]), r["thread"], b(r["thread_name"]),
                   b(r["process_name"]), b(r["task_name"]), extra_json(r))


# --- formatter cases -------------------------------------------------------

DEFAULTS = {"request_id": "-", "user": "anon", "count": 0, "ratio": 0.5, "flag": False,
            "none": None, "obj": {}, "lst": [], "big": 1, "tiny": 0.0, "nan": 0.0, "inf": 0.0}
D = DEFAULTS

CASES = [
    # (fmt, datefmt, style, defaults)
    ("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s", None, "%", None),
    ("%(levelname)-8s|%(levelname)8s|%(levelname).3s|%(levelname)-10.2s|%(levelname)r|%(levelname)a|%(levelno)s",
     None, "%", None),
    ("%(lineno)d|%(lineno)5d|%(lineno)-5d|%(lineno)05d|%(lineno)+d|%(lineno) d|%(lineno)x|%(lineno)#x|"
     "%(lineno)#o|%(lineno)X|%(lineno).3d|%(lineno)s|%(lineno)r|%(lineno)e|%(lineno)f|%(lineno)+.2e|%(lineno)i|%(lineno)u",
     None, "%", None),
    ("%(created)f|%(created).3f|%(created)e|%(created)g|%(created)s|%(created)r|%(created)20.6f|"
     "%(created)d|%(created)i|%(created)-22.1F|%(created)E|%(created)#G|%(created)010.0f",
     None, "%", None),
    ("%(msecs)d|%(msecs)03d|%(msecs)f|%(msecs)s|%(msecs).1f|%(msecs)r|%(msecs)#.0f|%(msecs)g", None, "%", None),
    ("%(relativeCreated)r|%(relativeCreated)d|%(relativeCreated).3f|%(relativeCreated)s|%(relativeCreated)12.1e",
     None, "%", None),
    ("%(message)r|%(message)a|%(message)s|%(message).5s|%(message)-20s|%(message)20s", None, "%", None),
    ("%(name)s %(processName)s %(threadName)s %(thread)d %(filename)s %(pathname)s %(module)s "
     "%(funcName)s %(taskName)s %(taskName)r %(process)s %(levelno)02d", None, "%", None),
    ("%(exc_text)s|%(stack_info)r|%(exc_info)s|%(msg)s|%(args)s", None, "%", None),
    ("100%% %(message)s %%(name)s", None, "%", None),
    ("%(request_id)s %(user)r %(count)d %(count)05d %(count)x %(ratio).2f %(ratio)s %(ratio)e %(flag)s "
     "%(flag)d %(none)s %(none)r %(obj)s %(lst)r %(big)s %(tiny)r %(nan)s %(inf)f %(user)a %(count)c",
     None, "%", D),
    ("%(request_id)-10s|%(user)10.3s|%(count)+d|%(ratio)10.3g", None, "%", D),
    ("%(message)s", None, "%", None),
    ("%(asctime)s|%(message)s", "%Y-%m-%d %H:%M:%S", "%", None),
    ("%(asctime)s|%(message)s", "%d/%b/%Y:%H:%M:%S %z", "%", None),
    ("%(asctime)s|%(message)s", "%a %A %b %B %j %p %y %I %w %U %W %%", "%", None),
    ("%(asctime)s|%(message)s", "%c|%x|%X|%H:%M", "%", None),
    ("%(asctime)-30s|%(asctime).10s|%(asctime)r", None, "%", None),
    ("%(asctime)s|%(message)s", "%Y-%m-%d %H:%M:%S %Z %z", "%", None),
    ("%(asctime)s|%(message)s", "%f %.3f %:z %e %-d %_H %s %G-W%V-%u %C %D %T %R %r %h %k %l %P%n%t|",
     "%", None),
    ("[%(asctime)s] %(message)s", "%Y-%m-%dT%H:%M:%S%z", "%", {"request_id": "unused"}),
    ("%(taskName)s %(message)s", None, "%", {"taskName": "ignored: records have taskName"}),

    ("{asctime} {levelname} {name} [{process}] {message}", None, "{", None),
    ("{levelname:<8}|{levelname:>8}|{levelname:^9}|{levelname:*^11}|{levelname:.3}|{levelname:10.2}|"
     "{levelname!r}|{levelname!a:>12}|{levelname:05}|{levelname:s}|{levelname:\u00e9>10}", None, "{", None),
    ("{lineno}|{lineno:5}|{lineno:<5}|{lineno:^5}|{lineno:05}|{lineno:+}|{lineno: }|{lineno:x}|{lineno:#x}|"
     "{lineno:#o}|{lineno:b}|{lineno:#b}|{lineno:X}|{lineno:#X}|{lineno:,}|{lineno:_}|{lineno:=+8}|{lineno:e}|"
     "{lineno:.2f}|{lineno:%}|{lineno!r}|{lineno!s:>6}|{lineno:n}|{lineno:d}|{lineno:0=10,}|{lineno:-^+9}",
     None, "{", None),
    ("{process:,}|{thread:_x}|{thread:#_b}|{levelno:03d}|{levelno:n}|{thread:,}|{thread:020,}|{levelno:c}",
     None, "{", None),
    ("{created}|{created:.3f}|{created:,.2f}|{created:_.1f}|{created:e}|{created:.3E}|{created:g}|{created:G}|"
     "{created:.10g}|{created:%}|{created:.2%}|{created:20}|{created:<20}|{created:^22.3f}|{created:+.1f}|"
     "{created:015.2f}|{created:.5}|{created!r}|{created!s:>20}|{created:#.0f}|{created:,}|{created:.0e}|"
     "{created:030,.3f}|{created:n}|{created:.12n}", None, "{", None),
    ("{msecs}|{msecs:03.0f}|{msecs:.0f}|{msecs:n}|{msecs:#}|{msecs:#.0f}|{msecs:.1}|{msecs:.3}|{msecs:e}|"
     "{msecs:5.1%}", None, "{", None),
    ("{relativeCreated!r}|{relativeCreated:.3f}|{relativeCreated:,.1f}|{relativeCreated}|{relativeCreated:e}",
     None, "{", None),
    ("{message}|{message!r}|{message!a}|{message!s}|{message:.5}|{message:>20}|{message:-<20}|{message!r:^30}",
     None, "{", None),
    ("{name} {processName} {threadName} {thread} {filename} {pathname} {module} {funcName} {taskName} "
     "{taskName!r} {process} {levelno}", None, "{", None),
    ("{{literal}} {message} }}{{ {{{levelname}}}", None, "{", None),
    ("{request_id} {user!r} {count:05d} {count:,} {ratio:.2f} {ratio} {flag} {flag:d} {none} {obj} {lst!r} "
     "{ratio:>10.3e} {big} {big!r} {tiny} {nan} {inf} {obj!a} {user:>8} {user!a}", None, "{", D),
    ("{request_id:*<12}|{count:+}|{count:#x}|{ratio:%}|{flag!s:>6}|{user:.2}", None, "{", D),
    ("{exc_text}|{stack_info!r}|{msg}|{args}|{exc_info}|{msg!r}", None, "{", None),
    ("{asctime}|{message}", "%Y-%m-%d %H:%M:%S", "{", None),
    ("{asctime:>30}|{asctime!r}|{asctime:.10}", "%d/%b/%Y:%H:%M:%S %z", "{", None),
    ("{asctime}", None, "{", None),

    ("$asctime $levelname $name [$process] $message", None, "$", None),
    ("$relativeCreated|${levelname}x ${lineno}${created} $msecs $$ $$$message ${message}$$", None, "$", None),
    ("$name $processName $threadName $thread $filename $pathname $module $funcName $taskName $levelno",
     None, "$", None),
    ("$request_id $user $count $ratio $flag $none $obj $lst $big $tiny $nan $inf", None, "$", D),
    ("$exc_text|$stack_info|$msg|$args|$exc_info", None, "$", None),
    ("${asctime}|$message", "%H:%M:%S %p", "$", None),
    ("$message", None, "$", None),
]

# Formats logging.Formatter(validate=True) refuses; the flusher must too.
INVALID = [
    ("{asctime} {message}", "%", None),
    ("plain text", "%", None),
    ("%(message)s", "{", None),
    ("$message", "{", None),
    ("plain text", "{", None),
    ("%(message)s", "$", None),
    ("{message}", "$", None),
    ("plain $", "$", None),
    ("$message $", "$", None),
    ("$message ${1x}", "$", None),
    ("%(name", "%", None),
    ("{message", "{", None),
    ("{message}}", "{", None),
    ("{message!x}", "{", None),
    ("{message:z}", "{", None),
    ("{message:,,}", "{", None),
    ("{message:.}", "{", None),
    ("{message!}", "{", None),
    ("{}", "{", None),
    ("{a-b}", "{", None),
]

# CPython accepts these; the flusher refuses them when it starts, by
# design: a name neither a record attribute nor in --defaults (a typo, or
# an extra= field without a value for records that lack it), a conversion
# that fails on every record, positional fields and field access.
REFUSED_BY_DESIGN = [
    ("%(request_id)s %(message)s", "%", None),
    ("{request_id} {message}", "{", None),
    ("$request_id $message", "$", None),
    ("%(request_id)s %(message)s", "%", {"user": "-"}),
    ("%(name)d", "%", None),
    ("{lineno:s}", "{", None),
    ("{levelname:+}", "{", None),
    ("%(created)x", "%", None),
    ("{0}", "{", None),
    ("{message.upper}", "{", None),
    ("%(message)s %(name", "%", None),
    ("%(count)d", "%", {"count": "x"}),
]


def cpython_refuses(fmt, style, defaults):
    try:
        logging.Formatter(fmt, None, style, validate=True, defaults=defaults)
        return False
    except ValueError:
        return True


def run_flusher(args, shm, path):
    """Start the flusher over a segment holding the records, wait until it
    runs, stop it with SIGTERM (it drains first); return its exit status
    and stderr."""
    proc = subprocess.Popen([binary, "--shm", shm, "--file", path] + args,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        st = subprocess.run([binary, "stat", "--shm", shm, "--json"], capture_output=True)
        if st.returncode == 0 and json.loads(st.stdout)["flusher"]["pid"] == proc.pid:
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode(errors="replace")


def cmdline(fmt, datefmt, style, defaults):
    args = ["--format", fmt, "--style", style]
    if datefmt is not None:
        args += ["--datefmt", datefmt]
    if defaults is not None:
        args += ["--defaults", json.dumps(defaults)]
    return args


tmp = tempfile.mkdtemp(prefix="rf-formatter-diff-")
failures = []
compared = written = cpython_raises = 0
relative_now = time.time_ns() - 3_600_000_000_000

for n, (fmt, datefmt, style, defaults) in enumerate(CASES):
    relative = "relativeCreated" in fmt
    records = RECORDS
    if relative:
        # Near the flusher's start, so that its start can be read back
        # exactly from the first line's repr() (differences under 2**53 ns).
        records = [dict(r, ns=relative_now + i * 7_777_777_777 + r["ns"] % 1_000_000_000)
                   for i, r in enumerate(RECORDS)]
    formatter = logging.Formatter(fmt, datefmt, style, validate=True, defaults=defaults)
    keep = []
    for r in records:
        try:
            formatter.format(expected_record(r, 0))
            keep.append(r)
        except Exception:  # Handler.handleError would report and drop it
            cpython_raises += 1
    shm = f"/rf-fmtdiff-{os.getpid()}-{n}"
    path = os.path.join(tmp, f"case{n}.log")
    producer = Producer(shm)
    for r in keep:
        write(producer, r)
    written += len(keep)
    status, err = run_flusher(cmdline(fmt, datefmt, style, defaults), shm, path)
    subprocess.run([binary, "rm", "--shm", shm, "--force"], capture_output=True)
    case = f"case {n}: style {style!r} fmt {fmt!r} datefmt {datefmt!r} defaults {defaults!r}"
    if status != 0:
        failures.append(f"{case}: the flusher exited {status}: {err.strip()}")
        continue
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", errors="replace").split("\n")
    start_ns = None
    if relative:
        first = lines[0].split("|", 1)[0]
        start_ns = keep[0]["ns"] - round(float(first) * 1e6)
    at = 0
    for r in keep:
        want = formatter.format(expected_record(r, start_ns))
        k = want.count("\n") + 1
        got = "\n".join(lines[at:at + k])
        at += k
        if at > len(lines) - 1:
            failures.append(f"{case}: the file ends before the record {r['msg'][:30]!r}")
            break
        compared += 1
        if got != want:
            failures.append(f"{case}\n    record {r['msg'][:40]!r} extra {r['extra']!r}\n"
                            f"    python   {want!r}\n    ringflush {got!r}")
    if at != len(lines) - 1 or lines[-1] != "":
        failures.append(f"{case}: {len(lines) - 1 - at} lines more than the records written")

refused = 0
for n, (fmt, style, defaults) in enumerate(INVALID + REFUSED_BY_DESIGN):
    by_design = n >= len(INVALID)
    if not by_design and not cpython_refuses(fmt, style, defaults):
        failures.append(f"test bug: CPython accepts {fmt!r} in style {style!r}")
        continue
    shm = f"/rf-fmtdiff-bad-{os.getpid()}-{n}"
    path = os.path.join(tmp, f"bad{n}.log")
    status, err = run_flusher(cmdline(fmt, None, style, defaults), shm, path)
    subprocess.run([binary, "rm", "--shm", shm, "--force"], capture_output=True)
    refused += 1
    if status != 2 or "invalid --format" not in err or os.path.exists(path):
        failures.append(f"style {style!r} format {fmt!r} defaults {defaults!r}: the flusher "
                        f"exited {status}, file {'written' if os.path.exists(path) else 'absent'}, "
                        f"stderr {err.strip()!r}; expected exit 2 and 'invalid --format'")

for f in failures[:40]:
    print("MISMATCH", f)
pairs = len(CASES) * len(RECORDS)
print(f"CPython {sys.version.split()[0]} TZ={os.environ['TZ']}: {len(CASES)} formatters x "
      f"{len(RECORDS)} records: {compared} of {written} written records compared "
      f"({cpython_raises} pairs CPython raises on, not written; {pairs} pairs in all); "
      f"{refused} invalid formats refused ({len(INVALID)} CPython refuses too, "
      f"{len(REFUSED_BY_DESIGN)} by design); {len(failures)} mismatches")
ok = not failures and compared == written and written + cpython_raises == pairs and written > 0
if ok:
    shutil.rmtree(tmp)
else:
    print(f"the flusher's files are in {tmp}")
sys.exit(0 if ok else 1)
