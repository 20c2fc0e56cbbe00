"""Fuzzing the write road over HTTP (#14, point 5): random mutations of valid resources
(primitives of every wrong JSON type, control characters, deep nesting, random XHTML,
random JSON, random Bundles and patches) are answered with a 2xx, or a 4xx
OperationOutcome that echoes nothing of what was injected: never a 5xx, never a traceback.

Bounded: each property runs a fixed number of examples with no deadline, a few seconds in
all. Injected text carries a canary, so an echo is found wherever it lands in the answer.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.fhir.primitives import table_of
from exchange.fhir.release import model_class
from tests.community import Community, build_community

FHIR = "application/fhir+json"
CANARY = "zq9canary"
CANARY_NUMBER = 987654321987
XHTML_NS = 'xmlns="http://www.w3.org/1999/xhtml"'
_BOUNDED = {"deadline": None, "database": None,
            "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow]}
RUNS = settings(max_examples=100, **_BOUNDED)  # type: ignore[arg-type]
# Properties that send two or three requests an example run half as many.
HALF = settings(max_examples=50, **_BOUNDED)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Community]:
    """One community for every example: what is accepted accumulates, harmlessly."""
    community = build_community(Path(tmp_path_factory.mktemp("fuzz")))
    yield community
    community.services.engine.dispose()


@pytest.fixture(scope="module")
def writer(fuzzed: Community) -> dict[str, str]:
    return {**fuzzed.headers("clinic-a", "TREAT", "system/*.cruds"), "Content-Type": FHIR}


def _obs() -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/alice"}, "valueQuantity": {"value": 71},
            "note": [{"text": "seated"}], "effectiveDateTime": "2025-01-01T09:00:00+08:00"}


# -- what is injected -------------------------------------------------------------------

_canary_text = st.builds(lambda head, tail: f"{head}{CANARY}{tail}",
                         st.text(max_size=8), st.text(max_size=8))
_control_text = st.builds(lambda head, char, tail: f"{CANARY}{head}{char}{tail}",
                          st.text(max_size=5),
                          st.sampled_from(["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f"]),
                          st.text(max_size=5))
_scalars = st.one_of(
    st.none(), st.booleans(), st.just(CANARY_NUMBER), st.just(-CANARY_NUMBER),
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80), st.just(2 ** 70),
    st.floats(allow_nan=False, allow_infinity=False), st.just("true"), st.just("5"),
    st.just(""), _canary_text, _control_text)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=8), _control_text),
                                            inner, max_size=3)),
    max_leaves=12)

_OBSERVATION_KEYS = sorted(k for k in table_of(model_class("Observation")) if "__" not in k)
_TAGS = ["div", "p", "b", "a", "img", "table", "tr", "td", "span", "script", "iframe",
         "form", "input", "object", "embed", "base", "link", "meta", "style", "svg", "x:y"]
_ATTRIBUTES = ["href", "src", "style", "onclick", "onload", "class", "xmlns", "xml:lang"]
_attribute_values = st.one_of(
    st.sampled_from(["javascript:alert(1)", " java\tscript:x", "http://ok.example/",
                     "#top", "data:text/html,x", "url(http://t.example/x)", "color: red"]),
    _canary_text)


@st.composite
def xhtml(draw: st.DrawFn) -> str:
    """A fragment of tags, attributes, text and entities, well-formed or not."""
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        tag = draw(st.sampled_from(_TAGS))
        attributes = "".join(
            f' {name}="{value.replace(chr(34), "")}"' for name, value in draw(st.lists(
                st.tuples(st.sampled_from(_ATTRIBUTES), _attribute_values), max_size=2)))
        parts.append(draw(st.sampled_from([
            f"<{tag}{attributes}>{draw(_canary_text)}</{tag}>", f"<{tag}{attributes}/>",
            f"<{tag}>", draw(_canary_text), "&nbsp;", "&amp;", "<!-- c -->", "<![CDATA[x]]>",
            "<?pi x?>", "<!DOCTYPE div>"])))
    inner = "".join(parts)
    return draw(st.sampled_from([f"<div {XHTML_NS}>{inner}</div>", f"<div>{inner}</div>",
                                 inner, f"<div {XHTML_NS}>{inner}"]))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "resourceType":
                yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replace(node[head], rest, value)}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(node)]


@st.composite
def mutated_observation(draw: st.DrawFn) -> dict[str, Any]:
    body = _obs()
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["replace", "add", "narrative", "nest"]))
        if how == "replace":
            path = draw(st.sampled_from([p for p in _paths(body) if p]))
            body = _replace(body, path, draw(json_values))
        elif how == "add":
            body = {**body, draw(st.sampled_from(_OBSERVATION_KEYS)): draw(json_values)}
        elif how == "narrative":
            body = {**body, "text": {"status": "generated", "div": draw(xhtml())}}
        else:
            inner: dict[str, Any] = {"url": "http://example.org/x", "valueString": CANARY}
            for _ in range(draw(st.integers(1, 80))):
                inner = {"url": "http://example.org/x", "extension": [inner]}
            body = {**body, "extension": [inner]}
    return body


# -- what every answer must be --------------------------------------------------------------

def _check(r: Any) -> None:
    assert r.status_code < 500, r.text[:500]
    assert "Traceback" not in r.text and 'File "' not in r.text
    if r.status_code >= 400:
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome", r.text[:500]
        assert outcome["issue"] and all(i["severity"] for i in outcome["issue"])
        assert CANARY not in r.text, r.text[:500]
        assert str(CANARY_NUMBER) not in r.text, r.text[:500]


def _raw(value: Any) -> bytes:
    # The standard library's encoder: it writes integers of any size, as a client might.
    return json.dumps(value).encode()


@RUNS
@given(body=mutated_observation())
def test_mutated_observations_are_kept_or_refused_cleanly(
        fuzzed: Community, writer: dict[str, str], body: dict[str, Any]) -> None:
    _check(fuzzed.http.post("/fhir/Observation", content=_raw(body), headers=writer))


@HALF
@given(body=mutated_observation())
def test_mutated_updates_and_patches_are_kept_or_refused_cleanly(
        fuzzed: Community, writer: dict[str, str], body: dict[str, Any]) -> None:
    _check(fuzzed.http.put("/fhir/Observation/alice-glu-1",
                           content=_raw({**body, "id": "alice-glu-1"}), headers=writer))
    ops = [{"op": "add", "path": f"/{key}", "value": value}
           for key, value in body.items() if key != "resourceType"][:3]
    _check(fuzzed.http.patch("/fhir/Observation/alice-glu-2", content=_raw(ops),
                             headers={**writer,
                                      "Content-Type": "application/json-patch+json"}))


@st.composite
def patch_operations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Operations on paths of the stored Observation and below them, copies and moves of
    a subtree into itself included (each copy doubles its depth)."""
    paths = ["/" + "/".join(str(p) for p in path) for path in _paths(_obs()) if path]
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["add", "replace", "remove", "copy", "move", "test"]))
        path = draw(st.sampled_from(paths)) + draw(st.sampled_from(["", "/-", "/0", "/x"]))
        entry: dict[str, Any] = {"op": op, "path": path}
        if op in ("copy", "move"):
            entry["from"] = draw(st.sampled_from(paths))
        elif op != "remove":
            entry["value"] = draw(json_values)
        ops.append(entry)
    return ops


