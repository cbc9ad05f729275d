"""The event schema: every kind is declared, modelled or knowingly log-only, described in words, and exported
in a form that reads back.

These tests run on declarations and synthetic events only (no processes).
"""
import csv
import json
import signal

import numpy as np
import pytest

from core.trace import schema
from core.trace.arrays import EVENT_DTYPE
from core.trace.events import Kind
from core.trace.export import chrome_trace, write_csv
from core.trace.model import RunModel

#: The parameters every model handler takes around the payload slots, in order.
_BEFORE, _AFTER = ("t", "uid"), ("pid", "tid")
STRINGS = {11: "get", 12: "phase one"}


def handler_params(fn):
    code = getattr(fn, "__func__", fn).__code__
    names = code.co_varnames[:code.co_argcount]
    return names[1:] if hasattr(fn, "__func__") else names


def synthetic(kind):
    """A plausible payload: every declared field a value that is known and worth saying."""
    values = []
    for f in schema.SCHEMA[kind].slots:
        if f is None:
            values.append(0)
        elif f.unit == schema.STRING:
            values.append(11)
        elif isinstance(f.unit, type):
            values.append(max(f.unit._value2member_map_))
        elif f.unit == schema.FLAG:
            values.append(1)
        elif f.unit == schema.SIGNAL:
            values.append(10)
        else:
            values.append(3 if f.plain != 3 and f.unknown != 3 else 4)
    return tuple(values)


def test_every_kind_is_declared_once():
    assert set(schema.SCHEMA) == set(Kind)
    for kind, spec in schema.SCHEMA.items():
        assert spec.kind == kind
        names = [f.name for f in spec.fields]
        assert len(set(names)) == len(names), kind
        assert not set(names) & set(_BEFORE + _AFTER), "%s: a field named like a handler's own parameter" % kind
        assert spec.subject, kind


def test_every_kind_is_modelled_or_knowingly_log_only():
    handlers = RunModel().handlers
    for kind, spec in schema.SCHEMA.items():
        assert bool(spec.model) != bool(spec.log_only), "%s: say what the model makes of it, or why not" % kind
        if spec.log_only:
            assert kind not in handlers, "%s is declared log-only but the model handles it" % kind.name
        else:
            assert kind in handlers, "%s is neither handled by the model nor marked log_only" % kind.name
    assert set(handlers) <= set(schema.SCHEMA)


def test_model_handlers_read_the_declared_fields():
    """A handler names its payload parameters after the declared fields (``_x``: unused; ``a``/``b``/``c``:
    kept raw for the schema to describe later), so a handler that reads a slot as something else fails."""
    for kind, fn in RunModel().handlers.items():
        params = handler_params(fn)
        assert params[:2] == _BEFORE and params[5:] == _AFTER, (kind, params)
        for slot, (param, field) in enumerate(zip(params[2:5], schema.SCHEMA[kind].slots)):
            if param.startswith("_") or param == "abc"[slot]:
                continue
            assert field is not None and param == field.name, \
                "%s: its handler reads slot %s as %r, the schema declares %r" % (
                    kind.name, "abc"[slot], param, field and field.name)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
def test_every_kind_reads_in_words(kind):
    spec = schema.SCHEMA[kind]
    for values in (synthetic(kind), (-1, -1, -1), (0, 0, 0)):
        text = schema.describe(kind, *values, STRINGS)
        assert text and "{" not in text and "}" not in text
        for raw in ("a=", "b=", "c="):
            assert raw not in text
    said = schema.describe(kind, *synthetic(kind), STRINGS)
    for f in spec.fields:          # every declared field appears in the template, so the log shows it all
        assert "{%s}" % f.name in spec.template, (kind, f.name)
    if kind == Kind.MANAGER_CALL:
        assert said.startswith("get()")


def test_optional_parts_drop_when_their_field_is_unknown_or_plain():
    d = schema.describe
    assert d(Kind.ACQ_OK, 2_500_000, -1, 1, {}) == "acquired after 2.5 ms"
    assert d(Kind.ACQ_OK, 0, 2, 3, {}) == "acquired after 0 ns, value now 2, depth 3"
    assert d(Kind.RELEASE, -1, -1, 0, {}) == "released"
    assert d(Kind.POOL_RESULT_USED, 4, -1, 0, {}) == "job 4: the results of the whole job used by the caller"
    assert d(Kind.POOL_RESULT_USED, 4, 7, 0, {}) == "job 4: the result of task 7 used by the caller"
    assert d(Kind.COND_NOTIFY, -1, 0, 0, {}) == "notify wakes all waiting"
    assert d(Kind.SIGNAL_SEND, 10, 4242, 0, {}) == "sent SIGUSR1 to pid 4242"
    assert d(Kind.PROC_REAPED, 4242, -9, 0, {}) == "saw pid 4242 end: killed by SIGKILL"
    assert d(Kind.QUEUE_GET, 60_000, 2048, -1, {}) == "got 2.0 KiB in 60 µs"
    assert d(999, 1, 2, 3, {}) == "payload 1, 2, 3"            # a kind from a newer core


