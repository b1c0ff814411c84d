"""Fuzz request parsing: asm.serving.wire (multipart form, JSON, raw body), CropOptions, and
the KServe v2 envelope (handler/kserve_v2.py)."""

from __future__ import annotations

import base64

from hypothesis import strategies as st

from asm import CropOptions
from asm.serving import wire
from asm.testing import forge
from handler import kserve_v2
from tests.fuzz.harness import fuzz, guarded

IMAGE = forge.real("PNG", 8, 8)  # never decoded here: small, so a failing example prints short
KEYS = ["data", "image", "aspect", "circular", "top_k", "nms_iou", "faces", "keep", "focus", "min_scale", "heatmap"]
WORDS = ["16:9", "1:1", "free", "4:3,1:1", "0:1", "-1:2", "1e400:1", "nan:1", "inf", "true", "false", "yes", "0", "1",
         "3", "11", "-1", "0.5", "1e-9", "nan", "1,2,30,40", "1,2,30,40;5,6,70,80", "[[1,2,30,40]]", "[10,20]", "10,20",
         "0,0,0,0", "9" * 400 + ":1", "\u00e9:\u0661", " 16 : 9 ", "", ",", ";", "[", "{}"]

names = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
texts = st.one_of(st.sampled_from(WORDS), st.text(max_size=40))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(names, inner, max_size=5)),
                           max_leaves=12)
images = st.one_of(st.just(IMAGE), st.binary(max_size=64))
b64 = st.one_of(images.map(lambda b: base64.b64encode(b).decode()), images.map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
                images.map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode()), texts)
form_values = st.one_of(st.binary(max_size=40), texts.map(str.encode), st.lists(texts.map(str.encode), max_size=3), texts, images)


def _check_request(req: wire.Request | None) -> None:
    if req is not None:
        assert isinstance(req.image, bytes) and req.image and isinstance(req.options, CropOptions)
        assert isinstance(req.heatmap, bool)


@fuzz(st.dictionaries(names, form_values, max_size=6), st.sampled_from(["", "multipart/form-data", "application/x-www-form-urlencoded"]))
def test_fuzz_wire_form(fields: dict, content_type: str) -> None:
    """parse_form: a Request or asm's typed error."""
    _check_request(guarded("wire: parse_form", wire.parse_form, fields, content_type))


@fuzz(st.one_of(st.dictionaries(names, json_values, max_size=6).flatmap(
    lambda d: st.fixed_dictionaries({"image": b64}).map(lambda i: {**d, **i}) | st.just(d)), json_values))
def test_fuzz_wire_json(obj: object) -> None:
    """parse_json on any decoded JSON value."""
    _check_request(guarded("wire: parse_json", wire.parse_json, obj))


@fuzz(st.one_of(st.binary(max_size=64), images, st.text(max_size=40)),
      st.one_of(st.sampled_from(["", "image/jpeg", "application/json", "text/plain", "APPLICATION/JSON; x"]), st.text(max_size=20)))
def test_fuzz_wire_body(body: bytes | str, content_type: str) -> None:
    """parse_body on a raw body (bytes or text) and any content type."""
    _check_request(guarded("wire: parse_body", wire.parse_body, body, content_type))


@fuzz(st.dictionaries(names, json_values, max_size=8))
def test_fuzz_crop_options(options: dict) -> None:
    """CropOptions.from_mapping: valid options or InvalidOption."""
    got = guarded("options: CropOptions.from_mapping", CropOptions.from_mapping, options)
    assert got is None or isinstance(got, CropOptions)


tensors = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(KEYS), json_values), "data": st.one_of(st.lists(st.one_of(b64, json_values), max_size=3), json_values)},
    optional={"datatype": st.one_of(st.sampled_from(["BYTES", "INT32", "FP32"]), json_values), "shape": json_values,
              "parameters": st.one_of(st.dictionaries(names, json_values, max_size=3), json_values)})
v2_requests = st.fixed_dictionaries(
    {"inputs": st.lists(st.one_of(tensors, json_values), max_size=4)},
    optional={"id": json_values, "parameters": st.one_of(st.dictionaries(names, json_values, max_size=4), json_values)})


@fuzz(st.one_of(v2_requests, json_values))
def test_fuzz_kserve_v2_request(body: object) -> None:
    """A v2 infer body as the handler sees it (request_of, then parse)."""
    request = kserve_v2.request_of({"body": body})
    if request is not None:
        _check_request(guarded("kserve v2: parse", kserve_v2.parse, request))


rows = st.fixed_dictionaries({"name": st.one_of(st.sampled_from(KEYS), json_values), "datatype": st.sampled_from(["BYTES", "INT32"]),
                              "data": st.one_of(b64, json_values)}, optional={"shape": json_values, "parameters": json_values})


@fuzz(st.lists(st.one_of(rows, rows, json_values), max_size=4))
def test_fuzz_kserve_v2_envelope(rows: list) -> None:
    """Rows from TorchServe's kservev2 envelope (from_envelope, then parse)."""
    request = kserve_v2.from_envelope(rows)
    if request is not None:
        _check_request(guarded("kserve v2: envelope", kserve_v2.parse, request))