@HALF
@given(ops=patch_operations())
def test_random_patches_are_applied_or_refused_cleanly(
        fuzzed: Community, writer: dict[str, str], ops: list[dict[str, Any]]) -> None:
    _check(fuzzed.http.patch("/fhir/Observation/alice-glu-0", content=_raw(ops),
                             headers={**writer,
                                      "Content-Type": "application/json-patch+json"}))


@HALF
@given(entries=st.lists(st.one_of(mutated_observation(), json_values), min_size=1,
                        max_size=3),
       kind=st.sampled_from(["transaction", "batch"]))
def test_bundles_of_mutated_entries_are_kept_or_refused_cleanly(
        fuzzed: Community, writer: dict[str, str], entries: list[Any], kind: str) -> None:
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": e, "request": {"method": "POST", "url": "Observation"}} for e in entries]}
    r = fuzzed.http.post("/fhir", content=_raw(bundle), headers=writer)
    _check(r)
    if kind == "batch" and r.status_code == 200:
        for entry in r.json()["entry"]:
            assert not entry["response"]["status"].startswith("5"), entry
            assert CANARY not in json.dumps(entry.get("response"))


@RUNS
@given(body=json_values, rtype=st.sampled_from(["Observation", "Patient", "Condition"]))
def test_random_json_is_refused_cleanly(fuzzed: Community, writer: dict[str, str],
                                        body: Any, rtype: str) -> None:
    _check(fuzzed.http.post(f"/fhir/{rtype}", content=_raw(body), headers=writer))
    if isinstance(body, dict):
        _check(fuzzed.http.post(f"/fhir/{rtype}", content=_raw({**body, "resourceType": rtype}),
                                headers=writer))