def test_a_bad_template_is_refused():
    with pytest.raises(ValueError, match="no declared field"):
        schema._parse("waited {wiat}", {"wait": 0})
    with pytest.raises(ValueError, match="unclosed"):
        schema._parse("waited {wait", {"wait": 0})
    with pytest.raises(ValueError, match="cannot nest"):
        schema._parse("x{ a{ b {wait}}}", {"wait": 0})


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.name)
def test_fields_read_back_into_the_payload(kind):
    """What the exports hold (named fields, enums and strings in words) gives back the record's payload."""
    ids = {text: sid for sid, text in STRINGS.items()}
    for values in (synthetic(kind), (-1, -1, -1), (0, 0, 0)):
        exported = schema.fields(kind, *values, STRINGS)
        assert json.loads(json.dumps(exported)) == exported
        expect = tuple(v if f is not None else 0 for f, v in zip(schema.SCHEMA[kind].slots, values))
        assert schema.payload(kind, exported, ids) == expect


def test_export_keys_carry_physical_units():
    assert schema.fields(Kind.ACQ_OK, 1500, 2, 1, {}) == {"wait_ns": 1500, "value": 2, "depth": 1}
    assert schema.fields(Kind.ACQ_OK, 1500, -1, 1, {}) == {"wait_ns": 1500, "depth": 1}
    assert schema.fields(Kind.POOL_JOB, 1, 5, 4, {}) == {"job": 1, "tasks": 5, "method": "imap_unordered"}
    assert schema.fields(Kind.SIGNAL_SEND, int(signal.SIGUSR1), 42, 0, {}) == {"signal": "SIGUSR1", "target": 42}
    assert schema.payload(Kind.SIGNAL_SEND, {"signal": "SIGUSR1", "target": 42}, {}) == (signal.SIGUSR1, 42, 0)


# -- the exports, on a model fed one event of every kind ------------------------------------------------------

def every_kind_model():
    rows = np.zeros(len(Kind), EVENT_DTYPE)
    for i, kind in enumerate(Kind):
        a, b, c = synthetic(kind)
        rows[i] = (1_000_000 * (i + 1), 0 if schema.SCHEMA[kind].subject == schema.NOTHING else 77, a, b,
                   int(kind), c, 100, 100)
    m = RunModel(keep_events=True)
    m.set_meta({"created_perf": 0})
    m.ingest(rows, [{"t": "proc", "pid": 100, "ppid": 1, "role": "main", "name": "MainProcess"},
                    {"t": "obj", "uid": 77, "kind": "Lock", "name": "db"}] +
             [{"t": "str", "id": sid, "s": s} for sid, s in STRINGS.items()])
    return m, rows


def test_events_csv_has_named_fields_and_words(tmp_path):
    m, rows = every_kind_model()
    write_csv(m, tmp_path, m.events.view())
    with open(tmp_path / "events.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    assert not {"a", "b", "c"} & set(table[0])
    ids = {text: sid for sid, text in STRINGS.items()}
    for line, row in zip(table, rows.tolist()):
        t, uid, a, b, kind, c, pid, tid = row
        assert line["kind"] == Kind(kind).name
        assert line["description"] == schema.describe(kind, a, b, c, STRINGS)
        exported = json.loads(line["fields"])
        assert exported == schema.fields(kind, a, b, c, STRINGS)
        assert schema.payload(kind, exported, ids) == schema.payload(kind, schema.fields(kind, a, b, c, STRINGS),
                                                                      ids)


def test_chrome_instants_carry_the_declared_fields():
    m, _ = every_kind_model()
    evs = chrome_trace(m)["traceEvents"]
    instants = [e for e in evs if e["ph"] == "i" and e.get("cat") == "moment"]
    kinds = {e["args"]["kind"] for e in instants}
    assert {"SIGNAL_SEND", "SIGNAL_RECV", "SHM_CREATE", "SHM_UNLINK", "COND_NOTIFY", "PROC_KILL"} <= kinds
    for e in instants:
        kind = Kind[e["args"]["kind"]]
        args = {k: v for k, v in e["args"].items() if k not in ("kind", "object", "description")}
        a, b, c = schema.payload(kind, args, {text: sid for sid, text in STRINGS.items()})
        assert args == schema.fields(kind, a, b, c, STRINGS)
        assert e["args"]["description"] == schema.describe(kind, a, b, c, STRINGS)
